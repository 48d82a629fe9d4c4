//! A person's override of a lead's score over real HTTP: both values shown, events moving the
//! model's value and not the effective one, the automatic move to MQL and webhooks acting on
//! the effective tier, lifting by hand and at expiry by the periodic pass, the history's who and
//! why, and the refusals (scopes, bad input, each naming its field).

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

const MODEL: &str = r#"
[scores.total]
tiers = [{ label = "cold" }, { label = "warm", min = 5 }, { label = "mql", min = 10 }]
[[scores.total.rules]]
name = "views"
event = "page_view"
points = 4
"#;

fn rfc3339_in(seconds: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    leadscore_core::Timestamp(now + seconds * 1000).to_string()
}

fn history(server: &Server, key: &str, lead: &str) -> Vec<Value> {
    server.get(&format!("/api/leads/{lead}/history"), key).json()["history"].as_array().unwrap().clone()
}

#[test]
fn an_override_sets_the_effective_score_until_lifted_by_hand_or_at_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), &["--rescore-every", "1", "--allow-private-webhooks"]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);
    let receiver = Receiver::start(0);
    let hook = server.post_json("/api/webhooks", &admin, &json!({"url": receiver.url, "events": ["tier_changed"]}));
    assert_eq!(hook.status, 201, "{}", hook.body);
    let track = |id: &str| {
        let body = json!({"userId": "u1", "event": "page_view", "messageId": id});
        let answer = server.post_json("/v1/track", &ingest, &body);
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    track("1");

    // A tier alone: the value stays the model's.
    let set = server.send(
        "PUT",
        "/api/leads/u1/overrides/total",
        &admin,
        Some(&json!({"tier": "mql", "reason": "signed a letter of intent", "actor": "ana@acme.io"})),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    let set = set.json();
    assert_eq!((set["value"].as_f64(), set["tier"].as_str()), (Some(4.0), Some("mql")), "{set}");
    assert_eq!(set["computed"], json!({"value": 4.0, "tier": "cold"}));
    assert_eq!(set["override"]["reason"], "signed a letter of intent");
    assert_eq!(set["override"]["set_by"], "ana@acme.io");

    // The effective tier moves the lead to MQL, as the model's would.
    let stages = server.get("/api/leads/u1/stages", &read).json();
    assert_eq!(stages["stage"], "mql", "{stages}");

    // An event moves the model's value and tier, not the effective tier.
    let answer = track("2");
    let total = &answer["lead"]["scores"]["total"];
    assert_eq!((total["value"].as_f64(), total["tier"].as_str()), (Some(8.0), Some("mql")), "{answer}");
    assert_eq!(total["computed"], json!({"value": 8.0, "tier": "warm"}));
    let lead = server.get("/api/leads/u1", &read).json();
    assert_eq!(lead["scores"]["total"]["tier"], "mql", "{lead}");
    assert_eq!(lead["scores"]["total"]["computed"], json!({"value": 8.0, "tier": "warm"}));
    assert_eq!(lead["overrides"]["total"]["tier"], "mql");
    assert_eq!(lead["overrides"]["total"]["value"], Value::Null);
    let listed = server.get("/api/leads?score=total&tier=mql", &read).json();
    assert_eq!(listed["leads"][0]["user_id"], "u1", "lists filter by the effective tier: {listed}");
    assert_eq!(listed["leads"][0]["overridden"], true);

    // Lifted by hand: the model's score is the effective one again.
    let lifted = server.send("DELETE", "/api/leads/u1/overrides/total?note=LOI%20withdrawn", &admin, None);
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    let lifted = lifted.json();
    assert_eq!((lifted["value"].as_f64(), lifted["tier"].as_str()), (Some(8.0), Some("warm")), "{lifted}");
    assert_eq!((lifted["computed"].clone(), lifted["override"].clone()), (Value::Null, Value::Null));
    assert_eq!(server.get("/api/leads/u1", &read).json()["overrides"], json!({}));
    assert_eq!(server.get("/api/leads?score=total", &read).json()["leads"][0]["overridden"], false);

    let entries = history(&server, &read, "u1");
    let lift = &entries[0];
    assert_eq!((lift["cause"].as_str(), lift["tier"].as_str()), (Some("override lifted"), Some("warm")), "{lift}");
    assert_eq!(lift["override"]["action"], "lifted");
    assert!(lift["override"]["by"].as_str().unwrap().starts_with("key "), "{lift}");
    assert_eq!(lift["override"]["note"], "LOI withdrawn");
    let set_entry = entries.iter().find(|e| e["cause"] == "override").unwrap();
    assert_eq!(
        set_entry["override"],
        json!({"action": "set", "by": "ana@acme.io", "note": "signed a letter of intent"})
    );

    // Webhooks announce the effective tier: cold, then mql by the override, warm when lifted;
    // the model's move to warm under the override is no change of the lead's tier.
    let tiers: Vec<String> =
        receiver.wait_for(3).iter().map(|(_, body)| body["data"]["tier"].as_str().unwrap().to_string()).collect();
    assert_eq!(tiers, ["cold", "mql", "warm"]);

    // A value alone takes its tier from the model's tiers; it ends by itself at its expiry.
    let expiring = server.send(
        "PUT",
        "/api/leads/u1/overrides/total",
        &admin,
        Some(&json!({"value": 12, "reason": "competitor's employee", "expires_at": rfc3339_in(2)})),
    );
    assert_eq!(expiring.status, 200, "{}", expiring.body);
    assert_eq!(expiring.json()["tier"], "mql", "{}", expiring.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lead = server.get("/api/leads/u1", &read).json();
        if lead["overrides"] == json!({}) {
            assert_eq!(
                (lead["scores"]["total"]["value"].as_f64(), lead["scores"]["total"]["tier"].as_str()),
                (Some(8.0), Some("warm"))
            );
            break;
        }
        assert!(Instant::now() < deadline, "the override did not expire: {lead}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let expired = &history(&server, &read, "u1")[0];
    assert_eq!(expired["cause"], "override expired", "{expired}");
    assert_eq!(expired["override"]["by"], "expiry");
}

#[test]
fn overrides_refuse_other_scopes_and_bad_input_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);
    let body = json!({"userId": "u1", "event": "page_view", "messageId": "1"});
    assert_eq!(server.post_json("/v1/track", &ingest, &body).status, 200);
    let put = |key: &str, path: &str, body: Value| server.send("PUT", path, key, Some(&body));
    let good = json!({"tier": "mql", "reason": "signed"});
    for key in [&read, &ingest] {
        assert_eq!(put(key, "/api/leads/u1/overrides/total", good.clone()).status, 403);
        assert_eq!(server.send("DELETE", "/api/leads/u1/overrides/total", key, None).status, 403);
    }
    let refusal = |path: &str, body: Value| {
        let answer = put(&admin, path, body);
        let json = answer.json();
        (answer.status, json["code"].as_str().unwrap().to_string(), json["message"].as_str().unwrap().to_string())
    };
    let path = "/api/leads/u1/overrides/total";
    let (status, code, _) = refusal(path, json!({"tier": "mql"}));
    assert_eq!((status, code.as_str()), (400, "reason_required"));
    let (status, code, _) = refusal(path, json!({"tier": "mql", "reason": "   "}));
    assert_eq!((status, code.as_str()), (400, "reason_required"));
    let (status, code, message) = refusal(path, json!({"reason": "why"}));
    assert_eq!((status, code.as_str()), (400, "invalid_field"));
    assert!(message.contains("`value`, `tier`"), "{message}");
    let (status, code, message) = refusal(path, json!({"tier": "hot", "reason": "why"}));
    assert_eq!((status, code.as_str()), (400, "unknown_tier"));
    assert!(message.contains("`hot`") && message.contains("cold, warm, mql"), "{message}");
    let (status, code, message) = refusal("/api/leads/u1/overrides/fit", good.clone());
    assert_eq!((status, code.as_str()), (404, "unknown_score"));
    assert!(message.contains("`fit`"), "{message}");
    let (status, code, message) = refusal(path, json!({"tier": "mql", "reason": "why", "expires_at": rfc3339_in(-60)}));
    assert_eq!((status, code.as_str()), (400, "invalid_field"));
    assert!(message.contains("`expires_at`"), "{message}");
    let (status, code, message) = refusal(path, json!({"tier": "mql", "reason": "why", "expires_at": "tomorrow"}));
    assert_eq!((status, code.as_str()), (400, "invalid_field"));
    assert!(message.contains("`expires_at`"), "{message}");
    let (status, code, _) = refusal(path, json!({"tier": "mql", "reason": "why", "colour": "red"}));
    assert_eq!((status, code.as_str()), (400, "invalid_field"));
    let (status, code, _) = refusal("/api/leads/nobody/overrides/total", good.clone());
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let none = server.send("DELETE", path, &admin, None);
    assert_eq!((none.status, none.json()["code"].as_str()), (404, Some("no_override")));
    // Nothing refused was stored.
    assert_eq!(server.get("/api/leads/u1", &read).json()["overrides"], json!({}));
}

#[test]
fn an_override_survives_a_new_model_version_unless_the_version_lacks_its_tier() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);
    for (user, id) in [("u1", "1"), ("u2", "2")] {
        let body = json!({"userId": user, "event": "page_view", "messageId": id});
        assert_eq!(server.post_json("/v1/track", &ingest, &body).status, 200);
    }
    let put = |user: &str, body: Value| {
        let answer = server.send("PUT", &format!("/api/leads/{user}/overrides/total"), &admin, Some(&body));
        assert_eq!(answer.status, 200, "{}", answer.body);
    };
    put("u1", json!({"tier": "warm", "reason": "met at the fair"}));
    put("u2", json!({"value": 1, "reason": "a competitor"}));

    // Version 2 counts views double and has no tier `warm`.
    let second = MODEL.replace("points = 4", "points = 8").replace(r#"{ label = "warm", min = 5 }, "#, "");
    assert_eq!(server.post_text("/api/models", &admin, &second).status, 201);
    wait_until_no_rescoring_runs(&server, &admin);
    assert_eq!(server.post_text("/api/models/2/activate", &admin, "").status, 202);
    wait_for_rescoring(&server, &admin);

    // u1's tier is gone: its override is lifted, the model's score stands, and the history says why.
    let u1 = server.get("/api/leads/u1", &read).json();
    assert_eq!(u1["overrides"], json!({}), "{u1}");
    assert_eq!(
        (u1["scores"]["total"]["value"].as_f64(), u1["scores"]["total"]["tier"].as_str()),
        (Some(8.0), Some("cold"))
    );
    let lifted = &history(&server, &read, "u1")[0];
    assert_eq!(lifted["cause"], "model v2", "{lifted}");
    assert_eq!(lifted["override"]["action"], "lifted");
    assert_eq!(lifted["override"]["by"], "model v2");
    assert!(lifted["override"]["note"].as_str().unwrap().contains("no tier `warm`"), "{lifted}");

    // u2's value override holds over the rescored model value.
    let u2 = server.get("/api/leads/u2", &read).json();
    assert_eq!(u2["overrides"]["total"]["value"], 1.0, "{u2}");
    assert_eq!(u2["scores"]["total"]["value"], 1.0);
    assert_eq!(u2["scores"]["total"]["computed"], json!({"value": 8.0, "tier": "cold"}));
    let listed = server.get("/api/leads?score=total&order=score_asc", &read).json();
    assert_eq!(listed["leads"][0]["user_id"], "u2", "lists rank by the effective value: {listed}");
}
