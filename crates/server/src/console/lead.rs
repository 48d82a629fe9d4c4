//! A lead's page: who it is, each score with its tier, its outlook in words (what would move it
//! next) and a waterfall of the contributions that add up to it (the same explanation and
//! outlook as `GET /api/leads/{id}`, evaluated at the moment of the read), its latest events and
//! its stage history. A score a person overrode shows the effective value and tier with the
//! model's own beside them and who set it and why; editors override and lift from the score's
//! card (`lead_overrides.rs` takes the forms).

use askama::Template;
use axum::extract::{Form, FromRequest as _, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_core::{Action, ActionKind, ScoreOutlook, Source, Timestamp};
use leadscore_store::events::StoredEvent;
use leadscore_store::now_ms;
use leadscore_store::overrides::ScoreOverride;
use leadscore_store::scores::HistoryEntry;
use leadscore_store::stages::StageChange;
use leadscore_store::users::Role;
use serde::Deserialize;

use super::charts::{self, Step, Threshold, WaterfallRow};
use super::leads::{ShownTime, encode, shown_time};
use super::not_found::NotFoundPage;
use super::page::{AccountView, page, sentence};
use super::session::{SignedInPage, check_csrf, refuse_unless, refused_origin, same_origin};
use crate::accounts::SignedIn;
use crate::lifecycle::{self, Stage};
use crate::listing::find;
use crate::scoring;
use crate::stage_moves::{self, AskedMove};
use crate::state::AppState;

/// Events the page lists, newest first (and marks on the score charts).
const EVENTS_SHOWN: u32 = 50;

/// Score changes the charts draw, at most, per score.
const HISTORY_DRAWN: u32 = 1000;

struct ShownContribution {
    label: String,
    detail: String,
    points: String,
}

struct ShownScore {
    name: String,
    value: String,
    tier: Option<String>,
    tier_rank: usize,
    /// The override in force on the score, if any (`value` and `tier` are then its).
    overridden: Option<ShownOverride>,
    /// The score's tiers, for the override form.
    tier_labels: Vec<String>,
    note: Option<String>,
    /// The outlook in sentences: the points to the next tier and the events that reach it, and
    /// when the tier falls without new activity.
    outlook: Vec<String>,
    bars: Vec<WaterfallRow>,
    /// The tiers' thresholds the dashed lines mark, as text.
    thresholds: String,
    contributions: Vec<ShownContribution>,
    /// The score over time, when it has changed at least once.
    over_time: Option<charts::TimeChart>,
    /// Its changes, newest first: the chart's figures as a table.
    changes: Vec<ShownChange>,
}

struct ShownChange {
    at: ShownTime,
    value: String,
    tier: String,
    cause: String,
    /// The change's largest terms, in words ("+30 demo request, −2.1 webinar decayed"); empty
    /// for an entry recorded without them.
    why: String,
}

/// An override in force, as its score's card tells it.
struct ShownOverride {
    /// The model's own value and tier.
    computed_value: String,
    computed_tier: Option<String>,
    /// What the person set: `value 12`, `tier mql`, or both.
    what: String,
    reason: String,
    set_by: String,
    set_at: ShownTime,
    expires_at: Option<ShownTime>,
}

/// What stopped a form of the page, shown at the top with a link to the form's field.
pub(super) struct Problem {
    pub status: StatusCode,
    /// What did not happen: "The lead was not moved".
    pub title: &'static str,
    /// The id of the field the summary links to.
    pub field: String,
    pub message: String,
    /// What the person typed in the form that failed, by field name, to fill it again.
    pub kept: Vec<(&'static str, String)>,
}

impl Problem {
    fn of_move(status: StatusCode, message: String) -> Problem {
        Problem { status, title: "The lead was not moved", field: "move-stage".to_string(), message, kept: Vec::new() }
    }
}

impl LeadPage {
    /// The class of a form field: marked when the problem at the top is about it.
    fn field_class(&self, id: &str) -> &'static str {
        match &self.problem {
            Some(problem) if problem.field == id => "field field-error",
            _ => "field",
        }
    }

    /// What the person typed in field `name` of the override form of `score` that failed.
    fn kept(&self, score: &str, name: &str) -> &str {
        match &self.problem {
            Some(problem) if problem.field.starts_with(&format!("override-{score}-")) => {
                problem.kept.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str())
            }
            _ => "",
        }
    }
}

