//! The example models in `examples/`, run end to end through the real `leadscore` binary.
//!
//! Every example is scored as of 2026-11-01T00:00:00Z and each expected value is worked out by
//! hand next to it. Event ages are chosen to give exact decay factors: with a 30-day half-life an
//! event 30 days old keeps 0.5 of its points, 60 days 0.25; with "lose 25% every 30d" one full
//! period keeps 0.75 and two 0.5.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AS_OF: &str = "2026-11-01T00:00:00Z";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn leadscore<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_leadscore")).args(args).output().expect("the leadscore binary runs")
}

/// Scores `examples/NAME.toml` on `examples/NAME/{leads,events}.csv` and returns standard output.
/// The run must succeed without skipped rows or input warnings (missing columns and the like).
fn score(name: &str, extra: &[&str]) -> String {
    let dir = examples_dir();
    let model = dir.join(format!("{name}.toml"));
    let leads = dir.join(name).join("leads.csv");
    let events = dir.join(name).join("events.csv");
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("score"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--leads"),
        leads.as_os_str(),
        OsStr::new("--events"),
        events.as_os_str(),
        OsStr::new("--as-of"),
        OsStr::new(AS_OF),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let output = leadscore(&args);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "scoring {name} failed ({}):\n{stderr}\n{stdout}", output.status);
    assert!(!stderr.contains("warning") && !stderr.contains("skipped:"), "scoring {name} reported problems:\n{stderr}");
    stdout
}

/// A parsed CSV output: the header and the rows, in order.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// Splits CSV text into records (RFC 4180 quoting; no embedded newlines are expected here).
fn parse_csv(text: &str) -> Table {
    let mut records = text.lines().filter(|l| !l.is_empty()).map(|line| {
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut field)),
                _ => field.push(c),
            }
        }
        fields.push(field);
        fields
    });
    let header = records.next().expect("a header row");
    let rows: Vec<Vec<String>> = records.collect();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "row {row:?} vs header {header:?}");
    }
    Table { header, rows }
}

impl Table {
    fn column(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column `{name}` in {:?}", self.header))
    }

    fn cell(&self, lead: &str, column: &str) -> &str {
        let column = self.column(column);
        let row = self.rows.iter().find(|r| r[0] == lead).unwrap_or_else(|| panic!("no row for lead `{lead}`"));
        &row[column]
    }

    fn lead_ids(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r[0].as_str()).collect()
    }

    /// Checks a lead's score `NAME` and tier `NAME_tier` (`""`: no tier).
    #[track_caller]
    fn expect(&self, lead: &str, score: &str, value: f64, tier: &str) {
        let text = self.cell(lead, score);
        let got: f64 = text.parse().unwrap_or_else(|_| panic!("lead {lead}: `{score}` is not a number: `{text}`"));
        assert!((got - value).abs() < 1e-9, "lead {lead}: `{score}` is {got}, expected {value}");
        let got_tier = self.cell(lead, &format!("{score}_tier"));
        assert_eq!(got_tier, tier, "lead {lead}: tier of `{score}`");
    }
}

#[test]
fn examples_check_without_warnings() {
    for name in ["b2b-saas", "email-engagement", "japan-b2b", "bant", "reference"] {
        let model = examples_dir().join(format!("{name}.toml"));
        let output = leadscore([OsStr::new("check"), model.as_os_str()]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "check {name} failed ({}):\n{stdout}\n{stderr}", output.status);
        assert!(stdout.contains("is valid"), "check {name} did not say the model is valid:\n{stdout}");
        let all = format!("{stdout}{stderr}").to_lowercase();
        assert!(
            !all.contains("warning") && !all.contains("unreachable"),
            "check {name} complained:\n{stdout}\n{stderr}"
        );
    }
}

/// Every example carries `[[tests]]` from its hand calculations, and they pass.
#[test]
fn examples_pass_their_own_tests() {
    for name in ["b2b-saas", "email-engagement", "japan-b2b", "bant", "reference"] {
        let model = examples_dir().join(format!("{name}.toml"));
        let output = leadscore([OsStr::new("test"), model.as_os_str()]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "test {name} failed ({}):\n{stdout}", output.status);
        let summary = stdout.lines().last().unwrap_or_default();
        assert!(summary.ends_with(", 0 failed") && !summary.contains(": 0 tests"), "{name}: {stdout}");
    }
}

