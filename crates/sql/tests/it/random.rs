//! Random models over every rule kind the SQL compiler covers, on random leads and events: the
//! query on DuckDB and PostgreSQL gives `leadscore score`'s rows. The data has empty and blank
//! cells, numbers and booleans written every way the engine reads them, letters whose case only
//! Unicode folds (`ſ`, the Kelvin sign), events exactly on window, decay and sequence edges, ties,
//! events after the as-of time and times that are not times.
//!
//! A case is drawn from one seed by a small generator (rather than composed strategies), so that
//! a failure prints the model and the files it ran on.

use leadscore_core::Timestamp;
use leadscore_sql::Dialect;
use proptest::prelude::*;

use crate::engines::{
    Files, Postgres, assert_same_contributions, assert_same_rows, compile, csv_contributions, csv_rows, duckdb_csv,
    engine_contributions, engine_rows, query_with,
};

const DAY: i64 = 86_400_000;
/// The durations windows, decays and sequences use, so that events fall on their edges.
const DURATIONS: &[(&str, i64)] = &[("1d", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY), ("90d", 90 * DAY)];
const AS_OF: &str = "2026-11-01T00:00:00Z";

/// A small deterministic generator (xorshift).
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn points(&mut self) -> String {
        self.pick(&["10", "-5", "2.5", "0.1", "7", "0.3", "-0.25", "1e-7", "12.5", "0"]).to_string()
    }
    fn duration(&mut self) -> (&'static str, i64) {
        *self.pick(DURATIONS)
    }
}

const TITLES: &[&str] = &[
    "VP Sales",
    "ÉVP x",
    "mvp",
    "vp-x",
    "v\u{2163}",
    "x_vp",
    "٣",
    "Vp.",
    "-vp",
    "vp",
    "Chief Officer",
    "manager",
    "MANAGER",
    "Senior Dev",
    "  Manager  ",
    "",
    " ",
    "ſenior",
    "\u{212a}elvin",
    "директор",
    "部長",
    "ma\nager",
    "Vice President",
    "\"quoted\" chief",
];
const COUNTRIES: &[&str] = &["US", "us", "GB", "42", "42.0", " 4.2e1 ", "true", "yes", "Да", "", "DE", "ΣΊ"];
const EMPLOYEES: &[&str] =
    &["50", " 500 ", "1e2", ".5", "5.", "+7", "-0", "abc", "", "1,000", "inf", "NaN", "499.999", "50.0", "1e400"];
const FLAGS: &[&str] =
    &["yes", "No", "1", "0", "true", "FALSE", "да", "Tak", "sí", "SÍ", "", "maybe", "ja ", "\u{212a}"];
const EMAILS: &[&str] = &[
    "x@gmail.com",
    "Y@GMAIL.COM",
    "info@acme.com",
    "Sales+EU@acme.com",
    "z@mail.mailinator.com",
    "q@mailinator.com.acme.io",
    "anfrage+web@x.de",
    "MAR\u{212a}ETING@acme.com",
    "INFO@x@y.com",
    "\u{212a}@gmail.com",
    "info",
    "a@acme.com",
    "b@ACME.COM",
    "c@sub.acme.com",
    "d@k.io",
    "e@\u{212a}.io",
    "not an email",
    "x@a@acme.com",
    "",
    "f@acme.com.evil",
    "g@Acme.Com ",
];
const URLS: &[&str] = &["/pricing", "/PRICING?x", "/docs", "", "/demo", "/careers/pricing"];
const KINDS: &[&str] = &["demo", "Demo", "sales", "", "trial"];

