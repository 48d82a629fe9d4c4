//! Finding a lead and listing a workspace's leads by one score of the active model, filtered and
//! sorted: what the API's lead routes and the console's lead pages both show.
//!
//! The score and tier asked for must be the active model's: a typo would otherwise list no lead,
//! which reads as "no lead qualifies".

use leadscore_store::leads::{Filter, LeadRow, ListedLead, Order};
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
    pub order: Order,
    pub limit: u32,
    pub offset: u32,
}

/// A page of leads and what it was listed by.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The score listed (empty while the workspace has no active model).
    pub score: String,
    /// The active model's scores, each with its tier labels, lowest first.
    pub scores: Vec<(String, Vec<String>)>,
    pub leads: Vec<ListedLead>,
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
    if let Some(min) = request.min.filter(|m| !m.is_finite()) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("`min` must be a finite number, not {min}")));
    }
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
    let filter = Filter { score: score.clone(), tier: request.tier, stage: request.stage, min_value: request.min };
    let (order, limit, offset) = (request.order, request.limit, request.offset);
    let leads = state.storage.read(move |reads| reads.list_leads(workspace_id, &filter, order, limit, offset)).await?;
    Ok(Listing { score, scores, leads })
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
}
