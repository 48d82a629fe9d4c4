//! Changing the active model of a running service: simultaneous activations, a rescoring cut by
//! `kill -9`, a model file given again at restart, and what a rollback undoes. Real processes
//! over real HTTP.

use std::sync::{Arc, Barrier};

use crate::common::*;
use serde_json::json;

/// A demo service (the example model on generated leads) with keys of every scope.
fn demo(dir: &std::path::Path, leads: usize) -> (Server, String, String) {
    let server = Server::start(dir, &["--demo", "--demo-leads", &leads.to_string()]);
    let admin = create_key(dir, "demo", "admin");
    let read = create_key(dir, "demo", "read");
    (server, admin, read)
}

fn demo_model() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/b2b-saas.toml")).unwrap()
}

#[test]
fn of_simultaneous_activations_exactly_one_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, _) = demo(dir.path(), 3000);
    let mut versions = Vec::new();
    for i in 0..8 {
        let uploaded = server.post_text("/api/models", &admin, &format!("{}\n# variant {i}\n", demo_model()));
        assert_eq!(uploaded.status, 201, "{}", uploaded.body);
        versions.push(uploaded.json()["version"].as_i64().unwrap());
    }
    let barrier = Arc::new(Barrier::new(versions.len()));
    let address = server.address.clone();
    let threads: Vec<_> = versions
        .iter()
        .map(|version| {
            let (barrier, address, admin) = (barrier.clone(), address.clone(), admin.clone());
            let path = format!("/api/models/{version}/activate");
            std::thread::spawn(move || {
                barrier.wait();
                request(&address, "POST", &path, &[("Authorization", &format!("Bearer {admin}"))], b"")
            })
        })
        .collect();
    let answers: Vec<Response> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let accepted: Vec<&Response> = answers.iter().filter(|a| a.status == 202).collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    for refused in answers.iter().filter(|a| a.status != 202) {
        assert_eq!((refused.status, refused.json()["code"].as_str()), (409, Some("rescoring")), "{refused:?}");
    }
    let models = wait_for_rescoring(&server, &admin);
    let active: Vec<i64> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["active"] == true)
        .map(|m| m["version"].as_i64().unwrap())
        .collect();
    assert_eq!(active, vec![accepted[0].json()["version"].as_i64().unwrap()]);
}

#[test]
fn a_rescoring_cut_by_kill_9_resumes_when_the_service_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, admin, read) = demo(dir.path(), 5000);
    let uploaded = server.post_text("/api/models", &admin, &format!("{}\n# v2\n", demo_model()));
    let version = uploaded.json()["version"].as_i64().unwrap();
    let activated = server.post_text(&format!("/api/models/{version}/activate"), &admin, "");
    assert_eq!(activated.status, 202, "{}", activated.body);
    let during = server.get("/api/models", &read).json();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(during["rescoring"]["finished_at"].is_null(), "the rescoring ended before the kill: {during}");

    let server = Server::start(dir.path(), &[]);
    let models = wait_for_rescoring(&server, &read);
    assert_eq!(models["rescoring"]["model_version"], version, "{models}");
    assert_eq!(models["rescoring"]["done"], models["rescoring"]["total"], "{models}");
    assert_eq!(models["rescoring"]["total"], 5000, "{models}");
    // The leads carry the new version's scores, without waiting for the periodic pass.
    for n in (1..=5000).step_by(49) {
        let lead = server.get(&format!("/api/leads/demo-{n:05}"), &read).json();
        assert_eq!(lead["model_version"], version, "{lead}");
    }
}

