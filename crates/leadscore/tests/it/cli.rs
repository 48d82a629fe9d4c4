//! The `leadscore` binary as users run it: bad input, strict mode, JSON Lines, `check` output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = command.output().expect("the binary runs");
    (status.code().unwrap_or(-1), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const MODEL: &str = r#"
[scores.score]
tiers = [{ label = "cold" }, { label = "hot", min = 20 }]
[[scores.score.rules]]
name = "tech"
when = { field = "industry", equals = "Technology" }
points = 15
[[scores.score.rules]]
name = "pricing"
event = "page_view"
where = { field = "url", contains = "/pricing" }
points = 10
max_count = 1
"#;

const LEADS: &str = "lead_id,industry\nA1,Technology\nB2,Retail\nC3,Technology\n";

fn score_args(dir: &Path, leads: &Path, events: &Path) -> Command {
    let model = write(dir, "model.toml", MODEL);
    let mut command = bin();
    command.args(["score", "--as-of", "2026-11-01T00:00:00Z", "--model"]).arg(model).arg("--leads").arg(leads);
    command.arg("--events").arg(events);
    command
}

#[test]
fn bad_rows_are_skipped_counted_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(
        dir.path(),
        "events.csv",
        "lead_id,type,ts,url\n\
         A1,page_view,2026-10-30T00:00:00Z,/pricing\n\
         ZZ,page_view,2026-10-30T00:00:00Z,/pricing\n\
         C3,page_view,yesterday,/pricing\n\
         C3,page_view,2026-10-30T00:00:00Z\n\
         C3,page_view,2026-10-30T09:00:00+09:00,/pricing\n",
    );
    let (code, stdout, stderr) = run(&mut score_args(dir.path(), &leads, &events));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "lead_id,score,score_tier\nA1,25,hot\nB2,0,cold\nC3,25,hot\n");
    let events_path = events.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{events_path}: 1 events belong to leads that are not in the leads file and were not scored (the first: line 3, lead_id `ZZ`)"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{events_path}:4: `yesterday` is not a time in the format iso")), "{stderr}");
    assert!(stderr.contains(&format!("{events_path}:5: 3 fields where the header has 4")), "{stderr}");
    assert!(stderr.contains("1 of other leads"), "{stderr}");
    assert!(stderr.contains("2 bad rows skipped"), "{stderr}");
}

#[test]
fn strict_stops_at_the_first_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(
        dir.path(),
        "events.csv",
        "lead_id,type,ts,url\nA1,page_view,2026-10-30T00:00:00Z,/\nA1,page_view,2026-13-30T00:00:00Z,/\n",
    );
    let (code, stdout, stderr) = run(score_args(dir.path(), &leads, &events).arg("--strict"));
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains(":3: `2026-13-30T00:00:00Z` is not a time in the format iso"), "{stderr}");
    assert!(stderr.contains("--strict"), "{stderr}");
}

#[test]
fn json_lines_inputs_give_the_same_scores_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let leads_csv = write(dir.path(), "leads.csv", LEADS);
    let events_csv = write(
        dir.path(),
        "events.csv",
        "event_id,lead_id,type,ts,url\n1,A1,page_view,2026-10-30T00:00:00Z,/pricing\n2,B2,page_view,2026-10-30T00:00:00Z,\"/a,b/pricing\"\n",
    );
    let leads_jsonl = write(
        dir.path(),
        "leads.jsonl",
        "{\"lead_id\": \"A1\", \"industry\": \"Technology\"}\n{\"id\": \"B2\", \"attributes\": {\"industry\": \"Retail\"}}\n\n{\"lead_id\": \"C3\", \"traits\": {\"industry\": \"Technology\"}}\n",
    );
    let events_jsonl = write(
        dir.path(),
        "events.ndjson",
        "{\"lead_id\": \"A1\", \"type\": \"page_view\", \"ts\": \"2026-10-30T00:00:00Z\", \"properties\": {\"url\": \"/pricing\"}}\n{\"userId\": \"B2\", \"event\": \"page_view\", \"timestamp\": \"2026-10-30T00:00:00Z\", \"url\": \"/a,b/pricing\"}\n",
    );
    let (code_csv, csv_out, _) = run(&mut score_args(dir.path(), &leads_csv, &events_csv));
    let (code_json, json_out, stderr) = run(&mut score_args(dir.path(), &leads_jsonl, &events_jsonl));
    assert_eq!((code_csv, code_json), (0, 0), "{stderr}");
    assert_eq!(csv_out, "lead_id,score,score_tier\nA1,25,hot\nB2,10,cold\nC3,15,cold\n");
    assert_eq!(json_out, csv_out);
}

