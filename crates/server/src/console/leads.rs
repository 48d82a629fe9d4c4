//! The leads page: the workspace's leads by a score of the active model, best first, filtered by
//! tier and stage, the filters in the URL so that a view can be bookmarked and shared.

use std::time::Instant;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use leadscore_core::Timestamp;
use leadscore_store::leads::{ListedLead, Order};
use leadscore_store::now_ms;
use serde::Deserialize;

use super::page::{AccountView, page, sentence};
use super::session::SignedInPage;
use crate::lifecycle;
use crate::listing::{self, ListRequest};
use crate::state::AppState;

/// Leads a page shows.
const PAGE_SIZE: u32 = 50;

/// The leads page's filters, as the form sends them and links keep them (every field optional;
/// an empty one is no filter).
#[derive(Deserialize, Default, Clone)]
pub struct LeadsQuery {
    score: Option<String>,
    /// `asc` for lowest first; highest first otherwise.
    order: Option<String>,
    tier: Option<String>,
    stage: Option<String>,
    min: Option<String>,
    max: Option<String>,
    /// Text in the e-mail, name or company.
    q: Option<String>,
    /// A date and time in UTC, as `<input type="datetime-local">` sends it (or with seconds or a
    /// zone).
    since: Option<String>,
    cursor: Option<String>,
}

/// The filters of a view, read and checked, shared by the page and its CSV download.
pub(super) struct View {
    pub(super) request: ListRequest,
    /// The query string of the view without its cursor, for links to its pages and its CSV.
    query: String,
    fields: Fields,
}

/// What the form's fields show.
#[derive(Default)]
struct Fields {
    tier: Option<String>,
    stage: Option<String>,
    ascending: bool,
    min: String,
    max: String,
    q: String,
    since: String,
}

fn nonempty(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A time the page's form sends: `2026-01-31T09:00` (the field's own form) in UTC, or RFC 3339.
pub(super) fn since_time(text: &str) -> Option<i64> {
    let with_zone = match text.len() {
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.to_string(),
    };
    Timestamp::parse_rfc3339(&with_zone).ok().map(|t| t.0)
}

/// Reads a view's filters, or the sentence that says which one cannot be read.
pub(super) fn view_of(query: &LeadsQuery, limit: u32) -> Result<View, String> {
    let number = |name: &str, text: &Option<String>| -> Result<Option<f64>, String> {
        match nonempty(text) {
            Some(text) => match text.replace(',', ".").parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(Some(value)),
                _ => Err(format!("The {name} score must be a number, such as 40; `{text}` is not.")),
            },
            None => Ok(None),
        }
    };
    let stage = nonempty(&query.stage);
    if let Some(unknown) = stage.as_deref().filter(|s| s.parse::<lifecycle::Stage>().is_err()) {
        return Err(format!("There is no stage `{unknown}`; choose one from the list."));
    }
    let since = nonempty(&query.since);
    let updated_since = match since.as_deref() {
        Some(text) => Some(since_time(text).ok_or_else(|| {
            format!("“Updated since” must be a date and time such as 2026-01-31T09:00; `{text}` is not.")
        })?),
        None => None,
    };
    let ascending = query.order.as_deref() == Some("asc");
    let fields = Fields {
        tier: nonempty(&query.tier),
        stage: stage.clone(),
        ascending,
        min: nonempty(&query.min).unwrap_or_default(),
        max: nonempty(&query.max).unwrap_or_default(),
        q: nonempty(&query.q).unwrap_or_default(),
        since: since.clone().unwrap_or_default(),
    };
    let request = ListRequest {
        score: nonempty(&query.score),
        tier: fields.tier.clone(),
        stage,
        min: number("lowest", &query.min)?,
        max: number("highest", &query.max)?,
        search: nonempty(&query.q),
        updated_since,
        email: None,
        order: if ascending { Order::ScoreAscending } else { Order::ScoreDescending },
        limit,
        cursor: nonempty(&query.cursor),
        offset: None,
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    pairs.extend(request.score.clone().map(|v| ("score", v)));
    if ascending {
        pairs.push(("order", "asc".to_string()));
    }
    pairs.extend(fields.tier.clone().map(|v| ("tier", v)));
    pairs.extend(fields.stage.clone().map(|v| ("stage", v)));
    for (name, value) in [("min", &fields.min), ("max", &fields.max), ("q", &fields.q), ("since", &fields.since)] {
        if !value.is_empty() {
            pairs.push((name, value.clone()));
        }
    }
    let query = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
    Ok(View { request, query, fields })
}

