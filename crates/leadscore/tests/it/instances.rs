//! Several `leadscore serve` processes on one PostgreSQL database, as behind a load balancer:
//! any instance takes any request, a message id is stored once whichever instances it reaches,
//! every lead's score counts each of its events once, and identities linked at once by two
//! instances end in one lead. Run with `LEADSCORE_TEST_STORE=postgres` (`.ci/run` does); a data
//! directory has one service, so there is nothing to share under SQLite.

use std::collections::BTreeMap;

use serde_json::json;

use crate::common::*;

/// Users, and messages each sends.
const USERS: usize = 12;
const MESSAGES: usize = 40;

#[test]
fn two_instances_share_one_database_and_count_each_message_once() {
    if !on_postgres() {
        eprintln!("PostgreSQL only: run with LEADSCORE_TEST_STORE=postgres");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let one = Server::start(dir.path(), &[]);
    let two = Server::start(dir.path(), &[]);
    // Uploaded to one instance, scoring in both from the next request.
    assert_eq!(one.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    let servers = [&one, &two];

    // Every user's messages from a thread of its own, to the two instances in turn; every third
    // one sent again to the other instance, as a client retrying through a load balancer does.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    std::thread::scope(|scope| {
        for user in 0..USERS {
            let ingest = ingest.clone();
            scope.spawn(move || {
                for i in 0..MESSAGES {
                    let message =
                        json!({"userId": format!("user-{user}"), "event": "page_view", "messageId": format!("m-{user}-{i}")});
                    let first = servers[(user + i) % 2].post_json("/v1/track", &ingest, &message);
                    assert_eq!(first.status, 200, "{}", first.body);
                    if i % 3 == 0 {
                        let again = servers[(user + i + 1) % 2].post_json("/v1/track", &ingest, &message);
                        assert_eq!(again.status, 200, "{}", again.body);
                        assert_eq!(again.json()["duplicate"], true, "{}", again.body);
                    }
                }
            });
        }
        for user in 0..USERS {
            expected.insert(format!("user-{user}"), MESSAGES);
        }
    });
    for (user, count) in &expected {
        for server in servers {
            let lead = server.get(&format!("/api/leads/{user}"), &read).json();
            assert_eq!(lead["scores"]["activity"]["value"], *count as f64, "{user}: {lead}");
        }
    }

    // A visitor known by an anonymous id signs in on both instances at once: one lead keeps its
    // page views, under its user id, whichever instance answers.
    for visitor in 0..6 {
        let anonymous = format!("visitor-{visitor}");
        let user = format!("person-{visitor}");
        let viewed = json!({"anonymousId": anonymous, "event": "page_view", "messageId": format!("v-{visitor}")});
        assert_eq!(one.post_json("/v1/track", &ingest, &viewed).status, 200);
        std::thread::scope(|scope| {
            for (n, server) in servers.iter().enumerate() {
                let (ingest, anonymous, user) = (ingest.clone(), anonymous.clone(), user.clone());
                scope.spawn(move || {
                    let identify =
                        json!({"userId": user, "anonymousId": anonymous, "messageId": format!("id-{visitor}-{n}")});
                    let answer = server.post_json("/v1/identify", &ingest, &identify);
                    assert!(
                        answer.status == 200 || answer.status == 503,
                        "an identify either links or asks to be sent again: {} {}",
                        answer.status,
                        answer.body
                    );
                    if answer.status == 503 {
                        let again = server.post_json("/v1/identify", &ingest, &identify);
                        assert_eq!(again.status, 200, "{}", again.body);
                    }
                });
            }
        });
        for server in servers {
            let lead = server.get(&format!("/api/leads/{user}"), &read);
            assert_eq!(lead.status, 200, "{}", lead.body);
            assert_eq!(lead.json()["scores"]["activity"]["value"], 1.0, "{user}: {}", lead.body);
        }
        // Both messages linked the same two ids: later events of the visitor count on that lead.
        let later = json!({"anonymousId": anonymous, "event": "page_view", "messageId": format!("w-{visitor}")});
        assert_eq!(two.post_json("/v1/track", &ingest, &later).status, 200);
        let lead = one.get(&format!("/api/leads/{user}"), &read).json();
        assert_eq!(lead["scores"]["activity"]["value"], 2.0, "{user}: {lead}");
    }
}
