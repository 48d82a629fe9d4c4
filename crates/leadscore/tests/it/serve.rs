//! `leadscore serve` over real HTTP, as a separate process: ingestion, scores in the answer,
//! idempotency, workspace isolation, errors, and durability across kill -9.

use crate::common::*;
use serde_json::json;

/// What a text holding a NUL character is told, after its place.
const NUL_REFUSAL: &str = "contains the character U+0000 (NUL), which is not stored: remove it";

/// A server with one workspace `acme` running the counting model; returns (server, admin, ingest, read) keys.
fn acme(dir: &std::path::Path) -> (Server, String, String, String) {
    acme_with(dir, &[])
}

/// Same as [`acme`], with more arguments for `leadscore serve`.
fn acme_with(dir: &std::path::Path, extra: &[&str]) -> (Server, String, String, String) {
    let admin = create_key(dir, "acme", "admin");
    let ingest = create_key(dir, "acme", "ingest");
    let read = create_key(dir, "acme", "read");
    let server = Server::start(dir, extra);
    let uploaded = server.post_text("/api/models", &admin, COUNTING_MODEL);
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    assert_eq!(uploaded.json()["active"], true);
    (server, admin, ingest, read)
}

#[test]
fn an_event_is_scored_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    let identify =
        json!({"userId": "u1", "messageId": "i1", "traits": {"industry": "Technology", "email": "ann@acme.io"}});
    assert_eq!(server.post_json("/v1/identify", &ingest, &identify).status, 200);
    let track =
        json!({"userId": "u1", "event": "Pricing Viewed", "messageId": "t1", "properties": {"plan": "enterprise"}});
    let answer = server.post_json("/v1/track", &ingest, &track);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["lead"]["scores"]["activity"], json!({"value": 15.0, "tier": "hot"}));

    let lead = server.get("/api/leads/u1", &read);
    assert_eq!(lead.status, 200);
    let lead = lead.json();
    assert_eq!(lead["email"], "ann@acme.io");
    assert_eq!(lead["scores"]["activity"]["value"], 15.0);
    let contributions = &lead["scores"]["activity"]["contributions"];
    assert_eq!(contributions.as_array().unwrap().len(), 2, "{contributions}");
    // The lead's own id works too, and its history shows the change.
    let own = lead["id"].as_i64().unwrap();
    assert_eq!(server.get(&format!("/api/leads/{own}"), &read).json()["user_id"], "u1");
    let history = server.get("/api/leads/u1/history", &read).json();
    assert_eq!(history["history"][0]["tier"], "hot");
}

#[test]
fn segment_payloads_batch_page_and_clock_skew() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    // Anonymous browsing, then an identify that links it: the views follow the lead.
    let batch = json!({
        "writeKey": ingest,
        "sentAt": "2026-11-20T12:00:10Z",
        "batch": [
            {"type": "page", "anonymousId": "anon-1", "messageId": "p1", "name": "Home",
             "originalTimestamp": "2026-11-20T12:00:00Z", "properties": {"url": "https://acme.io/"}},
            {"type": "page", "anonymousId": "anon-1", "messageId": "p2", "properties": {"url": "https://acme.io/docs"}},
            {"type": "identify", "anonymousId": "anon-1", "userId": "u2", "messageId": "i2", "traits": {"industry": "Technology"}},
            {"type": "alias", "userId": "u2", "messageId": "x"},
            {"type": "group", "userId": "u2", "groupId": "acme-inc", "messageId": "g1", "traits": {"name": "Acme", "employees": 120}},
            {"type": "track", "userId": "u2", "messageId": "no-event"},
        ]
    });
    let answer = request(
        &server.address,
        "POST",
        "/v1/batch",
        &[("Content-Type", "application/json")],
        batch.to_string().as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let items = answer.json()["items"].clone();
    assert_eq!(items[0]["status"], "accepted");
    assert_eq!(items[2]["status"], "accepted");
    assert_eq!(items[3]["status"], "refused");
    assert!(items[3]["reason"].as_str().unwrap().contains("batch[3]: `previousId` is missing"), "{items}");
    assert_eq!(items[4]["status"], "accepted");
    assert!(items[5]["reason"].as_str().unwrap().contains("batch[5]: `event` is missing"), "{items}");
    let lead = server.get("/api/leads/u2", &read).json();
    assert_eq!(lead["scores"]["activity"]["value"], 7.0, "{lead}");
    assert_eq!(lead["attributes"]["company_id"], "acme-inc");
    assert_eq!(lead["attributes"]["company_employees"], 120);
    // Clock skew: the client's clock was 10 s ahead of sentAt's; the page view lands at
    // receivedAt - 10 s, i.e. close to now, not on 2026-11-20.
    let last = lead["last_event_at"].as_str().unwrap();
    assert!(!last.starts_with("2026-11-20T12:00:00"), "{last}");

    // Basic auth with the write key as user name, as Segment's libraries send it.
    let basic = base64_encode(&format!("{ingest}:"));
    let page = json!({"userId": "u2", "messageId": "p3", "properties": {"url": "/pricing"}});
    let answer = request(
        &server.address,
        "POST",
        "/v1/page",
        &[("Authorization", &format!("Basic {basic}")), ("Content-Type", "application/json")],
        page.to_string().as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["lead"]["scores"]["activity"]["value"], 8.0);
}

#[test]
fn the_same_message_id_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    let view = json!({"userId": "u3", "event": "page_view", "messageId": "same"});
    let first = server.post_json("/v1/track", &ingest, &view).json();
    let second = server.post_json("/v1/track", &ingest, &view).json();
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    let mut item = view.clone();
    item["type"] = json!("track");
    let batch = json!({"batch": [item, item]});
    let answer = server.post_json("/v1/batch", &ingest, &batch).json();
    assert_eq!(answer["items"], json!([{"status": "duplicate"}, {"status": "duplicate"}]));
    assert_eq!(server.get("/api/leads/u3", &read).json()["scores"]["activity"]["value"], 1.0);
}

#[test]
fn workspaces_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    let other_ingest = create_key(dir.path(), "globex", "ingest");
    let other_read = create_key(dir.path(), "globex", "read");
    server.post_json("/v1/track", &ingest, &json!({"userId": "shared-id", "event": "page_view", "messageId": "a1"}));
    server.post_json(
        "/v1/track",
        &other_ingest,
        &json!({"userId": "shared-id", "event": "page_view", "messageId": "a1"}),
    );
    // Same user id and message id in two workspaces: two leads, neither sees the other.
    let ours = server.get("/api/leads/shared-id", &read).json();
    let theirs = server.get("/api/leads/shared-id", &other_read).json();
    assert_ne!(ours["id"], theirs["id"]);
    assert_eq!(ours["scores"]["activity"]["value"], 1.0);
    assert_eq!(theirs["scores"], json!({}), "globex has no model");
    let by_our_id = server.get(&format!("/api/leads/{}", ours["id"]), &other_read);
    assert_eq!(by_our_id.status, 404);
    let listed = server.get("/api/leads", &other_read).json();
    assert_eq!(listed["leads"].as_array().unwrap().len(), 1);
}

#[test]
fn client_mistakes_get_a_4xx_with_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, ingest, read) = acme(dir.path());
    let cases: Vec<(crate::common::Response, u16, &str)> = vec![
        (server.post_json("/v1/track", "lsk_nope", &json!({})), 401, "unauthorized"),
        (request(&server.address, "POST", "/v1/track", &[], b"{}"), 401, "unauthorized"),
        (
            server.post_json("/v1/track", &read, &json!({"userId": "u", "event": "e", "messageId": "m"})),
            403,
            "forbidden",
        ),
        (server.get("/api/leads/u", &ingest), 403, "forbidden"),
        (server.post_text("/v1/track", &ingest, "{not json"), 400, "invalid_json"),
        (server.post_json("/v1/track", &ingest, &json!({"userId": "u", "event": "e"})), 400, "invalid_message"),
        (server.post_json("/v1/track", &ingest, &json!({"event": "e", "messageId": "m"})), 400, "invalid_message"),
        (
            server.post_json(
                "/v1/track",
                &ingest,
                &json!({"userId": "u", "event": "e", "messageId": "m", "timestamp": "yesterday"}),
            ),
            400,
            "invalid_message",
        ),
        (
            server.post_json(
                "/v1/track",
                &ingest,
                &json!({"userId": "u", "event": "e", "messageId": "m", "x": "y".repeat(40_000)}),
            ),
            413,
            "too_large",
        ),
        (server.post_json("/v1/batch", &ingest, &json!({"messages": []})), 400, "invalid_batch"),
        (server.get("/api/leads/nobody", &read), 404, "not_found"),
        (server.get("/api/leads?order=sideways", &read), 400, "invalid_query"),
        (server.get("/api/leads?limt=5", &read), 400, "invalid_query"),
        (server.get("/no/such/route", &read), 404, "not_found"),
        (server.post_text("/api/models", &admin, "[scores.s]\n[[scores.s.rules]]\nname = 1\n"), 400, "invalid_model"),
        (server.post_text("/api/models/99/activate", &admin, ""), 404, "not_found"),
        (server.get("/api/webhooks/abc/deliveries", &admin), 400, "invalid_path"),
        (server.post_text("/api/models", &admin, &"#".repeat(2 * 1024 * 1024)), 413, "too_large"),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status, status, "{}", response.body);
        if !code.is_empty() {
            let body = response.json();
            assert_eq!(body["code"], code, "{body}");
            assert!(!body["message"].as_str().unwrap().is_empty());
        }
    }
    // A NUL character, which PostgreSQL's text cannot hold, is refused with its place on either
    // store, and the batch's other items are stored.
    let nul = server.post_json("/v1/track", &ingest, &json!({"userId": "u\0", "event": "e", "messageId": "n1"}));
    assert_eq!((nul.status, nul.json()["code"].as_str()), (400, Some("invalid_message")), "{}", nul.body);
    assert!(nul.json()["message"].as_str().unwrap().starts_with("`userId`"), "{}", nul.body);
    let batch = server.post_json(
        "/v1/batch",
        &ingest,
        &json!({"batch": [
            {"type": "identify", "userId": "nul", "messageId": "n2", "traits": {"name": "Ан\0на"}},
            {"type": "track", "userId": "nul", "event": "page_view", "messageId": "n3", "properties": {"tags": ["a\0"]}},
            {"type": "track", "userId": "nul", "event": "page_view", "messageId": "n4"},
        ]}),
    );
    assert_eq!(batch.status, 200, "{}", batch.body);
    let items = batch.json()["items"].clone();
    assert_eq!(items[0]["reason"], format!("`traits.name` {NUL_REFUSAL}"), "{items}");
    assert_eq!(items[1]["reason"], format!("`properties.tags[0]` {NUL_REFUSAL}"), "{items}");
    assert_eq!(items[2]["status"], "accepted", "{items}");
    assert_eq!(server.get("/api/leads/nul", &read).json()["scores"]["activity"]["value"], 1.0);

    let bad_model = server.post_text(
        "/api/models",
        &admin,
        "[scores.s]\ntiers = [{ label = \"a\", min = 5 }, { label = \"b\", min = 1 }]\n",
    );
    let diagnostics = bad_model.json()["diagnostics"].clone();
    let overlap = diagnostics.as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap();
    assert_eq!((overlap["line"].as_i64(), overlap["column"].as_i64()), (Some(2), Some(36)), "{diagnostics}");
    assert!(overlap["message"].as_str().unwrap().contains("overlaps"), "{diagnostics}");
}