#[test]
fn explain_writes_contributions() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(dir.path(), "events.csv", "lead_id,type,ts,url\nA1,page_view,2026-10-30T00:00:00Z,/pricing\n");
    let (code, stdout, _) = run(score_args(dir.path(), &leads, &events).arg("--explain"));
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    // A1 is in the top tier; B2 lacks 20 points, which one pricing view (10, once) does not give;
    // C3 lacks 5, which one pricing view gives. Nothing here changes with time: no fall.
    insta::assert_snapshot!(lines.join("\n"), @r#"
    {"lead_id":"A1","scores":{"score":{"name":"score","value":25.0,"tier":"hot","contributions":[{"kind":"rule","rule":"tech","points":15.0},{"kind":"rule","rule":"pricing","occurrences":1,"points":10.0}],"outlook":{"next_tier":null,"points_missing":null,"actions":[],"falls":null}}}}
    {"lead_id":"B2","scores":{"score":{"name":"score","value":0.0,"tier":"cold","contributions":[],"outlook":{"next_tier":"hot","points_missing":20.0,"actions":[],"falls":null}}}}
    {"lead_id":"C3","scores":{"score":{"name":"score","value":15.0,"tier":"cold","contributions":[{"kind":"rule","rule":"tech","points":15.0}],"outlook":{"next_tier":"hot","points_missing":5.0,"actions":[[{"kind":"rule","score":"score","name":"pricing","count":1}]],"falls":null}}}}
    "#);
}

#[test]
fn missing_columns_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", "lead_id,sector\n1,Technology\n");
    let events = write(dir.path(), "events.csv", "lead_id,type,ts\n1,page_view,2026-10-30T00:00:00Z\n");
    let (code, stdout, stderr) = run(&mut score_args(dir.path(), &leads, &events));
    assert_eq!(code, 0);
    assert_eq!(stdout, "lead_id,score,score_tier\n1,0,cold\n");
    assert!(stderr.contains("no column `industry`, which the model reads"), "{stderr}");
    assert!(stderr.contains("no column `url`, which the model's event filters read"), "{stderr}");
}

/// A CRM export read as the service's import reads it: `Record ID` is the id, `Title` is
/// `job_title`, cells are trimmed, and `--map` names a column as `?map.` does.
#[test]
fn crm_export_columns_are_read_as_the_service_import_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "crm.toml",
        r#"
[scores.fit]
[[scores.fit.rules]]
name = "director"
when = { field = "job_title", equals = "Director" }
points = 10
[[scores.fit.rules]]
name = "us"
when = { field = "country", one_of = ["US"] }
points = 5
[[scores.fit.rules]]
name = "segment a"
when = { field = "segment", equals = "A" }
points = 1
"#,
    );
    let leads = write(
        dir.path(),
        "contacts.csv",
        "Record ID,Title,Country/Region,Custom Score
 101 , Director , US,A
102,Analyst,GB,B
",
    );
    let score = |extra: &[&str]| {
        run(bin()
            .args(["score", "--as-of", "2026-11-01T00:00:00Z", "--model"])
            .arg(&model)
            .arg("--leads")
            .arg(&leads)
            .args(extra))
    };
    let (code, stdout, stderr) = score(&["--map", "Custom Score=segment"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "lead_id,fit,fit_tier\n101,16,\n102,0,\n");
    assert!(!stderr.contains("warning"), "{stderr}");
    // Without the mapping the column is `custom_score`, and the model's `segment` is missing.
    let (code, stdout, stderr) = score(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "lead_id,fit,fit_tier\n101,15,\n102,0,\n");
    assert!(stderr.contains("no column `segment`, which the model reads"), "{stderr}");
    let (code, _, stderr) = score(&["--map", "Nope=segment"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("contacts.csv: no column `Nope`, which is mapped to an attribute"), "{stderr}");
    // A model naming the header rather than the attribute is told which name to use.
    let title = write(
        dir.path(),
        "title.toml",
        "[scores.fit]\n[[scores.fit.rules]]\nname = \"t\"\nwhen = { field = \"Title\", present = true }\npoints = 1\n",
    );
    let (code, _, stderr) =
        run(bin().args(["score", "--as-of", "2026-11-01T00:00:00Z", "--model"]).arg(&title).arg("--leads").arg(&leads));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("no column `Title`, which the model reads: every lead is missing it (its column `Title` is read as `job_title`"),
        "{stderr}"
    );
}