/// What a score chart marks beside the score's changes: the lead's latest events and its stage
/// moves, and its changes of every score (newest first), as read for the page.
struct Marks<'a> {
    history: &'a [HistoryEntry],
    events: Vec<charts::Mark>,
    stages: Vec<charts::Mark>,
    now: i64,
}

struct ShownEvent {
    event_type: String,
    at: ShownTime,
    properties: String,
}

struct ShownStage {
    stage: String,
    previous: String,
    actor: String,
    reason: String,
    at: ShownTime,
}

#[derive(Template)]
#[template(path = "console/lead.html")]
struct LeadPage {
    account: Option<AccountView>,
    section: &'static str,
    /// The page's own path.
    link: String,
    /// Whether the person may move the lead's stage.
    can_move: bool,
    /// Whether the person may erase the lead (admins).
    can_erase: bool,
    /// Each stage the lead may be moved to, and whether it is the one first chosen.
    stage_options: Vec<(String, bool)>,
    /// What stopped a move or an override, shown at the top of the page.
    problem: Option<Problem>,
    name: String,
    ids: Vec<(&'static str, String)>,
    stage: String,
    last_activity: Option<ShownTime>,
    model_version: Option<i64>,
    scores: Vec<ShownScore>,
    attributes: Vec<(String, String)>,
    events: Vec<ShownEvent>,
    more_events: u64,
    stages: Vec<ShownStage>,
}

/// `GET /leads/{id}`: the lead of that user id, else of that numeric id.
pub async fn show(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<String>,
) -> Response {
    render(&state, &signed_in, id, None).await
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    reason: String,
    /// A checkbox: present when ticked.
    force: Option<String>,
}

/// `POST /leads/{id}/stage`: an editor moves the lead, then sees it again (or the form with
/// what stopped the move).
pub async fn move_stage(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if !same_origin(request.headers()) {
        return refused_origin();
    }
    if let Some(refusal) = refuse_unless(&signed_in, Role::Editor, "move a lead's stage") {
        return refusal;
    }
    let Ok(Form(form)) = Form::<MoveForm>::from_request(request, &state).await else {
        return render(
            &state,
            &signed_in,
            id,
            Some(Problem::of_move(StatusCode::BAD_REQUEST, "The form could not be read; send it again.".into())),
        )
        .await;
    };
    if !check_csrf(&signed_in, &form.csrf) {
        return (StatusCode::FORBIDDEN, "this form is not from your session; reload the page and try again")
            .into_response();
    }
    let Ok(to) = form.stage.parse::<Stage>() else {
        return render(
            &state,
            &signed_in,
            id,
            Some(Problem::of_move(StatusCode::BAD_REQUEST, "Choose the stage to move the lead to.".into())),
        )
        .await;
    };
    let asked =
        AskedMove { to, actor: signed_in.user.email.clone(), reason: Some(form.reason), force: form.force.is_some() };
    match stage_moves::move_stage(&state, signed_in.user.workspace_id, id.clone(), asked, now_ms()).await {
        Ok(_) => Redirect::to(&format!("/leads/{}", encode(&id))).into_response(),
        Err(error) if error.status().is_client_error() && error.status() != StatusCode::NOT_FOUND => {
            let status = error.status();
            render(&state, &signed_in, id, Some(Problem::of_move(status, sentence(&error.message)))).await
        }
        Err(error) => error.into_response(),
    }
}

pub(super) async fn render(state: &AppState, signed_in: &SignedIn, id: String, problem: Option<Problem>) -> Response {
    let account = AccountView::from(signed_in);
    let workspace_id = signed_in.user.workspace_id;
    let models = state.models.clone();
    let wanted = id.clone();
    let read = state
        .storage
        .read(move |reads| {
            // Read in the snapshot, so that every event it holds is at or before this time.
            let now = now_ms();
            let Some(lead) = find(reads, workspace_id, &wanted)? else {
                return Ok(Err(crate::erasure::missing(reads, workspace_id, &wanted)));
            };
            let (mut events, event_count) = reads.newest_events(&lead, EVENTS_SHOWN)?;
            events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
            let stages = reads.stage_history(lead.id)?;
            let history = reads.score_history(lead.id, HISTORY_DRAWN)?;
            let marks = Marks {
                history: &history,
                events: events.iter().map(|e| charts::Mark { at: e.at, label: e.event_type.clone() }).collect(),
                stages: stages.iter().map(|s| charts::Mark { at: s.at, label: s.stage.clone() }).collect(),
                now,
            };
            let mut scores = Vec::new();
            let version = reads.active_model(workspace_id)?;
            let in_force: Vec<ScoreOverride> =
                reads.score_overrides(lead.id)?.into_iter().filter(|o| o.lifted_at.is_none()).collect();
            if let Some(version) = &version {
                let model = models.get(reads, version)?;
                let (lead_state, _) = scoring::state_for(reads, &model, version.id, &lead)?;
                let values = scoring::lead_values(&model, &lead);
                let evaluated = model.evaluate(&values, &lead_state, Timestamp(now));
                let outlooks = model.outlook(&values, &lead_state, Timestamp(now));
                for (result, outlook) in evaluated.scores.iter().zip(&outlooks) {
                    if let Some(score) = model.scores().iter().find(|s| s.name() == result.name) {
                        let overridden = in_force.iter().find(|o| o.score == result.name);
                        scores.push(shown_score(score, result, overridden, outlook, &marks));
                    }
                }
            }
            Ok(Ok((lead, version.map(|v| v.version), scores, events, event_count, stages, now)))
        })
        .await;
    let (lead, model_version, scores, events, event_count, stages, now) = match read {
        Ok(Ok(found)) => found,
        Ok(Err(missing @ crate::erasure::Missing::Erased(_))) => {
            return super::lead_erasure::missing_page(signed_in, missing);
        }
        Ok(Err(_)) => {
            let shown = NotFoundPage {
                account: Some(account),
                section: "leads",
                path: format!("/leads/{}", encode(&id)),
                lead: Some(id),
            };
            return page(StatusCode::NOT_FOUND, &shown);
        }
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    let name = super::page::display_name(&lead.attributes)
        .or_else(|| lead.email.clone())
        .or_else(|| lead.user_id.clone())
        .unwrap_or_else(|| format!("Anonymous lead {}", lead.id));
    let mut ids = Vec::new();
    if let Some(email) = &lead.email {
        ids.push(("E-mail", email.clone()));
    }
    if let Some(user_id) = &lead.user_id {
        ids.push(("User id", user_id.clone()));
    }
    ids.push(("Lead", lead.id.to_string()));
    let mut attributes: Vec<(String, String)> = lead
        .attributes
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_string)))
        .collect();
    attributes.sort();
    let more_events = event_count.saturating_sub(events.len() as u64);
    let can_move = signed_in.user.role.allows(Role::Editor);
    let can_erase = signed_in.user.role.allows(Role::Admin);
    // The next stage of the funnel comes first chosen: the usual move.
    let current = lifecycle::ALL.iter().position(|stage| stage.as_str() == lead.stage);
    let next = current.and_then(|at| lifecycle::ALL.get(at + 1)).map(|stage| stage.as_str());
    let stage_options = lifecycle::ALL
        .iter()
        .filter(|stage| stage.as_str() != lead.stage)
        .map(|stage| (stage.as_str().to_string(), Some(stage.as_str()) == next))
        .collect();
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    let shown = LeadPage {
        account: Some(account),
        section: "leads",
        link: format!("/leads/{}", encode(&lead.user_id.clone().unwrap_or_else(|| lead.id.to_string()))),
        can_move,
        can_erase,
        stage_options,
        problem,
        name,
        ids,
        stage: lead.stage.clone(),
        last_activity: lead.last_event_at.map(|at| shown_time(at, now)),
        model_version,
        scores,
        attributes,
        events: events.iter().map(|event| shown_event(event, now)).collect(),
        more_events,
        stages: stages.iter().rev().map(|change| shown_stage(change, now)).collect(),
    };
    page(status, &shown)
}