#[test]
fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Few message ids in memory: sweeps move them to disk all along, also when the kill comes.
    let small_memory = ["--recent-message-ids", "16"];
    let (mut server, _, ingest, read) = acme_with(dir.path(), &small_memory);
    // Send events one by one from another thread and kill the server while they flow.
    let address = server.address.clone();
    let key = ingest.clone();
    let flowing = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = flowing.clone();
    let sender = std::thread::spawn(move || {
        let mut acknowledged: i64 = 0;
        for i in 0..100_000 {
            let body = json!({"userId": "durable", "event": "page_view", "messageId": format!("d{i}")}).to_string();
            let headers =
                [("Authorization", format!("Bearer {key}")), ("Content-Type", "application/json".to_string())];
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            match try_request(&address, "POST", "/v1/track", &headers, body.as_bytes()) {
                Ok(response) if response.status == 200 => {
                    acknowledged += 1;
                    counted.store(acknowledged as usize, std::sync::atomic::Ordering::Relaxed);
                }
                _ => break,
            }
        }
        acknowledged
    });
    // Killed while events flow, once enough of them have been acknowledged to say something.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while flowing.load(std::sync::atomic::Ordering::Relaxed) < 200 {
        assert!(std::time::Instant::now() < deadline, "events were not acknowledged");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.kill(); // SIGKILL
    let acknowledged = sender.join().unwrap();
    assert!(acknowledged > 10, "only {acknowledged} events were acknowledged before the kill");

    let restarted = Server::start(dir.path(), &small_memory);
    let stored =
        restarted.get("/api/leads/durable", &read).json()["scores"]["activity"]["value"].as_f64().unwrap() as i64;
    // Every acknowledged event is there; at most the one in flight was stored unacknowledged.
    assert!(stored == acknowledged || stored == acknowledged + 1, "acknowledged {acknowledged}, stored {stored}");
    // Resending everything (as a client retrying would) stores nothing twice.
    let batch: Vec<_> = (0..=acknowledged)
        .map(|i| json!({"type": "track", "userId": "durable", "event": "page_view", "messageId": format!("d{i}")}))
        .collect();
    for chunk in batch.chunks(500) {
        let answer = restarted.post_json("/v1/batch", &ingest, &json!({ "batch": chunk }));
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let after =
        restarted.get("/api/leads/durable", &read).json()["scores"]["activity"]["value"].as_f64().unwrap() as i64;
    assert_eq!(after, acknowledged + 1);

    // A second service on the same data directory would miss the ids the first keeps in memory,
    // and deleting a file (as `leadscore.lock` was) must not let it in. (Several services share
    // a PostgreSQL database: nothing to refuse there.)
    if on_postgres() {
        return;
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("leadscore.db") {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let second = bin().args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(dir.path()).output().unwrap();
    assert!(!second.status.success());
    let error = String::from_utf8_lossy(&second.stderr);
    assert!(
        error.contains("another leadscore process stores events in") && error.contains("the directory's lock"),
        "{error}"
    );
}

fn base64_encode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn lifecycle_stages_move_by_score_and_by_people() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let server = Server::start(dir.path(), &[]);
    let model = r#"
[scores.total]
tiers = [{ label = "cold" }, { label = "mql", min = 10 }]
[[scores.total.qualifiers]]
name = "demo request"
tier = "mql"
event = "Demo Requested"
[[scores.total.rules]]
name = "views"
event = "page_view"
points = 4
"#;
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    let track = |user: &str, event: &str, id: &str| {
        server.post_json("/v1/track", &ingest, &json!({"userId": user, "event": event, "messageId": id})).json()
    };
    track("u1", "page_view", "1");
    assert_eq!(track("u1", "page_view", "2")["lead"].get("stage"), None);
    let third = track("u1", "page_view", "3");
    assert_eq!(third["lead"]["stage"], "mql", "{third}");
    let qualified = track("u2", "Demo Requested", "4");
    assert_eq!(qualified["lead"]["stage"], "mql");

    let stages = server.get("/api/leads/u2/stages", &read).json();
    assert_eq!(stages["changes"][0]["actor"], "leadscore");
    assert_eq!(stages["changes"][0]["reason"], "score `total` reached tier `mql` through qualifier `demo request`");

    let accept = server.post_json("/api/leads/u1/stage", &admin, &json!({"stage": "sal", "actor": "jane@acme.io"}));
    assert_eq!(accept.status, 200, "{}", accept.body);
    let back = server.post_json("/api/leads/u1/stage", &admin, &json!({"stage": "lead"}));
    assert_eq!((back.status, back.json()["code"].as_str()), (409, Some("conflict")));
    let no_reason = server.post_json("/api/leads/u1/stage", &admin, &json!({"stage": "nurture"}));
    assert_eq!((no_reason.status, no_reason.json()["code"].as_str()), (400, Some("reason_required")));
    let reject =
        server.post_json("/api/leads/u1/stage", &admin, &json!({"stage": "nurture", "reason": "no budget this year"}));
    assert_eq!(reject.status, 200);
    assert_eq!(server.post_json("/api/leads/u1/stage", &read, &json!({"stage": "sql"})).status, 403);
    let unknown = server.post_json("/api/leads/u1/stage", &admin, &json!({"stage": "won"}));
    assert_eq!(unknown.json()["code"], "invalid_stage");

    let history = server.get("/api/leads/u1/stages", &read).json();
    assert_eq!(history["stage"], "nurture");
    let stages: Vec<&str> =
        history["changes"].as_array().unwrap().iter().map(|c| c["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["nurture", "sal", "mql"]);
    assert_eq!(history["changes"][1]["actor"], "jane@acme.io");
    assert_eq!(server.get("/api/leads?stage=nurture", &read).json()["leads"][0]["user_id"], "u1");

    // A rep's change stands when the lead's next event comes (ingestion remembers leads between
    // requests, and must not write back the stage it remembered).
    track("u3", "Demo Requested", "5");
    let accepted = server.post_json("/api/leads/u3/stage", &admin, &json!({"stage": "sal"}));
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let later = track("u3", "page_view", "6");
    assert_eq!(later["lead"].get("stage"), None, "{later}");
    assert_eq!(later["lead"]["scores"]["total"]["value"], 4.0, "{later}");
    assert_eq!(server.get("/api/leads/u3", &read).json()["stage"], "sal");
    assert_eq!(server.get("/api/leads/u3/stages", &read).json()["stage"], "sal");
}

/// Recomputes a `Leadscore-Signature` header the way docs/api.md tells receivers to.
fn signature_is_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let Some((t, v1)) = header.split_once(',') else { return false };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap_or_default()).is_ok()
}

#[test]
fn webhooks_are_signed_retried_in_order_and_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &["--webhook-retry-base-ms", "40", "--allow-private-webhooks"]);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    // The receiver is broken for its first three requests.
    let receiver = Receiver::start(3);
    let hook = server.post_json(
        "/api/webhooks",
        &admin,
        &json!({"url": receiver.url, "events": ["tier_changed", "score_crossed", "stage_changed"], "score": "activity", "threshold": 2}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook = hook.json();
    let secret = hook["secret"].as_str().unwrap().to_string();

    for i in 0..3 {
        let track = json!({"userId": "w1", "event": "page_view", "messageId": format!("w{i}")});
        assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
    }
    let moved = server.post_json("/api/leads/w1/stage", &admin, &json!({"stage": "sal", "actor": "rep"}));
    assert_eq!(moved.status, 200);

    // tier cold (1st view), crossed 2 upwards (2nd), tier hot (3rd), stage sal.
    let delivered = receiver.wait_for(4);
    let kinds: Vec<String> = delivered
        .iter()
        .map(|(_, body)| {
            let data = &body["data"];
            match body["type"].as_str().unwrap() {
                "tier_changed" => format!("tier {}", data["tier"].as_str().unwrap()),
                "score_crossed" => format!("crossed {} {}", data["threshold"], data["direction"].as_str().unwrap()),
                "stage_changed" => format!("stage {}", data["stage"].as_str().unwrap()),
                other => other.to_string(),
            }
        })
        .collect();
    assert_eq!(kinds, ["tier cold", "crossed 2.0 up", "tier hot", "stage sal"], "in order, despite the failures");
    // Every request, failed or not, carries a signature over its exact body.
    let raw = receiver.requests.lock().unwrap().clone();
    assert_eq!(raw.len(), 7, "3 failures, then 4 deliveries");
    for request in &raw {
        let (headers, body) = (&request.headers, &request.body);
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
        assert!(signature_is_valid(&secret, &header("leadscore-signature"), body.as_bytes()), "{body}");
        assert!(!signature_is_valid("whsec_wrong", &header("leadscore-signature"), body.as_bytes()));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(header("leadscore-event"), body["type"].as_str().unwrap());
        assert_eq!(body["data"]["lead"]["user_id"], "w1");
    }
    // The log shows the retries; a redelivery sends the first notification again.
    let log = server.get(&format!("/api/webhooks/{}/deliveries", hook["id"]), &admin).json();
    let first = log["deliveries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["status"], "delivered");
    assert_eq!(first["attempts"], 4, "{log}");
    let again = server.post_text(&format!("/api/webhooks/deliveries/{}/redeliver", first["id"]), &admin, "");
    assert_eq!(again.status, 202, "{}", again.body);
    let delivered = receiver.wait_for(5);
    assert_eq!(delivered[4].1["data"], delivered[0].1["data"]);

    let bad = server.post_json("/api/webhooks", &admin, &json!({"url": "ftp://x", "events": ["tier_changed"]}));
    assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("invalid_field")));
    let bad = server.post_json("/api/webhooks", &admin, &json!({"url": "http://x", "events": ["score_crossed"]}));
    assert!(bad.json()["message"].as_str().unwrap().contains("needs `score`"));
}