/// A model counting page views of the last day before 2026-11-01T00:00:00Z, one point each, and
/// penalising leads created more than 30 days before with nothing since.
const RECENT_VIEWS: &str = r#"
[lead]
created_at = "created_at"
[scores.views]
[[scores.views.rules]]
name = "views of the last day"
event = "page_view"
window = "1d"
points = 1
[[scores.views.rules]]
name = "quiet"
inactive_for = "30d"
points = -10
"#;

/// `leadscore score` on RECENT_VIEWS with `extra` arguments: (exit code, output, standard error).
fn score_views(dir: &Path, leads: &str, events: &str, extra: &[&str]) -> (i32, String, String) {
    let model = write(dir, "views.toml", RECENT_VIEWS);
    let leads = write(dir, "leads.csv", leads);
    let events = write(dir, "events.csv", events);
    run(bin()
        .args(["score", "--as-of", "2026-11-01T00:00:00Z", "--model"])
        .arg(model)
        .arg("--leads")
        .arg(leads)
        .arg("--events")
        .arg(events)
        .args(extra))
}

#[test]
fn times_without_an_offset_are_read_in_the_time_zone_given() {
    let dir = tempfile::tempdir().unwrap();
    // 00:30 and midnight on 31 October are in the last day in UTC, not in Paris (UTC+1 then):
    // there they are 23:30 and 23:00 on the 30th.
    let events = "lead_id,type,ts\n\
                  A1,page_view,2026-10-31 00:30:00\n\
                  A1,page_view,2026-10-31\n\
                  A1,page_view,2026-10-31T12:00:00Z\n";
    let leads = "lead_id,created_at\nA1,2026-10-01\n";
    let (code, stdout, stderr) = score_views(dir.path(), leads, events, &[]);
    assert_eq!((code, stdout.as_str()), (0, "lead_id,views,views_tier\nA1,3,\n"), "{stderr}");
    let (code, stdout, stderr) = score_views(dir.path(), leads, events, &["--time-zone", "Europe/Paris"]);
    assert_eq!((code, stdout.as_str()), (0, "lead_id,views,views_tier\nA1,1,\n"), "{stderr}");
    let (code, stdout, stderr) = score_views(dir.path(), leads, events, &["--time-zone=-01:00"]);
    assert_eq!((code, stdout.as_str()), (0, "lead_id,views,views_tier\nA1,3,\n"), "{stderr}");
}