fn shown_score(
    score: &leadscore_core::model::Score,
    result: &leadscore_core::ScoreResult<'_>,
    in_force: Option<&ScoreOverride>,
    outlook: &ScoreOutlook<'_>,
    marks: &Marks<'_>,
) -> ShownScore {
    let tiers = score.tiers();
    // The effective value and tier: an override's, else the model's.
    let (value, tier) = match in_force {
        Some(o) => crate::saving::effective(score, o.value, o.tier.as_deref(), result.value, result.tier),
        None => (result.value, result.tier.map(str::to_string)),
    };
    let overridden = in_force.map(|o| ShownOverride {
        computed_value: charts::plain(result.value),
        computed_tier: result.tier.map(str::to_string),
        what: match (o.value, &o.tier) {
            (Some(value), Some(tier)) => format!("value {} and tier {tier}", charts::plain(value)),
            (Some(value), None) => format!("value {}", charts::plain(value)),
            (None, Some(tier)) => format!("tier {tier}"),
            (None, None) => String::new(),
        },
        reason: o.reason.clone(),
        set_by: o.set_by.clone(),
        set_at: shown_time(o.set_at, marks.now),
        expires_at: o
            .expires_at
            .map(|at| ShownTime { absolute: shown_time(at, at).absolute, ..shown_time(at, marks.now) }),
    });
    let tier_rank = tier
        .as_deref()
        .and_then(|tier| tiers.iter().position(|t| t.label() == tier))
        .map_or(3, |position| (tiers.len() - 1 - position).min(3));
    let contributions: Vec<ShownContribution> = result.contributions.iter().map(shown_contribution).collect();
    let steps: Vec<Step> = contributions
        .iter()
        .zip(&result.contributions)
        .map(|(shown, contribution)| Step { label: shown.label.clone(), points: contribution.points })
        .collect();
    let thresholds: Vec<Threshold> =
        tiers.iter().filter_map(|tier| Some(Threshold { label: tier.label().to_string(), at: tier.min()? })).collect();
    let note = match (result.qualified_by, result.disqualified_by) {
        (_, Some(rule)) => Some(format!("Disqualified by “{rule}”")),
        (Some(rule), None) => Some(format!("Tier set by the qualifier “{rule}”")),
        (None, None) => None,
    };
    let changes: Vec<&HistoryEntry> = marks.history.iter().filter(|entry| entry.score == result.name).collect();
    // Oldest first, ending at the value the page shows (decay moves it between changes).
    let mut points: Vec<charts::Point> =
        changes.iter().rev().map(|entry| charts::Point { at: entry.at, value: entry.value }).collect();
    if !points.is_empty() {
        points.push(charts::Point { at: marks.now, value });
    }
    let over_time = charts::over_time(&points, marks.now, &thresholds, &marks.events, &marks.stages);
    ShownScore {
        over_time,
        changes: changes
            .iter()
            .map(|entry| ShownChange {
                at: shown_time(entry.at, marks.now),
                value: charts::plain(entry.value),
                tier: entry.tier.clone().unwrap_or_else(|| "–".to_string()),
                cause: match &entry.override_change {
                    // Who set or lifted an override, and why, beside the cause.
                    Some(change) => match &change.note {
                        Some(note) => format!("{} by {}: {note}", entry.cause, change.by),
                        None => format!("{} by {}", entry.cause, change.by),
                    },
                    None => entry.cause.clone(),
                },
                why: entry.terms.as_deref().map(terms_in_words).unwrap_or_default(),
            })
            .collect(),
        name: result.name.to_string(),
        value: charts::plain(value),
        tier,
        tier_rank,
        overridden,
        tier_labels: tiers.iter().map(|t| t.label().to_string()).collect(),
        note,
        outlook: outlook_sentences(result.name, outlook),
        bars: charts::waterfall(&steps, result.value, &thresholds),
        thresholds: thresholds
            .iter()
            .map(|t| format!("{} {}", t.label, charts::plain(t.at)))
            .collect::<Vec<_>>()
            .join(", "),
        contributions,
    }
}

