//! One truth: the same leads and events give the same scores whether they are imported into the
//! service (`POST /api/import/leads`, `POST /api/import/events`, over real HTTP) or scored from
//! the files by `leadscore score`. Every example model's data is loaded both ways, and so are
//! CRM exports as they come (`tests/fixtures/crm`: stray spaces, CRM column names, leads without
//! a creation time, repeated rows; and a `;`-separated one with day-first times in Paris, read
//! with the same time options both ways), and a model with `precision` set on decaying scores
//! (`tests/fixtures/precision`), and one with segments, named conditions, conditions on other
//! scores and sequences (`tests/fixtures/segments`); each lead's scores, tiers, explanations
//! and outlooks are read from the service and compared with `leadscore score --explain` at the instant the
//! service evaluated them (its answer's `as_of`). Yes and no words in every supported language
//! and a window of months are compared the same way, through the CSV import and the JSON API,
//! and so are the e-mail lists (with a model's own) and the `gibberish` test on names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;

/// A model with its leads and events files, and how to read them: the import's query and the
/// same options for `leadscore score`.
struct DataSet {
    name: String,
    model: PathBuf,
    leads: PathBuf,
    events: PathBuf,
    query: &'static str,
    options: &'static [&'static str],
}

/// Every `examples/NAME.toml` with `examples/NAME/{leads,events}.csv`, and the CRM fixture.
fn data_sets() -> Vec<DataSet> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let examples = root.join("../../examples");
    let mut sets: Vec<DataSet> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|model| {
            let name = model.file_stem().unwrap().to_string_lossy().into_owned();
            let data = examples.join(&name);
            DataSet {
                leads: data.join("leads.csv"),
                events: data.join("events.csv"),
                model,
                name,
                query: "",
                options: &[],
            }
        })
        .collect();
    sets.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(sets.len() >= 5, "the examples were not found in {}", examples.display());
    let crm = root.join("tests/fixtures/crm");
    sets.push(DataSet {
        name: "crm".to_string(),
        model: crm.join("model.toml"),
        leads: crm.join("leads.csv"),
        events: crm.join("events.csv"),
        query: "",
        options: &[],
    });
    sets.push(DataSet {
        name: "crm-paris".to_string(),
        model: crm.join("model.toml"),
        leads: crm.join("paris/leads.csv"),
        events: crm.join("paris/events.csv"),
        query: "?time_format=dmy&time_zone=Europe/Paris",
        options: &["--time-format", "dmy", "--time-zone", "Europe/Paris"],
    });
    // Segments, named conditions, conditions on other scores and sequences.
    let segments = root.join("tests/fixtures/segments");
    sets.push(DataSet {
        name: "segments".to_string(),
        model: segments.join("model.toml"),
        leads: segments.join("leads.csv"),
        events: segments.join("events.csv"),
        query: "",
        options: &[],
    });
    let precision = root.join("tests/fixtures/precision");
    sets.push(DataSet {
        name: "precision".to_string(),
        model: precision.join("model.toml"),
        leads: precision.join("leads.csv"),
        events: precision.join("events.csv"),
        query: "",
        options: &[],
    });
    sets
}

/// `leadscore score --explain` at `as_of`: each lead's id and its scores, in file order.
fn batch_scores(set: &DataSet, as_of: &str) -> Vec<(String, serde_json::Value)> {
    let output = bin()
        .args(["score", "--explain", "--as-of", as_of, "--model"])
        .arg(&set.model)
        .arg("--leads")
        .arg(&set.leads)
        .arg("--events")
        .arg(&set.events)
        .args(set.options)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}: leadscore score failed:\n{stderr}", set.name);
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let mut lead: serde_json::Value = serde_json::from_str(line).unwrap();
            (lead["lead_id"].as_str().unwrap().to_string(), lead["scores"].take())
        })
        .collect()
}

/// Every lead's user id, read from `GET /api/leads` a few leads per page.
fn listed_leads(server: &Server, key: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for page in 0.. {
        let listed = server.get(&format!("/api/leads?limit=3&offset={}", page * 3), key);
        assert_eq!(listed.status, 200, "{}", listed.body);
        let leads = listed.json()["leads"].as_array().unwrap().clone();
        if leads.is_empty() {
            break;
        }
        ids.extend(leads.iter().map(|lead| lead["user_id"].as_str().unwrap().to_string()));
    }
    ids
}