#[test]
fn a_receiver_that_never_answers_does_not_delay_other_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let keys =
        |workspace: &str| (create_key(dir.path(), workspace, "admin"), create_key(dir.path(), workspace, "ingest"));
    let (acme_admin, acme_ingest) = keys("acme");
    let (beta_admin, beta_ingest) = keys("beta");
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    let silent = SilentReceiver::start();
    let healthy = Receiver::start(0);
    for (admin, url) in [(&acme_admin, &silent.url), (&beta_admin, &healthy.url)] {
        assert_eq!(server.post_text("/api/models", admin, COUNTING_MODEL).status, 201);
        let hook = server.post_json("/api/webhooks", admin, &json!({"url": url, "events": ["tier_changed"]}));
        assert_eq!(hook.status, 201, "{}", hook.body);
    }
    // Several of acme's notifications are held by its receiver, which never answers.
    for i in 0..3 {
        let track = json!({"userId": format!("a{i}"), "event": "page_view", "messageId": format!("a{i}")});
        assert_eq!(server.post_json("/v1/track", &acme_ingest, &track).status, 200);
    }
    assert_eq!(silent.wait_for(3), 3, "acme's receiver holds its notifications");

    let sent = std::time::Instant::now();
    for i in 0..3 {
        let track = json!({"userId": format!("b{i}"), "event": "page_view", "messageId": format!("b{i}")});
        assert_eq!(server.post_json("/v1/track", &beta_ingest, &track).status, 200);
    }
    let delivered = healthy.wait_for(3);
    let waited = sent.elapsed();
    assert_eq!(delivered.len(), 3);
    // A receiver gets 10 s to answer: beta's notifications do not wait for acme's to time out.
    assert!(waited < std::time::Duration::from_secs(5), "beta's notifications took {waited:?}");
    assert_eq!(silent.held.load(std::sync::atomic::Ordering::SeqCst), 3, "acme's are still held");
}

/// Polls a webhook's delivery log until `done` holds for its oldest entry (at most 30 s).
fn wait_for_log(
    server: &Server,
    admin: &str,
    hook: &serde_json::Value,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = server.get(&format!("/api/webhooks/{}/deliveries", hook["id"]), admin).json();
        let oldest = log["deliveries"].as_array().and_then(|d| d.last()).cloned().unwrap_or_default();
        if done(&oldest) || std::time::Instant::now() > deadline {
            return oldest;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_redirect_is_a_failed_attempt_and_the_notification_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, ingest, _) =
        acme_with(dir.path(), &["--webhook-retry-base-ms", "40", "--allow-private-webhooks"]);
    let moved = Receiver::answering(&[302; 1000]);
    let once = Receiver::answering(&[307]);
    let subscribe = |url: &str| {
        let hook = server.post_json("/api/webhooks", &admin, &json!({"url": url, "events": ["tier_changed"]}));
        assert_eq!(hook.status, 201, "{}", hook.body);
        hook.json()
    };
    let (moved_hook, once_hook) = (subscribe(&moved.url), subscribe(&once.url));
    let track = json!({"userId": "r1", "event": "page_view", "messageId": "r1"});
    assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);

    // A receiver that always redirects never gets the notification delivered: each redirect is a
    // failed attempt, logged with its status, and retried.
    let entry = wait_for_log(&server, &admin, &moved_hook, |e| e["attempts"].as_i64() >= Some(2));
    assert_eq!(entry["status"], "pending", "{entry}");
    assert_eq!(entry["last_status"], 302, "{entry}");
    assert!(entry["last_error"].as_str().unwrap().contains("redirect"), "{entry}");
    // One that redirects once gets the notification, whole, on the retry.
    let delivered = once.wait_for(1);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].1["data"]["tier"], "cold");
    let entry = wait_for_log(&server, &admin, &once_hook, |e| e["status"] == "delivered");
    assert_eq!((entry["status"].as_str(), entry["attempts"].as_i64()), (Some("delivered"), Some(2)), "{entry}");
    // Nothing was ever sent anywhere but to the subscribed URL, always as the signed POST.
    for receiver in [&moved, &once] {
        for request in receiver.requests.lock().unwrap().iter() {
            assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hook"), "{request:?}");
            assert!(request.body.contains("\"tier_changed\""), "{request:?}");
        }
    }
}

#[test]
fn a_webhook_to_a_private_address_is_refused_unless_the_operator_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, admin, _, _) = acme(dir.path());
    let receiver = Receiver::start(0);
    let port = receiver.url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/hook").to_string();
    for (url, kind) in [
        (receiver.url.clone(), "loopback"),
        (format!("http://localhost:{port}/hook"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/hook"), "loopback"),
        ("http://169.254.169.254/latest/meta-data/".to_string(), "link-local"),
        ("http://10.0.0.8/hook".to_string(), "private"),
        ("http://[fd00::8]/hook".to_string(), "private"),
        ("http://100.64.0.8/hook".to_string(), "shared"),
        ("http://0.0.0.0/hook".to_string(), "unspecified"),
    ] {
        let refused = server.post_json("/api/webhooks", &admin, &json!({"url": url, "events": ["tier_changed"]}));
        assert_eq!(
            (refused.status, refused.json()["code"].as_str()),
            (400, Some("invalid_field")),
            "{url}: {}",
            refused.body
        );
        let message = refused.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("`url`") && message.contains(kind), "{url}: {message}");
        assert!(message.contains("--allow-private-webhooks"), "{message}");
    }
    assert!(server.get("/api/webhooks", &admin).json()["webhooks"].as_array().unwrap().is_empty());

    server.kill();
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    let allowed = server.post_json("/api/webhooks", &admin, &json!({"url": receiver.url, "events": ["tier_changed"]}));
    assert_eq!(allowed.status, 201, "{}", allowed.body);
}

#[test]
fn a_delivery_to_an_address_no_longer_allowed_is_a_failed_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, admin, ingest, _) = acme_with(dir.path(), &["--allow-private-webhooks"]);
    let receiver = Receiver::start(0);
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let mut hooks = Vec::new();
    for url in [&receiver.url, &by_name] {
        let hook = server.post_json("/api/webhooks", &admin, &json!({"url": url, "events": ["tier_changed"]}));
        assert_eq!(hook.status, 201, "{}", hook.body);
        hooks.push(hook.json());
    }
    // The operator no longer allows private addresses: both the address and the name that
    // resolves to it are refused when a notification is sent.
    server.kill();
    let server = Server::start(dir.path(), &["--webhook-retry-base-ms", "40"]);
    let track = json!({"userId": "p1", "event": "page_view", "messageId": "p1"});
    assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
    for hook in &hooks {
        let entry = wait_for_log(&server, &admin, hook, |e| e["attempts"].as_i64() >= Some(2));
        assert_eq!((entry["status"].as_str(), entry["last_status"].as_i64()), (Some("pending"), None), "{entry}");
        let error = entry["last_error"].as_str().unwrap();
        assert!(error.starts_with("refused: ") && error.contains("loopback"), "{error}");
    }
    assert!(receiver.requests.lock().unwrap().is_empty(), "nothing reached the receiver");
}

#[test]
fn a_model_upload_warns_of_what_leadscore_check_warns_of() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let model = r#"[scores.fit]
tiers = [{ label = "cold" }, { label = "hot", min = 10 }, { label = "vip", qualifier_only = true }]
[[scores.fit.rules]]
name = "tech"
when = { field = "industry", equals = "Technology" }
points = 5