/// A history entry's terms (JSON, as `GET /api/leads/{id}/history` gives them) in words: the
/// three largest, "+30 demo request (engagement), −2.1 webinar decayed", and how many more.
fn terms_in_words(json: &str) -> String {
    let Ok(terms) = serde_json::from_str::<Vec<serde_json::Value>>(json) else { return String::new() };
    let shown: Vec<String> = terms
        .iter()
        .filter(|t| t["cause"] != "rounding" && t["points"].as_f64().is_some_and(|p| p.abs() >= 0.005))
        .map(|t| {
            let points = charts::signed(t["points"].as_f64().unwrap_or_default());
            let what = t["rule"].as_str().or(t["group"].as_str()).or(t["field"].as_str()).unwrap_or("");
            let how = match t["cause"].as_str().unwrap_or("") {
                "events" => String::new(),
                "decay" => " decayed".to_string(),
                "window_expired" => " left its window".to_string(),
                "inactivity" => " (inactivity)".to_string(),
                "attributes" => " (fields changed)".to_string(),
                "limit" => " (limit)".to_string(),
                "model" => " (new model)".to_string(),
                "segment" => " (segment changed)".to_string(),
                other => format!(" ({other})"),
            };
            let score = t["score"].as_str().unwrap_or("");
            if what.is_empty() { format!("{points} {score}{how}") } else { format!("{points} {what}{how}") }
        })
        .collect();
    let mut words = shown.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if shown.len() > 3 {
        words.push_str(&format!(", and {} more", shown.len() - 3));
    }
    words
}