#[test]
fn day_first_month_first_and_patterns_are_read_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let leads = "lead_id,created_at\nA1,\nB2,\n";
    for (format, a1, b2) in [
        ("dmy", "31/10/2026 12:00", "30.10.2026 12:00"),
        ("mdy", "10/31/2026 12:00 PM", "10/30/2026 12:00 PM"),
        ("%d %m %Y %Hh%M", "31 10 2026 12h00", "30 10 2026 12h00"),
    ] {
        let events =
            format!("lead_id,type,ts\nA1,page_view,{a1}\nB2,page_view,{b2}\nB2,page_view,2026-10-31T12:00:00Z\n");
        let (code, stdout, stderr) = score_views(dir.path(), leads, &events, &["--time-format", format]);
        let expected = if format.starts_with('%') {
            // A pattern is the only form read: the RFC 3339 time is a bad row.
            assert!(stderr.contains("`2026-10-31T12:00:00Z` is not a time in the format `%d %m %Y %Hh%M`"), "{stderr}");
            (1, "lead_id,views,views_tier\nA1,1,\nB2,0,\n")
        } else {
            (0, "lead_id,views,views_tier\nA1,1,\nB2,1,\n")
        };
        assert_eq!((code, stdout.as_str()), expected, "{format}: {stderr}");
    }
    // Without the format, a date with slashes is a bad row that says what to do.
    let events = "lead_id,type,ts\nA1,page_view,31/10/2026 12:00\n";
    let (code, _, stderr) = score_views(dir.path(), leads, events, &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("events.csv:2: `31/10/2026 12:00` is not a time in the format iso: is the day or the month first? Say so with the time format dmy or mdy"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_time_format_or_zone_is_an_error_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let leads = "lead_id\nA1\n";
    let events = "lead_id,type,ts\n";
    for (option, value, reason) in [
        ("--time-format", "european", "`european` is not a time format: use iso (the default), dmy"),
        ("--time-format", "%H:%M", "it does not give a day"),
        ("--time-zone", "Mars/Olympus", "`Mars/Olympus` is not a time zone"),
    ] {
        let (code, stdout, stderr) = score_views(dir.path(), leads, events, &[option, value]);
        assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
        assert!(stderr.contains(&format!("invalid value '{value}' for '{option} <")), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
    }
}

#[test]
fn a_created_at_in_a_crm_format_counts_and_one_that_is_no_time_is_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    // Created ten days before the as-of time: not quiet; 2026-01-10: quiet for months.
    let leads = "Record ID,Create Date\nA1,22/10/2026 09:00\nB2,10/01/2026\nC3,last spring\nD4,\n";
    let (code, stdout, stderr) = score_views(dir.path(), leads, "lead_id,type,ts\n", &["--time-format", "dmy"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "lead_id,views,views_tier\nA1,0,\nB2,-10,\nD4,-10,\n");
    assert!(stderr.contains("leads.csv:4: `created_at`: `last spring` is not a time in the format dmy"), "{stderr}");
}

#[test]
fn semicolon_separated_files_are_read_as_comma_separated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let leads = "Record ID;Company;created_at\nA1;\"Acme; Inc.\";2026-10-01\nB2;Beta;2026-10-01\n";
    let events = "lead_id;type;ts;url\r\nA1;page_view;2026-10-31 12:00:00;/pricing\r\nB2;page_view;2026-10-30 12:00:00;\"/a;b\"\r\n";
    let (code, stdout, stderr) = score_views(dir.path(), leads, events, &[]);
    assert_eq!((code, stdout.as_str()), (0, "lead_id,views,views_tier\nA1,1,\nB2,0,\n"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn unusable_files_are_fatal_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.txt", LEADS);
    let events = write(dir.path(), "events.csv", "lead,when\n");
    let (code, _, stderr) = run(&mut score_args(dir.path(), &leads, &events));
    assert_eq!(code, 2);
    assert!(stderr.contains("leads.txt: unknown file type"), "{stderr}");
    let leads = write(dir.path(), "leads.csv", LEADS);
    let (code, _, stderr) = run(&mut score_args(dir.path(), &leads, &events));
    assert_eq!(code, 2);
    assert!(stderr.contains("events.csv: no event type column"), "{stderr}");
    let (code, _, stderr) = run(&mut score_args(dir.path(), &leads, &dir.path().join("absent.csv")));
    assert_eq!(code, 2);
    assert!(stderr.contains("absent.csv"), "{stderr}");
}

#[test]
fn as_of_accepts_any_offset_and_rejects_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events =
        write(dir.path(), "events.csv", "lead_id,type,ts,url\nA1,page_view,2026-10-31T20:00:00-04:00,/pricing\n");
    let mut command = score_args(dir.path(), &leads, &events);
    let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
    let mut tokyo = bin();
    tokyo.args(
        args.iter().map(|a| if a == "2026-11-01T00:00:00Z" { "2026-11-01T09:00:00+09:00".into() } else { a.clone() }),
    );
    let (_, at_utc, _) = run(&mut command);
    let (_, at_tokyo, _) = run(&mut tokyo);
    assert_eq!(at_utc, at_tokyo);
    assert!(at_utc.contains("A1,25,hot"), "{at_utc}");
    let (code, _, stderr) = run(bin().args(["score", "--model", "m.toml", "--leads", "l.csv", "--as-of", "tomorrow"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("is not an RFC 3339 date-time"), "{stderr}");
}

#[test]
fn check_reports_every_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "broken.toml",
        "[scores.s]\ntiers = [{ label = \"a\", min = 0, max = 10 }, { label = \"b\", min = 5 }]\n[[scores.s.rules]]\nname = \"r\"\nwhen = { field = \"title\", regex = \"[\" }\npoints = 1\n",
    );
    let (code, stdout, _) = run(bin().arg("check").arg(&model));
    assert_eq!(code, 1);
    let stdout = stdout.replace(&model.display().to_string(), "broken.toml");
    insta::assert_snapshot!(stdout, @r"
    broken.toml:2:46: error: tiers `a` (up to 10) and `b` (from 5) overlap
    broken.toml:5:35: error: `regex` is not a valid regular expression: unclosed character class
    broken.toml: 2 errors
    ");
}

#[test]
fn check_reports_ranges_and_unreachable_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "model.toml",
        r#"
[scores.fit]
tiers = [{ label = "D" }, { label = "C", min = 10 }, { label = "B", min = 20 }, { label = "A", min = 40 }]
[[scores.fit.rules]]
name = "title"
when = { field = "title", contains = "vp" }
points = 20
[[scores.fit.rules]]
name = "size"
when = { field = "employees", min = 50 }
points = 10
[scores.engagement]
max = 30
[[scores.engagement.rules]]
name = "views"
event = "page_view"
points = 1
[scores.total]
from = { fit = 1, engagement = 0.5 }
"#,
    );
    let (code, stdout, _) = run(bin().arg("check").arg(&model));
    assert_eq!(code, 0);
    let stdout = stdout.replace(&model.display().to_string(), "model.toml");
    insta::assert_snapshot!(stdout, @r"
    model.toml: model `model` is valid: 3 scores, 3 rules

    score `fit`: lowest 0, highest 30
      - D: below 10
      - C: 10 to below 20
      - B: 20 to below 40
      - A: 40 and up  UNREACHABLE: no lead can reach it: the score ranges from 0 to 30

    score `engagement`: lowest 0, highest 30

    score `total`: lowest 0, highest 45
    ");
}

#[test]
fn odd_encodings_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A Latin-1 byte in a column the model never reads; CRLF line ends; byte-order marks.
    let leads = dir.path().join("leads.csv");
    std::fs::write(&leads, b"\xef\xbb\xbflead_id,industry,notes\r\nA1,Technology,caf\xe9\r\nB2,Retail,\r\n").unwrap();
    let events = write(
        dir.path(),
        "events.csv",
        "lead_id,type,ts,url\r\nA1,page_view,2026-10-30T00:00:00Z,/pricing\r\nA1,page_view,never,/\r\n",
    );
    let (code, stdout, stderr) = run(&mut score_args(dir.path(), &leads, &events));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "lead_id,score,score_tier\nA1,25,hot\nB2,0,cold\n");
    assert!(stderr.contains("events.csv:3: `never` is not a time in the format iso"), "{stderr}");
    let leads_jsonl = write(dir.path(), "leads.jsonl", "\u{feff}{\"lead_id\": \"A1\", \"industry\": \"Technology\"}\n");
    let events_jsonl = write(
        dir.path(),
        "events.jsonl",
        "\u{feff}{\"lead_id\": \"A1\", \"type\": \"page_view\", \"ts\": \"2026-10-30T00:00:00Z\", \"url\": \"/pricing\"}\n",
    );
    let (code, stdout, stderr) = run(&mut score_args(dir.path(), &leads_jsonl, &events_jsonl));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "lead_id,score,score_tier\nA1,25,hot\n");
}