[scores.empty]
"#;
    let file = dir.path().join("model.toml");
    std::fs::write(&file, model).unwrap();
    let check = bin().arg("check").arg(&file).output().unwrap();
    let check = String::from_utf8(check.stdout).unwrap();
    let uploaded = server.post_text("/api/models", &admin, model);
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let warnings = uploaded.json()["warnings"].as_array().unwrap().clone();
    let messages: Vec<&str> = warnings.iter().map(|w| w["message"].as_str().unwrap()).collect();

    // The compiler's warnings, as `check` prints them.
    let compiler: Vec<&str> = check.lines().filter_map(|l| l.split_once(": warning: ").map(|(_, m)| m)).collect();
    assert_eq!(compiler.len(), 1, "{check}");
    assert!(messages.contains(&compiler[0]), "{messages:?}");
    // Each tier `check` finds unreachable, with its reason, where the tier is written.
    let unreachable: Vec<(&str, &str)> = check
        .lines()
        .filter_map(|l| l.split_once("  UNREACHABLE: "))
        .map(|(tier, why)| (tier.trim_start_matches("  - ").split(':').next().unwrap(), why))
        .collect();
    assert_eq!(unreachable.iter().map(|(tier, _)| *tier).collect::<Vec<_>>(), ["hot", "vip"], "{check}");
    for (tier, why) in unreachable {
        let warning = warnings
            .iter()
            .find(|w| w["message"].as_str().unwrap().contains(&format!("tier `{tier}`")))
            .unwrap_or_else(|| panic!("no warning for tier {tier}: {warnings:?}"));
        assert!(warning["message"].as_str().unwrap().ends_with(why), "{warning}");
        assert_eq!((warning["severity"].as_str(), warning["line"].as_i64()), (Some("warning"), Some(2)), "{warning}");
    }
    assert_eq!(warnings.len(), 3, "{warnings:?}");
}

#[test]
fn a_webhook_for_what_the_active_model_lacks_is_created_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, _, _) = acme_with(dir.path(), &["--allow-private-webhooks"]);
    let beta = create_key(dir.path(), "beta", "admin");
    let receiver = Receiver::start(0);
    let subscribe = |key: &str, request: serde_json::Value| {
        let mut request = request;
        request["url"] = json!(receiver.url);
        let created = server.post_json("/api/webhooks", key, &request);
        assert_eq!(created.status, 201, "{}", created.body);
        let warnings = created.json()["warnings"].as_array().unwrap_or_else(|| panic!("{}", created.body)).clone();
        warnings.iter().map(|w| w.as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    // The counting model has the score `activity`, with tiers, from 0 up.
    let fine =
        subscribe(&admin, json!({"events": ["tier_changed", "score_crossed"], "score": "activity", "threshold": 3}));
    assert!(fine.is_empty(), "{fine:?}");
    let missing = subscribe(&admin, json!({"events": ["score_crossed"], "score": "fit", "threshold": 3}));
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("no score `fit`") && missing[0].contains("`activity`"), "{missing:?}");
    let never = subscribe(&admin, json!({"events": ["score_crossed"], "score": "activity", "threshold": -1}));
    assert_eq!(never.len(), 1, "{never:?}");
    assert!(never[0].contains("never below -1"), "{never:?}");
    // A workspace without a model yet.
    let unchecked = subscribe(&beta, json!({"events": ["score_crossed"], "score": "activity", "threshold": 3}));
    assert_eq!(unchecked.len(), 1, "{unchecked:?}");
    assert!(unchecked[0].contains("no active model"), "{unchecked:?}");
    // One whose model has no tiers.
    let untiered = "[scores.s]\n[[scores.s.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n";
    assert_eq!(server.post_text("/api/models", &beta, untiered).status, 201);
    let tierless = subscribe(&beta, json!({"events": ["tier_changed"]}));
    assert_eq!(tierless.len(), 1, "{tierless:?}");
    assert!(tierless[0].contains("no score") && tierless[0].contains("tiers"), "{tierless:?}");
    // They are subscriptions all the same: a model activated later may have what they name.
    assert_eq!(server.get("/api/webhooks", &admin).json()["webhooks"].as_array().unwrap().len(), 3);
}

#[test]
fn model_versions_preview_activate_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, ingest, read) = acme(dir.path());
    for (user, n) in [("p1", 1), ("p2", 4)] {
        for i in 0..n {
            server.post_json(
                "/v1/track",
                &ingest,
                &json!({"userId": user, "event": "page_view", "messageId": format!("{user}-{i}")}),
            );
        }
    }
    // Version 2 doubles page views: p1 goes from 1 (cold) to 2 (cold), p2 from 4 (hot) to 8 (hot),
    // and a new threshold makes p1 warm.
    let v2 = COUNTING_MODEL
        .replace("points = 1\n", "points = 2\n")
        .replace("{ label = \"hot\", min = 3 }", "{ label = \"warm\", min = 2 }, { label = \"hot\", min = 3 }");
    let uploaded = server.post_text("/api/models", &admin, &v2);
    assert_eq!(uploaded.json()["version"], 2);
    assert_eq!(uploaded.json()["active"], false);

    // Each version's text reads back as it was uploaded.
    let second = server.get("/api/models/2", &read);
    assert_eq!(second.status, 200, "{}", second.body);
    let second = second.json();
    assert_eq!((second["version"].as_i64(), second["active"].as_bool()), (Some(2), Some(false)));
    assert_eq!(second["source"], v2.as_str());
    assert_eq!(second["predictive"], json!({}));
    assert_eq!(server.get("/api/models/1", &read).json()["active"], true);
    let missing = server.get("/api/models/9", &read);
    assert_eq!((missing.status, missing.json()["code"].as_str()), (404, Some("not_found")));

    let preview = server.get("/api/models/2/preview", &read).json();
    assert_eq!(preview["compared_with"], 1);
    assert_eq!(preview["leads"], 2);
    assert_eq!(preview["leads_changing_tier"], 1, "{preview}");
    assert_eq!(preview["changes"][0]["user_id"], "p1");
    assert_eq!(preview["changes"][0]["from"], "cold");
    assert_eq!(preview["changes"][0]["to"], "warm");
    assert_eq!(preview["candidate"]["activity"]["tiers"], json!({"hot": 1, "warm": 1}));
    assert_eq!(preview["active"]["activity"]["tiers"], json!({"cold": 1, "hot": 1}));
    // The preview changed nothing.
    assert_eq!(server.get("/api/leads/p1", &read).json()["scores"]["activity"]["value"], 1.0);

    wait_until_no_rescoring_runs(&server, &admin);
    let activated = server.post_text("/api/models/2/activate", &admin, "");
    assert_eq!(activated.status, 202, "{}", activated.body);
    let models = wait_for_rescoring(&server, &read);
    assert_eq!(models["rescoring"]["done"], 2, "{models}");
    assert_eq!(models["models"][1]["active"], true);
    let p1 = server.get("/api/leads/p1", &read).json();
    assert_eq!((p1["model_version"].as_i64(), p1["scores"]["activity"]["value"].as_f64()), (Some(2), Some(2.0)));
    let history = server.get("/api/leads/p1/history", &read).json();
    assert_eq!(history["history"][0]["cause"], "model v2");
    assert_eq!(history["history"][0]["tier"], "warm");

    let rolled_back = server.post_text("/api/models/rollback", &admin, "");
    assert_eq!(rolled_back.json()["version"], 1);
    wait_for_rescoring(&server, &read);
    assert_eq!(server.get("/api/leads/p1", &read).json()["scores"]["activity"]["value"], 1.0);
    assert_eq!(server.get("/api/leads?tier=hot", &read).json()["leads"][0]["user_id"], "p2");
}

#[test]
fn time_alone_changes_tiers_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let server = Server::start(dir.path(), &["--rescore-every", "1", "--allow-private-webhooks"]);
    let model = "[scores.s]\ntiers = [{ label = \"cold\" }, { label = \"hot\", min = 1 }]\n[[scores.s.rules]]\nname = \"recent visit\"\nevent = \"page_view\"\npoints = 1\nwindow = \"2s\"\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    let receiver = Receiver::start(0);
    server.post_json("/api/webhooks", &admin, &json!({"url": receiver.url, "events": ["tier_changed"]}));
    let answer = server
        .post_json("/v1/track", &ingest, &json!({"userId": "t1", "event": "page_view", "messageId": "t1"}))
        .json();
    assert_eq!(answer["lead"]["scores"]["s"]["tier"], "hot");
    // Within a few seconds the visit leaves the window and the scheduler records the change.
    let delivered = receiver.wait_for(2);
    assert_eq!(delivered.len(), 2, "the time-driven change was notified");
    assert_eq!(delivered[1].1["data"]["tier"], "cold");
    let history = server.get("/api/leads/t1/history", &read).json();
    assert_eq!(history["history"][0]["cause"], "time");
    assert_eq!(history["history"][0]["tier"], "cold");
}

