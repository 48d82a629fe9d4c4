//! Managing API keys over real HTTP against `leadscore serve`, and with `leadscore keys` on the
//! data directory: create, list (prefixes, never secrets), revoke (refused on the very next
//! request), workspace isolation, scopes.

use std::path::Path;

use crate::common::*;
use serde_json::{Value, json};

fn delete(server: &Server, path: &str, key: &str) -> Response {
    request(&server.address, "DELETE", path, &[("Authorization", &format!("Bearer {key}"))], b"")
}

/// The id of the key `secret` in the list of keys `admin` sees.
fn id_of(server: &Server, admin: &str, secret: &str) -> i64 {
    let listed = server.get("/api/keys", admin);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.json();
    let key = listed["keys"].as_array().unwrap().iter().find(|k| secret.starts_with(k["prefix"].as_str().unwrap()));
    key.unwrap_or_else(|| panic!("no key with the prefix of {secret} in {listed}"))["id"].as_i64().unwrap()
}

/// Runs `leadscore keys ARGS --data DATA`: (success, stdout, stderr).
fn keys_command(data: &Path, args: &[&str]) -> (bool, String, String) {
    let output = bin().arg("keys").args(args).args(store_args(data)).output().unwrap();
    (output.status.success(), String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap())
}

#[test]
fn a_key_created_through_the_api_works_and_the_list_shows_prefixes_never_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);

    let created = server.post_json("/api/keys", &admin, &json!({"scope": "read", "name": " reporting "}));
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("lsk_") && secret.len() == 68, "{secret}");
    assert_eq!(created["prefix"], secret[..12]);
    assert_eq!(created["scope"], "read");
    assert_eq!(created["name"], "reporting", "trimmed");
    assert_eq!(created["revoked_at"], Value::Null);
    assert_eq!(server.get("/api/models", &secret).status, 200, "the new key works at once");
    assert_eq!(server.get("/api/keys", &secret).status, 403, "a read key cannot manage keys");

    let listed = server.get("/api/keys", &admin);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(!listed.body.contains(&secret[12..]) && !listed.body.contains(&admin[12..]), "{}", listed.body);
    let keys = listed.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    // Newest first.
    assert_eq!(keys[0]["id"], created["id"]);
    assert_eq!(keys[1]["prefix"], admin[..12]);
    assert_eq!(keys[1]["scope"], "admin");
    assert_eq!((keys[0]["name"].as_str(), keys[1]["name"].as_str()), (Some("reporting"), Some("")), "unnamed: \"\"");
    for key in &keys {
        let mut fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(fields, ["created_at", "id", "name", "origins", "prefix", "revoked_at", "scope"]);
    }

    let too_long = "x".repeat(101);
    let long = server.post_json("/api/keys", &admin, &json!({"scope": "read", "name": too_long}));
    assert_eq!((long.status, long.json()["code"].as_str()), (400, Some("invalid_field")), "{}", long.body);
    let bad_scope = server.post_json("/api/keys", &admin, &json!({"scope": "owner"}));
    assert_eq!(bad_scope.status, 400, "{}", bad_scope.body);
    assert_eq!(bad_scope.json()["code"], "invalid_field");
    assert!(bad_scope.json()["message"].as_str().unwrap().contains("`scope`"), "{}", bad_scope.body);
    for body in [json!({}), json!({"scope": 3}), json!({"scope": "read", "label": "x"})] {
        let refused = server.post_json("/api/keys", &admin, &body);
        assert_eq!((refused.status, refused.json()["code"].clone()), (400, json!("invalid_field")), "{body}");
    }
    assert_eq!(server.get("/api/keys", &admin).json()["keys"].as_array().unwrap().len(), 2, "nothing created");
}

#[test]
fn a_revoked_key_is_refused_on_its_very_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &[]);
    let track = json!({"userId": "u1", "event": "page_view", "messageId": "m1"});
    // Used once, so the server has it cached.
    assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);

    let id = id_of(&server, &admin, &ingest);
    let revoked = delete(&server, &format!("/api/keys/{id}"), &admin);
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let revoked = revoked.json();
    assert_eq!(
        (&revoked["id"], &revoked["prefix"], &revoked["scope"]),
        (&json!(id), &json!(ingest[..12]), &json!("ingest"))
    );
    let revoked_at = revoked["revoked_at"].as_str().expect("a revocation time").to_string();

    let refused = server.post_json("/v1/track", &ingest, &track);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["code"], "unauthorized");
    // Revoking again answers the key unchanged; the list shows when it was revoked.
    let again = delete(&server, &format!("/api/keys/{id}"), &admin);
    assert_eq!((again.status, again.json()["revoked_at"].clone()), (200, json!(revoked_at)));
    let listed = server.get("/api/keys", &admin).json();
    let listed = listed["keys"].as_array().unwrap().iter().find(|k| k["id"] == id).unwrap().clone();
    assert_eq!(listed["revoked_at"], json!(revoked_at));

    // A key may revoke itself; that is its last request.
    let own = id_of(&server, &admin, &admin);
    assert_eq!(delete(&server, &format!("/api/keys/{own}"), &admin).status, 200);
    assert_eq!(server.get("/api/keys", &admin).status, 401);
}