#[test]
fn the_output_never_replaces_an_input_nor_is_left_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let leads = write(dir.path(), "leads.csv", LEADS);
    let events = write(dir.path(), "events.csv", "lead_id,type,ts,url\nA1,page_view,2026-10-30T00:00:00Z,/pricing\n");
    let (code, _, stderr) = run(score_args(dir.path(), &leads, &events).arg("--out").arg(&leads));
    assert_eq!(code, 2);
    assert!(stderr.contains("is one of the input files"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&leads).unwrap(), LEADS);

    let out = dir.path().join("scores.csv");
    let broken = write(dir.path(), "broken.csv", "lead,when\n");
    let (code, _, _) = run(score_args(dir.path(), &leads, &broken).arg("--out").arg(&out));
    assert_eq!(code, 2);
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4, "no partial file is left behind");
    let (code, _, _) = run(score_args(dir.path(), &leads, &events).arg("--out").arg(&out));
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "lead_id,score,score_tier\nA1,25,hot\nB2,0,cold\nC3,15,cold\n");
}

/// `MODEL` with one test that passes and one whose expectation is wrong.
const MODEL_WITH_TESTS: &str = r#"
[[tests]]
name = "tech lead on the pricing page"
as_of = "2026-03-01T00:00:00Z"
lead = { industry = "Technology" }
events = [
  { type = "page_view", at = "2026-02-01T00:00:00Z", properties = { url = "https://x.example/pricing" } },
  { type = "page_view", at = "2026-02-02T00:00:00Z", properties = { url = "https://x.example/pricing" } },
]
expect.score = { value = 25, tier = "hot" }

[[tests]]
name = "retail lead"
as_of = "2026-03-01T00:00:00Z"
lead = { industry = "Retail" }
events = [{ type = "page_view", at = "2026-02-01T00:00:00Z", properties = { url = "/pricing" } }]
expect.score = { value = 15, tier = "cold" }
"#;

