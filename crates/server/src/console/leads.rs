//! The leads page: the workspace's leads by a score of the active model, best first, filtered by
//! tier and stage, the filters in the URL so that a view can be bookmarked and shared.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use leadscore_core::Timestamp;
use leadscore_store::leads::{ListedLead, Order};
use leadscore_store::now_ms;
use serde::Deserialize;

use super::page::{AccountView, page};
use super::session::SignedInPage;
use crate::lifecycle;
use crate::listing::{self, ListRequest};
use crate::state::AppState;

/// Leads a page shows.
const PAGE_SIZE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct LeadsQuery {
    score: Option<String>,
    tier: Option<String>,
    stage: Option<String>,
    offset: Option<u32>,
}

/// A time as the page shows it: relative, with the absolute time on hover.
pub(super) struct ShownTime {
    pub relative: String,
    pub absolute: String,
    pub iso: String,
}

/// An option of a filter, and whether the page shows it.
struct Choice {
    value: String,
    selected: bool,
}

fn choices<'a>(values: impl IntoIterator<Item = &'a str>, selected: Option<&str>) -> Vec<Choice> {
    values.into_iter().map(|value| Choice { value: value.to_string(), selected: Some(value) == selected }).collect()
}

struct Row {
    /// The lead page's path.
    link: String,
    name: String,
    detail: Option<String>,
    value: String,
    tier: Option<String>,
    /// The tier's place from the top (0: the best tier), which sets its badge's colour.
    tier_rank: usize,
    stage: String,
    last_activity: Option<ShownTime>,
}

#[derive(Template)]
#[template(path = "console/leads.html")]
struct LeadsPage {
    account: Option<AccountView>,
    section: &'static str,
    score: String,
    scores: Vec<Choice>,
    tiers: Vec<Choice>,
    stages: Vec<Choice>,
    rows: Vec<Row>,
    problem: Option<String>,
    page_size: u32,
    previous: Option<String>,
    next: Option<String>,
}

