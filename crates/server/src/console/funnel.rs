//! The funnel page: for a chosen period (dates in the URL, presets), the leads per tier and per
//! stage now, new MQLs per week, the way of that period's MQLs through SAL and SQL to customer
//! with the median time between stages, the share of leads in the top tier at the end of each
//! week (score inflation), and the win rate by the tier leads had when they became MQL.
//!
//! The store aggregates (`leadscore_store::funnel`); this module turns dates into instants,
//! counts the cohort's steps, takes medians and lays the figures out. Weeks start on Monday,
//! dates and weeks are UTC.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use leadscore_store::funnel::{Journey, OutcomesByTier, WEEK, WeekShare, week_start};
use leadscore_store::now_ms;
use serde::Deserialize;

use super::charts::{self, WeekPoint};
use super::leads::encode;
use super::page::{AccountView, page, sentence};
use super::session::SignedInPage;
use crate::lifecycle;
use crate::listing::{self, ListRequest};
use crate::state::AppState;

const DAY: i64 = 86_400_000;

/// The longest period the page reports on, in days (a chart of weeks stays legible).
const LONGEST_PERIOD_DAYS: i64 = 3 * 366;

#[derive(Deserialize, Default)]
pub struct FunnelQuery {
    from: Option<String>,
    to: Option<String>,
    score: Option<String>,
}

// Dates: days since 1970-01-01 and back (Howard Hinnant's civil calendar algorithms), UTC.

/// Days since 1970-01-01 of a proleptic Gregorian date (the engine's calendar).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    leadscore_core::time::days_from_civil(year, i64::from(month), i64::from(day))
}

/// The date of a day counted from 1970-01-01 (the engine's calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (year, month, day) = leadscore_core::time::civil_from_days(days);
    (year, month as u32, day as u32)
}

/// A `YYYY-MM-DD` date as days since 1970-01-01, if it is one.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day): (i64, u32, u32) = (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    let days = days_from_civil(year, month, day);
    // A day past the month's end (31 April) comes back as another date.
    (civil_from_days(days) == (year, month, day)).then_some(days)
}

fn iso_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A date as people read it: `2 Nov 2026`, or `2 Nov` when the year goes without saying.
fn shown_date(days: i64, with_year: bool) -> String {
    let (year, month, day) = civil_from_days(days);
    let month = MONTHS[(month - 1) as usize];
    if with_year { format!("{day} {month} {year}") } else { format!("{day} {month}") }
}

/// The first day of the month `months` after (or before) the month of `(year, month)`.
fn month_start(year: i64, month: u32, months: i64) -> i64 {
    let index = year * 12 + i64::from(month) - 1 + months;
    days_from_civil(index.div_euclid(12), (index.rem_euclid(12) + 1) as u32, 1)
}

/// A period of whole days, `from` to `to` included, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    from: i64,
    to: i64,
}

impl Period {
    /// The period's instants, `[start, end)`, in milliseconds.
    fn instants(self) -> (i64, i64) {
        (self.from * DAY, (self.to + 1) * DAY)
    }
}

/// The periods offered in one click, as of `today`.
fn presets(today: i64) -> Vec<(&'static str, Period)> {
    let (year, month, _) = civil_from_days(today);
    let this_week = week_start(today * DAY) / DAY;
    let quarter_month = (month - 1) / 3 * 3 + 1;
    vec![
        ("Last 4 weeks", Period { from: this_week - 21, to: today }),
        ("This month", Period { from: month_start(year, month, 0), to: today }),
        ("Last month", Period { from: month_start(year, month, -1), to: month_start(year, month, 0) - 1 }),
        ("This quarter", Period { from: month_start(year, quarter_month, 0), to: today }),
        ("Last 12 months", Period { from: month_start(year, month, -11), to: today }),
    ]
}