/// A condition on the lead, `depth` levels of `all`/`any`/`not` at most.
fn lead_condition(draw: &mut Draw, depth: usize) -> String {
    if depth > 0 && draw.chance(25) {
        let parts: Vec<String> = (0..1 + draw.below(2)).map(|_| lead_condition(draw, depth - 1)).collect();
        return match draw.below(3) {
            0 => format!("{{ all = [{}] }}", parts.join(", ")),
            1 => format!("{{ any = [{}] }}", parts.join(", ")),
            _ => format!("{{ not = {} }}", parts[0]),
        };
    }
    match draw.below(14) {
        0 => r#"{ field = "position", contains = ["vp", "chief", "директор"] }"#.into(),
        1 => r#"{ field = "position", equals = "manager", ignore_case = true }"#.into(),
        2 => r#"{ field = "position", starts_with = ["sen", "ke"], ignore_case = true }"#.into(),
        3 => format!(
            "{{ field = \"position\", regex = '{}' }}",
            draw.pick(&[
                "^(vp|chief)",
                "(?i)ma.ager",
                "[a-c]{2,3}$",
                "部|ſ",
                "(?i)[k-m]el",
                r"(?i)\b(vp|chief|ceo)\b",
                r"\bma",
                r"\d",
                r"^\w+$",
                r"\s\S",
                r"\p{Cyrillic}",
                r"\w{3}\b",
                r"\b-",
                r"\W$",
            ])
        ),
        4 => r#"{ field = "country", one_of = ["US", "gb", 42, true] }"#.into(),
        5 => r#"{ field = "country", one_of = ["us", "Σί"], ignore_case = true }"#.into(),
        6 => format!(
            "{{ field = \"employees\", min = {}, max = {} }}",
            draw.pick(&["0", "50", "-1"]),
            draw.pick(&["500", "499.999", "100"])
        ),
        7 => format!("{{ field = \"employees\", above = {} }}", draw.pick(&["0", "50", "-0.5"])),
        8 => format!("{{ field = \"employees\", below = {} }}", draw.pick(&["100", "50", "0"])),
        9 => format!("{{ field = \"flag\", equals = {} }}", draw.pick(&["true", "false"])),
        10 => r#"{ field = "email", email_domain = ["acme.com", "K.io", "@sub.acme.com"] }"#.into(),
        11 if draw.chance(30) => format!(
            "{{ field = \"user_id\", {} }}",
            draw.pick(&["starts_with = \"L1\"", "present = false", "one_of = [\"U7\", \"L3\"]"])
        ),
        11 => format!(
            "{{ field = \"{}\", present = {} }}",
            draw.pick(&["position", "flag", "email"]),
            draw.pick(&["true", "false"])
        ),
        13 if draw.chance(60) => format!(
            "{{ field = \"email\", {} = {} }}",
            draw.pick(&["free_email", "disposable_email", "role_email"]),
            draw.pick(&["true", "false"])
        ),
        12 if draw.chance(50) => format!("{{ field = \"created_at\", present = {} }}", draw.pick(&["true", "false"])),
        12 => format!("{{ field = \"employees\", equals = {} }}", draw.pick(&["50", "0", "100"])),
        _ => format!("{{ field = \"flag\", missing = {} }}", draw.pick(&["true", "false"])),
    }
}

fn event_filter(draw: &mut Draw) -> String {
    match draw.below(5) {
        0 => r#"{ field = "url", contains = "/pricing" }"#.into(),
        1 => r#"{ field = "kind", equals = "demo", ignore_case = true }"#.into(),
        2 => r#"{ not = { field = "kind", equals = "sales" } }"#.into(),
        3 => r#"{ field = "url", present = false }"#.into(),
        _ => r#"{ any = [{ field = "kind", one_of = ["trial", "demo"] }, { field = "url", starts_with = "/d" }] }"#
            .into(),
    }
}