/// `GET /leads`.
pub async fn list(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    query: Result<Query<LeadsQuery>, QueryRejection>,
) -> Response {
    // A hand-edited URL that cannot be read lists every lead rather than failing.
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let nonempty = |value: Option<String>| value.filter(|v| !v.is_empty());
    let (tier, stage) = (nonempty(query.tier), nonempty(query.stage));
    let offset = query.offset.unwrap_or(0);
    let request = ListRequest {
        score: nonempty(query.score),
        tier: tier.clone(),
        stage: stage.clone(),
        min: None,
        order: Order::ScoreDescending,
        // One more than shown, to know whether there is a next page.
        limit: PAGE_SIZE + 1,
        offset,
    };
    let mut shown = LeadsPage {
        account: Some(AccountView::from(&signed_in)),
        section: "leads",
        score: String::new(),
        scores: Vec::new(),
        tiers: Vec::new(),
        stages: choices(lifecycle::ALL.iter().map(|s| s.as_str()), stage.as_deref()),
        rows: Vec::new(),
        problem: None,
        page_size: PAGE_SIZE,
        previous: None,
        next: None,
    };
    if let Some(unknown) = stage.as_deref().filter(|s| s.parse::<lifecycle::Stage>().is_err()) {
        shown.problem = Some(format!("There is no stage `{unknown}`; choose one from the list."));
        return page(StatusCode::BAD_REQUEST, &shown);
    }
    match listing::list(&state, signed_in.user.workspace_id, request).await {
        Ok(listing) => {
            let tiers: Vec<String> = listing
                .scores
                .iter()
                .find(|(name, _)| *name == listing.score)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            let more = listing.leads.len() > PAGE_SIZE as usize;
            let now = now_ms();
            let integers = listing.leads.iter().filter_map(|l| l.value).all(|v| v.fract() == 0.0);
            shown.rows =
                listing.leads.iter().take(PAGE_SIZE as usize).map(|lead| row(lead, &tiers, integers, now)).collect();
            let link = |offset: u32| {
                let mut pairs = vec![("score", listing.score.clone())];
                pairs.extend(tier.clone().map(|t| ("tier", t)));
                pairs.extend(stage.clone().map(|s| ("stage", s)));
                if offset > 0 {
                    pairs.push(("offset", offset.to_string()));
                }
                let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
                format!("/leads?{}", query.join("&"))
            };
            shown.previous = (offset > 0).then(|| link(offset.saturating_sub(PAGE_SIZE)));
            shown.next = more.then(|| link(offset + PAGE_SIZE));
            shown.scores = choices(listing.scores.iter().map(|(name, _)| name.as_str()), Some(&listing.score));
            shown.tiers = choices(tiers.iter().map(String::as_str), tier.as_deref());
            shown.score = listing.score;
            page(StatusCode::OK, &shown)
        }
        Err(error) if error.status() == StatusCode::BAD_REQUEST => {
            shown.problem = Some(error.message.clone());
            page(StatusCode::BAD_REQUEST, &shown)
        }
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

fn row(lead: &ListedLead, tiers: &[String], integers: bool, now: i64) -> Row {
    let (name, detail) = match (&lead.name, &lead.email, &lead.user_id) {
        (Some(name), email, user_id) => (name.clone(), email.clone().or_else(|| user_id.clone())),
        (None, Some(email), Some(user_id)) if user_id != email => (email.clone(), Some(user_id.clone())),
        (None, Some(email), _) => (email.clone(), None),
        (None, None, Some(user_id)) => (user_id.clone(), None),
        (None, None, None) => (format!("Anonymous lead {}", lead.id), None),
    };
    let value = match lead.value {
        Some(value) if integers => format!("{value:.0}"),
        Some(value) => format!("{value:.1}"),
        None => "–".to_string(),
    };
    let tier_rank = lead
        .tier
        .as_ref()
        .and_then(|tier| tiers.iter().position(|t| t == tier))
        .map_or(usize::MAX, |position| tiers.len() - 1 - position);
    let link = format!("/leads/{}", encode(&lead.user_id.clone().unwrap_or_else(|| lead.id.to_string())));
    Row {
        link,
        name,
        detail,
        value,
        tier: lead.tier.clone(),
        tier_rank: tier_rank.min(3),
        stage: lead.stage.clone(),
        last_activity: lead.last_event_at.map(|at| shown_time(at, now)),
    }
}

pub(super) fn shown_time(at: i64, now: i64) -> ShownTime {
    let ago = (now - at).max(0) / 1000;
    let relative = match ago {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", ago / 60),
        3600..86_400 => format!("{} h ago", ago / 3600),
        _ => format!("{} d ago", ago / 86_400),
    };
    let iso = Timestamp(at).to_string();
    let absolute = iso.replacen('T', " ", 1).trim_end_matches('Z').chars().take(16).collect::<String>() + " UTC";
    ShownTime { relative, absolute, iso }
}

/// A query parameter's value, percent-encoded.
pub(super) fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = 1_764_856_920_000; // 2025-12-04 14:02 UTC
        let shown = shown_time(now - 3 * 3_600_000, now);
        assert_eq!(shown.relative, "3 h ago");
        assert_eq!(shown.absolute, "2025-12-04 11:02 UTC");
        assert_eq!(shown_time(now - 30_000, now).relative, "just now");
        assert_eq!(shown_time(now - 2 * 86_400_000, now).relative, "2 d ago");
    }

    #[test]
    fn the_best_tier_gets_the_first_badge_and_names_fall_back() {
        let tiers = ["cold".to_string(), "warm".to_string(), "mql".to_string()];
        let lead = ListedLead {
            id: 7,
            user_id: Some("u7".into()),
            email: Some("ana@example.com".into()),
            name: None,
            stage: "mql".into(),
            last_event_at: None,
            value: Some(61.25),
            tier: Some("mql".into()),
        };
        let shown = row(&lead, &tiers, false, 0);
        assert_eq!(
            (shown.name.as_str(), shown.detail.as_deref(), shown.value.as_str()),
            ("ana@example.com", Some("u7"), "61.2")
        );
        assert_eq!(shown.tier_rank, 0);
        let named = ListedLead { name: Some("Zofia Wójcik".into()), ..lead.clone() };
        let shown = row(&named, &tiers, false, 0);
        assert_eq!((shown.name.as_str(), shown.detail.as_deref()), ("Zofia Wójcik", Some("ana@example.com")));
        let anonymous = ListedLead { user_id: None, email: None, tier: Some("cold".into()), ..lead };
        let shown = row(&anonymous, &tiers, true, 0);
        assert_eq!((shown.name.as_str(), shown.tier_rank), ("Anonymous lead 7", 2));
        assert_eq!(encode("ząb sp"), "z%C4%85b%20sp");
    }
}