#[test]
fn test_runs_a_models_tests_and_shows_where_the_points_of_a_failure_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &format!("{MODEL}{MODEL_WITH_TESTS}"));
    let (code, stdout, _) = run(bin().arg("test").arg(&model));
    assert_eq!(code, 1);
    let stdout = stdout.replace(&model.display().to_string(), "m.toml");
    insta::assert_snapshot!(stdout, @r"
    test tech lead on the pricing page ... ok
    test retail lead ... FAILED
      score: expected 15 (tier cold), got 10 (tier cold)
               +10  rule `pricing`
    m.toml: 2 tests, 1 failed
    ");

    let passing =
        write(dir.path(), "ok.toml", &format!("{MODEL}{}", MODEL_WITH_TESTS.replace("value = 15", "value = 10")));
    let (code, stdout, _) = run(bin().arg("test").arg(&passing));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.ends_with(": 2 tests, 0 failed\n"), "{stdout}");

    let broken = write(
        dir.path(),
        "broken.toml",
        &format!("{MODEL}{}", MODEL_WITH_TESTS.replace("tier = \"cold\"", "tier = \"warm\"")),
    );
    let (code, stdout, _) = run(bin().arg("test").arg(&broken));
    assert_eq!(code, 2);
    assert!(stdout.contains("has no tier `warm`"), "{stdout}");
}

#[test]
fn check_runs_the_models_tests_and_reports_failures_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "m.toml", &format!("{MODEL}{MODEL_WITH_TESTS}"));
    let (code, stdout, _) = run(bin().arg("check").arg(&model));
    assert_eq!(code, 1);
    let stdout = stdout.replace(&model.display().to_string(), "m.toml");
    assert!(stdout.contains("2 tests, 1 failed\nm.toml:26:8: error: test `retail lead` fails: score: expected 15 (tier cold), got 10 (tier cold)\n"), "{stdout}");
}

#[test]
fn explain_says_why_scores_moved_between_two_instants_and_two_versions() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "model.toml", MODEL);
    let leads_before = write(dir.path(), "before.csv", "lead_id,industry\nA1,Technology\nB2,Retail\n");
    let leads = write(dir.path(), "leads.csv", "lead_id,industry\nA1,Technology\nB2,Technology\n");
    let events = write(
        dir.path(),
        "events.csv",
        "lead_id,type,ts,url\nA1,page_view,2026-10-15T00:00:00Z,/pricing\nA1,page_view,2026-10-20T00:00:00Z,/pricing\n",
    );
    let (code, stdout, stderr) = run(bin()
        .args(["explain", "--from", "2026-10-01T00:00:00Z", "--to", "2026-11-01T00:00:00Z", "--model"])
        .arg(&model)
        .arg("--leads")
        .arg(&leads)
        .arg("--leads-before")
        .arg(&leads_before)
        .arg("--events")
        .arg(&events));
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout, @r"
    lead A1: 2026-10-01T00:00:00Z -> 2026-11-01T00:00:00Z
      score  15 (cold) -> 25 (hot)  (+10)
                 +10  events (+1)        score: pricing
    lead B2: 2026-10-01T00:00:00Z -> 2026-11-01T00:00:00Z
      score  0 (cold) -> 15 (cold)  (+15)
                 +15  attributes         score: tech
    ");

    // The same as JSON: the terms add up to each change.
    let (code, stdout, _) = run(bin()
        .args(["explain", "--json", "--lead", "A1", "--from", "2026-10-01T00:00:00Z", "--to", "2026-11-01T00:00:00Z"])
        .arg("--model")
        .arg(&model)
        .arg("--leads")
        .arg(&leads)
        .arg("--events")
        .arg(&events));
    assert_eq!(code, 0);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["lead_id"], "A1");
    let change = &line["changes"][0];
    assert_eq!((change["before"].as_f64(), change["after"].as_f64()), (Some(15.0), Some(25.0)));
    assert_eq!(change["terms"][0]["cause"], "events");
    assert_eq!(change["terms"][0]["occurrences"], 1);

    // A new version that doubles the pricing page's points.
    let doubled = write(dir.path(), "v2.toml", &MODEL.replace("points = 10", "points = 20"));
    let (code, stdout, stderr) = run(bin()
        .args(["explain", "--to", "2026-11-01T00:00:00Z", "--lead", "A1", "--model"])
        .arg(&doubled)
        .arg("--model-before")
        .arg(&model)
        .arg("--leads")
        .arg(&leads)
        .arg("--events")
        .arg(&events));
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout, @r"
    lead A1: model versions, as of 2026-11-01T00:00:00Z
      score  25 (hot) -> 35 (hot)  (+10)
                 +10  model              score: pricing
    ");

    // Neither --from nor --model-before: what to compare is unknown.
    let (code, _, stderr) =
        run(bin().args(["explain", "--to", "2026-11-01T00:00:00Z", "--model"]).arg(&model).arg("--leads").arg(&leads));
    assert_eq!(code, 2);
    assert!(stderr.contains("give --from"), "{stderr}");
}