#[test]
fn native_api_and_crm_imports() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, ingest, read) = acme(dir.path());
    let upsert = request(
        &server.address,
        "PUT",
        "/api/leads/n1",
        &[("Authorization", &format!("Bearer {ingest}")), ("Content-Type", "application/json")],
        json!({"email": "nia@acme.io", "attributes": {"industry": "Technology"}}).to_string().as_bytes(),
    );
    assert_eq!(upsert.status, 200, "{}", upsert.body);
    assert_eq!(upsert.json()["lead"]["scores"]["activity"]["value"], 5.0);
    let events = json!({"events": [
        {"lead": "n1", "type": "page_view", "id": "e1", "at": "2026-11-01T10:00:00+01:00"},
        {"lead": "n1", "type": "Pricing Viewed", "id": "e2", "properties": {"plan": "enterprise"}},
        {"lead": "n1", "type": "page_view", "id": "e1"},
        {"lead": "n1", "type": "page_view", "at": "soon"},
        {"lead": "", "type": "page_view"},
    ]});
    let answer = server.post_json("/api/events", &ingest, &events).json();
    let statuses: Vec<&str> =
        answer["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "accepted", "duplicate", "refused", "refused"], "{answer}");
    assert!(answer["items"][3]["reason"].as_str().unwrap().starts_with("events[3]: `at`"), "{answer}");
    assert_eq!(answer["leads"][0]["scores"]["activity"]["value"], 16.0);

    // A HubSpot contacts export and a Salesforce leads export, as they come.
    let hubspot = "Record ID,First Name,Email,Job Title,Industry,Number of Employees,Country/Region\n\
                   101,Ana,ana@northwind.io,VP Engineering,Technology,120,United States\n\
                   102,Bo,,Analyst,Retail,8,Sweden\n\
                   ,Nobody,x@y.z,,,,\n";
    let imported = server.post_text("/api/import/leads", &admin, hubspot).json();
    assert_eq!((imported["imported"].as_i64(), imported["skipped"].as_i64()), (Some(2), Some(1)), "{imported}");
    assert_eq!(imported["problems"][0]["line"], 4);
    let ana = server.get("/api/leads/101", &read).json();
    assert_eq!(ana["email"], "ana@northwind.io");
    assert_eq!(ana["attributes"]["job_title"], "VP Engineering");
    assert_eq!(ana["attributes"]["employees"], "120");
    assert_eq!(ana["scores"]["activity"]["value"], 5.0);
    let salesforce = "Lead ID,FirstName,Title,Industry,NumberOfEmployees\n00Q5e00000AbCdE,Cy,CTO,Technology,40\n";
    assert_eq!(server.post_text("/api/import/leads", &admin, salesforce).json()["imported"], 1);
    assert_eq!(server.get("/api/leads/00Q5e00000AbCdE", &read).json()["attributes"]["job_title"], "CTO");

    let events_csv = "lead_id,type,ts,url\n101,page_view,2026-10-30T00:00:00Z,/\n101,page_view,2026-10-31T00:00:00Z,/docs\n101,page_view,bad,/\n";
    let first = server.post_text("/api/import/events", &admin, events_csv).json();
    assert_eq!((first["imported"].as_i64(), first["skipped"].as_i64()), (Some(2), Some(1)), "{first}");
    let again = server.post_text("/api/import/events", &admin, events_csv).json();
    assert_eq!(
        (again["imported"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(2)),
        "importing twice changes nothing"
    );
    assert_eq!(server.get("/api/leads/101", &read).json()["scores"]["activity"]["value"], 7.0);
    // Identical rows are as many events, as `leadscore score` counts them; again, none is new.
    let twice = "lead_id,type,ts\n102,page_view,2026-10-30T00:00:00Z\n102,page_view,2026-10-30T00:00:00Z\n";
    for (imported, duplicates) in [(2, 0), (0, 2)] {
        let answer = server.post_text("/api/import/events", &admin, twice).json();
        assert_eq!((answer["imported"].as_i64(), answer["duplicates"].as_i64()), (Some(imported), Some(duplicates)));
    }
    assert_eq!(server.get("/api/leads/102", &read).json()["scores"]["activity"]["value"], 2.0);
    let no_columns = server.post_text("/api/import/events", &admin, "who,what\n1,2\n");
    assert_eq!((no_columns.status, no_columns.json()["code"].as_str()), (400, Some("invalid_csv")));
}

#[test]
fn metrics_and_logs_without_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Server::start_with_log(dir.path(), &["--log-json"], log);
    server.post_text("/api/models", &admin, COUNTING_MODEL);
    // The activation's rescoring writes when it ends; the lookups counted below assume it has.
    wait_for_rescoring(&server, &read);
    let identify = json!({"userId": "secret.person@example.com", "messageId": "m1", "traits": {"email": "secret.person@example.com"}});
    server.post_json("/v1/identify", &ingest, &identify);
    server.post_json(
        "/v1/track",
        &ingest,
        &json!({"userId": "secret.person@example.com", "event": "page_view", "messageId": "m2"}),
    );
    server.post_json(
        "/v1/track",
        &ingest,
        &json!({"userId": "secret.person@example.com", "event": "page_view", "messageId": "m2"}),
    );
    server.post_json("/v1/track", &ingest, &json!({"event": "page_view", "messageId": "m3"}));
    assert_eq!(server.get("/api/leads/secret.person@example.com", &read).status, 200);
    assert_eq!(server.get("/api/leads/nobody@example.com", &read).status, 404);

    let metrics = request(&server.address, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    let text = metrics.body;
    assert!(text.contains("leadscore_messages_total{outcome=\"accepted\"} 2"), "{text}");
    assert!(text.contains("leadscore_messages_total{outcome=\"duplicate\"} 1"), "{text}");
    if on_postgres() {
        // Other instances may change any lead: each request reads its leads again.
        assert!(text.contains("leadscore_lead_lookups_total{outcome=\"database\"} 3"), "{text}");
        assert!(!text.contains("leadscore_lead_lookups_total{outcome=\"remembered\"}"), "{text}");
    } else {
        // The identify found its lead in the database; the tracks (one a duplicate) in the
        // writer's memory.
        assert!(text.contains("leadscore_lead_lookups_total{outcome=\"database\"} 1"), "{text}");
        assert!(text.contains("leadscore_lead_lookups_total{outcome=\"remembered\"} 2"), "{text}");
    }
    assert!(
        text.contains("leadscore_http_requests_total{route=\"/v1/track\",method=\"POST\",status=\"400\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("leadscore_http_requests_total{route=\"/api/leads/{id}\",method=\"GET\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(text.contains("leadscore_http_request_duration_seconds_bucket{le="), "{text}");
    assert!(text.contains("leadscore_outbox_depth 0"), "{text}");
    assert!(!text.contains("example.com"), "metrics hold no personal data");

    server.kill();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("\"level\":\"INFO\""), "the log is JSON: {log}");
    assert!(!log.contains("secret.person") && !log.contains("nobody@"), "the log holds no personal data: {log}");
}

#[test]
fn metric_labels_come_from_a_closed_set_whatever_clients_send() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    // hyper accepts any token as a method: each would have added a series for good.
    for i in 0..20 {
        let answer = request(&server.address, &format!("FOO{i}"), "/healthz", &[], b"");
        assert_eq!(answer.status, 405);
        request(&server.address, &format!("BAR{i}"), &format!("/no/such/path/{i}"), &[], b"");
    }
    let text = request(&server.address, "GET", "/metrics", &[], b"").body;
    assert!(!text.contains("FOO") && !text.contains("BAR") && !text.contains("/no/such"), "{text}");
    assert!(
        text.contains("leadscore_http_requests_total{route=\"/healthz\",method=\"other\",status=\"405\"} 20"),
        "{text}"
    );
    assert!(
        text.contains("leadscore_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 20"),
        "{text}"
    );
    // Prometheus reserves `_total` for counters.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap(), words.next().unwrap());
        assert!(kind == "counter" || !name.ends_with("_total"), "{line}");
    }
    assert!(text.contains("# TYPE leadscore_rescoring_leads_planned gauge"), "{text}");
}

#[test]
fn alias_merges_an_earlier_identity() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    // Activity under an old CRM id and an anonymous id, then aliases to the new user id.
    for (id, user) in [("a1", "old-crm-id"), ("a2", "old-crm-id")] {
        server.post_json("/v1/track", &ingest, &json!({"userId": user, "event": "page_view", "messageId": id}));
    }
    server.post_json(
        "/v1/track",
        &ingest,
        &json!({"anonymousId": "cookie-9", "event": "page_view", "messageId": "a3"}),
    );
    server.post_json(
        "/v1/identify",
        &ingest,
        &json!({"userId": "new-id", "messageId": "a4", "traits": {"industry": "Technology"}}),
    );
    let batch = json!({"batch": [
        {"type": "alias", "previousId": "old-crm-id", "userId": "new-id", "messageId": "a5"},
        {"type": "alias", "previousId": "cookie-9", "userId": "new-id", "messageId": "a6"},
    ]});
    let answer = server.post_json("/v1/batch", &ingest, &batch).json();
    assert_eq!(
        answer["items"],
        json!([{"status": "accepted", "lead_id": answer["items"][0]["lead_id"]}, {"status": "accepted", "lead_id": answer["items"][0]["lead_id"]}])
    );
    let lead = server.get("/api/leads/new-id", &read).json();
    assert_eq!(
        lead["scores"]["activity"]["value"], 8.0,
        "5 for Technology and the 3 views of both earlier identities: {lead}"
    );
    assert_eq!(server.get("/api/leads/old-crm-id", &read).status, 404);
    // The single-message route does the same.
    server.post_json(
        "/v1/track",
        &ingest,
        &json!({"anonymousId": "cookie-10", "event": "page_view", "messageId": "a8"}),
    );
    let alias = server.post_json(
        "/v1/alias",
        &ingest,
        &json!({"previousId": "cookie-10", "userId": "new-id", "messageId": "a9"}),
    );
    assert_eq!(alias.status, 200, "{}", alias.body);
    assert_eq!(server.get("/api/leads/new-id", &read).json()["scores"]["activity"]["value"], 9.0);
    // Later calls with the earlier id land on the merged lead.
    server.post_json(
        "/v1/track",
        &ingest,
        &json!({"anonymousId": "old-crm-id", "event": "page_view", "messageId": "a7"}),
    );
    assert_eq!(server.get("/api/leads/new-id", &read).json()["scores"]["activity"]["value"], 10.0);
}

#[test]
fn a_reps_nurture_is_not_undone_by_scores_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let server = Server::start(dir.path(), &["--rescore-every", "1"]);
    let model = "[scores.s]\ntiers = [{ label = \"cold\" }, { label = \"mql\", min = 1 }]\n[[scores.s.rules]]\nname = \"recent visit\"\nevent = \"page_view\"\npoints = 1\nwindow = \"3s\"\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    let view = |id: &str| {
        server.post_json("/v1/track", &ingest, &json!({"userId": "r1", "event": "page_view", "messageId": id})).json()
    };
    assert_eq!(view("r1")["lead"]["stage"], "mql");
    let nurture = server.post_json("/api/leads/r1/stage", &admin, &json!({"stage": "nurture", "reason": "not now"}));
    assert_eq!(nurture.status, 200);
    // The scheduler re-evaluates every second while the visit is still in its window: no change.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(server.get("/api/leads/r1/stages", &read).json()["stage"], "nurture");
    // Once the score has dropped, new engagement that brings it back recycles the lead.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // The listing shows the stored tier, which the scheduler writes.
    while server.get("/api/leads?score=s&tier=cold", &read).json()["leads"][0]["user_id"] != "r1" {
        assert!(std::time::Instant::now() < deadline, "the scheduler did not store the drop");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(server.get("/api/leads/r1", &read).json()["scores"]["s"]["tier"], "cold");
    assert_eq!(view("r2")["lead"]["stage"], "mql");
    let changes = server.get("/api/leads/r1/stages", &read).json()["changes"].clone();
    let stages: Vec<&str> = changes.as_array().unwrap().iter().map(|c| c["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["mql", "nurture", "mql"]);
}

#[test]
fn gzip_bodies_are_accepted() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    let batch = json!({"batch": [{"type": "track", "userId": "z1", "event": "page_view", "messageId": "z1"}]});
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(batch.to_string().as_bytes()).unwrap();
    let body = encoder.finish().unwrap();
    let headers = [
        ("Authorization", format!("Bearer {ingest}")),
        ("Content-Type", "application/json".to_string()),
        ("Content-Encoding", "gzip".to_string()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = request(&server.address, "POST", "/v1/batch", &headers, &body);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(server.get("/api/leads/z1", &read).json()["scores"]["activity"]["value"], 1.0);
}

#[test]
fn an_event_that_links_identities_keeps_the_anonymous_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, ingest, read) = acme(dir.path());
    server.post_json(
        "/v1/identify",
        &ingest,
        &json!({"anonymousId": "a9", "messageId": "k1", "traits": {"industry": "Technology"}}),
    );
    server.post_json(
        "/v1/identify",
        &ingest,
        &json!({"userId": "u9", "messageId": "k2", "traits": {"email": "u9@acme.io"}}),
    );
    let answer = server
        .post_json(
            "/v1/track",
            &ingest,
            &json!({"userId": "u9", "anonymousId": "a9", "event": "page_view", "messageId": "k3"}),
        )
        .json();
    assert_eq!(
        answer["lead"]["scores"]["activity"]["value"], 6.0,
        "5 for the anonymous lead's industry, 1 view: {answer}"
    );
    let lead = server.get("/api/leads/u9", &read).json();
    assert_eq!(lead["attributes"]["industry"], "Technology");
    assert_eq!(lead["email"], "u9@acme.io");
}

/// A scoring model whose only score is the predictive model `conversion` of the workspace.
pub(crate) const PREDICTIVE_MODEL: &str = r#"
[scores.conversion]
predictive = "conversion"
factors = 3
tiers = [{ label = "unlikely" }, { label = "possible", min = 10 }, { label = "likely", min = 30 }]
"#;

/// Trains a logistic model on the bank marketing slice with the command line; returns the file.
pub(crate) fn train_bank_model(dir: &std::path::Path) -> Vec<u8> {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../predict/tests/fixtures/bank/bank-slice.csv");
    let out = dir.join("m.json");
    let output = bin()
        .args(["train", "--target", "y", "--algorithm", "logistic", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(&out).unwrap()
}

pub(crate) fn put(server: &Server, path: &str, key: &str, body: &[u8]) -> Response {
    request(&server.address, "PUT", path, &[("Authorization", &format!("Bearer {key}"))], body)
}

#[test]
fn a_predictive_model_uploaded_to_the_workspace_is_a_score() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let file = train_bank_model(dir.path());
    let server = Server::start(dir.path(), &[]);

    // A model naming a predictive model the workspace does not have is refused at its place.
    let refused = server.post_text("/api/models", &admin, PREDICTIVE_MODEL);
    assert_eq!(refused.status, 400, "{}", refused.body);
    let refused = refused.json();
    assert_eq!(refused["code"], "invalid_model");
    let diagnostic = &refused["diagnostics"][0];
    assert_eq!((diagnostic["line"].as_u64(), diagnostic["column"].is_u64()), (Some(3), true), "{refused}");
    assert!(
        diagnostic["message"].as_str().unwrap().contains("no predictive model `conversion` in this workspace"),
        "{refused}"
    );

    // Bad uploads: not a model file, a bad name, a read key.
    let bad = put(&server, "/api/predictive-models/conversion", &admin, br#"{"kind": "something else"}"#);
    assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("invalid_predictive_model")), "{}", bad.body);
    assert!(bad.json()["message"].as_str().unwrap().contains("not a model written by `leadscore train`"));
    let bad = put(&server, "/api/predictive-models/conversion", &admin, b"not json");
    assert_eq!(bad.json()["code"], "invalid_predictive_model");
    let bad = put(&server, "/api/predictive-models/a%20b", &admin, &file);
    assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("invalid_path")));
    assert_eq!(put(&server, "/api/predictive-models/conversion", &read, &file).status, 403);

    let uploaded = put(&server, "/api/predictive-models/conversion", &admin, &file);
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let uploaded = uploaded.json();
    assert_eq!((uploaded["name"].as_str(), uploaded["version"].as_i64()), (Some("conversion"), Some(1)));
    assert_eq!(uploaded["algorithm"], "logistic");
    assert!(uploaded["fields"].as_array().unwrap().contains(&json!("poutcome")), "{uploaded}");
    // A file name works as a name too.
    assert_eq!(put(&server, "/api/predictive-models/conversion.json", &admin, &file).status, 201);

    let listed = server.get("/api/predictive-models", &read).json();
    assert_eq!(listed["predictive_models"][0]["name"], "conversion", "{listed}");
    let version = &listed["predictive_models"][0]["versions"][0];
    assert_eq!((version["version"].as_i64(), version["origin"].as_str()), (Some(1), Some("upload")), "{listed}");
    assert!(version["auc"].as_f64().is_some_and(|auc| auc > 0.6), "{listed}");
    assert_eq!(listed["predictive_models"][1]["name"], "conversion.json");

    let model = server.post_text("/api/models", &admin, PREDICTIVE_MODEL);
    assert_eq!(model.status, 201, "{}", model.body);
    assert_eq!(model.json()["active"], true);

    let traits = json!({"age": 35, "job": "management", "marital": "single", "education": "tertiary",
                        "balance": 1500, "housing": "no", "loan": "no", "contact": "cellular",
                        "poutcome": "success", "month": "mar", "email": "b1@bank.example"});
    let answer =
        server.post_json("/v1/identify", &ingest, &json!({"userId": "b1", "messageId": "i-b1", "traits": traits}));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let lead = server.get("/api/leads/b1", &read).json();
    let conversion = &lead["scores"]["conversion"];
    let value = conversion["value"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&value), "{lead}");
    let contributions = conversion["contributions"].as_array().unwrap();
    let factors: Vec<&str> =
        contributions.iter().filter(|c| c["kind"] == "factor").map(|c| c["field"].as_str().unwrap()).collect();
    assert!(!factors.is_empty() && factors.len() <= 3, "{conversion}");
    let total: f64 = contributions.iter().map(|c| c["points"].as_f64().unwrap()).sum();
    assert!((total - value).abs() < 1e-6, "the contributions add up to the value: {conversion}");
    // A past campaign's success makes a subscription likely in this data.
    assert_eq!(conversion["tier"], "likely", "{conversion}");
}