#[test]
fn imported_leads_score_in_the_service_as_the_batch_command_scores_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let sets = data_sets();
    // One workspace per data set, in one service.
    let keys: Vec<(String, String)> = sets
        .iter()
        .map(|set| (create_key(dir.path(), &set.name, "admin"), create_key(dir.path(), &set.name, "read")))
        .collect();
    let server = Server::start(dir.path(), &[]);
    let mut compared = 0;
    let mut p1_compared = false;
    // Scores whose outlook (compared with the rest) names actions, and scores that fall.
    let (mut with_actions, mut with_falls) = (0, 0);
    for (set, (admin, read)) in sets.iter().zip(&keys) {
        let uploaded = server.post_text("/api/models", admin, &std::fs::read_to_string(&set.model).unwrap());
        assert_eq!(uploaded.status, 201, "{}: {}", set.name, uploaded.body);
        for (path, file) in [("/api/import/leads", &set.leads), ("/api/import/events", &set.events)] {
            let path = format!("{path}{}", set.query);
            let imported = server.post_text(&path, admin, &std::fs::read_to_string(file).unwrap());
            assert_eq!(imported.status, 200, "{}: {path}: {}", set.name, imported.body);
            assert_eq!(imported.json()["skipped"], 0, "{}: {path}: {}", set.name, imported.body);
        }
        let in_file: BTreeSet<String> =
            batch_scores(set, "2026-11-01T00:00:00Z").into_iter().map(|(id, _)| id).collect();
        assert_eq!(listed_leads(&server, read), in_file, "{}: the service holds the leads of the file", set.name);
        for id in &in_file {
            let lead = server.get(&format!("/api/leads/{id}"), read);
            assert_eq!(lead.status, 200, "{}: {id}: {}", set.name, lead.body);
            let lead = lead.json();
            let as_of = lead["as_of"].as_str().unwrap();
            let batch = batch_scores(set, as_of);
            let (_, expected) = batch.iter().find(|(batch_id, _)| batch_id == id).unwrap();
            assert_eq!(
                &lead["scores"], expected,
                "{}: lead {id} as of {as_of}: the service (left) and leadscore score (right) disagree",
                set.name
            );
            for score in lead["scores"].as_object().unwrap().values() {
                let outlook = &score["outlook"];
                assert!(outlook.is_object(), "{}: lead {id}: no outlook in {score}", set.name);
                with_actions += usize::from(!outlook["actions"].as_array().unwrap().is_empty());
                with_falls += usize::from(!outlook["falls"].is_null());
            }
            if set.name == "precision" {
                // Decayed points, written as the engine rounded them: whole points and tenths.
                let engagement = lead["scores"]["engagement"]["value"].as_f64().unwrap();
                let total = lead["scores"]["total"]["value"].as_f64().unwrap();
                assert_eq!(engagement, engagement.round(), "{id}: {}", lead["scores"]);
                assert_eq!(total, (total * 10.0).round() / 10.0, "{id}: {}", lead["scores"]);
                if id == "p1" {
                    // 15 + 20 + 15 points on 2026-10-31, decayed to just under 50 since: rounded
                    // to whole points, they are 50 and mql until half a point has decayed.
                    let evaluated = leadscore_core::Timestamp::parse_rfc3339(as_of).unwrap();
                    let events_at = leadscore_core::Timestamp::parse_rfc3339("2026-10-31T00:00:00Z").unwrap();
                    let days = (evaluated.0 - events_at.0) as f64 / 86_400_000.0;
                    let exact = 50.0 * 0.5f64.powf(days / 3650.0);
                    assert!(exact < 50.0, "{exact}");
                    assert_eq!(engagement, exact.round(), "{}", lead["scores"]);
                    let tier = if exact >= 49.5 { "mql" } else { "warm" };
                    assert_eq!(lead["scores"]["engagement"]["tier"], tier, "{}", lead["scores"]);
                    p1_compared = true;
                }
            }
            compared += 1;
        }
    }
    assert!(p1_compared, "the lead whose points add up to a tier's min was compared");
    assert!(compared >= 44, "only {compared} leads compared");
    assert!(with_actions >= 10 && with_falls >= 5, "outlooks: {with_actions} with actions, {with_falls} that fall");
}

/// What each yes or no word of a lead's `budget_confirmed` is worth to the model of
/// [`months_and_yes_no_words_score_the_same_both_ways`]: 15 points for a yes, -5 for a no.
const BUDGET_WORDS: &[(&str, f64)] = &[
    ("yes", 15.0),
    ("Да", 15.0),
    ("tak", 15.0),
    ("Ja", 15.0),
    ("OUI", 15.0),
    ("Sí", 15.0),
    ("si", 15.0),
    ("是", 15.0),
    ("はい", 15.0),
    ("no", -5.0),
    ("не", -5.0),
    ("Nie", -5.0),
    ("NEIN", -5.0),
    ("non", -5.0),
    ("否", -5.0),
    ("いいえ", -5.0),
    ("maybe", 0.0),
];

