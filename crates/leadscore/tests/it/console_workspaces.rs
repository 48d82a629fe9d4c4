//! The console keeps workspaces apart: a person of one workspace finds no lead of another, by
//! its user id or by its own number, in the list, on a lead page or through a posted stage move.

use serde_json::json;

use crate::common::*;

/// Creates a console account of `workspace` with [`PASSWORD`].
fn create_account_in(data: &std::path::Path, workspace: &str, email: &str, role: &str) {
    let output = bin()
        .args(["users", "create", "--workspace", workspace, "--email", email, "--role", role, "--data"])
        .arg(data)
        .env("LEADSCORE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn a_person_of_one_workspace_finds_no_lead_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let (acme_admin, acme_ingest, _) = keys_of_every_scope(dir.path(), "acme");
    let (globex_admin, globex_ingest, globex_read) = keys_of_every_scope(dir.path(), "globex");
    create_account_in(dir.path(), "acme", "ana@acme.example", "admin");
    let server = Server::start(dir.path(), &[]);
    for (admin, ingest, user) in
        [(&acme_admin, &acme_ingest, "acme-lead"), (&globex_admin, &globex_ingest, "Globex Secret Lead")]
    {
        assert_eq!(server.post_text("/api/models", admin, COUNTING_MODEL).status, 201);
        let event = json!({"userId": user, "event": "page_view", "messageId": format!("{user}-1")});
        assert_eq!(server.post_json("/v1/track", ingest, &event).status, 200);
    }
    let globex_lead = server.get("/api/leads/Globex%20Secret%20Lead", &globex_read).json();
    let globex_number = globex_lead["id"].as_i64().unwrap_or_else(|| panic!("no id: {globex_lead}"));

    let origin = format!("http://{}", server.address);
    let body = "email=ana%40acme.example&password=correct+horse+battery";
    let headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str())];
    let signed_in = request(&server.address, "POST", "/sign-in", &headers, body.as_bytes());
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = signed_in.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let get = |path: &str| request(&server.address, "GET", path, &[("Cookie", cookie.as_str())], b"");

    let list = get("/leads");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("acme-lead") && !list.body.contains("Globex"), "{}", list.body);
    for path in ["/leads/Globex%20Secret%20Lead".to_string(), format!("/leads/{globex_number}")] {
        let seen = get(&path);
        assert_eq!(seen.status, 404, "{path}: {}", seen.body);
        assert!(seen.body.contains("No such lead"), "{}", seen.body);
        assert!(!seen.body.contains("Latest events") && !seen.body.contains("page_view"), "{}", seen.body);
    }

    let page = get("/leads/acme-lead");
    let token = page.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Origin", origin.as_str()),
        ("Cookie", cookie.as_str()),
    ];
    let moved = request(
        &server.address,
        "POST",
        &format!("/leads/{globex_number}/stage"),
        &form,
        format!("csrf={token}&stage=sal&reason=").as_bytes(),
    );
    assert_eq!(moved.status, 404, "{}", moved.body);
    assert!(!moved.body.contains("Globex Secret Lead"), "{}", moved.body);
    assert_eq!(server.get("/api/leads/Globex%20Secret%20Lead/stages", &globex_read).json()["stage"], "lead");
}