/// The period a query asks for (the last 4 weeks when it names none), or what is wrong with it.
fn period_of(from: Option<&str>, to: Option<&str>, today: i64) -> Result<Period, String> {
    let default = presets(today)[0].1;
    let date = |text: Option<&str>, name: &str, otherwise: i64| match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(otherwise),
        Some(text) => {
            parse_date(text).ok_or_else(|| format!("The {name} date `{text}` is not a date: write it as 2026-11-02."))
        }
    };
    let period = Period { from: date(from, "start", default.from)?, to: date(to, "end", default.to)? };
    if period.to < period.from {
        return Err("The period ends before it starts: choose an end date on or after the start date.".to_string());
    }
    if period.to - period.from >= LONGEST_PERIOD_DAYS {
        return Err(format!("The period is longer than {} years: choose a shorter one.", LONGEST_PERIOD_DAYS / 366));
    }
    Ok(period)
}

/// The median of some durations (the mean of the middle two of an even count).
fn median(mut values: Vec<i64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] as f64 + values[middle] as f64) / 2.0
    } else {
        values[middle] as f64
    })
}

/// A duration as people say it: minutes, hours or days.
fn shown_duration(milliseconds: f64) -> String {
    let minutes = milliseconds / 60_000.0;
    if minutes < 1.0 {
        "under a minute".to_string()
    } else if minutes < 90.0 {
        format!("{minutes:.0} min")
    } else if minutes < 36.0 * 60.0 {
        format!("{:.1} h", minutes / 60.0).replace(".0 h", " h")
    } else {
        format!("{:.1} days", minutes / 1440.0).replace(".0 days", " days")
    }
}

/// `part` of `whole` as a percentage with one decimal; `None` of nothing.
fn percent(part: i64, whole: i64) -> Option<String> {
    (whole > 0).then(|| {
        let share = part as f64 * 100.0 / whole as f64;
        let text = format!("{share:.1}");
        format!("{} %", text.trim_end_matches(".0"))
    })
}

/// A step of the funnel: how many of the cohort reached the stage (or a later one).
#[derive(Debug, Clone, PartialEq)]
struct FunnelStep {
    stage: &'static str,
    reached: i64,
    of_cohort: String,
    of_previous: Option<String>,
    /// The median time from the step before, over the leads that entered both stages.
    median_from_previous: Option<String>,
    /// How many leads that median is over.
    timed: usize,
    bar: String,
}

/// The cohort's steps: a lead that skipped a stage (MQL straight to SQL) counts as having passed
/// it, and the median time from one stage to the next is over the leads that entered both.
fn funnel_steps(journeys: &[Journey]) -> Vec<FunnelStep> {
    let cohort = journeys.len() as i64;
    let entered: [fn(&Journey) -> Option<i64>; 4] = [|j| Some(j.mql), |j| j.sal, |j| j.sql, |j| j.customer];
    // The furthest step each lead reached: opportunity counts as past SQL.
    let furthest = |j: &Journey| {
        if j.customer.is_some() {
            3
        } else if j.sql.is_some() || j.opportunity.is_some() {
            2
        } else if j.sal.is_some() {
            1
        } else {
            0
        }
    };
    let names = ["MQL", "SAL", "SQL", "Customer"];
    let mut steps: Vec<FunnelStep> = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let reached = journeys.iter().filter(|j| furthest(j) >= index).count() as i64;
        let (median_from_previous, timed) = if index == 0 {
            (None, 0)
        } else {
            let durations: Vec<i64> = journeys
                .iter()
                .filter_map(|j| Some(entered[index](j)? - entered[index - 1](j)?))
                .filter(|d| *d >= 0)
                .collect();
            let timed = durations.len();
            (median(durations).map(shown_duration), timed)
        };
        let previous = steps.last().map(|s| s.reached);
        steps.push(FunnelStep {
            stage: name,
            reached,
            of_cohort: percent(reached, cohort).unwrap_or_else(|| "–".to_string()),
            of_previous: previous.and_then(|p| percent(reached, p)),
            median_from_previous,
            timed,
            bar: charts::strip(reached as f64, cohort as f64, "strip-funnel"),
        });
    }
    steps
}

/// A row of counts now (a tier or a stage), linked to the leads it counts.
struct CountRow {
    label: String,
    /// The tier's place from the top (0: the best tier), which sets its badge's colour.
    rank: usize,
    count: i64,
    share: String,
    link: Option<String>,
    bar: String,
}

/// A week of the page's charts and their tables.
struct WeekRow {
    label: String,
    mqls: i64,
    in_top: Option<i64>,
    scored: Option<i64>,
    share: Option<String>,
}