/// A `[lists.NAME]` table's `file` is read beside the model file by `test` and `score`; a line
/// that is not an entry, or a missing file, is an error naming it; `serve --model` refuses such a
/// model, whose stored text the service could not compile.
#[test]
fn list_files_are_read_beside_the_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    std::fs::write(dir.path().join("lists/throwaway.txt"), "# ours\nburner.example\n").unwrap();
    let model = "[lists.disposable_email]\nfile = \"lists/throwaway.txt\"\n\
                 [scores.s]\n[[scores.s.rules]]\nname = \"throwaway\"\n\
                 when = { field = \"email\", disposable_email = true }\npoints = -5\n\
                 [[tests]]\nname = \"listed\"\nas_of = \"2026-11-01T00:00:00Z\"\nlead = { email = \"a@x.burner.example\" }\n\
                 expect.s = { value = -5 }\n\
                 [[tests]]\nname = \"the built-in list is replaced\"\nas_of = \"2026-11-01T00:00:00Z\"\n\
                 lead = { email = \"a@mailinator.com\" }\nexpect.s = { value = 0 }\n";
    let model_path = dir.path().join("model.toml");
    std::fs::write(&model_path, model).unwrap();
    let tested = bin().arg("test").arg(&model_path).current_dir("/").output().unwrap();
    assert!(tested.status.success(), "{}", String::from_utf8_lossy(&tested.stderr));
    assert!(String::from_utf8_lossy(&tested.stdout).contains("2 tests, 0 failed"));

    std::fs::write(dir.path().join("lists/throwaway.txt"), "burner.example\nbad entry\n").unwrap();
    let bad = bin().arg("check").arg(&model_path).output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&bad.stdout), String::from_utf8_lossy(&bad.stderr));
    assert_eq!(bad.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("model.toml:2:8: error: lists/throwaway.txt:2: `bad entry` contains a space"),
        "{printed}"
    );

    std::fs::remove_file(dir.path().join("lists/throwaway.txt")).unwrap();
    let missing = bin().arg("check").arg(&model_path).output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&missing.stdout), String::from_utf8_lossy(&missing.stderr));
    assert_eq!(missing.status.code(), Some(1), "{printed}");
    assert!(printed.contains("cannot read the list file `lists/throwaway.txt`"), "{printed}");

    std::fs::write(dir.path().join("lists/throwaway.txt"), "burner.example\n").unwrap();
    let served = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--workspace", "w", "--data"])
        .arg(dir.path().join("data"))
        .arg("--model")
        .arg(&model_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&served.stderr);
    assert!(!served.status.success());
    assert!(stderr.contains("the service cannot read list files: put the entries in the model"), "{stderr}");
}