fn event_types(draw: &mut Draw) -> String {
    draw.pick(&[r#""a""#, r#""b""#, r#"["a", "b"]"#, r#""c""#]).to_string()
}

/// An event rule or an inactivity rule.
fn activity_rule(draw: &mut Draw, name: &str, group: bool) -> String {
    let mut rule = format!("[[scores.activity.rules]]\nname = \"{name}\"\n");
    if group {
        rule.push_str("group = \"capped\"\n");
    }
    if draw.chance(30) {
        rule.push_str(&format!("inactive_for = \"{}\"\npoints = {}\n", draw.duration().0, draw.points()));
        if draw.chance(50) {
            rule.push_str(&format!("event = {}\n", event_types(draw)));
        }
        if draw.chance(20) {
            rule.push_str(&format!("when = {}\n", lead_condition(draw, 1)));
        }
        return rule;
    }
    rule.push_str(&format!("event = {}\n", event_types(draw)));
    if draw.chance(40) {
        rule.push_str(&format!("where = {}\n", event_filter(draw)));
    }
    if draw.chance(50) {
        rule.push_str(&format!("window = \"{}\"\n", draw.duration().0));
    }
    if draw.chance(50) {
        rule.push_str(&format!("max_count = {}\n", 1 + draw.below(4)));
    }
    let bands = match draw.below(4) {
        0 | 1 => {
            rule.push_str(&format!("points = {}\n", draw.points()));
            false
        }
        2 => {
            let steps: Vec<String> = (0..1 + draw.below(4)).map(|_| draw.points()).collect();
            rule.push_str(&format!("progressive = [{}]\n", steps.join(", ")));
            false
        }
        _ => {
            rule.push_str(&format!(
                "bands = [{{ min = 1, max = {}, points = {} }}, {{ min = 4, points = {} }}]\n",
                1 + draw.below(2),
                draw.points(),
                draw.points()
            ));
            true
        }
    };
    if !bands && draw.chance(50) {
        let decay = match draw.below(3) {
            0 => format!("{{ half_life = \"{}\" }}", draw.duration().0),
            1 => format!(
                "{{ lose_percent = {}, every = \"{}\" }}",
                draw.pick(&["10", "25", "50", "100", "33.3"]),
                draw.duration().0
            ),
            _ => "{ steps = [{ older_than = \"7d\", factor = 0.5 }, { older_than = \"30d\", factor = 0.1 }] }"
                .to_string(),
        };
        rule.push_str(&format!("decay = {decay}\n"));
    }
    if draw.chance(20) {
        rule.push_str(&format!("after = {{ event = \"c\", within = \"{}\" }}\n", draw.duration().0));
    }
    if draw.chance(15) {
        rule.push_str(&format!("when = {}\n", lead_condition(draw, 1)));
    }
    rule
}

fn limits(draw: &mut Draw) -> String {
    match draw.below(4) {
        0 => "min = -10\nmax = 30\nnormalize = true\n".into(),
        1 => "max = 25\n".into(),
        2 => "min = 0\n".into(),
        _ => String::new(),
    }
}

/// A model: `fit` (attribute and case rules), `activity` (event and inactivity rules, a capped
/// group), `total` (both, weighted, with tiers, qualifiers and disqualifiers), and sometimes a
/// score of segments.
fn model(draw: &mut Draw) -> String {
    let mut text = String::from("[model]\nname = \"random\"\n\n");
    if draw.chance(50) {
        text.push_str("[lead]\ncreated_at = \"created_at\"\n\n");
    }
    match draw.below(4) {
        0 => text.push_str("[lists.role_email]\nadd = [\"anfrage\"]\nremove = [\"info\"]\n\n"),
        1 => text.push_str("[lists.free_email]\nentries = [\"acme.com\", \"x.de\"]\n\n"),
        2 => text.push_str("[lists.disposable_email]\nadd = [\"acme.io\"]\n\n"),
        _ => {}
    }
    text.push_str("[scores.fit]\n");
    text.push_str(&format!("precision = {}\n", draw.below(7)));
    text.push_str(&limits(draw));
    if draw.chance(20) {
        text.push_str(&format!("applies_to = {}\n", lead_condition(draw, 1)));
    }
    for i in 0..1 + draw.below(4) {
        if draw.chance(30) {
            text.push_str(&format!(
                "[[scores.fit.rules]]\nname = \"f{i}\"\ncases = [\n  {{ when = {}, points = {} }},\n  {{ when = {}, points = {} }},\n",
                lead_condition(draw, 1),
                draw.points(),
                lead_condition(draw, 1),
                draw.points()
            ));
            if draw.chance(50) {
                text.push_str(&format!("  {{ otherwise = true, points = {} }},\n", draw.points()));
            }
            text.push_str("]\n");
        } else {
            text.push_str(&format!(
                "[[scores.fit.rules]]\nname = \"f{i}\"\nwhen = {}\npoints = {}\n",
                lead_condition(draw, 2),
                draw.points()
            ));
        }
    }
    text.push_str("\n[scores.activity]\n");
    text.push_str(&format!("precision = {}\n", draw.below(7)));
    text.push_str(&limits(draw));
    let n_rules = 1 + draw.below(5);
    let grouped: Vec<bool> = (0..n_rules).map(|_| draw.chance(30)).collect();
    if grouped.contains(&true) {
        text.push_str(&format!("[scores.activity.groups.capped]\nmax = {}\n", draw.pick(&["5", "12.5", "0"])));
    }
    for (i, group) in grouped.iter().enumerate() {
        text.push_str(&activity_rule(draw, &format!("a{i}"), *group));
    }
    text.push_str("\n[scores.total]\n");
    text.push_str(&format!(
        "from = {{ fit = {}, activity = {} }}\nprecision = {}\n",
        draw.pick(&["1", "0.5", "2"]),
        draw.pick(&["1", "1.5", "0.3"]),
        draw.below(7)
    ));
    text.push_str(&format!(
        "tiers = [\n  {{ label = \"cold\" }},\n  {{ label = \"warm\", min = {} }},\n  {{ label = \"hot\", min = {}{} }},\n  {{ label = \"sql\", qualifier_only = true }},\n]\n",
        draw.pick(&["5", "7.5", "10"]),
        draw.pick(&["15", "20", "12.5"]),
        if draw.chance(30) { ", max = 30" } else { "" }
    ));
    text.push_str(&format!(
        "[[scores.total.rules]]\nname = \"fit rule\"\nwhen = {{ score = \"fit\", rule = \"f0\" }}\npoints = {}\n",
        draw.points()
    ));
    text.push_str(&format!(
        "[[scores.total.rules]]\nname = \"active\"\nwhen = {{ score = \"activity\", min = {} }}\npoints = {}\n",
        draw.pick(&["0", "5", "1"]),
        draw.points()
    ));
    text.push_str(&format!(
        "[[scores.total.qualifiers]]\nname = \"recent b\"\ntier = \"{}\"\nevent = \"b\"\nwithin = \"{}\"\n",
        draw.pick(&["hot", "sql"]),
        draw.duration().0
    ));
    if draw.chance(50) {
        text.push_str(&format!("where = {}\nmin_count = {}\n", event_filter(draw), 1 + draw.below(2)));
    }
    if draw.chance(50) {
        text.push_str(
            "[[scores.total.qualifiers]]\nname = \"both\"\ntier = \"sql\"\nrules = [\"fit rule\", \"active\"]\n",
        );
    }
    if draw.chance(50) {
        text.push_str(&format!(
            "[[scores.total.disqualifiers]]\nname = \"junk\"\nwhen = {}\n",
            lead_condition(draw, 1)
        ));
    }
    if draw.chance(40) {
        text.push_str(&format!(
            "\n[scores.routed]\nsegments = [\n  {{ when = {}, score = \"total\" }},\n  {{ otherwise = true, score = \"activity\" }},\n]\n",
            lead_condition(draw, 1)
        ));
    }
    if draw.chance(30) {
        text.push_str(
            "\n[scores.check]\ntiers = [{ label = \"low\" }, { label = \"high\", min = 1 }]\n[[scores.check.rules]]\nname = \"hot total\"\nwhen = { score = \"total\", tier = [\"hot\", \"sql\"] }\npoints = 1\n",
        );
    }
    text
}

/// An instant written in one of the RFC 3339 spellings the engine reads (or, rarely, not a time).
fn time_text(draw: &mut Draw, at: i64) -> String {
    if draw.chance(3) {
        return draw
            .pick(&[
                "not a time",
                "2026-02-30T00:00:00Z",
                "2026-10-01T25:00:00Z",
                "2026-10-01",
                "2026-10-31 23:59",
                "2026-10-31T12:00:00,5",
                "2026-10-31 23:59:60",
                "2026-10-31T23:59:60Z",
                "2026-10-31 24:00",
            ])
            .to_string();
    }
    let offset_minutes = *draw.pick(&[0i64, 0, 540, -300, 330]);
    let local = at + offset_minutes * 60_000;
    let (y, m, d) = leadscore_core::time::civil_from_days(local.div_euclid(DAY));
    let ms_of_day = local.rem_euclid(DAY);
    let (h, mi, s, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let separator = draw.pick(&["T", "T", "t", " "]);
    let fraction = match (ms, draw.below(3)) {
        (0, 0) => String::new(),
        (_, 1) => format!(".{ms:03}999"),
        _ => format!(".{ms:03}"),
    };
    let zone = if offset_minutes == 0 {
        draw.pick(&["Z", "z", "+00:00"]).to_string()
    } else {
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", offset_minutes.abs() / 60, offset_minutes.abs() % 60)
    };
    format!("{y:04}-{m:02}-{d:02}{separator}{h:02}:{mi:02}:{s:02}{fraction}{zone}")
}

fn csv_field(draw: &mut Draw, value: &str) -> String {
    if value.is_empty() {
        // An empty cell, quoted or not (NULL or '' in a database), or a blank one.
        return draw.pick(&["", "\"\"", "\"  \""]).to_string();
    }
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// Leads and events around the as-of instant `as_of`.
fn data(draw: &mut Draw, as_of: i64) -> (String, String) {
    let mut leads = String::from("lead_id,position,country,employees,flag,email,created_at,user_id\n");
    let mut events = String::from("lead_id,type,ts,url,kind\n");
    let n_leads = 20 + draw.below(20);
    for lead in 0..n_leads {
        let id = format!("L{lead}");
        let cells = [TITLES, COUNTRIES, EMPLOYEES, FLAGS, EMAILS].map(|values| {
            let value = *draw.pick(values);
            csv_field(draw, value)
        });
        let padded_id = if draw.chance(10) { format!("\" {id} \"") } else { id.clone() };
        let created = match draw.below(4) {
            0 => String::new(),
            _ => {
                let at = as_of - draw.duration().1 + *draw.pick(&[0, 1, -1, 40 * DAY, -200 * DAY]);
                time_text(draw, at)
            }
        };
        let created = csv_field(draw, &created);
        let user_id = *draw.pick(&["", "U7", "L3", " "]);
        let user_id = csv_field(draw, user_id);
        leads.push_str(&format!("{padded_id},{},{created},{user_id}\n", cells.join(",")));
        let mut times = Vec::new();
        let n_events = if draw.chance(25) { 0 } else { draw.below(9) };
        for _ in 0..n_events {
            let at = match draw.below(6) {
                // On an edge of a duration, or a millisecond either side.
                0 | 1 => as_of - draw.duration().1 + *draw.pick(&[0, 0, 1, -1]),
                // The as-of instant itself, or after it.
                2 => as_of + *draw.pick(&[0, 1, 1000, DAY]),
                // A tie with an earlier event.
                3 if !times.is_empty() => *draw.pick(&times),
                _ => as_of - (draw.next() % (120 * DAY as u64)) as i64,
            };
            times.push(at);
            let event_type = *draw.pick(&["a", "b", "c", "a", "x", ""]);
            let event_type = csv_field(draw, event_type);
            let text = time_text(draw, at);
            let text = csv_field(draw, &text);
            let url = *draw.pick(URLS);
            let kind = *draw.pick(KINDS);
            let (url, kind) = (csv_field(draw, url), csv_field(draw, kind));
            events.push_str(&format!("{id},{event_type},{text},{url},{kind}\n"));
        }
    }
    events.push_str("nobody,a,2026-10-01T00:00:00Z,,\n");
    (leads, events)
}

/// A random case drawn from `seed`: a model, its leads and events files, and the as-of instant
/// they are scored at (the Spark test runs these too).
pub struct Case {
    pub model: String,
    pub leads: String,
    pub events: String,
    pub as_of: Timestamp,
}

pub fn case(seed: u64) -> Case {
    let mut draw = Draw(seed);
    let model = model(&mut draw);
    let as_of = Timestamp::parse_rfc3339(AS_OF).unwrap();
    let (leads, events) = data(&mut draw, as_of.0);
    Case { model, leads, events, as_of }
}

/// One random case: the model and data drawn from `seed`, scored three ways.
fn check_case(seed: u64) {
    let Case { model: model_text, leads, events, as_of } = case(seed);
    let files = Files::written(&leads, &events);
    let model = compile(&model_text);
    let engine = engine_rows(&model, &files, as_of);
    let explained = engine_contributions(&model, &files, as_of);
    let context = format!("seed {seed}\n{model_text}\n{leads}\n{events}");
    // Every other case with `--explain`'s column, whose query gives the same rows besides.
    let explain = seed.is_multiple_of(2);
    let duckdb_query = query_with(&model, &model_text, Dialect::DuckDb, as_of, explain);
    if let Some(csv) = duckdb_csv(&duckdb_query, &files) {
        assert_same_rows(&engine, &csv_rows(&csv), &format!("DuckDB, {context}"));
        if explain {
            assert_same_contributions(&explained, &csv_contributions(&csv), &format!("DuckDB, {context}"));
        }
    }
    if let Some(mut postgres) = Postgres::create() {
        let postgres_query = query_with(&model, &model_text, Dialect::Postgres, as_of, explain);
        let (rows, contributions) = postgres.rows_explained(&postgres_query, &files);
        assert_same_rows(&engine, &rows, &format!("PostgreSQL, {context}"));
        if explain {
            let contributions = contributions.expect("the query has the contributions column");
            assert_same_contributions(&explained, &contributions, &format!("PostgreSQL, {context}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_models_score_as_leadscore_score_does_on_duckdb_and_postgres(seed in 1u64..u64::MAX) {
        check_case(seed);
    }
}