/// Yes and no in every language the model format reads, and a window of months, in the service
/// (the CSV import, and `/v1/identify` for the JSON API) and in `leadscore score` (a CSV and a
/// JSON Lines leads file): each lead scores the same both ways, and as the words and the window
/// say. The events are dated from the present, as the service evaluates at the present: a
/// webinar 91 days ago is inside `3mo` (91.31 days) and would be outside 90 days, one 92 days
/// ago is outside.
#[test]
fn months_and_yes_no_words_score_the_same_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let model = "[scores.fit]\n\
                 [[scores.fit.rules]]\nname = \"budget confirmed\"\nwhen = { field = \"budget_confirmed\", equals = true }\npoints = 15\n\
                 [[scores.fit.rules]]\nname = \"no budget\"\nwhen = { field = \"budget_confirmed\", equals = false }\npoints = -5\n\
                 [scores.activity]\n\
                 [[scores.activity.rules]]\nname = \"webinar this quarter\"\nevent = \"webinar_attended\"\npoints = 20\nwindow = \"3mo\"\n\
                 [[scores.activity.rules]]\nname = \"downloads this year\"\nevent = \"download\"\npoints = 1\nwindow = \"1 year\"\n";
    let model_path = dir.path().join("model.toml");
    std::fs::write(&model_path, model).unwrap();

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let days_ago = |days: i64| leadscore_core::Timestamp(now - days * 86_400_000).to_string();
    let mut leads = String::from("lead_id,budget_confirmed\n");
    let mut events = String::from("lead_id,type,ts\n");
    for (i, (word, _)) in BUDGET_WORDS.iter().enumerate() {
        leads.push_str(&format!("csv-{i},{word}\n"));
        // Every other lead attended the webinar 91 days ago, the others 92 days ago; each
        // downloaded once 360 days ago (inside a year) and once 370 days ago (outside).
        let webinar = if i % 2 == 0 { 91 } else { 92 };
        events.push_str(&format!("csv-{i},webinar_attended,{}\n", days_ago(webinar)));
        events.push_str(&format!("csv-{i},download,{}\ncsv-{i},download,{}\n", days_ago(360), days_ago(370)));
    }
    let jsonl: String = BUDGET_WORDS
        .iter()
        .enumerate()
        .map(|(i, (word, _))| {
            format!("{}\n", serde_json::json!({"lead_id": format!("json-{i}"), "budget_confirmed": word}))
        })
        .collect();
    for (name, text) in [("leads.csv", &leads), ("events.csv", &events), ("leads.jsonl", &jsonl)] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let no_events = dir.path().join("no-events.csv");
    std::fs::write(&no_events, "lead_id,type,ts\n").unwrap();

    let data = dir.path().join("data");
    let (admin, ingest, read) = keys_of_every_scope(&data, "languages");
    let server = Server::start(&data, &[]);
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    for (path, text) in [("/api/import/leads", &leads), ("/api/import/events", &events)] {
        let imported = server.post_text(path, &admin, text);
        assert_eq!(imported.status, 200, "{path}: {}", imported.body);
        assert_eq!(imported.json()["skipped"], 0, "{path}: {}", imported.body);
    }
    for (i, (word, _)) in BUDGET_WORDS.iter().enumerate() {
        let identify = serde_json::json!({"userId": format!("json-{i}"), "messageId": format!("identify-{i}"), "traits": {"budget_confirmed": word}});
        let answer = server.post_json("/v1/identify", &ingest, &identify);
        assert_eq!(answer.status, 200, "{word}: {}", answer.body);
    }

    let sets = [
        DataSet {
            name: "languages-csv".to_string(),
            model: model_path.clone(),
            leads: dir.path().join("leads.csv"),
            events: dir.path().join("events.csv"),
            query: "",
            options: &[],
        },
        DataSet {
            name: "languages-jsonl".to_string(),
            model: model_path.clone(),
            leads: dir.path().join("leads.jsonl"),
            events: no_events,
            query: "",
            options: &[],
        },
    ];
    for (set, prefix) in sets.iter().zip(["csv", "json"]) {
        for (i, (word, fit)) in BUDGET_WORDS.iter().enumerate() {
            let id = format!("{prefix}-{i}");
            let lead = server.get(&format!("/api/leads/{id}"), &read);
            assert_eq!(lead.status, 200, "{id}: {}", lead.body);
            let lead = lead.json();
            let as_of = lead["as_of"].as_str().unwrap();
            let batch = batch_scores(set, as_of);
            let (_, expected) = batch.iter().find(|(batch_id, _)| *batch_id == id).unwrap();
            assert_eq!(
                &lead["scores"], expected,
                "{id} ({word:?}) as of {as_of}: the service (left) and leadscore score (right) disagree"
            );
            assert_eq!(lead["scores"]["fit"]["value"].as_f64(), Some(*fit), "{id}: {word:?}");
            let activity = match prefix {
                "json" => 0.0,
                _ if i % 2 == 0 => 21.0,
                _ => 1.0,
            };
            assert_eq!(lead["scores"]["activity"]["value"].as_f64(), Some(activity), "{id}: {word:?}");
        }
    }
}