struct OutcomeRow {
    tier: String,
    rank: usize,
    basis: &'static str,
    won: i64,
    lost: i64,
    win_rate: String,
    bar: String,
}

struct Choice {
    value: String,
    selected: bool,
}

struct Preset {
    label: &'static str,
    link: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "console/funnel.html")]
struct FunnelPage {
    account: Option<AccountView>,
    section: &'static str,
    from: String,
    to: String,
    period: String,
    presets: Vec<Preset>,
    score: String,
    scores: Vec<Choice>,
    top_tier: Option<String>,
    problem: Option<String>,
    /// False while the workspace has no active model.
    has_model: bool,
    tiers: Vec<CountRow>,
    stages: Vec<CountRow>,
    total_leads: i64,
    weeks: Vec<WeekRow>,
    total_mqls: i64,
    mql_chart: String,
    cohort: i64,
    steps: Vec<FunnelStep>,
    share_chart: Option<String>,
    outcomes: Vec<OutcomeRow>,
    outcomes_now: bool,
    now_note: bool,
}

/// What the store answers for the page.
struct Figures {
    tiers: Vec<(Option<String>, i64)>,
    stages: Vec<(String, i64)>,
    mqls: Vec<(i64, i64)>,
    journeys: Vec<Journey>,
    shares: Vec<WeekShare>,
    outcomes: Vec<OutcomesByTier>,
}

/// `GET /funnel`: any role may see it.
pub async fn show(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    query: Result<Query<FunnelQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let now = now_ms();
    let today = now.div_euclid(DAY);
    let workspace_id = signed_in.user.workspace_id;
    let mut shown = FunnelPage {
        account: Some(AccountView::from(&signed_in)),
        section: "funnel",
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        period: String::new(),
        presets: Vec::new(),
        score: String::new(),
        scores: Vec::new(),
        top_tier: None,
        problem: None,
        has_model: false,
        tiers: Vec::new(),
        stages: Vec::new(),
        total_leads: 0,
        weeks: Vec::new(),
        total_mqls: 0,
        mql_chart: String::new(),
        cohort: 0,
        steps: Vec::new(),
        share_chart: None,
        outcomes: Vec::new(),
        outcomes_now: false,
        now_note: false,
    };
    let period = match period_of(query.from.as_deref(), query.to.as_deref(), today) {
        Ok(period) => period,
        Err(problem) => {
            shown.problem = Some(problem);
            shown.presets = preset_links(today, None, query.score.as_deref());
            return page(StatusCode::BAD_REQUEST, &shown);
        }
    };
    (shown.from, shown.to) = (iso_date(period.from), iso_date(period.to));
    // The active model's scores, and the score asked for checked against them, as on /leads.
    let request = ListRequest {
        score: query.score.clone().filter(|s| !s.is_empty()),
        tier: None,
        stage: None,
        min: None,
        max: None,
        search: None,
        updated_since: None,
        email: None,
        order: leadscore_store::leads::Order::ScoreDescending,
        limit: 1,
        cursor: None,
        offset: None,
    };
    let listing = match listing::list(&state, workspace_id, request).await {
        Ok(listing) => listing,
        Err(error) if error.status() == StatusCode::BAD_REQUEST => {
            shown.problem = Some(sentence(&error.message));
            shown.presets = preset_links(today, Some(period), None);
            return page(StatusCode::BAD_REQUEST, &shown);
        }
        Err(error) => return axum::response::IntoResponse::into_response(error),
    };
    let tier_labels: Vec<String> =
        listing.scores.iter().find(|(name, _)| *name == listing.score).map(|(_, t)| t.clone()).unwrap_or_default();
    shown.has_model = !listing.scores.is_empty();
    shown.scores = listing
        .scores
        .iter()
        .map(|(name, _)| Choice { value: name.clone(), selected: *name == listing.score })
        .collect();
    shown.score = listing.score.clone();
    shown.top_tier = tier_labels.last().cloned();
    shown.presets = preset_links(today, Some(period), Some(&shown.score));

    let (start, end) = period.instants();
    let (score, top) = (shown.score.clone(), shown.top_tier.clone());
    let figures = state
        .storage
        .read(move |reads| {
            let scored = !score.is_empty();
            let tiers = if scored { reads.tier_counts(workspace_id, &score)? } else { Vec::new() };
            Ok(Figures {
                stages: reads.stage_counts(workspace_id)?,
                mqls: reads.mql_entries_by_week(workspace_id, start, end)?,
                journeys: reads.mql_journeys(workspace_id, start, end, now)?,
                shares: match &top {
                    Some(top) => {
                        reads.tier_share_by_week(workspace_id, &score, top, &tiers, start, now.min(end - 1))?
                    }
                    None => Vec::new(),
                },
                tiers,
                outcomes: if scored { reads.outcomes_by_tier(workspace_id, &score, start, end)? } else { Vec::new() },
            })
        })
        .await;
    let figures = match figures {
        Ok(figures) => figures,
        Err(error) => return axum::response::IntoResponse::into_response(crate::error::ApiError::from(error)),
    };
    lay_out(&mut shown, &figures, &tier_labels, period, now);
    page(StatusCode::OK, &shown)
}