#[test]
fn a_predictive_model_upload_warns_of_the_fields_no_lead_has() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let file = train_bank_model(dir.path());
    let server = Server::start(dir.path(), &[]);
    let identify = |user: &str, traits: serde_json::Value| {
        let message = json!({"userId": user, "messageId": format!("i-{user}"), "traits": traits});
        assert_eq!(server.post_json("/v1/identify", &ingest, &message).status, 200);
    };
    // Between them, the leads have three of the model's fields; `housing` is only ever null.
    identify("b1", json!({"age": 35, "job": "management"}));
    identify("b2", json!({"balance": 1500, "housing": null}));

    let uploaded = put(&server, "/api/predictive-models/conversion", &admin, &file);
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let uploaded = uploaded.json();
    let fields: Vec<&str> = uploaded["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(fields.contains(&"housing") && fields.contains(&"poutcome"), "{uploaded}");
    let warnings: Vec<&str> = uploaded["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{uploaded}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    for field in &fields {
        let named = warnings.iter().any(|w| w.contains(&format!("`{field}`")));
        assert_eq!(named, !["age", "job", "balance"].contains(field), "{field}: {warnings:?}");
    }
    assert_eq!(warnings.len(), fields.len() - 3, "one warning per field no lead has: {warnings:?}");
}