/// docs/model-format.md's outlook example: its model, leads and events files, scored with
/// `--explain`, give the outlooks the document shows.
#[test]
fn the_outlook_example_of_the_model_format_reference_is_what_score_writes() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/model-format.md")).unwrap();
    let start = doc.find("\n## Outlook: what would move a score next\n").expect("the outlook section");
    let section = &doc[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    // The fenced blocks of the section, by their info string, in order.
    let mut blocks: Vec<(&str, String)> = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```")
            && !info.is_empty()
        {
            let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            blocks.push((info, body.join("\n") + "\n"));
        }
    }
    let infos: Vec<&str> = blocks.iter().map(|(info, _)| *info).collect();
    assert_eq!(infos, ["toml", "csv", "csv", "json"], "the section's example blocks");
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "model.toml", &blocks[0].1);
    let leads = write(dir.path(), "leads.csv", &blocks[1].1);
    let events = write(dir.path(), "events.csv", &blocks[2].1);
    let (code, stdout, stderr) = run(bin()
        .args(["score", "--explain", "--as-of", "2026-11-01T00:00:00Z", "--model"])
        .arg(&model)
        .arg("--leads")
        .arg(&leads)
        .arg("--events")
        .arg(&events));
    assert_eq!(code, 0, "{stderr}");
    let written: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| {
            let lead: serde_json::Value = serde_json::from_str(line).unwrap();
            serde_json::json!({"lead_id": lead["lead_id"], "outlook": lead["scores"]["engagement"]["outlook"]})
        })
        .collect();
    let documented: Vec<serde_json::Value> =
        blocks[3].1.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(
        written, documented,
        "docs/model-format.md's outlooks (right) are not what leadscore score writes (left)"
    );
}

/// `leadscore sql`: a query on standard output, or a refusal naming the construct and its line
/// (exit status 2), never a query that would score differently.
#[test]
fn sql_prints_one_query_or_refuses_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "model.toml", MODEL);
    let (code, out, err) = run(bin()
        .args(["sql", "--dialect", "postgres", "--as-of", "2026-11-01T00:00:00Z", "--leads", "crm.leads"])
        .arg(&model));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("WITH\n") && out.contains("FROM \"crm\".\"leads\""), "{out}");
    assert!(
        out.contains("AS \"score\", ") && out.contains("AS \"score_tier\""),
        "the output columns of `leadscore score`"
    );
    let (code, explained, err) =
        run(bin().args(["sql", "--dialect", "duckdb", "--as-of", "2026-11-01T00:00:00Z", "--explain"]).arg(&model));
    assert_eq!(code, 0, "{err}");
    assert!(explained.contains("AS \"contributions\" FROM"), "--explain adds the contributions: {explained}");

    let refused = MODEL.replace(r#"equals = "Technology""#, "gibberish = false");
    let refused = write(dir.path(), "refused.toml", &refused);
    let (code, out, err) = run(bin().args(["sql", "--dialect", "duckdb", "--as-of-now"]).arg(&refused));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let line = refused.display().to_string();
    assert_eq!(err.trim(), format!("error: {line}: `gibberish` on line 6 is not compiled to SQL yet"));

    let (code, _, err) = run(bin().args(["sql", "--dialect", "mysql", "--as-of-now"]).arg(&model));
    assert_eq!(code, 2);
    assert!(
        err.contains("`mysql` is not a dialect: use one of duckdb, postgres, spark, trino, snowflake, bigquery"),
        "{err}"
    );
    let (code, _, err) = run(bin().args(["sql", "--dialect", "duckdb"]).arg(&model));
    assert_eq!(code, 2);
    assert!(err.contains("--as-of"), "the instant is required: {err}");
    let (code, _, err) = run(bin().args(["sql", "--dialect", "duckdb", "--as-of-now", "--leads", "a b"]).arg(&model));
    assert_eq!(code, 2);
    assert!(err.contains("`a b` is not a table name"), "{err}");
}

/// `leadscore dbt`: one macro with the query of every adapter, the relations placed by Jinja
/// in raw text, or a refusal (exit status 2) of a name Jinja cannot call.
#[test]
fn dbt_writes_one_macro_for_every_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(dir.path(), "model.toml", MODEL);
    let (code, out, err) =
        run(bin().args(["dbt", "--as-of", "2026-11-01T00:00:00Z", "--name", "fit_scores"]).arg(&model));
    assert_eq!(code, 0, "{err}");
    for adapter in ["duckdb", "postgres", "spark", "trino", "snowflake", "bigquery"] {
        assert!(out.contains(&format!("{{% macro {adapter}__fit_scores(leads, events, as_of) -%}}")), "{out}");
    }
    assert!(out.contains("adapter.dispatch('fit_scores', 'leadscore')"), "{out}");
    assert!(out.contains("FROM {% endraw %}{{ leads }}{% raw %}"), "the relation as dbt renders it: {out}");
    assert!(out.contains("{{ return(1793491200000) }}"), "the as-of instant given: {out}");

    let (code, out, _) = run(bin().args(["dbt", "--as-of-run-start"]).arg(&model));
    assert_eq!(code, 0);
    assert!(out.contains("run_started_at"), "{out}");

    let (code, out, err) = run(bin().args(["dbt", "--as-of-run-start", "--name", "fit-scores"]).arg(&model));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("`fit-scores` is not a macro name"), "{err}");
    let (code, _, err) = run(bin().args(["dbt"]).arg(&model));
    assert_eq!(code, 2);
    assert!(err.contains("--as-of"), "the instant is required: {err}");
}

/// A setting for PostgreSQL's connections or writers given to a service on a data directory is
/// refused with what it applies to, not ignored.
#[test]
fn database_connections_on_a_data_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (option, variable) in [
        ("--database-connections", "LEADSCORE_DATABASE_CONNECTIONS"),
        ("--database-writers", "LEADSCORE_DATABASE_WRITERS"),
    ] {
        let (code, _, stderr) = run(bin().args(["serve", "--listen", "127.0.0.1:0", option, "4", "--data"]).arg(&data));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&format!("{option} (or {variable}) applies to a PostgreSQL database")), "{stderr}");
        let (code, _, stderr) = run(bin().args(["serve", "--listen", "127.0.0.1:0", option, "0", "--data"]).arg(&data));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(option), "{stderr}");
    }
}