/// The time a handler took, as a `Server-Timing` header: the server's own measure of a page,
/// which browsers' developer tools and `curl -i` show.
pub(super) fn server_timing(response: &mut Response, started: Instant) {
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={millis:.1}")) {
        response.headers_mut().insert("server-timing", value);
    }
}

/// A time the page shows: relative, with the absolute time on hover.
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
    company: Option<String>,
    value: String,
    tier: Option<String>,
    /// The tier's place from the top (0: the best tier), which sets its badge's colour.
    tier_rank: usize,
    /// Whether a person's override sets the value and tier shown (the lead's page shows the
    /// model's own beside them).
    overridden: bool,
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
    fields: Fields,
    /// Whether any filter narrows the list (the page offers to clear them).
    filtered: bool,
    rows: Vec<Row>,
    problem: Option<String>,
    page_size: u32,
    previous: Option<String>,
    next: Option<String>,
    /// The view as a CSV file.
    download: String,
}

/// `GET /leads`.
pub async fn list(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    query: Result<Query<LeadsQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    // A hand-edited URL that cannot be read lists every lead rather than failing.
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let mut shown = LeadsPage {
        account: Some(AccountView::from(&signed_in)),
        section: "leads",
        score: String::new(),
        scores: Vec::new(),
        tiers: Vec::new(),
        stages: choices(lifecycle::ALL.iter().map(|s| s.as_str()), nonempty(&query.stage).as_deref()),
        fields: Fields::default(),
        filtered: false,
        rows: Vec::new(),
        problem: None,
        page_size: PAGE_SIZE,
        previous: None,
        next: None,
        download: "/leads.csv".to_string(),
    };
    let workspace_id = signed_in.user.workspace_id;
    let view = match view_of(&query, PAGE_SIZE) {
        Ok(view) => view,
        Err(problem) => {
            shown.problem = Some(problem);
            return problem_page(&state, workspace_id, shown).await;
        }
    };
    let View { request, query, fields } = view;
    shown.filtered = fields.tier.is_some()
        || fields.stage.is_some()
        || [&fields.min, &fields.max, &fields.q, &fields.since].iter().any(|f| !f.is_empty());
    shown.fields = fields;
    shown.download = format!("/leads.csv?{query}");
    let mut response = match listing::list(&state, workspace_id, request.clone()).await {
        Ok(listing) => {
            let tiers: Vec<String> = listing
                .scores
                .iter()
                .find(|(name, _)| *name == listing.score)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            let now = now_ms();
            let integers = listing.leads.iter().filter_map(|l| l.value).all(|v| v.fract() == 0.0);
            shown.rows = listing.leads.iter().map(|lead| row(lead, &tiers, integers, now)).collect();
            let link = |cursor: String| {
                format!("/leads?{query}{}cursor={}", if query.is_empty() { "" } else { "&" }, encode(&cursor))
            };
            shown.previous = listing.previous.map(link);
            shown.next = listing.next.map(link);
            shown.scores = choices(listing.scores.iter().map(|(name, _)| name.as_str()), Some(&listing.score));
            shown.tiers = choices(tiers.iter().map(String::as_str), request.tier.as_deref());
            shown.score = listing.score;
            page(StatusCode::OK, &shown)
        }
        Err(error) if error.status() == StatusCode::BAD_REQUEST => {
            shown.problem = Some(sentence(&error.message));
            return problem_page(&state, workspace_id, shown).await;
        }
        Err(error) => return axum::response::IntoResponse::into_response(error),
    };
    server_timing(&mut response, started);
    response
}

/// A view that cannot be listed, with its problem: a 400 with the form (its scores and tiers
/// from the listing without filters), so that the person corrects the filter where it is.
async fn problem_page(state: &AppState, workspace_id: i64, mut shown: LeadsPage) -> Response {
    let unfiltered = ListRequest {
        score: None,
        tier: None,
        stage: None,
        min: None,
        max: None,
        search: None,
        updated_since: None,
        email: None,
        order: Order::ScoreDescending,
        limit: 1,
        cursor: None,
        offset: None,
    };
    if let Ok(listing) = listing::list(state, workspace_id, unfiltered).await {
        if let Some((_, tiers)) = listing.scores.iter().find(|(name, _)| *name == listing.score) {
            shown.tiers = choices(tiers.iter().map(String::as_str), None);
        }
        shown.scores = choices(listing.scores.iter().map(|(name, _)| name.as_str()), Some(&listing.score));
        shown.score = listing.score;
    }
    page(StatusCode::BAD_REQUEST, &shown)
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
        company: lead.company.clone(),
        value,
        tier: lead.tier.clone(),
        tier_rank: tier_rank.min(3),
        overridden: lead.overridden,
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
            company: None,
            overridden: false,
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
