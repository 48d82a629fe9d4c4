//! Finding a lead and listing a workspace's leads by one score of the active model, filtered and
//! sorted: what the API's lead routes and the console's lead pages both show.
//!
//! The score and tier asked for must be the active model's: a typo would otherwise list no lead,
//! which reads as "no lead qualifies".

use leadscore_store::leads::{Filter, LeadRow, ListedLead, Order, Page, Position};
use leadscore_store::{Reads, StoreError};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A lead by its user id, else by its own numeric id.
pub fn find(reads: &dyn Reads, workspace_id: i64, id: &str) -> Result<Option<LeadRow>, StoreError> {
    if let Some(lead) = reads.lead_by_user_id(workspace_id, id)? {
        return Ok(Some(lead));
    }
    match id.parse::<i64>() {
        Ok(own) => reads.lead_by_id(workspace_id, own),
        Err(_) => Ok(None),
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// The score to list by; the active model's first score with tiers (else its first) when
    /// `None`.
    pub score: Option<String>,
    pub tier: Option<String>,
    pub stage: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Text the lead's e-mail, name or company contains, in any case.
    pub search: Option<String>,
    /// Only leads updated at or after this time (ms).
    pub updated_since: Option<i64>,
    /// Only the lead with this e-mail (any ASCII case).
    pub email: Option<String>,
    pub order: Order,
    pub limit: u32,
    /// A cursor from a previous listing (`next` or `previous`), else the first page.
    pub cursor: Option<String>,
    /// Leads to skip, for clients that page by offset (`cursor` is the fast way).
    pub offset: Option<u32>,
}

/// A page of leads and what it was listed by.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The score listed (empty while the workspace has no active model).
    pub score: String,
    /// The active model's scores, each with its tier labels, lowest first.
    pub scores: Vec<(String, Vec<String>)>,
    pub leads: Vec<ListedLead>,
    /// The cursor of the page after this one, when there is one.
    pub next: Option<String>,
    /// The cursor of the page before this one, when there is one.
    pub previous: Option<String>,
}

/// A cursor: where a page starts, opaque to clients but stable, so that a page's address can be
/// bookmarked. `n` (the page after) or `p` (the page before), the lead's value as the bits of the
/// float in hexadecimal (empty without a value), the lead's id.
pub fn cursor(page: Page) -> Option<String> {
    let (direction, position) = match page {
        Page::After(position) => ('n', position),
        Page::Before(position) => ('p', position),
        Page::Offset(_) => return None,
    };
    let value = position.value.map_or(String::new(), |v| format!("{:016x}", v.to_bits()));
    Some(format!("{direction}{value}.{}", position.id))
}

/// The page a cursor names; a 400 `invalid_query` for text that is no cursor.
pub fn page_of_cursor(text: &str) -> Result<Page, ApiError> {
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "`cursor` is not a cursor of this listing; use the `next_cursor` or `previous_cursor` of a listing, or leave it out for the first page",
        )
    };
    let (direction, rest) = text.split_at_checked(1).ok_or_else(invalid)?;
    let (value, id) = rest.split_once('.').ok_or_else(invalid)?;
    let value = match value {
        "" => None,
        bits if bits.len() == 16 => {
            let value = f64::from_bits(u64::from_str_radix(bits, 16).map_err(|_| invalid())?);
            Some(value).filter(|v| v.is_finite()).ok_or_else(invalid).map(Some)?
        }
        _ => return Err(invalid()),
    };
    let position = Position { value, id: id.parse().map_err(|_| invalid())? };
    match direction {
        "n" => Ok(Page::After(position)),
        "p" => Ok(Page::Before(position)),
        _ => Err(invalid()),
    }
}

/// The most leads a page lists.
pub const MOST: u32 = 1000;

/// The score a listing shows when none is asked for: the first with tiers, else the first.
fn default_score_of(scores: &[(String, Vec<String>)]) -> String {
    scores
        .iter()
        .find(|(_, tiers)| !tiers.is_empty())
        .or(scores.first())
        .map_or(String::new(), |(name, _)| name.clone())
}