#[test]
fn another_workspace_key_is_not_found_and_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let other_admin = create_key(dir.path(), "other", "admin");
    let other_read = create_key(dir.path(), "other", "read");
    let server = Server::start(dir.path(), &[]);
    let other_id = id_of(&server, &other_admin, &other_read);
    assert_eq!(server.get("/api/models", &other_read).status, 200);

    let refused = delete(&server, &format!("/api/keys/{other_id}"), &admin);
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert_eq!(refused.json()["code"], "not_found");
    assert_eq!(server.get("/api/models", &other_read).status, 200, "still valid");
    // Each workspace lists only its own keys.
    let listed = server.get("/api/keys", &admin).json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1, "{listed}");

    let unknown = delete(&server, "/api/keys/999999", &admin);
    assert_eq!((unknown.status, unknown.json()["code"].clone()), (404, json!("not_found")));
    let not_a_number = delete(&server, "/api/keys/abc", &admin);
    assert_eq!((not_a_number.status, not_a_number.json()["code"].clone()), (400, json!("invalid_path")));
}

#[test]
fn read_and_ingest_keys_cannot_manage_keys() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let read = create_key(dir.path(), "acme", "read");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &[]);
    let admin_id = id_of(&server, &admin, &admin);
    for key in [&read, &ingest] {
        assert_eq!(server.get("/api/keys", key).status, 403);
        let created = server.post_json("/api/keys", key, &json!({"scope": "admin"}));
        assert_eq!((created.status, created.json()["code"].clone()), (403, json!("forbidden")));
        assert_eq!(delete(&server, &format!("/api/keys/{admin_id}"), key).status, 403);
    }
    assert_eq!(request(&server.address, "GET", "/api/keys", &[], b"").status, 401);
    assert_eq!(server.get("/api/keys", &admin).json()["keys"].as_array().unwrap().len(), 3, "nothing created");
    assert_eq!(server.get("/api/keys", &admin).status, 200, "nothing revoked");
}

#[test]
fn the_command_line_lists_and_revokes_keys_of_a_server_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let read = create_key(dir.path(), "acme", "read");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/api/models", &read).status, 200);
    let read_id = id_of(&server, &admin, &read);

    let (ok, listed, _) = keys_command(dir.path(), &["list", "--workspace", "acme"]);
    assert!(ok);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("PREFIX") && lines[0].contains("REVOKED"), "{listed}");
    assert!(lines[1].starts_with(&format!("{read_id} ")) && lines[1].contains(&read[..12]), "{listed}");
    assert!(lines[1].contains(" read ") && lines[1].ends_with('-'), "{listed}");
    assert!(lines[2].contains(&admin[..12]) && lines[2].contains(" admin "), "{listed}");
    assert!(!listed.contains(&read[12..]) && !listed.contains(&admin[12..]), "never a secret: {listed}");

    let (ok, said, _) = keys_command(dir.path(), &["revoke", "--workspace", "acme", "--id", &read_id.to_string()]);
    assert!(ok);
    assert!(said.contains(&format!("revoked key {read_id}")) && said.contains("within a second"), "{said}");
    // The running server had the key cached: it learns of the revocation within about a second.
    assert!(
        holds_within(std::time::Duration::from_secs(5), || server.get("/api/models", &read).status == 401),
        "the revoked key is still accepted 5 s later"
    );
    assert_eq!(server.get("/api/models", &admin).status, 200);
    let listed = server.get("/api/keys", &admin).json();
    assert!(listed["keys"][0]["revoked_at"].is_string(), "{listed}");

    let (_, listed, _) = keys_command(dir.path(), &["list", "--workspace", "acme"]);
    assert!(!listed.lines().nth(1).unwrap().ends_with('-'), "the list shows the revocation: {listed}");
    let (ok, _, _) =
        keys_command(dir.path(), &["create", "--workspace", "acme", "--scope", "read", "--name", "CRM sync"]);
    assert!(ok);
    let (_, listed, _) = keys_command(dir.path(), &["list", "--workspace", "acme"]);
    assert!(listed.lines().nth(1).unwrap().contains(" read   CRM sync "), "named: {listed}");
    let (ok, _, error) = keys_command(dir.path(), &["revoke", "--workspace", "acme", "--id", "424242"]);
    assert!(!ok);
    assert!(error.contains("no key 424242"), "{error}");
    let (ok, _, error) = keys_command(dir.path(), &["list", "--workspace", "nobody"]);
    assert!(!ok);
    assert!(error.contains("no workspace `nobody`"), "{error}");
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, error) = keys_command(empty.path(), &["list", "--workspace", "acme"]);
    if on_postgres() {
        // A database is there or connecting fails; an empty one has no workspace.
        assert!(!ok && error.contains("no workspace `acme`"), "{error}");
    } else {
        assert!(!ok && error.contains("no database"), "{error}");
        assert!(!empty.path().join("leadscore.db").exists(), "listing does not create a database");
    }
}