#[test]
fn b2b_saas() {
    let out = parse_csv(&score("b2b-saas", &[]));
    assert_eq!(out.header, ["lead_id", "fit", "fit_tier", "engagement", "engagement_tier", "total", "total_tier"]);
    assert_eq!(out.lead_ids(), ["b2b-01", "b2b-02", "b2b-03", "b2b-04", "b2b-05", "b2b-06", "b2b-07"]);

    // "VP Engineering": 20 (seniority) + 15 (Technology) + 10 (120 employees) + 5 (US) = 50
    out.expect("b2b-01", "fit", 50.0, "");
    // 15 (pricing page: 3 views in 90 days, max_count 1)
    // + 20 * 0.5 (webinar 30 days old) + 20 * 0.25 (webinar 60 days old; the one 90 days old is
    //   the third most recent, beyond max_count 2)
    // + 10 (pricing after a webinar: the view of 5 October came 3 days after the webinar of
    //   2 October; those of 12 and 22 October 10 and 20 days after it) = 15 + 10 + 5 + 10 = 40
    out.expect("b2b-01", "engagement", 40.0, "");
    // 50 + 40 = 90 >= 75
    out.expect("b2b-01", "total", 90.0, "demo");

    // "Marketing Manager": 10 + 15 ("technology", ignore_case) + 0 (45 employees) + 5 (GB) = 30
    out.expect("b2b-02", "fit", 30.0, "");
    // 10 * 2 (3 case studies, max_count 2; the whitepaper does not count)
    // + 5 (the 2026-10-launch e-mail; the September newsletter open does not count)
    // + 0 (pricing page 120 days old, outside the 90-day window) = 25
    out.expect("b2b-02", "engagement", 25.0, "");
    // 30 + 25 = 55: 50 <= 55 < 75
    out.expect("b2b-02", "total", 55.0, "mql");

    // "CEO": 20 + 15 + 10 (300 employees) + 5 (CA) = 50
    out.expect("b2b-03", "fit", 50.0, "");
    // demo link clicked 7 days ago: 25 * (1 - 0.25 * 0 full periods of 30 days) = 25
    out.expect("b2b-03", "engagement", 25.0, "");
    // 50 + 25 = 75 would be "demo", but sam@RivalCRM.com is a competitor (domain case ignored)
    out.expect("b2b-03", "total", 75.0, "disqualified");

    // "Student", Education, 5 employees, IN: no fit rule applies
    out.expect("b2b-04", "fit", 0.0, "");
    // -5 * 2 (3 careers views in 90 days, max_count 2) - 10 (unsubscribed)
    // - 3 * 2 (tickets "billing" and one without a category; the "sales" one does not count)
    // = -10 - 10 - 6 = -26
    out.expect("b2b-04", "engagement", -26.0, "");
    out.expect("b2b-04", "total", -26.0, "unqualified");

    // Empty title, industry and employees match nothing; country "ca" (ignore_case) = 5
    out.expect("b2b-05", "fit", 5.0, "");
    // 20 * 1 (webinar exactly at the as-of time, age 0)
    // + 25 * (1 - 0.25 * 2) (demo click 65 days old: 2 full periods of 30 days) = 20 + 12.5
    //   (the demo click of 2026-11-03 is after the as-of time: it must not be the one counted,
    //   and the /blog click is no demo click) = 32.5
    out.expect("b2b-05", "engagement", 32.5, "");
    // 5 + 32.5 = 37.5
    out.expect("b2b-05", "total", 37.5, "nurture");

    // "Vice President, Sales" (quoted comma): 20 + 0 (Manufacturing) + 10 (500, inclusive) + 0 (DE)
    out.expect("b2b-06", "fit", 30.0, "");
    // 15 (pricing view exactly 90 days old: the window is inclusive)
    // + 0 (careers view 91 days old, outside the window) = 15
    out.expect("b2b-06", "engagement", 15.0, "");
    // 30 + 15 = 45
    out.expect("b2b-06", "total", 45.0, "nurture");

    // "VP & General Manager": 20 (first case wins, not 20 + 10) + 15 + 10 (50, inclusive) + 5 = 50
    out.expect("b2b-07", "fit", 50.0, "");
    out.expect("b2b-07", "engagement", 0.0, "");
    // 50 + 0 = 50: exactly the mql threshold
    out.expect("b2b-07", "total", 50.0, "mql");
}