/// Lists the workspace's leads as `request` asks; a 400 `invalid_query` naming the parameter
/// for a score, tier, limit or minimum that cannot be listed by.
pub async fn list(state: &AppState, workspace_id: i64, request: ListRequest) -> Result<Listing, ApiError> {
    if request.limit == 0 || request.limit > MOST {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("`limit` must be between 1 and {MOST}")));
    }
    for (name, bound) in [("min", request.min), ("max", request.max)] {
        if let Some(bound) = bound.filter(|b| !b.is_finite()) {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("`{name}` must be a finite number, not {bound}"),
            ));
        }
    }
    // An empty `cursor` is no cursor, and an `offset` of 0 no offset (a form that sends every
    // field sends them so).
    let asked_cursor = request.cursor.as_ref().filter(|cursor| !cursor.is_empty());
    let offset = request.offset.filter(|offset| *offset > 0);
    let page = match (asked_cursor, offset) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(ErrorCode::InvalidQuery, "give `cursor` or `offset`, not both"));
        }
        (Some(_), None) if request.order == Order::LastActivity => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "`cursor` pages leads listed by score; with `order=last_activity`, page with `offset`",
            ));
        }
        (Some(cursor), None) => page_of_cursor(cursor)?,
        (None, offset) => Page::Offset(offset.unwrap_or(0)),
    };
    let models = state.models.clone();
    let scores: Option<Vec<(String, Vec<String>)>> = state
        .storage
        .read(move |reads| {
            let Some(version) = reads.active_model(workspace_id)? else {
                return Ok(None);
            };
            let model = models.get(reads, &version)?;
            Ok(Some(
                model
                    .scores()
                    .iter()
                    .map(|s| (s.name().to_string(), s.tiers().iter().map(|t| t.label().to_string()).collect()))
                    .collect(),
            ))
        })
        .await?;
    let scores = scores.unwrap_or_default();
    let score = request.score.unwrap_or_else(|| default_score_of(&scores));
    let no_tiers = Vec::new();
    let tiers = match scores.iter().find(|(name, _)| *name == score) {
        Some((_, tiers)) => tiers,
        // Without an active model, leads are listed without scores.
        None if scores.is_empty() && score.is_empty() => &no_tiers,
        None => {
            let known: Vec<&str> = scores.iter().map(|(name, _)| name.as_str()).collect();
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                if known.is_empty() {
                    "`score`: the workspace has no active model, so there is no score to list by".to_string()
                } else {
                    format!("`score` `{score}` is not a score of the active model; it has: {}", known.join(", "))
                },
            ));
        }
    };
    if let Some(tier) = request.tier.as_deref().filter(|t| !tiers.iter().any(|known| known == t)) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`tier` `{tier}` is not a tier of score `{score}`; it has: {}", tiers.join(", ")),
        ));
    }
    let filter = Filter {
        score: score.clone(),
        tier: request.tier,
        stage: request.stage,
        min_value: request.min,
        max_value: request.max,
        // Control characters (a NUL, say) are in no name, e-mail or company, and a NUL would end
        // the search text early in the index's query: they are left out of what is sought.
        text: request
            .search
            .map(|text| text.chars().filter(|c| !c.is_control()).collect::<String>())
            .filter(|text| !text.trim().is_empty()),
        updated_since: request.updated_since,
        // A NUL would end the index's query early, and no e-mail holds a control character.
        email: request.email.map(|email| email.chars().filter(|c| !c.is_control()).collect::<String>()),
    };
    let (order, limit) = (request.order, request.limit);
    // One lead more than asked tells whether there is a page beyond.
    let mut leads =
        state.storage.read(move |reads| reads.list_leads(workspace_id, &filter, order, limit + 1, page)).await?;
    let more = leads.len() > limit as usize;
    if more {
        match page {
            Page::Before(_) => leads.remove(0),
            _ => leads.pop().expect("a lead beyond the page"),
        };
    }
    let position = |lead: &ListedLead| Position { value: lead.value, id: lead.id };
    let (next, previous) = if order == Order::LastActivity {
        (None, None)
    } else {
        let after_last = leads.last().map(|last| Page::After(position(last)));
        let before_first = leads.first().map(|first| Page::Before(position(first)));
        match page {
            Page::Before(_) => (after_last, before_first.filter(|_| more)),
            Page::After(_) => (after_last.filter(|_| more), before_first),
            Page::Offset(offset) => (after_last.filter(|_| more), before_first.filter(|_| offset > 0)),
        }
    };
    Ok(Listing { score, scores, leads, next: next.and_then(cursor), previous: previous.and_then(cursor) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_score_is_the_first_with_tiers() {
        let scores = vec![("fit".to_string(), vec![]), ("total".to_string(), vec!["cold".to_string()])];
        assert_eq!(default_score_of(&scores), "total");
        assert_eq!(default_score_of(&scores[..1]), "fit");
        assert_eq!(default_score_of(&[]), "");
    }

    #[test]
    fn a_cursor_reads_back_as_its_page_and_anything_else_is_refused() {
        for page in [
            Page::After(Position { value: Some(-12.5), id: 42 }),
            Page::Before(Position { value: Some(0.0), id: 1 }),
            Page::After(Position { value: None, id: 7 }),
        ] {
            assert_eq!(page_of_cursor(&cursor(page).unwrap()).unwrap(), page);
        }
        for text in ["", "n", "x.1", "n.1x", "n0.1", "n7ff0000000000000.1", "né.1"] {
            assert!(page_of_cursor(text).is_err(), "{text}");
        }
    }
}