/// The preset links, keeping the score, the one showing marked.
fn preset_links(today: i64, showing: Option<Period>, score: Option<&str>) -> Vec<Preset> {
    presets(today)
        .into_iter()
        .map(|(label, period)| {
            let mut link = format!("/funnel?from={}&to={}", iso_date(period.from), iso_date(period.to));
            if let Some(score) = score.filter(|s| !s.is_empty()) {
                link.push_str(&format!("&score={}", encode(score)));
            }
            Preset { label, link, current: showing == Some(period) }
        })
        .collect()
}

/// The page's sections from the store's figures.
fn lay_out(shown: &mut FunnelPage, figures: &Figures, tier_labels: &[String], period: Period, now: i64) {
    // Years go without saying when the weeks shown (the first may start in December) and today
    // share one.
    let first_monday = week_start(period.from * DAY).div_euclid(DAY);
    let with_year = civil_from_days(first_monday).0 != civil_from_days(period.to).0
        || civil_from_days(period.to).0 != civil_from_days(now.div_euclid(DAY)).0;
    shown.period = format!("{} – {}", shown_date(period.from, with_year), shown_date(period.to, true));
    let score_link = encode(&shown.score);

    // Tiers now, best first, then leads in no tier.
    let scored: i64 = figures.tiers.iter().map(|(_, n)| n).sum();
    let count_of = |tier: Option<&str>| figures.tiers.iter().find(|(t, _)| t.as_deref() == tier).map_or(0, |(_, n)| *n);
    let most = figures.tiers.iter().map(|(_, n)| *n).max().unwrap_or(0) as f64;
    shown.tiers = tier_labels
        .iter()
        .rev()
        .enumerate()
        .map(|(rank, tier)| {
            let count = count_of(Some(tier));
            CountRow {
                label: tier.clone(),
                rank: rank.min(3),
                count,
                share: percent(count, scored).unwrap_or_default(),
                link: Some(format!("/leads?score={score_link}&tier={}", encode(tier))),
                bar: charts::strip(count as f64, most, &format!("strip-tier-{}", rank.min(3))),
            }
        })
        .collect();
    // Tiers of earlier versions or no tier at all, which /leads cannot filter by.
    for (tier, count) in figures.tiers.iter().filter(|(t, _)| t.as_ref().is_none_or(|t| !tier_labels.contains(t))) {
        shown.tiers.push(CountRow {
            label: tier.clone().unwrap_or_else(|| "no tier".to_string()),
            rank: 3,
            count: *count,
            share: percent(*count, scored).unwrap_or_default(),
            link: None,
            bar: charts::strip(*count as f64, most, "strip-tier-3"),
        });
    }

    // Stages now, in the funnel's order.
    shown.total_leads = figures.stages.iter().map(|(_, n)| n).sum();
    let most = figures.stages.iter().map(|(_, n)| *n).max().unwrap_or(0) as f64;
    shown.stages = lifecycle::ALL
        .iter()
        .map(|stage| {
            let count = figures.stages.iter().find(|(s, _)| s == stage.as_str()).map_or(0, |(_, n)| *n);
            CountRow {
                label: stage.to_string(),
                rank: 0,
                count,
                share: percent(count, shown.total_leads).unwrap_or_default(),
                link: Some(format!("/leads?stage={stage}")),
                bar: charts::strip(count as f64, most, "strip-stage"),
            }
        })
        .collect();

    // Weeks of the period, up to now.
    let (start, end) = period.instants();
    let last = week_start(now.min(end - 1).max(start));
    let mut week = week_start(start);
    let mut weeks = Vec::new();
    while week <= last {
        weeks.push(week);
        week += WEEK;
    }
    shown.weeks = weeks
        .iter()
        .map(|week| {
            let share = figures.shares.iter().find(|s| s.week == *week);
            WeekRow {
                label: shown_date(week.div_euclid(DAY), with_year),
                mqls: figures.mqls.iter().find(|(w, _)| w == week).map_or(0, |(_, n)| *n),
                in_top: share.map(|s| s.in_tier),
                scored: share.map(|s| s.scored),
                share: share.and_then(|s| percent(s.in_tier, s.scored)),
            }
        })
        .collect();
    shown.total_mqls = figures.mqls.iter().map(|(_, n)| n).sum();
    // Charts label weeks short (their tables say the year): a label with the year would not fit.
    let short = |week: &i64| shown_date(week.div_euclid(DAY), false);
    let points: Vec<WeekPoint> = shown
        .weeks
        .iter()
        .zip(&weeks)
        .map(|(w, week)| WeekPoint { label: short(week), value: Some(w.mqls as f64) })
        .collect();
    shown.mql_chart = charts::week_columns(
        "mql-chart",
        "New MQLs per week",
        &format!("{} leads became MQLs from {}, over {} weeks", shown.total_mqls, shown.period, points.len()),
        "Leads entering MQL",
        &points,
    );
    if let Some(top) = &shown.top_tier {
        let points: Vec<WeekPoint> = shown
            .weeks
            .iter()
            .zip(&weeks)
            .map(|(_, week)| {
                let share = figures.shares.iter().find(|s| s.week == *week).filter(|s| s.scored > 0);
                WeekPoint { label: short(week), value: share.map(|s| s.in_tier as f64 * 100.0 / s.scored as f64) }
            })
            .collect();
        shown.share_chart = Some(charts::week_percentages(
            "share-chart",
            &format!("Share of leads in tier {top} of {} at the end of each week", shown.score),
            "The percentage of scored leads whose latest score change before the week's end put them in the top tier",
            &format!("In tier {top}"),
            &points,
        ));
    }
    shown.now_note = end > now;

    // The period's MQLs through the funnel.
    shown.cohort = figures.journeys.len() as i64;
    shown.steps = funnel_steps(&figures.journeys);

    // Win rates by tier, best tier first, the tiers known at MQL before those taken from now.
    let rank_of =
        |tier: Option<&str>| tier.and_then(|t| tier_labels.iter().rev().position(|l| l == t)).unwrap_or(usize::MAX);
    let mut outcomes: Vec<&OutcomesByTier> = figures.outcomes.iter().collect();
    outcomes.sort_by_key(|o| (!o.at_mql, rank_of(o.tier.as_deref())));
    shown.outcomes = outcomes
        .into_iter()
        .map(|o| {
            let rate = if o.won + o.lost > 0 { o.won as f64 / (o.won + o.lost) as f64 } else { 0.0 };
            OutcomeRow {
                tier: o.tier.clone().unwrap_or_else(|| "no tier".to_string()),
                rank: rank_of(o.tier.as_deref()).min(3),
                basis: if o.at_mql { "at MQL" } else { "now" },
                won: o.won,
                lost: o.lost,
                win_rate: percent(o.won, o.won + o.lost).unwrap_or_default(),
                bar: charts::strip(rate, 1.0, "strip-won"),
            }
        })
        .collect();
    shown.outcomes_now = shown.outcomes.iter().any(|o| o.basis == "now");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_wrong_ones_are_refused() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-02"), Some(20_759));
        assert_eq!(iso_date(20_759), "2026-11-02");
        assert_eq!(parse_date("2024-02-29").map(iso_date).as_deref(), Some("2024-02-29"));
        for wrong in ["2026-02-29", "2026-04-31", "2026-13-01", "26-11-02", "2026-11-2", "tomorrow", ""] {
            assert_eq!(parse_date(wrong), None, "{wrong}");
        }
        assert_eq!(shown_date(20_759, false), "2 Nov");
        assert_eq!(shown_date(20_759, true), "2 Nov 2026");
    }

    #[test]
    fn presets_start_on_mondays_and_months() {
        // Thursday 2026-02-12.
        let today = parse_date("2026-02-12").unwrap();
        let shown: Vec<(&str, String, String)> =
            presets(today).into_iter().map(|(label, p)| (label, iso_date(p.from), iso_date(p.to))).collect();
        let expected = [
            ("Last 4 weeks", "2026-01-19", "2026-02-12"),
            ("This month", "2026-02-01", "2026-02-12"),
            ("Last month", "2026-01-01", "2026-01-31"),
            ("This quarter", "2026-01-01", "2026-02-12"),
            ("Last 12 months", "2025-03-01", "2026-02-12"),
        ];
        let expected: Vec<(&str, String, String)> =
            expected.iter().map(|(l, f, t)| (*l, f.to_string(), t.to_string())).collect();
        assert_eq!(shown, expected);
        assert_eq!(period_of(None, None, today), Ok(presets(today)[0].1));
        assert!(period_of(Some("2026-02-10"), Some("2026-02-01"), today).unwrap_err().contains("ends before"));
        assert!(period_of(Some("2026-02-31"), None, today).unwrap_err().contains("`2026-02-31` is not a date"));
        assert!(period_of(Some("2020-01-01"), Some("2026-01-01"), today).unwrap_err().contains("longer"));
        let one_day = period_of(Some("2026-02-01"), Some("2026-02-01"), today).unwrap();
        assert_eq!(one_day.instants().1 - one_day.instants().0, DAY);
    }

    #[test]
    fn medians_of_even_counts_take_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![5]), Some(5.0));
        assert_eq!(median(vec![9, 1, 4]), Some(4.0));
        assert_eq!(median(vec![10, 1, 4, 3]), Some(3.5));
        assert_eq!(shown_duration(3.5 * DAY as f64), "3.5 days");
        assert_eq!(shown_duration(2.0 * DAY as f64), "2 days");
        assert_eq!(shown_duration(5.0 * 3_600_000.0), "5 h");
        assert_eq!(shown_duration(40.0 * 60_000.0), "40 min");
        assert_eq!(percent(1, 3).as_deref(), Some("33.3 %"));
        assert_eq!(percent(2, 2).as_deref(), Some("100 %"));
        assert_eq!(percent(1, 0), None);
    }

    #[test]
    fn a_lead_that_skips_a_stage_passes_it_but_is_not_timed_for_it() {
        let journey = |mql: i64, sal: Option<i64>, sql: Option<i64>, customer: Option<i64>| Journey {
            lead_id: mql,
            mql,
            sal,
            sql,
            opportunity: None,
            customer,
        };
        let journeys = [
            journey(0, Some(DAY), Some(3 * DAY), Some(10 * DAY)),
            journey(0, Some(3 * DAY), None, None),
            // Straight from MQL to SQL: past SAL, but timed for neither MQL to SAL nor SAL to SQL.
            journey(0, None, Some(2 * DAY), None),
            journey(0, None, None, None),
        ];
        let steps = funnel_steps(&journeys);
        // Stage, reached, of the cohort, of the step before, median from it, leads timed.
        type Summary<'a> = (&'a str, i64, &'a str, Option<&'a str>, Option<&'a str>, usize);
        let summary: Vec<Summary> = steps
            .iter()
            .map(|s| {
                (
                    s.stage,
                    s.reached,
                    s.of_cohort.as_str(),
                    s.of_previous.as_deref(),
                    s.median_from_previous.as_deref(),
                    s.timed,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("MQL", 4, "100 %", None, None, 0),
                ("SAL", 3, "75 %", Some("75 %"), Some("2 days"), 2),
                ("SQL", 2, "50 %", Some("66.7 %"), Some("2 days"), 1),
                ("Customer", 1, "25 %", Some("50 %"), Some("7 days"), 1),
            ]
        );
        assert!(funnel_steps(&[]).iter().all(|s| s.reached == 0 && s.of_cohort == "–"));
    }
}
