//! A person's rights over their data, through a real `leadscore serve`: erasure leaves no trace
//! in any file of the data directory (the WAL included) and tells the webhooks; what arrives
//! for an erased person later is dropped until an admin lifts it; export gives everything; a
//! lead is found by its e-mail; the command line erases and exports too.

use std::path::Path;

use serde_json::json;

use crate::common::{Receiver, Server, bin, create_key, request, store_args};

const MODEL: &str = r#"
[scores.activity]
[[scores.activity.rules]]
name = "pricing"
event = "pricing_view"
points = 10
[[scores.activity.tiers]]
label = "warm"
min = 10
"#;

/// Every file under `dir` whose bytes hold `needle`.
/// Where `needle` is stored: the files of the data directory that hold its bytes, or on
/// PostgreSQL (whose files are the server's), the tables with a row whose text holds it.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    if crate::common::on_postgres() {
        return tables_holding(dir, needle);
    }
    let mut found = Vec::new();
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if bytes.windows(needle.len()).any(|window| window == needle.as_bytes()) {
            found.push(entry.display().to_string());
        }
    }
    found
}

/// The tables of the database standing for `dir` with a row whose text holds `needle`. What
/// PostgreSQL keeps of deleted rows until it vacuums them is not visible here; the store's
/// erasure documents it.
fn tables_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut client = postgres::Client::connect(&crate::common::postgres_database(dir), postgres::NoTls).unwrap();
    let tables = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'", &[])
        .unwrap();
    let pattern = format!("%{}%", needle.replace('%', "\\%").replace('_', "\\_"));
    let mut found = Vec::new();
    for row in tables {
        let table: String = row.get(0);
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM \"{table}\" t WHERE t::text LIKE $1"), &[&pattern])
            .unwrap()
            .get(0);
        if count > 0 {
            found.push(table);
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn delete(server: &Server, path: &str, key: &str) -> crate::common::Response {
    request(&server.address, "DELETE", path, &[("Authorization", &format!("Bearer {key}"))], b"")
}

/// A lead with a unique e-mail, name and user id, known first as an anonymous visitor, with
/// events, a stage move with a reason and webhook notifications; returns its numeric id.
fn a_person(server: &Server, ingest: &str, admin: &str, who: &Person) -> i64 {
    let page =
        json!({"anonymousId": who.anonymous_id, "messageId": format!("{}-p", who.message_prefix), "name": "Pricing"});
    assert_eq!(server.post_json("/v1/page", ingest, &page).status, 200);
    let identify = json!({
        "userId": who.user_id, "anonymousId": who.anonymous_id, "messageId": format!("{}-i", who.message_prefix),
        "traits": {"email": who.email, "name": who.name, "company": "Zyxwv Ltd"},
    });
    let identified = server.post_json("/v1/identify", ingest, &identify);
    assert_eq!(identified.status, 200, "{}", identified.body);
    for i in 0..3 {
        let track = json!({"userId": who.user_id, "event": "pricing_view", "messageId": format!("{}-t{i}", who.message_prefix),
                           "properties": {"contact": who.email}});
        assert_eq!(server.post_json("/v1/track", ingest, &track).status, 200);
    }
    let moved = server.post_json(
        &format!("/api/leads/{}/stage", who.user_id),
        admin,
        &json!({"stage": "disqualified", "actor": "rep", "reason": format!("asked by {}", who.name)}),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    // Overrides whose reason and note name the person: one replaced, one lifted, one in force.
    // Each keeps the tier the model gives, so that no webhook is told of them.
    let path = format!("/api/leads/{}/overrides/activity", who.user_id);
    for reason in [format!("{} asked", who.name), format!("{} confirmed", who.name)] {
        let set =
            server.send("PUT", &path, admin, Some(&json!({"tier": "warm", "reason": reason, "actor": who.email})));
        assert_eq!(set.status, 200, "{}", set.body);
    }
    let note = format!("{} withdrew", who.name).replace(' ', "%20");
    assert_eq!(server.send("DELETE", &format!("{path}?note={note}"), admin, None).status, 200);
    let set = server.send("PUT", &path, admin, Some(&json!({"value": 30, "reason": format!("{} again", who.name)})));
    assert_eq!(set.status, 200, "{}", set.body);
    server.get(&format!("/api/leads/{}", who.user_id), admin).json()["id"].as_i64().unwrap()
}

struct Person {
    /// Message ids are kept after an erasure (random ids carry nothing personal): these are not
    /// made of the person's identifiers.
    message_prefix: String,
    user_id: String,
    anonymous_id: String,
    email: String,
    name: String,
}

impl Person {
    fn new(tag: &str) -> Person {
        Person {
            message_prefix: format!("msg-{tag}"),
            user_id: format!("usr-{tag}-81c4"),
            anonymous_id: format!("anon-{tag}-5d2e"),
            email: format!("q.{tag}.73f9@example.org"),
            name: format!("Qwzx{tag} Plorvik"),
        }
    }

    fn traces(&self) -> [&str; 4] {
        [&self.user_id, &self.anonymous_id, &self.email, &self.name]
    }
}

#[test]
fn an_erased_lead_leaves_no_trace_in_any_file_and_later_messages_are_dropped_until_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);
    let receiver = Receiver::start(0);
    let hook = server.post_json(
        "/api/webhooks",
        &admin,
        &json!({"url": receiver.url, "events": ["tier_changed", "stage_changed"]}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let erased = Person::new("erased");
    let kept = Person::new("kept");
    let erased_id = a_person(&server, &ingest, &admin, &erased);
    a_person(&server, &ingest, &admin, &kept);
    // tier_changed and stage_changed for each person, delivered with the e-mail in them.
    receiver.wait_for(4);
    for trace in erased.traces() {
        assert!(!files_holding(dir.path(), trace).is_empty(), "{trace} is stored before the erasure");
    }

    // Found by its e-mail, in any case, and exported whole.
    let found = server.get(&format!("/api/leads?email={}", erased.email.to_uppercase()), &admin).json();
    assert_eq!(found["leads"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["leads"][0]["id"], erased_id);
    let export = server.get(&format!("/api/leads/{erased_id}/export"), &admin);
    assert_eq!(export.status, 200, "{}", export.body);
    let export = export.json();
    assert_eq!(export["lead"]["email"], erased.email.as_str());
    assert_eq!(export["anonymous_ids"], json!([erased.anonymous_id]));
    assert_eq!(export["events"].as_array().unwrap().len(), 5, "page, identify, three views: {export}");
    assert_eq!(export["scores"]["activity"]["value"], 30.0);
    assert_eq!(export["stage_history"].as_array().unwrap().len(), 1);
    assert_eq!(export["notifications"].as_array().unwrap().len(), 2);
    assert!(!export["score_history"].as_array().unwrap().is_empty());
    let overrides = export["overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 3, "{export}");
    assert_eq!(overrides[0]["reason"], format!("{} again", erased.name));
    assert_eq!(overrides[1]["lifted_note"], format!("{} withdrew", erased.name));
    assert_eq!(overrides[2]["lifted_by"], "replaced");
    let noted = export["score_history"].as_array().unwrap().iter().filter(|h| !h["override"].is_null()).count();
    assert_eq!(noted, 4, "each setting and lifting is history: {export}");

    // An ingest key cannot erase; an admin key can.
    assert_eq!(delete(&server, &format!("/api/leads/{erased_id}"), &ingest).status, 403);
    let erasure = delete(&server, &format!("/api/leads/{}", erased.user_id), &admin);
    assert_eq!(erasure.status, 200, "{}", erasure.body);
    let erasure = erasure.json();
    assert_eq!(erasure["lead_id"], erased_id);
    assert_eq!(erasure["events"], 5);
    assert!(erasure["suppressed_identifiers"].as_i64().unwrap() >= 3, "{erasure}");

    // Once answered, no file of the data directory holds the person, the WAL included; the
    // other person is all there.
    for trace in erased.traces() {
        assert_eq!(files_holding(dir.path(), trace), Vec::<String>::new(), "{trace} is gone from every file");
    }
    assert_eq!(server.get(&format!("/api/leads/{}", kept.user_id), &admin).status, 200);
    assert_eq!(
        server.get(&format!("/api/leads/{}/export", kept.user_id), &admin).json()["events"].as_array().unwrap().len(),
        5
    );

    // Its number is told erased; the webhook hears of it by that number alone.
    let gone = server.get(&format!("/api/leads/{erased_id}"), &admin);
    assert_eq!((gone.status, gone.json()["code"].as_str()), (410, Some("erased")), "{}", gone.body);
    assert_eq!(server.get(&format!("/api/leads/{erased_id}/export"), &admin).status, 410);
    assert_eq!(delete(&server, &format!("/api/leads/{erased_id}"), &admin).status, 410);
    let delivered = receiver.wait_for(5);
    let notice = delivered.iter().find(|(_, body)| body["type"] == "lead_erased").expect("lead_erased is sent");
    assert_eq!(notice.1["data"]["lead"], json!({"id": erased_id}));

    // Messages naming the person later are dropped: by user id, anonymous id or e-mail.
    let again = [
        ("/v1/track", json!({"userId": erased.user_id, "event": "pricing_view", "messageId": "later-1"})),
        ("/v1/page", json!({"anonymousId": erased.anonymous_id, "messageId": "later-2"})),
        (
            "/v1/identify",
            json!({"userId": "someone-new", "messageId": "later-3", "traits": {"email": format!(" {} ", erased.email.to_uppercase())}}),
        ),
    ];
    for (path, body) in &again {
        let answer = server.post_json(path, &ingest, body);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.json()["lead"].is_null(), "{path}: {}", answer.body);
    }
    let batch = server.post_json(
        "/v1/batch",
        &ingest,
        &json!({"batch": [
            {"type": "track", "userId": erased.user_id, "event": "pricing_view", "messageId": "later-4"},
            {"type": "track", "userId": kept.user_id, "event": "pricing_view", "messageId": "later-5"},
        ]}),
    );
    assert_eq!(
        batch.json()["items"],
        json!([{"status": "suppressed"}, {"status": "accepted", "lead_id": server.get(&format!("/api/leads/{}", kept.user_id), &admin).json()["id"]}])
    );
    let upsert = request(
        &server.address,
        "PUT",
        &format!("/api/leads/{}", erased.user_id),
        &[("Authorization", &format!("Bearer {admin}")), ("Content-Type", "application/json")],
        br#"{"attributes": {"plan": "pro"}}"#,
    );
    assert_eq!((upsert.status, upsert.json()["code"].as_str()), (409, Some("suppressed")), "{}", upsert.body);
    for trace in erased.traces() {
        assert_eq!(files_holding(dir.path(), trace), Vec::<String>::new(), "{trace} came back");
    }
    let metrics = request(&server.address, "GET", "/metrics", &[], b"").body;
    assert!(metrics.contains("leadscore_messages_total{outcome=\"suppressed\"} 5"), "{metrics}");
    assert!(metrics.contains("leadscore_lead_erasures_total 1"), "{metrics}");

    // The record says who and when, never what; lifting it lets the person back in.
    let erasures = server.get("/api/erasures", &admin).json();
    let record = &erasures["erasures"][0];
    assert_eq!(record["lead_id"], erased_id);
    assert!(record["erased_by"].as_str().unwrap().starts_with("API key"), "{record}");
    assert!(!erasures.to_string().contains(&erased.email));
    assert_eq!(server.get("/api/erasures", &ingest).status, 403);
    let lifted = server.post_text(&format!("/api/erasures/{}/lift", record["id"]), &admin, "");
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    assert_eq!(lifted.json()["suppressed_identifiers"], 0);
    assert_eq!(server.post_text("/api/erasures/999/lift", &admin, "").status, 404);
    let back = server.post_json(
        "/v1/track",
        &ingest,
        &json!({"userId": erased.user_id, "event": "pricing_view", "messageId": "later-6"}),
    );
    assert!(back.json()["lead"]["id"].is_i64(), "{}", back.body);
}

#[test]
fn the_command_line_exports_and_erases_but_not_under_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let mut server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);
    let person = Person::new("cli");
    let id = a_person(&server, &ingest, &admin, &person);
    let cli = |action: &str, lead: &str| {
        bin().args(["leads", action, "--workspace", "acme"]).args(store_args(dir.path())).arg(lead).output().unwrap()
    };
    let exported = cli("export", &person.user_id);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let document: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(document["lead"]["id"], id);
    assert_eq!(document["lead"]["email"], person.email.as_str());

    // A service remembers leads of its data directory: the command waits for it to stop. On
    // PostgreSQL, services remember no lead beyond a request, and the command erases beside them.
    if !crate::common::on_postgres() {
        let refused = cli("erase", &id.to_string());
        assert!(!refused.status.success());
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("DELETE /api/leads/"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
    }

    server.kill();
    let erased = cli("erase", &id.to_string());
    assert!(erased.status.success(), "{}", String::from_utf8_lossy(&erased.stderr));
    assert!(String::from_utf8_lossy(&erased.stdout).contains(&format!("erased lead {id}")));
    for trace in person.traces() {
        assert_eq!(files_holding(dir.path(), trace), Vec::<String>::new(), "{trace} is gone from every file");
    }
    let again = cli("erase", &id.to_string());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("was erased at"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let unknown = cli("export", "nobody");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no lead with id or userId `nobody`"));
}

#[test]
fn events_past_the_retention_are_deleted_and_their_leads_rescored_from_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);
    let day = 86_400_000_i64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let at = |days_ago: i64| leadscore_core::Timestamp(now - days_ago * day).to_string();
    for (i, days_ago) in [100, 40, 1].into_iter().enumerate() {
        let track = json!({"userId": "kept-a-while", "event": "pricing_view", "messageId": format!("r{i}"), "timestamp": at(days_ago)});
        assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
    }
    let other = json!({"userId": "recent", "event": "pricing_view", "messageId": "r9", "timestamp": at(2)});
    assert_eq!(server.post_json("/v1/track", &ingest, &other).status, 200);
    assert_eq!(server.get("/api/leads/kept-a-while", &admin).json()["scores"]["activity"]["value"], 30.0);
    assert_eq!(server.get("/api/retention", &admin).json()["events_days"], serde_json::Value::Null);

    let put = |body: serde_json::Value| {
        let headers = [("Authorization", format!("Bearer {admin}")), ("Content-Type", "application/json".to_string())];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(&server.address, "PUT", "/api/retention", &headers, body.to_string().as_bytes())
    };
    assert_eq!(put(json!({"events_days": 0})).status, 400);
    assert_eq!(put(json!({"days": 30})).status, 400);
    let set = put(json!({"events_days": 30}));
    assert_eq!(set.status, 200, "{}", set.body);
    let set = set.json();
    assert_eq!(set["events_days"], 30);
    assert!(set["warnings"][0].as_str().unwrap().contains("rule `pricing` counts events forever"), "{set}");

    // The pass runs at once: the two older events go, the lead is rescored from the one left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let events = server.get("/api/leads/kept-a-while/export", &admin).json()["events"].as_array().unwrap().len();
        if events == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {events} events");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lead = server.get("/api/leads/kept-a-while", &admin).json();
    assert_eq!(lead["scores"]["activity"]["value"], 10.0, "{lead}");
    let listed = server.get("/api/leads?score=activity", &admin).json();
    let mut stored: Vec<(String, f64)> = listed["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["user_id"].as_str().unwrap().to_string(), l["value"].as_f64().unwrap()))
        .collect();
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(stored, [("kept-a-while".to_string(), 10.0), ("recent".to_string(), 10.0)], "stored scores follow");
    let history = server.get("/api/leads/kept-a-while/history", &admin).json();
    assert_eq!(history["history"][0]["cause"], "retention", "{history}");
    let metrics = request(&server.address, "GET", "/metrics", &[], b"").body;
    assert!(metrics.contains("leadscore_events_expired_total 2"), "{metrics}");
    // A new event still lands on the pruned lead.
    let track = json!({"userId": "kept-a-while", "event": "pricing_view", "messageId": "r5"});
    let answer = server.post_json("/v1/track", &ingest, &track).json();
    assert_eq!(answer["lead"]["scores"]["activity"]["value"], 20.0, "{answer}");
    assert_eq!(put(json!({"events_days": null})).json()["events_days"], serde_json::Value::Null);
}
