//! The score history says why each score moved: every entry the service records carries terms
//! that add up to the change from the score's previous value, whether an event, a change of
//! fields, time passing or a new model version moved it, and what it lacked for the next tier.

use serde_json::json;

use crate::common::*;

const MODEL: &str = r#"
[scores.fit]
tiers = [{ label = "C" }, { label = "A", min = 20 }]
[[scores.fit.rules]]
name = "vp"
when = { field = "title", contains = "vp" }
points = 20

[scores.engagement]
tiers = [{ label = "cold" }, { label = "warm", min = 10 }]
[[scores.engagement.rules]]
name = "pricing"
event = "pricing_view"
points = 10
decay = { half_life = "30d" }
[[scores.engagement.rules]]
name = "demo"
event = "demo_request"
points = 30

[scores.total]
from = { fit = 1, engagement = 1 }
"#;

/// Each score's history entries, oldest first.
fn entries(server: &Server, key: &str, lead: &str, score: &str) -> Vec<serde_json::Value> {
    let history = server.get(&format!("/api/leads/{lead}/history"), key).json();
    let mut entries: Vec<serde_json::Value> =
        history["history"].as_array().unwrap().iter().filter(|e| e["score"] == score).cloned().collect();
    entries.reverse();
    entries
}

fn terms_sum(entry: &serde_json::Value) -> f64 {
    entry["terms"]
        .as_array()
        .unwrap_or_else(|| panic!("no terms: {entry}"))
        .iter()
        .map(|t| t["points"].as_f64().unwrap())
        .sum()
}

#[test]
fn every_history_entry_carries_the_terms_of_its_change() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);

    let track = |event: &str, id: &str| json!({"userId": "ann", "event": event, "messageId": id});
    assert_eq!(server.post_json("/v1/track", &ingest, &track("pricing_view", "m1")).status, 200);
    let identify = json!({"userId": "ann", "traits": {"title": "VP Sales"}, "messageId": "m2"});
    assert_eq!(server.post_json("/v1/identify", &ingest, &identify).status, 200);
    assert_eq!(server.post_json("/v1/track", &ingest, &track("demo_request", "m3")).status, 200);

    let total = entries(&server, &read, "ann", "total");
    assert_eq!(total.len(), 3, "{total:?}");
    // The first: a new lead's first event, from nothing.
    assert_eq!(
        total[0]["terms"],
        json!([{"cause": "events", "score": "engagement", "rule": "pricing", "occurrences": 1, "points": 10.0}])
    );
    // The second: the new title (an attribute change), and a few milliseconds of decay.
    let second = &total[1];
    let attributes = second["terms"].as_array().unwrap().iter().find(|t| t["cause"] == "attributes").unwrap();
    assert_eq!(
        (attributes["score"].as_str(), attributes["rule"].as_str(), attributes["points"].as_f64()),
        (Some("fit"), Some("vp"), Some(20.0))
    );
    // The third: the demo request.
    assert!(
        total[2]["terms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["cause"] == "events" && t["rule"] == "demo" && t["points"] == 30.0),
        "{}",
        total[2]
    );
    // Each entry's terms add up to its change from the entry before.
    let mut previous = 0.0;
    for entry in &total {
        let value = entry["value"].as_f64().unwrap();
        assert!((terms_sum(entry) - (value - previous)).abs() < 2e-6, "{entry} after {previous}");
        previous = value;
    }

    // What each entry lacked for the next tier, by the tiers of its model version.
    let fit = entries(&server, &read, "ann", "fit");
    assert_eq!((fit[0]["value"].as_f64(), fit[0]["tier"].as_str()), (Some(0.0), Some("C")), "{fit:?}");
    assert_eq!((fit[0]["next_tier"].as_str(), fit[0]["points_missing"].as_f64()), (Some("A"), Some(20.0)));
    assert_eq!((fit[1]["tier"].as_str(), &fit[1]["next_tier"]), (Some("A"), &serde_json::Value::Null), "{fit:?}");

    // A new version: the activation's rescoring records the model's terms.
    let doubled = MODEL.replace("points = 30", "points = 60");
    assert_eq!(server.post_text("/api/models", &admin, &doubled).status, 201);
    wait_until_no_rescoring_runs(&server, &read);
    let activated = server.post_json("/api/models/2/activate", &admin, &json!({}));
    assert!(activated.status < 300, "{}", activated.body);
    wait_for_rescoring(&server, &read);
    let engagement = entries(&server, &read, "ann", "engagement");
    let last = engagement.last().unwrap();
    assert_eq!(last["cause"], "model v2", "{engagement:?}");
    let model_terms: Vec<&serde_json::Value> =
        last["terms"].as_array().unwrap().iter().filter(|t| t["cause"] == "model").collect();
    assert_eq!(model_terms.len(), 1, "{last}");
    assert_eq!((model_terms[0]["rule"].as_str(), model_terms[0]["points"].as_f64()), (Some("demo"), Some(30.0)));
    let before = engagement[engagement.len() - 2]["value"].as_f64().unwrap();
    assert!((terms_sum(last) - (last["value"].as_f64().unwrap() - before)).abs() < 2e-6, "{last}");
}