#[test]
fn email_engagement() {
    let out = parse_csv(&score("email-engagement", &[]));
    assert_eq!(out.header, ["lead_id", "engagement", "engagement_tier"]);
    assert_eq!(out.lead_ids(), ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10", "e11"]);

    // clicks: 7 in 90 days, the 5 most recent earn 1+2+3+4+5 = 15; page views: 2 -> 1+2 = 3
    // 15 + 3 = 18
    out.expect("e1", "engagement", 18.0, "engaged");
    // clicks 5 -> 15; page views 6 -> 15 (capped at 5 steps);
    // conversions: 3 newsletter forms + 2 trial starts = 5 -> 15; 15 + 15 + 15 = 45 (the group max)
    out.expect("e2", "engagement", 45.0, "mql");
    // clicks 2 -> 1+2 = 3; page views 1 -> 1; conversions: the contact form -> 1; 3 + 1 + 1 = 5
    // 5 is "nurture" by points, but the contact form is a hand-raise: mql
    out.expect("e3", "engagement", 5.0, "mql");
    // clicks: 4 in 90 days -> 1+2+3+4 = 10 (the click 100 days old is outside the window);
    // the contact form of 2026-11-02 is after the as-of time: no points, no qualifier
    out.expect("e4", "engagement", 10.0, "nurture");
    // clicks 4 -> 10; page views 1 -> 1; 10 + 1 = 11: exactly the engaged threshold
    out.expect("e5", "engagement", 11.0, "engaged");
    // clicks 5 -> 15; page views 6 -> 15; conversions: 2 webinar forms + 1 trial start -> 1+2+3 = 6
    // 15 + 15 + 6 = 36: exactly the mql threshold
    out.expect("e6", "engagement", 36.0, "mql");
    // no events
    out.expect("e7", "engagement", 0.0, "nurture");
    // clicks 3 -> 1+2+3 = 6; info@ is a role inbox: disqualified, points kept
    out.expect("e8", "engagement", 6.0, "disqualified");
    // Anfrage+web@: `anfrage`, which the model's [lists.role_email] adds, without its +tag
    out.expect("e9", "engagement", 0.0, "disqualified");
    // page views 2 -> 1+2 = 3; eu.mailinator.com is a subdomain of a disposable domain
    // (and "asdfgh" is keyboard mashing)
    out.expect("e10", "engagement", 3.0, "disqualified");
    // clicks 1 -> 1; a first name in Chinese characters is not gibberish
    out.expect("e11", "engagement", 1.0, "nurture");
}

#[test]
fn japan_b2b() {
    let out = parse_csv(&score("japan-b2b", &[]));
    assert_eq!(out.header, ["lead_id", "score", "score_tier"]);
    assert_eq!(out.lead_ids(), ["j1", "j2", "j3", "j4", "j5", "j6"]);

    // 営業部長: 10 (部長, first case) + 5 (製造業) + 0 (営業部) + 5 (はい) + 10 (1 month)
    // + 5 (資料請求: 2, max_count 1) + 10 (セミナー参加) + 5 (問い合わせ) = 30 + 20 = 50
    out.expect("j1", "score", 50.0, "Aランク");
    // マーケティングマネージャー: 10 + 5 (情報通信業) + 5 (マーケティング部) + 5 ("Yes", ignore_case)
    // + 5 (3 months) + 5 (メルマガ登録) + 5 (料金ページ閲覧, 10 days old; /product does not count)
    // = 30 + 10 = 40: exactly the A threshold
    out.expect("j2", "score", 40.0, "Aランク");
    // 営業担当: 5 (担当 comes before 営業) + 0 (小売業) + 0 (営業部) + 0 (いいえ) + 0 (12 months)
    // + 10 (トライアル申込) = 15; the seminar at 2026-11-01T09:00:01+09:00 is 1 s after the
    // as-of time and does not count (else 25, Bランク)
    out.expect("j3", "score", 15.0, "Cランク");
    // 営業: 0; department, industry, agenda and timeline empty: 0
    // + 10 (seminar at 2026-11-01T08:59:59+09:00, 1 s before the as-of time)
    // + 5 (資料請求) + 5 (メルマガ登録) = 20: exactly the B threshold
    out.expect("j4", "score", 20.0, "Bランク");
    // 代表取締役: 0 + 5 (製造業) + 0 (経営企画室) + 5 (あり) + 5 (6 months)
    // + 0 (料金ページ 200 days old, outside the 180-day window) = 15
    out.expect("j5", "score", 15.0, "Cランク");
    // マーケティング担当: 5 + 5 (情報通信業) + 5 (マーケティング部) + 5 ("TRUE") + 10 (0 months)
    // + 10 (トライアル申込: 2, max_count 1) + 5 (料金ページ) = 30 + 15 = 45
    out.expect("j6", "score", 45.0, "Aランク");
}

#[test]
fn bant() {
    let out = parse_csv(&score("bant", &[]));
    assert_eq!(out.header, ["lead_id", "bant", "bant_tier"]);
    assert_eq!(out.lead_ids(), ["k1", "k2", "k3", "k4", "k5", "k6", "k7"]);

    // 20 (budget 25000) + 20 (Director) + 15 (need) + 15 (3 months) = 70; all four: sql
    out.expect("k1", "bant", 70.0, "sql");
    // 20 (50000) + 20 ("VP" as a word) + 15 (pain_points, need empty) + 0 (9 months)
    // + 5 * 0.5 (pricing view 30 days old) = 57.5; no timeline: mql, not sql
    out.expect("k2", "bant", 57.5, "mql");
    // 0 (budget 9999) + 20 ("Head of") + 15 + 15 (1 month) + 15 (demo request 10 days ago) = 65
    // no budget: mql, not sql
    out.expect("k3", "bant", 65.0, "mql");
    // Analyst, every BANT field empty: 0
    // + 5 * 0.5 + 5 * 0.25 (pricing views 30 and 60 days old; the one 90 days old is beyond
    //   max_count 2 and /docs is no pricing page) + 10 (webinar) = 2.5 + 1.25 + 10 = 13.75
    out.expect("k4", "bant", 13.75, "lead");
    // 20 (budget 10000, inclusive) + 20 ("ceo") + 15 + 15 (6 months, inclusive)
    // + 0 (demo request 100 days old, outside the 60-day window) = 70; all four: sql
    out.expect("k5", "bant", 70.0, "sql");
    // 20 (80000) + 0 ("MVP Program Lead": "vp" is not a word there) + 15 (pain_points)
    // + 15 (2 months) + 5 * 1 (pricing view at the as-of time, age 0)
    // + 0 (demo request 1 s after the as-of time) = 55; no authority: mql
    out.expect("k6", "bant", 55.0, "mql");
    // 20 (15000) + 20 ("Chief") + 0 (need and pain_points empty) + 15 (4 months) = 55
    out.expect("k7", "bant", 55.0, "mql");
}

/// `--explain`: for every lead and score, the contributions add up to the value, and the value
/// is the one the CSV output rounds.
#[test]
fn b2b_saas_explanations_add_up() {
    let csv = parse_csv(&score("b2b-saas", &[]));
    let explained = score("b2b-saas", &["--explain"]);
    let lines: Vec<&str> = explained.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), csv.rows.len());
    for line in lines {
        let lead: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        let id = lead["lead_id"].as_str().expect("lead_id");
        let scores = lead["scores"].as_object().expect("scores by name");
        // The scores come in the model's order; serde_json's map sorts keys (no `preserve_order`),
        // so the order is checked on the text.
        let at = |name: &str| {
            let key = format!("\"{name}\":{{");
            line.find(&key).expect("the score is in the line")
        };
        assert!(at("fit") < at("engagement") && at("engagement") < at("total"), "lead {id}");
        let mut names: Vec<&str> = scores.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["engagement", "fit", "total"], "lead {id}");
        for (name, result) in scores {
            let value = result["value"].as_f64().expect("value");
            let contributions = result["contributions"].as_array().expect("contributions");
            let sum: f64 = contributions.iter().map(|c| c["points"].as_f64().expect("points")).sum();
            assert!(
                (sum - value).abs() < 1e-9,
                "lead {id}, score {name}: contributions add up to {sum}, value is {value}"
            );
            let rounded: f64 = csv.cell(id, name).parse().expect("a number");
            assert!((rounded - value).abs() <= 5e-7, "lead {id}, score {name}: CSV {rounded}, explained {value}");
            let tier = result["tier"].as_str().unwrap_or("");
            assert_eq!(tier, csv.cell(id, &format!("{name}_tier")), "lead {id}");
        }
    }
    let b2b_03 = explained.lines().find(|l| l.contains("\"b2b-03\"")).expect("lead b2b-03");
    let b2b_03: serde_json::Value = serde_json::from_str(b2b_03).expect("JSON");
    assert_eq!(b2b_03["scores"]["total"]["disqualified_by"], "competitor");
}

/// The reference model reproduces the hand-checked `examples/reference/expected.csv`
/// (`lead_id,score,tier` there, `lead_id,score,score_tier` here).
#[test]
fn reference_matches_expected() {
    let out = parse_csv(&score("reference", &[]));
    assert_eq!(out.header, ["lead_id", "score", "score_tier"]);
    let expected_text = std::fs::read_to_string(examples_dir().join("reference/expected.csv"))
        .expect("examples/reference/expected.csv");
    let expected = parse_csv(&expected_text);
    assert_eq!(expected.header, ["lead_id", "score", "tier"]);
    assert_eq!(out.lead_ids(), expected.lead_ids());
    for row in &expected.rows {
        let value: f64 = row[1].parse().expect("an expected number");
        out.expect(&row[0], "score", value, &row[2]);
    }
}