/// "12 points to mql: 1 × demo request, or 2 × pricing page" and "Falls to warm on 2026-11-20
/// without new activity" (dates in UTC, as on the rest of the page).
fn outlook_sentences(score: &str, outlook: &ScoreOutlook<'_>) -> Vec<String> {
    let mut sentences = Vec::new();
    if let Some(next) = outlook.next_tier {
        let points = outlook.points_missing.map_or_else(String::new, |missing| {
            let missing = leadscore_core::round_score(missing);
            format!("{} point{} ", charts::plain(missing), if missing == 1.0 { "" } else { "s" })
        });
        let options: Vec<String> = outlook
            .actions
            .iter()
            .map(|set| set.iter().map(|action| shown_action(score, action)).collect::<Vec<_>>().join(" + "))
            .collect();
        sentences.push(if options.is_empty() {
            format!("{points}to {next}: more than 3 events away")
        } else {
            format!("{points}to {next}: {}", options.join(", or "))
        });
    }
    if let Some(fall) = &outlook.falls {
        let day = fall.at.to_string().chars().take(10).collect::<String>();
        sentences.push(match fall.tier {
            Some(tier) => format!("Falls to {tier} on {day} without new activity"),
            None => format!("Falls out of every tier on {day} without new activity"),
        });
    }
    if let Some(first) = sentences.first_mut() {
        *first = sentence(first);
    }
    sentences
}

/// "2 × pricing page", with the score a component's rule belongs to; any event ends an
/// inactivity.
fn shown_action(score: &str, action: &Action<'_>) -> String {
    let what = match action.kind {
        ActionKind::Rule | ActionKind::Qualifier => action.name.to_string(),
        ActionKind::Activity => format!("any activity (ends “{}”)", action.name),
    };
    let owner = if action.score == score { String::new() } else { format!(" ({})", action.score) };
    format!("{} × {what}{owner}", action.count)
}

