//! The file readers meet arbitrary bytes: they must report, never panic, and never lose a lead.

use std::path::Path;

use leadscore_batch::{BatchOptions, OutputFormat, score_files};
use leadscore_core::{Timestamp, compile};
use proptest::prelude::*;

const MODEL: &str = r#"
[scores.s]
[[scores.s.rules]]
name = "title"
when = { field = "title", contains = "vp" }
points = 5
[[scores.s.rules]]
name = "views"
event = "page_view"
where = { field = "url", contains = "/pricing" }
points = 1
max_count = 3
"#;

fn run(dir: &Path, leads_name: &str, leads: &[u8], events_name: &str, events: &[u8]) -> Result<String, String> {
    let model = compile(MODEL).unwrap().model;
    let leads_path = dir.join(leads_name);
    let events_path = dir.join(events_name);
    std::fs::write(&leads_path, leads).unwrap();
    std::fs::write(&events_path, events).unwrap();
    let options = BatchOptions {
        leads: &leads_path,
        events: Some(&events_path),
        as_of: Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap(),
        output: OutputFormat::Csv,
        strict: false,
        read: Default::default(),
    };
    let mut out = Vec::new();
    match score_files(&model, &options, &mut out, &|_, _, _| {}) {
        Ok(_) => Ok(String::from_utf8(out).unwrap()),
        Err(e) => Err(e.to_string()),
    }
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1,page_view,2026-10-01T00:00:00Z,/pricing".to_string()),
        Just("2,page_view,2026-10-01T00:00:00+02:00,\"/pri\ncing\"".to_string()),
        Just(
            "{\"lead_id\": 1, \"type\": \"page_view\", \"ts\": \"2026-10-01T00:00:00Z\", \"url\": \"/pricing\"}"
                .to_string()
        ),
        Just("\"".to_string()),
        Just(",,,,,,".to_string()),
        Just("\u{feff}lead_id,type,ts,url".to_string()),
        "\\PC{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(leads in prop::collection::vec(any::<u8>(), 0..300), events in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let _ = run(dir.path(), "l.csv", &leads, "e.csv", &events);
        let _ = run(dir.path(), "l.jsonl", &leads, "e.jsonl", &events);
    }

    #[test]
    fn every_valid_lead_gets_a_row(lines in prop::collection::vec(line(), 0..20)) {
        let dir = tempfile::tempdir().unwrap();
        let leads = b"lead_id,title\n1,VP\n2,Engineer\n3,\n";
        let events = format!("lead_id,type,ts,url\n{}\n", lines.join("\n"));
        let out = run(dir.path(), "l.csv", leads, "e.csv", events.as_bytes()).unwrap();
        let ids: Vec<&str> = out.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
        prop_assert_eq!(ids, vec!["1", "2", "3"]);
        let jsonl = lines.join("\n");
        let out = run(dir.path(), "l.csv", leads, "e.jsonl", jsonl.as_bytes()).unwrap();
        prop_assert_eq!(out.lines().count(), 4);
    }
}