/// `leadscore explain --json` for one lead of a data set, as a JSON value.
fn explained_changes(args: &[&str], set: &DataSet, lead: &str) -> serde_json::Value {
    let output = bin()
        .arg("explain")
        .args(args)
        .arg("--json")
        .args(["--lead", lead, "--leads"])
        .arg(&set.leads)
        .arg("--events")
        .arg(&set.events)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn why_scores_moved_is_told_the_same_by_the_service_and_by_leadscore_explain() {
    let dir = tempfile::tempdir().unwrap();
    let set = data_sets().into_iter().find(|s| s.name == "segments").unwrap();
    let (admin, read) = (create_key(dir.path(), "acme", "admin"), create_key(dir.path(), "acme", "read"));
    let server = Server::start(dir.path(), &[]);
    let source = std::fs::read_to_string(&set.model).unwrap();
    assert_eq!(server.post_text("/api/models", &admin, &source).status, 201);
    for (path, file) in [("/api/import/leads", &set.leads), ("/api/import/events", &set.events)] {
        let imported = server.post_text(path, &admin, &std::fs::read_to_string(file).unwrap());
        assert_eq!(imported.status, 200, "{}", imported.body);
    }
    let (from, to) = ("2026-10-05T00:00:00Z", "2026-11-01T00:00:00Z");
    let mut moved = 0;
    for lead in ["s1", "s2", "s3", "s4", "s5", "s6"] {
        let answer = server.get(&format!("/api/leads/{lead}/changes?from={from}&to={to}"), &read);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let service = answer.json();
        let batch =
            explained_changes(&["--model", set.model.to_str().unwrap(), "--from", from, "--to", to], &set, lead);
        assert_eq!(service["changes"], batch["changes"], "{lead}: the service (left) and leadscore explain (right)");
        for change in service["changes"].as_array().unwrap() {
            let sum: f64 = change["terms"].as_array().unwrap().iter().map(|t| t["points"].as_f64().unwrap()).sum();
            assert!((sum - change["change"].as_f64().unwrap()).abs() < 1e-5, "{lead}: {change}");
            moved += usize::from(change["change"].as_f64().unwrap() != 0.0);
        }
    }
    assert!(moved >= 6, "only {moved} scores moved");

    // A second version that doubles the sequence's points: the versions compared at one instant.
    let doubled = source
        .replace("points = 10\nmax_count = 2", "points = 20\nmax_count = 2")
        .replace("expect.engagement = { value = 12.5,", "expect.engagement = { value = 22.5,")
        .replace("expect.total = { value = 42.5,", "expect.total = { value = 52.5,");
    assert_ne!(doubled, source);
    assert_eq!(server.post_text("/api/models", &admin, &doubled).status, 201);
    let v2 = dir.path().join("v2.toml");
    std::fs::write(&v2, &doubled).unwrap();
    let service = server.get(&format!("/api/leads/s1/changes?versions=1,2&to={to}"), &read).json();
    let batch = explained_changes(
        &["--model", v2.to_str().unwrap(), "--model-before", set.model.to_str().unwrap(), "--to", to],
        &set,
        "s1",
    );
    assert_eq!(service["changes"], batch["changes"]);
    assert_eq!(service["model_versions"], serde_json::json!([1, 2]));
    let engagement = service["changes"].as_array().unwrap().iter().find(|c| c["score"] == "engagement").unwrap();
    assert_eq!(engagement["change"], 10.0, "{engagement}");
    assert_eq!(engagement["terms"][0]["cause"], "model");
    assert_eq!(engagement["terms"][0]["rule"], "pricing after webinar");

    // Mistakes are the client's, and say what to write.
    for (query, wanted) in [
        ("", "give `from`"),
        ("?from=yesterday", "RFC 3339"),
        ("?versions=1", "two version numbers"),
        ("?from=2026-10-01T00:00:00Z&versions=1,2", "not both"),
        ("?form=2026-10-01T00:00:00Z", "form"),
    ] {
        let answer = server.get(&format!("/api/leads/s1/changes{query}"), &read);
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert_eq!(answer.json()["code"], "invalid_query");
        assert!(answer.body.contains(wanted), "{query}: {}", answer.body);
    }
    assert_eq!(server.get("/api/leads/s1/changes?versions=1,9", &read).status, 404);
    assert_eq!(server.get("/api/leads/nobody/changes?from=2026-10-01T00:00:00Z", &read).status, 404);
}

/// Leads, their addresses and names, and the `hygiene` score each must get from
/// `JUNK_MODEL`.
const JUNK_LEADS: &[(&str, &str, f64)] = &[
    ("jo@mailinator.com", "Jo", -50.0),
    ("jo@eu.mailinator.com", "Jo", -50.0),
    ("Info+web@acme.com", "Claire", -10.0),
    ("vertrieb@acme.de", "Jonas", -10.0),
    ("office@acme.at", "Lena", 0.0),
    ("maria@gmail.com", "María", -5.0),
    ("maria@gmx.de", "María", 0.0),
    ("x@acme.io", "asdfgh", -30.0),
    ("x@acme.io", "Mr Test Test", -30.0),
    ("y@acme.io", "Ó Súilleabháin", 0.0),
    ("y@acme.io", "Llwyd", 0.0),
    ("y@acme.io", "Ng", 0.0),
    ("y@acme.io", "王秀英", 0.0),
    ("y@acme.io", "Дмитрий", 0.0),
    ("y@acme.io", "Nguyễn", 0.0),
    ("qq@yopmail.com", "qwqwqw", -80.0),
];

/// Every e-mail list condition, a model's own lists (entries and changes, which the service
/// compiles from the stored text as `leadscore score` does from the file) and `gibberish`.
const JUNK_MODEL: &str = r#"
[lists.free_email]
entries = ["gmail.com", "outlook.com"]

[lists.role_email]
add = ["vertrieb"]
remove = ["office"]

[scores.hygiene]

[[scores.hygiene.rules]]
name = "throwaway"
when = { field = "email", disposable_email = true }
points = -50

[[scores.hygiene.rules]]
name = "role inbox"
when = { field = "email", role_email = true }
points = -10

[[scores.hygiene.rules]]
name = "free mail"
when = { field = "email", free_email = true }
points = -5

[[scores.hygiene.rules]]
name = "mashed name"
when = { field = "name", gibberish = true }
points = -30
"#;

/// The e-mail lists and the gibberish test give each lead the same score in the service (the
/// CSV import) and in `leadscore score`, and the score the lists and names say.
#[test]
fn email_lists_and_gibberish_names_score_the_same_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("model.toml");
    std::fs::write(&model_path, JUNK_MODEL).unwrap();
    let mut leads = String::from("lead_id,email,name\n");
    for (i, (email, name, _)) in JUNK_LEADS.iter().enumerate() {
        leads.push_str(&format!("junk-{i},{email},\"{name}\"\n"));
    }
    std::fs::write(dir.path().join("leads.csv"), &leads).unwrap();
    std::fs::write(dir.path().join("events.csv"), "lead_id,type,ts\n").unwrap();

    let data = dir.path().join("data");
    let (admin, _, read) = keys_of_every_scope(&data, "junk");
    let server = Server::start(&data, &[]);
    let stored = server.post_text("/api/models", &admin, JUNK_MODEL);
    assert_eq!(stored.status, 201, "{}", stored.body);
    let imported = server.post_text("/api/import/leads", &admin, &leads);
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.json()["skipped"], 0, "{}", imported.body);

    let set = DataSet {
        name: "junk".to_string(),
        model: model_path,
        leads: dir.path().join("leads.csv"),
        events: dir.path().join("events.csv"),
        query: "",
        options: &[],
    };
    for (i, (email, name, hygiene)) in JUNK_LEADS.iter().enumerate() {
        let id = format!("junk-{i}");
        let lead = server.get(&format!("/api/leads/{id}"), &read);
        assert_eq!(lead.status, 200, "{id}: {}", lead.body);
        let lead = lead.json();
        let as_of = lead["as_of"].as_str().unwrap();
        let batch = batch_scores(&set, as_of);
        let (_, expected) = batch.iter().find(|(batch_id, _)| *batch_id == id).unwrap();
        assert_eq!(
            &lead["scores"], expected,
            "{id} ({email}, {name}): the service (left) and leadscore score (right) disagree"
        );
        assert_eq!(lead["scores"]["hygiene"]["value"].as_f64(), Some(*hygiene), "{id}: {email}, {name}");
    }
}
