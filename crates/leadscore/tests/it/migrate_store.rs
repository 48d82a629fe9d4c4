//! `leadscore migrate-store` on real processes: a service on a data directory takes a model,
//! events over HTTP, keys and a console account; once it is stopped, the store is copied into an
//! empty PostgreSQL database, and a service on that database answers the same leads and scores,
//! takes the old keys and the old password, and goes on ingesting. Plus what the command refuses:
//! a directory a running service holds, a directory with no store, a database with rows.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::*;

const MODEL: &str = "[scores.engagement]\ntiers = [{ label = \"cold\" }, { label = \"hot\", min = 2 }]\n[[scores.engagement.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n";

/// A new database on the test server, or `None` when no server answers (the test then checks
/// nothing and says so), except under continuous integration (`CI=true`), where it fails.
fn empty_database(dir: &Path) -> Option<String> {
    let server = std::env::var("LEADSCORE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    match postgres::Client::connect(&server, postgres::NoTls) {
        Ok(_) => Some(postgres_database(dir)),
        Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("migrate-store's test needs a PostgreSQL server: {server} refused ({error})")
        }
        Err(error) => {
            eprintln!("skipped: no PostgreSQL at {server} ({error})");
            None
        }
    }
}

/// `leadscore serve` on the store `args` names (`--data DIR` or `--database URL`).
fn serve(dir: &Path, store: &[&str]) -> Server {
    let child = bin()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    Server::attach(child, dir)
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn key(data: &str, scope: &str) -> String {
    let (ok, out, err) = run(bin().args(["keys", "create", "--workspace", "acme", "--scope", scope, "--data", data]));
    assert!(ok, "{err}");
    out.trim().to_string()
}

fn sign_in(server: &Server, email: &str, password: &str) -> Response {
    let body = format!("email={}&password={}", email.replace('@', "%40"), password.replace(' ', "+"));
    let origin = format!("http://{}", server.address);
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str())];
    request(&server.address, "POST", "/sign-in", &headers, body.as_bytes())
}

#[test]
fn migrate_store_copies_a_stopped_service_into_postgres_where_it_goes_on_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = empty_database(dir.path()) else { return };
    let data = dir.path().to_str().unwrap();
    let (admin, ingest, read) = (key(data, "admin"), key(data, "ingest"), key(data, "read"));
    let (ok, _, err) = run(bin()
        .args([
            "users",
            "create",
            "--workspace",
            "acme",
            "--email",
            "ana@example.com",
            "--role",
            "admin",
            "--data",
            data,
        ])
        .env("LEADSCORE_PASSWORD", PASSWORD));
    assert!(ok, "{err}");

    let mut before = serve(dir.path(), &["--data", data]);
    assert_eq!(before.post_text("/api/models", &admin, MODEL).status, 201);
    let users = [("ana", 3), ("bob", 1), ("carol", 2)];
    for (user, visits) in users {
        for n in 0..visits {
            let event = json!({"userId": user, "event": "page_view", "messageId": format!("{user}-{n}")});
            assert_eq!(before.post_json("/v1/track", &ingest, &event).status, 200);
        }
    }
    let leads_before: Vec<serde_json::Value> =
        users.iter().map(|(user, _)| before.get(&format!("/api/leads/{user}"), &read).json()).collect();
    assert_eq!(leads_before[0]["scores"]["engagement"]["value"], 3.0, "{}", leads_before[0]);

    // A running service holds its directory: copying what it is writing is refused.
    let (ok, _, err) = run(bin().args(["migrate-store", "--from", data, "--to", &url]));
    assert!(!ok && err.contains("stop the service first"), "{err}");
    before.kill();

    let nowhere = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(bin().args(["migrate-store", "--from", nowhere.path().to_str().unwrap(), "--to", &url]));
    assert!(!ok && err.contains("not a leadscore data directory"), "{err}");

    let (ok, out, err) = run(bin().args(["migrate-store", "--from", data, "--to", &url]));
    assert!(ok, "{err}");
    assert!(err.contains("copied leads: 3 rows") && err.contains("copied events: 6 rows"), "{err}");
    assert!(out.contains("rows copied") && out.contains("message ids stored once"), "{out}");
    assert!(out.lines().filter(|line| line.trim_end().ends_with("equal")).count() > 20, "{out}");

    // Once copied, the database is not empty: a second copy is refused and says why.
    let (ok, _, err) = run(bin().args(["migrate-store", "--from", data, "--to", &url]));
    assert!(!ok && err.contains("leads (3 rows)"), "{err}");

    let after = serve(dir.path(), &["--database", &url]);
    for ((user, _), before) in users.iter().zip(&leads_before) {
        let lead = after.get(&format!("/api/leads/{user}"), &read);
        assert_eq!(lead.status, 200, "{}", lead.body);
        let lead = lead.json();
        assert_eq!((&lead["id"], &lead["scores"]), (&before["id"], &before["scores"]), "{user}");
    }
    let signed_in = sign_in(&after, "ana@example.com", PASSWORD);
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some("/leads")), "the old password");

    // It goes on: an event counts on the copied lead, a new lead takes an id of its own.
    let event = json!({"userId": "bob", "event": "page_view", "messageId": "bob-1"});
    assert_eq!(after.post_json("/v1/track", &ingest, &event).status, 200);
    let again =
        after.post_json("/v1/track", &ingest, &json!({"userId": "bob", "event": "page_view", "messageId": "bob-0"}));
    assert_eq!(again.json()["duplicate"], true, "a message id copied is known: {}", again.body);
    assert_eq!(after.get("/api/leads/bob", &read).json()["scores"]["engagement"]["value"], 2.0);
    let event = json!({"userId": "dan", "event": "page_view", "messageId": "dan-0"});
    assert_eq!(after.post_json("/v1/track", &ingest, &event).status, 200);
    let dan = after.get("/api/leads/dan", &read).json();
    let highest = leads_before.iter().map(|lead| lead["id"].as_i64().unwrap()).max().unwrap();
    assert!(dan["id"].as_i64().unwrap() > highest, "{dan}");
}