fn shown_contribution(contribution: &leadscore_core::Contribution<'_>) -> ShownContribution {
    let (label, detail) = match &contribution.source {
        Source::Rule { rule, group } => {
            let mut detail = match contribution.occurrences {
                0 => String::new(),
                1 => "1 event".to_string(),
                n => format!("{n} events"),
            };
            if let Some(group) = group {
                detail = if detail.is_empty() { format!("group {group}") } else { format!("{detail}, group {group}") };
            }
            let label = if contribution.occurrences > 1 {
                format!("{rule} ×{}", contribution.occurrences)
            } else {
                rule.to_string()
            };
            (label, detail)
        }
        Source::GroupLimit { group } => (format!("{group} limit"), "the group's cap".to_string()),
        Source::Component { score, weight } => (format!("{score} × {weight}"), "a component score".to_string()),
        Source::ScoreLimit => ("score limit".to_string(), "the score's min or max".to_string()),
        Source::Normalization => ("scaled to 0–100".to_string(), "normalisation".to_string()),
        Source::Factor { field, value } => {
            (field.to_string(), value.clone().map_or("unknown".to_string(), |v| format!("is {v}")))
        }
        Source::OtherFactors => ("base rate and other fields".to_string(), String::new()),
        Source::NotApplicable => ("does not apply".to_string(), "the lead is outside this score's segment".to_string()),
        Source::Segment { score } => (format!("segment {score}"), "the score of the lead's segment".to_string()),
    };
    ShownContribution { label, detail, points: charts::signed(contribution.points) }
}

fn shown_event(event: &StoredEvent, now: i64) -> ShownEvent {
    let properties: Vec<String> = event
        .properties
        .iter()
        .take(4)
        .map(|(key, value)| format!("{key}: {}", value.as_str().map_or_else(|| value.to_string(), str::to_string)))
        .collect();
    ShownEvent {
        event_type: event.event_type.clone(),
        at: shown_time(event.at, now),
        properties: properties.join(" · "),
    }
}

fn shown_stage(change: &StageChange, now: i64) -> ShownStage {
    ShownStage {
        stage: change.stage.clone(),
        previous: change.previous.clone().unwrap_or_else(|| "–".to_string()),
        actor: change.actor.clone(),
        reason: change.reason.clone().unwrap_or_default(),
        at: shown_time(change.at, now),
    }
}

#[cfg(test)]
mod tests {
    use super::outlook_sentences;
    use leadscore_core::{Action, ActionKind, Fall, ScoreOutlook, Timestamp};

    #[test]
    fn an_outlook_reads_as_sentences() {
        let action = |kind, score, name, count| Action { kind, score, name, count };
        let outlook = ScoreOutlook {
            next_tier: Some("mql"),
            points_missing: Some(12.0),
            actions: vec![
                vec![action(ActionKind::Rule, "total", "demo request", 1)],
                vec![action(ActionKind::Rule, "engagement", "pricing page", 2)],
                vec![
                    action(ActionKind::Activity, "total", "quiet for 30 days", 1),
                    action(ActionKind::Qualifier, "total", "contact sales", 1),
                ],
            ],
            falls: Some(Fall { at: Timestamp::parse_rfc3339("2026-11-20T08:00:01Z").unwrap(), tier: Some("warm") }),
        };
        assert_eq!(
            outlook_sentences("total", &outlook),
            [
                "12 points to mql: 1 × demo request, or 2 × pricing page (engagement), or 1 × any activity (ends “quiet for 30 days”) + 1 × contact sales",
                "Falls to warm on 2026-11-20 without new activity",
            ]
        );
        let far = ScoreOutlook { next_tier: Some("warm"), points_missing: Some(1.0), actions: vec![], falls: None };
        assert_eq!(outlook_sentences("total", &far), ["1 point to warm: more than 3 events away"]);
        let falls_out = ScoreOutlook {
            next_tier: None,
            points_missing: None,
            actions: vec![],
            falls: Some(Fall { at: Timestamp(0), tier: None }),
        };
        assert_eq!(
            outlook_sentences("total", &falls_out),
            ["Falls out of every tier on 1970-01-01 without new activity"]
        );
    }
}