/// Identifies a lead with `traits` and moves it to `stage` through the API.
pub(crate) fn lead_with_outcome(
    server: &Server,
    admin: &str,
    ingest: &str,
    user: &str,
    traits: serde_json::Value,
    stage: &str,
) {
    let identify = json!({"userId": user, "messageId": format!("i-{user}"), "traits": traits});
    assert_eq!(server.post_json("/v1/identify", ingest, &identify).status, 200);
    let moved =
        server.post_json(&format!("/api/leads/{user}/stage"), admin, &json!({"stage": stage, "reason": "test"}));
    assert_eq!(moved.status, 200, "{}", moved.body);
}

#[test]
fn a_predictive_model_is_retrained_on_the_workspaces_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let file = train_bank_model(dir.path());
    let server = Server::start(dir.path(), &[]);
    assert_eq!(put(&server, "/api/predictive-models/conversion", &admin, &file).status, 201);
    assert_eq!(server.post_text("/api/models", &admin, PREDICTIVE_MODEL).status, 201);
    let traits = json!({"age": 35, "job": "management", "balance": 1500, "poutcome": "success"});
    server.post_json("/v1/identify", &ingest, &json!({"userId": "b1", "messageId": "i-b1", "traits": traits}));
    let before = server.get("/api/leads/b1", &read).json()["scores"]["conversion"]["value"].as_f64().unwrap();

    let early = server.post_text("/api/predictive-models/conversion/retrain", &admin, "");
    assert_eq!((early.status, early.json()["code"].as_str()), (409, Some("not_enough_outcomes")), "{}", early.body);
    assert!(early.json()["message"].as_str().unwrap().contains("has 0 and 0"), "{}", early.body);

    // In this workspace, the opposite of the bank data: young blue-collar workers whose last
    // campaign failed buy, managers with a past success do not.
    for i in 0..22 {
        let customer = json!({"age": 22 + i % 8, "job": "blue-collar", "balance": 100 + i * 10, "poutcome": "failure"});
        lead_with_outcome(&server, &admin, &ingest, &format!("c{i}"), customer, "customer");
        let lost = json!({"age": 40 + i % 15, "job": "management", "balance": 2000 + i * 50, "poutcome": "success"});
        lead_with_outcome(&server, &admin, &ingest, &format!("l{i}"), lost, "lost");
    }
    let bad = server.post_json("/api/predictive-models/conversion/retrain", &admin, &json!({"algorithm": "forest"}));
    assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("invalid_field")), "{}", bad.body);

    let retrained = server.post_json("/api/predictive-models/conversion/retrain", &admin, &json!({"seed": 3}));
    assert_eq!(retrained.status, 201, "{}", retrained.body);
    let retrained = retrained.json();
    assert_eq!((retrained["version"].as_i64(), retrained["algorithm"].as_str()), (Some(2), Some("logistic")));
    assert_eq!((retrained["customers"].as_u64(), retrained["lost"].as_u64()), (Some(22), Some(22)), "{retrained}");
    assert!(retrained["holdout_auc"].as_f64().is_some_and(|auc| auc > 0.9), "{retrained}");
    // The fields of the uploaded version that these leads have.
    assert_eq!(retrained["fields"], json!(["age", "job", "balance", "poutcome"]), "{retrained}");
    assert_eq!(retrained["model_version"], 2, "{retrained}");

    let listed = server.get("/api/predictive-models", &read).json();
    let version = &listed["predictive_models"][0]["versions"][1];
    assert_eq!((version["version"].as_i64(), version["origin"].as_str()), (Some(2), Some("retrain")), "{listed}");
    assert_eq!(version["auc"], retrained["holdout_auc"]);

    let models = wait_for_rescoring(&server, &read);
    assert_eq!(models["models"][1]["active"], true, "{models}");
    assert_eq!(models["rescoring"]["model_version"], 2, "{models}");
    let lead = server.get("/api/leads/b1", &read).json();
    assert_eq!(lead["model_version"], 2);
    let after = lead["scores"]["conversion"]["value"].as_f64().unwrap();
    assert!(after < before, "a past success counts against a lead now: {before} -> {after}");
    let stored = server.get("/api/leads?score=conversion", &read).json();
    let b1 = stored["leads"].as_array().unwrap().iter().find(|l| l["user_id"] == "b1").unwrap().clone();
    assert_eq!(b1["value"].as_f64(), Some(after), "the stored score was rescored: {b1}");
    // Version 1 keeps the predictive model it was uploaded with.
    let preview = server.get("/api/models/1/preview", &read).json();
    assert_ne!(preview["candidate"]["conversion"]["mean"], preview["active"]["conversion"]["mean"], "{preview}");

    // Without `activate`, only a new predictive version is made.
    let quiet = server.post_json(
        "/api/predictive-models/conversion/retrain",
        &admin,
        &json!({"activate": false, "algorithm": "gbdt", "fields": ["age", "poutcome"]}),
    );
    assert_eq!(quiet.status, 201, "{}", quiet.body);
    assert_eq!((quiet.json()["version"].as_i64(), quiet.json()["model_version"].is_null()), (Some(3), true));
    assert_eq!(quiet.json()["algorithm"], "gbdt");
    assert_eq!(server.get("/api/models", &read).json()["models"].as_array().unwrap().len(), 2);
}

#[test]
fn serve_model_stores_the_trained_files_its_predictive_scores_name() {
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("models");
    std::fs::create_dir(&files).unwrap();
    std::fs::write(files.join("conversion.json"), train_bank_model(dir.path())).unwrap();
    let model = files.join("scoring.toml");
    std::fs::write(&model, PREDICTIVE_MODEL.replace("\"conversion\"", "\"conversion.json\"")).unwrap();
    let data = dir.path().join("data");
    let ingest = create_key(&data, "acme", "ingest");
    let read = create_key(&data, "acme", "read");
    let model_arg = model.to_str().unwrap();
    let mut server = Server::start(&data, &["--model", model_arg, "--workspace", "acme"]);
    let traits = json!({"age": 35, "job": "management", "balance": 1500, "poutcome": "success"});
    let answer =
        server.post_json("/v1/identify", &ingest, &json!({"userId": "b1", "messageId": "i1", "traits": traits}));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.json()["lead"]["scores"]["conversion"]["value"].as_f64().is_some(), "{}", answer.body);
    let listed = server.get("/api/predictive-models", &read).json();
    assert_eq!(listed["predictive_models"][0]["name"], "conversion.json", "{listed}");
    // The same files again: no new version of either.
    server.kill();
    let server = Server::start(&data, &["--model", model_arg, "--workspace", "acme"]);
    assert_eq!(server.get("/api/models", &read).json()["models"].as_array().unwrap().len(), 1);
    let listed = server.get("/api/predictive-models", &read).json();
    assert_eq!(listed["predictive_models"][0]["versions"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn the_demo_prints_export_lines_a_shell_can_use() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--demo-leads", "20", "--data"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut exported = std::collections::HashMap::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("leadscore listening on") {
            break;
        }
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            // What a POSIX shell would take: a name, `=`, a word with no quoting needed.
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{line}");
            assert!(value.chars().all(|c| c.is_ascii_alphanumeric() || ":/._-".contains(c)), "{line}");
            exported.insert(name.to_string(), value.to_string());
        } else {
            assert!(line.starts_with('#') || line.starts_with("demo workspace"), "not a shell line: {line}");
        }
    }
    let url = exported["LEADSCORE_URL"].strip_prefix("http://").unwrap().to_string();
    let server = Server { child, address: url, data: dir.path().to_path_buf() };
    let leads = server.get("/api/leads?limit=5", &exported["READ_KEY"]);
    assert_eq!(leads.status, 200, "{}", leads.body);
    let track = json!({"userId": "demo-00001", "event": "webinar_attended", "messageId": "try-1"});
    assert_eq!(server.post_json("/v1/track", &exported["INGEST_KEY"], &track).status, 200);
    assert_eq!(server.get("/api/keys", &exported["ADMIN_KEY"]).status, 200);
}

/// Digits after the decimal point of every number in a JSON value.
fn max_decimals(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Number(n) => n.to_string().split_once('.').map_or(0, |(_, d)| d.len()),
        serde_json::Value::Array(items) => items.iter().map(max_decimals).max().unwrap_or(0),
        serde_json::Value::Object(map) => map.values().map(max_decimals).max().unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn scores_in_answers_are_rounded_as_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), &[]);
    let model = r#"
[scores.engagement]
tiers = [{ label = "cold" }, { label = "warm", min = 5 }]
[[scores.engagement.rules]]
name = "page views"
event = "page_view"
points = 10
decay = { half_life = "1d" }
"#;
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    // Half a day of decay leaves 10 / sqrt(2) = 7.0710678...: written with 6 decimals at most.
    let twelve_hours_ago = leadscore_core::Timestamp(leadscore_store::now_ms() - 43_200_000).to_string();
    let track = json!({"userId": "r1", "event": "page_view", "messageId": "r1", "timestamp": twelve_hours_ago});
    let answer = server.post_json("/v1/track", &ingest, &track).json();
    let value = answer["lead"]["scores"]["engagement"]["value"].as_f64().unwrap();
    assert!((value - 7.071068).abs() < 0.001, "{answer}");
    assert!(max_decimals(&answer) <= 6, "{answer}");
    let lead = server.get("/api/leads/r1", &read).json();
    assert!(max_decimals(&lead["scores"]) <= 6, "{lead}");
    assert!(lead["scores"]["engagement"]["contributions"][0]["points"].as_f64().unwrap() > 7.0, "{lead}");
    let history = server.get("/api/leads/r1/history", &read).json();
    assert!(max_decimals(&history["history"]) <= 6, "{history}");
}