#[test]
fn a_model_file_given_again_at_restart_does_not_undo_an_api_activation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.toml");
    let data = dir.path().join("data");
    std::fs::write(&file, COUNTING_MODEL).unwrap();
    let (admin, ingest, read) = keys_of_every_scope(&data, "acme");
    let model_args = ["--model", file.to_str().unwrap(), "--workspace", "acme"];
    let mut server = Server::start(&data, &model_args);
    for i in 0..2 {
        let track = json!({"userId": "f1", "event": "page_view", "messageId": format!("f{i}")});
        assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
    }
    // An operator activates a second version through the API, once the first version's
    // rescoring has ended (another activation meanwhile is refused with 409).
    wait_for_rescoring(&server, &read);
    let doubled = COUNTING_MODEL.replace("points = 1\n", "points = 2\n");
    assert_eq!(server.post_text("/api/models", &admin, &doubled).json()["version"], 2);
    let activation = server.post_text("/api/models/2/activate", &admin, "");
    assert_eq!(activation.status, 202, "{}", activation.body);
    wait_for_rescoring(&server, &read);
    server.kill();

    // The same file at restart: the API's choice stands, with a warning.
    let log = dir.path().join("restart.log");
    let mut server = Server::start_with_log(&data, &model_args, std::fs::File::create(&log).unwrap());
    let lead = server.get("/api/leads/f1", &read).json();
    assert_eq!((lead["model_version"].as_i64(), lead["scores"]["activity"]["value"].as_f64()), (Some(2), Some(4.0)));
    server.kill();
    let warning = std::fs::read_to_string(&log).unwrap();
    assert!(warning.contains("version 2 was chosen through the API after it"), "{warning}");

    // A changed file is the operator's new choice: a new version, active, and every lead rescored
    // at start rather than at the periodic pass.
    std::fs::write(&file, COUNTING_MODEL.replace("points = 1\n", "points = 3\n")).unwrap();
    let server = Server::start(&data, &model_args);
    let models = wait_for_rescoring(&server, &read);
    assert_eq!(models["rescoring"]["model_version"], 3, "{models}");
    let lead = server.get("/api/leads/f1", &read).json();
    assert_eq!((lead["model_version"].as_i64(), lead["scores"]["activity"]["value"].as_f64()), (Some(3), Some(6.0)));

    drop(server);

    // A rollback through the API is a choice too, even from one file version to another: the
    // file's version 4 is not activated again at the next start.
    std::fs::write(&file, COUNTING_MODEL.replace("points = 1\n", "points = 4\n")).unwrap();
    let server = Server::start(&data, &model_args);
    assert_eq!(wait_for_rescoring(&server, &read)["rescoring"]["model_version"], 4);
    assert_eq!(server.post_text("/api/models/rollback", &admin, "").json()["version"], 3);
    wait_for_rescoring(&server, &read);
    drop(server);
    let server = Server::start(&data, &model_args);
    let lead = server.get("/api/leads/f1", &read).json();
    assert_eq!(lead["model_version"].as_i64(), Some(3), "{lead}");
}

const STAGED_MODEL: &str = r#"
[scores.activity]
tiers = [{ label = "cold" }, { label = "mql", min = 5 }]
[[scores.activity.rules]]
name = "page views"
event = "page_view"
points = 1
"#;

#[test]
fn a_rollback_undoes_the_automatic_moves_of_the_version_it_undoes_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, STAGED_MODEL).status, 201);
    // early: MQL under version 1 (6 views); late and manual: 4 views each, not MQL under version 1.
    for (user, views) in [("early", 6), ("late", 4), ("manual", 4)] {
        for i in 0..views {
            let track = json!({"userId": user, "event": "page_view", "messageId": format!("{user}-{i}")});
            assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
        }
    }
    assert_eq!(server.get("/api/leads/early", &read).json()["stage"], "mql");

    // Version 2 lowers the MQL threshold to 3: its preview shows the moves it would cause.
    let lower = STAGED_MODEL.replace("min = 5", "min = 3");
    assert_eq!(server.post_text("/api/models", &admin, &lower).json()["version"], 2);
    let preview = server.get("/api/models/2/preview", &read).json();
    assert_eq!(preview["consequences"]["moves_to_mql"], 2, "{preview}");
    assert_eq!(server.post_text("/api/models/2/activate", &admin, "").status, 202);
    wait_for_rescoring(&server, &read);
    assert_eq!(server.get("/api/leads/late", &read).json()["stage"], "mql");
    // A person may not move a lead under leadscore's own name (a rollback would take the move
    // for an automatic one).
    let posing = server.post_json("/api/leads/manual/stage", &admin, &json!({"stage": "mql", "actor": "LeadScore"}));
    assert_eq!((posing.status, posing.json()["code"].as_str()), (400, Some("invalid_field")), "{}", posing.body);
    // A rep takes `manual` on: a person's move is never undone.
    let moved = server.post_json("/api/leads/manual/stage", &admin, &json!({"stage": "sal", "actor": "rep"}));
    assert_eq!(moved.status, 200, "{}", moved.body);

    let rolled = server.post_text("/api/models/rollback", &admin, "");
    assert_eq!((rolled.status, rolled.json()["version"].as_i64()), (202, Some(1)), "{}", rolled.body);
    let models = wait_for_rescoring(&server, &read);
    assert_eq!(models["rescoring"]["cause"], "rollback from v2 to v1", "{models}");
    let late = server.get("/api/leads/late", &read).json();
    assert_eq!(late["stage"], "lead", "{late}");
    let stages = server.get("/api/leads/late/stages", &read).json();
    assert_eq!(stages["changes"][0]["actor"], "leadscore", "{stages}");
    assert!(stages["changes"][0]["reason"].as_str().unwrap().starts_with("rollback from v2 to v1"), "{stages}");
    assert_eq!(server.get("/api/leads/early", &read).json()["stage"], "mql");
    assert_eq!(server.get("/api/leads/manual", &read).json()["stage"], "sal");

    // The stack has nothing below version 1: a second rollback does not go forward to version 2.
    let again = server.post_text("/api/models/rollback", &admin, "");
    assert_eq!((again.status, again.json()["code"].as_str()), (404, Some("not_found")), "{}", again.body);
    let models = server.get("/api/models", &read).json();
    assert_eq!(models["models"][0]["active"], true, "{models}");
}