#[test]
fn the_log_has_a_line_per_request_and_per_refused_message_without_colours_or_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = create_key(dir.path(), "acme", "ingest");
    let read = create_key(dir.path(), "acme", "read");
    let log_path = dir.path().join("server.log");
    let mut server = Server::start_with_log(dir.path(), &[], std::fs::File::create(&log_path).unwrap());
    let batch = json!({"batch": [
        {"type": "track", "userId": "ann@example.com", "event": "page_view", "messageId": "ok-1"},
        {"type": "track", "userId": "ann@example.com", "event": "page_view", "messageId": "bad-1", "timestamp": "ann@example.com"},
        {"type": "track", "userId": {"mail": "bob@example.com"}, "event": "page_view", "messageId": "bad-2"},
    ]});
    let answer = server.post_json("/v1/batch", &ingest, &batch);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(server.get("/api/leads/ann@example.com", &read).status, 200);
    assert_eq!(server.get("/api/leads/nobody@example.com", &read).status, 404);
    server.kill();

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(!log.contains('\u{1b}'), "no colour codes in a file: {log}");
    let answered: Vec<&str> = log.lines().filter(|l| l.contains("answered")).collect();
    assert_eq!(answered.len(), 3, "{log}");
    assert!(answered[0].contains("route=\"/v1/batch\"") && answered[0].contains("status=200"), "{log}");
    assert!(answered[0].contains("latency_ms="), "{log}");
    assert!(answered[2].contains("route=\"/api/leads/{id}\"") && answered[2].contains("status=404"), "{log}");
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused a message")).collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(refused[0].contains("item=1") && refused[1].contains("item=2"), "{log}");
    assert!(!log.contains("example.com"), "the log holds no personal data: {log}");
    assert!(!log.contains("lsk_"), "the log holds no key: {log}");
}

#[test]
fn every_refusal_has_a_code_and_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = Server::start(dir.path(), &[]);
    let auth = format!("Bearer {ingest}");
    let refusals = [
        // A method a route does not have: axum answers it below the handlers.
        (request(&server.address, "DELETE", "/healthz", &[], b""), 405, "method_not_allowed"),
        // A Content-Encoding the service cannot inflate.
        (
            request(
                &server.address,
                "POST",
                "/v1/track",
                &[("Authorization", &auth), ("Content-Type", "application/json"), ("Content-Encoding", "br")],
                b"\x0b\x02\x80{}\x03",
            ),
            415,
            "content_encoding",
        ),
        (request(&server.address, "GET", "/no/such/route", &[], b""), 404, "not_found"),
        // The scheme of the Authorization header in any case (RFC 9110).
        (
            request(&server.address, "GET", "/api/leads", &[("Authorization", &format!("bearer {ingest}"))], b""),
            403,
            "forbidden",
        ),
    ];
    for (answer, status, code) in refusals {
        assert_eq!(answer.status, status, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"), "{answer:?}");
        let body = answer.json();
        assert_eq!(body["code"], code, "{answer:?}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer:?}");
    }
    let not_allowed = request(&server.address, "DELETE", "/healthz", &[], b"");
    assert_eq!(not_allowed.header("allow"), Some("GET,HEAD"), "{not_allowed:?}");
}

#[test]
fn lead_listings_refuse_unknown_scores_tiers_stages_and_numbers_that_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, _, read) = acme(dir.path());
    for (query, parameter) in [
        ("min=NaN", "min"),
        ("min=inf", "min"),
        ("min=1e309", "min"),
        ("score=nope", "score"),
        ("tier=lukewarm", "tier"),
        ("stage=prospect", "stage"),
        ("order=random", "order"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("colour=red", "colour"),
    ] {
        let answer = server.get(&format!("/api/leads?{query}"), &read);
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        let body = answer.json();
        assert_eq!(body["code"], "invalid_query", "{query}: {body}");
        assert!(body["message"].as_str().unwrap().contains(parameter), "{query}: {body}");
    }
    for query in ["score=activity&tier=hot&stage=mql&min=1.5&order=score_asc&limit=1000&offset=0", ""] {
        let answer = server.get(&format!("/api/leads?{query}"), &read);
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
    }
}

#[test]
fn ids_over_the_limits_are_refused_on_every_path_and_counted_in_characters() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin, ingest, read) = acme(dir.path());
    let long = "x".repeat(201);
    // 200 characters in Cyrillic are 400 bytes: within the limit, which counts characters.
    let cyrillic = "ж".repeat(200);

    let track = |message_id: &str, user: &str, event: &str| {
        server.post_json("/v1/track", &ingest, &json!({"userId": user, "event": event, "messageId": message_id}))
    };
    assert_eq!(track(&cyrillic, &cyrillic, &cyrillic).status, 200);
    for (message_id, user, event, field) in [
        (long.as_str(), "u", "e", "messageId"),
        ("m1", long.as_str(), "e", "userId"),
        ("m2", "u", long.as_str(), "event"),
    ] {
        let answer = track(message_id, user, event);
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.json()["message"].as_str().unwrap().contains(field), "{}", answer.body);
    }

    let events = json!({"events": [
        {"lead": long, "type": "page_view"},
        {"lead": "u", "type": long},
        {"lead": "u", "type": "page_view", "id": long},
        {"lead": "u", "type": "page_view", "id": "fine"},
    ]});
    let answer = server.post_json("/api/events", &ingest, &events).json();
    let statuses: Vec<&str> =
        answer["items"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["refused", "refused", "refused", "accepted"], "{answer}");

    let put_json = |id: &str| {
        let encoded: String = id.bytes().map(|b| format!("%{b:02X}")).collect();
        let auth = format!("Bearer {ingest}");
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        request(&server.address, "PUT", &format!("/api/leads/{encoded}"), &headers, b"{}")
    };
    let answer = put_json(&long);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.json()["message"].as_str().unwrap().contains("201 characters"), "{}", answer.body);
    let answer = put_json(&cyrillic);
    assert_eq!(answer.status, 200, "{}", answer.body);

    // A 900 KB id in a CSV import is refused on its line, and nothing that could never be read
    // back is stored.
    let huge = "y".repeat(900_000);
    let csv = format!("Record ID,Email\n{huge},a@example.com\nok-1,b@example.com\n");
    let imported = server.post_text("/api/import/leads", &admin, &csv).json();
    assert_eq!((imported["imported"].as_u64(), imported["skipped"].as_u64()), (Some(1), Some(1)), "{imported}");
    assert_eq!(imported["problems"][0]["line"], 2, "{imported}");
    let csv = format!("lead_id,type,time\nok-1,{long},2026-11-01T00:00:00Z\nok-1,page_view,2026-11-01T00:00:00Z\n");
    let imported = server.post_text("/api/import/events", &admin, &csv).json();
    assert_eq!((imported["imported"].as_u64(), imported["skipped"].as_u64()), (Some(1), Some(1)), "{imported}");
    assert_eq!(server.get("/api/leads?limit=1000", &read).json()["leads"].as_array().unwrap().len(), 3);

    let stage = |body: serde_json::Value| server.post_json("/api/leads/ok-1/stage", &admin, &body);
    assert_eq!(stage(json!({"stage": "sal", "actor": long})).status, 400);
    assert_eq!(stage(json!({"stage": "nurture", "reason": "z".repeat(2001)})).status, 400);
    // A reason of blanks is no reason, but over the limit it is refused all the same.
    assert_eq!(stage(json!({"stage": "sal", "reason": "\u{2000}".repeat(2001)})).status, 400);
    assert_eq!(stage(json!({"stage": "sal", "actor": cyrillic})).status, 200);
    let hook = json!({"url": format!("https://example.com/{}", "h".repeat(2048)), "events": ["tier_changed"]});
    let answer = server.post_json("/api/webhooks", &admin, &hook);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.json()["message"].as_str().unwrap().contains("url"), "{}", answer.body);
}

#[test]
fn an_upload_whose_tests_fail_is_refused_with_each_failure_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_key(dir.path(), "acme", "admin");
    let server = Server::start(dir.path(), &[]);
    let model = |expected: &str| {
        format!(
            r#"[scores.fit]
rules = [{{ name = "tech", when = {{ field = "industry", equals = "Technology" }}, points = 15 }}]
tiers = [{{ label = "cold" }}, {{ label = "hot", min = 10 }}]

[[tests]]
name = "tech"
as_of = "2026-03-01T00:00:00Z"
lead = {{ industry = "Technology" }}
expect.fit = {{ value = {expected}, tier = "hot" }}

[[tests]]
name = "retail"
as_of = "2026-03-01T00:00:00Z"
lead = {{ industry = "Retail" }}
expect.fit = {{ value = 0, tier = "cold" }}
"#
        )
    };

    let refused = server.post_text("/api/models", &admin, &model("20"));
    assert_eq!(refused.status, 400, "{}", refused.body);
    let refused = refused.json();
    assert_eq!(refused["code"], "invalid_model");
    let diagnostics = refused["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 1, "{refused}");
    assert_eq!((diagnostics[0]["line"].as_u64(), diagnostics[0]["column"].as_u64()), (Some(6), Some(8)), "{refused}");
    assert_eq!(diagnostics[0]["message"], "test `tech` fails: fit: expected 20 (tier hot), got 15 (tier hot)");
    assert_eq!(server.get("/api/models", &admin).json()["models"], json!([]), "nothing stored");

    let stored = server.post_text("/api/models", &admin, &model("15"));
    assert_eq!(stored.status, 201, "{}", stored.body);
}
