//! Several `leadscore serve` processes on one PostgreSQL database, as behind a load balancer:
//! any instance takes any request, a message id is stored once whichever instances it reaches,
//! every lead's score counts each of its events once (a request written after a later one's
//! included), and identities linked at once by two instances end in one lead, and a key revoked
//! or made through one instance or the command line reaches the other's caches within about a
//! second, an instance whose clock is ahead does not send a webhook notification another is
//! still sending, and one that stops while sending holds back only its own leads' notifications.
//! Run with `LEADSCORE_TEST_STORE=postgres` (`.ci/run` does); a data
//! directory has one service, so there is nothing to share under SQLite.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// Users, and messages each sends.
const USERS: usize = 12;
const MESSAGES: usize = 40;

/// Two `serve` processes on one database (standing for `dir`), with a key of each scope of
/// workspace `acme`; `None`, after saying so, when the tests do not run on PostgreSQL.
struct Instances {
    dir: tempfile::TempDir,
    admin: String,
    ingest: String,
    read: String,
    one: Server,
    two: Server,
}

impl Instances {
    fn start() -> Option<Instances> {
        if !on_postgres() {
            eprintln!("PostgreSQL only: run with LEADSCORE_TEST_STORE=postgres");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
        let one = Server::start(dir.path(), &[]);
        let two = Server::start(dir.path(), &[]);
        Some(Instances { dir, admin, ingest, read, one, two })
    }
}

/// One `serve` process on a database of its own, started with `extra`, the counting model
/// active, and keys of every scope of workspace `acme` (admin, ingest, read); `None`, after
/// saying so, when the tests do not run on PostgreSQL.
fn one_instance(extra: &[&str]) -> Option<(tempfile::TempDir, String, String, String, Server)> {
    if !on_postgres() {
        eprintln!("PostgreSQL only: run with LEADSCORE_TEST_STORE=postgres");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    let server = Server::start(dir.path(), extra);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    Some((dir, admin, ingest, read, server))
}

#[test]
fn two_instances_share_one_database_and_count_each_message_once() {
    let Some(Instances { dir: _dir, admin, ingest, read, one, two }) = Instances::start() else { return };
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

/// The score each instance stores for a lead counts the events the other stored before it, while
/// requests of the same instance wait on another lead: scored from what the instance itself had
/// seen, an event stored through the other instance would be left out.
///
/// On PostgreSQL a request waits only on the leads it names (each runs in a transaction of its
/// own), so instance one's request for x does not wait behind its request for y; the order in
/// which the two events of x land is not fixed, and the stored score must count all three either
/// way.
#[test]
fn a_score_stored_by_either_instance_counts_the_events_the_other_stored() {
    let Some(Instances { dir, admin, ingest, one, two, .. }) = Instances::start() else { return };
    assert_eq!(one.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    let track = |server: &Server, user: &str, id: &str| {
        let message = json!({"userId": user, "event": "page_view", "messageId": id});
        let answer = server.post_json("/v1/track", &ingest, &message);
        assert_eq!(answer.status, 200, "{}", answer.body);
    };
    track(&one, "x", "x0");
    track(&one, "y", "y0");
    // The model's activation rescores every lead, a batch locking x then y in id order: one
    // running while y is held below would hold x, and the requests for x would wait for it until
    // their timeout.
    wait_until_no_rescoring_runs(&one, &admin);

    let mut database = postgres::Client::connect(&postgres_database(dir.path()), postgres::NoTls).unwrap();
    let mut holding = database.transaction().unwrap();
    holding.execute("SELECT id FROM leads WHERE user_id = 'y' FOR UPDATE", &[]).unwrap();
    std::thread::scope(|scope| {
        // Instance one's request for y waits for the lock; its request for x, received next,
        // and instance two's later event of x are stored meanwhile, in either order.
        let waiting_y = scope.spawn(|| track(&one, "y", "y1"));
        std::thread::sleep(Duration::from_millis(300));
        let waiting_x = scope.spawn(|| track(&one, "x", "x1"));
        std::thread::sleep(Duration::from_millis(300));
        track(&two, "x", "x2");
        holding.commit().unwrap();
        waiting_y.join().unwrap();
        waiting_x.join().unwrap();
    });
    let stored: f64 = database
        .query_one(
            "SELECT s.value FROM lead_scores s JOIN leads l ON l.id = s.lead_id WHERE l.user_id = 'x' AND s.score = 'activity'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, 3.0, "x has three page views stored");
}

/// How long a change made elsewhere may take to reach an instance's caches in these tests: the
/// instances poll every second; the rest is room for a slow machine.
const LEARNED_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn a_key_revoked_or_made_anywhere_reaches_every_instance_within_a_second() {
    let Some(Instances { dir, admin, ingest, read, one, two }) = Instances::start() else { return };
    // Both instances have both keys cached.
    for server in [&one, &two] {
        assert_eq!(server.get("/api/models", &read).status, 200);
        assert_eq!(server.get("/api/keys", &admin).status, 200);
    }
    let id_of = |secret: &str| -> i64 {
        let listed = one.get("/api/keys", &admin).json();
        let key = listed["keys"].as_array().unwrap().iter().find(|k| secret.starts_with(k["prefix"].as_str().unwrap()));
        key.unwrap_or_else(|| panic!("no key of {secret} in {listed}"))["id"].as_i64().unwrap()
    };

    // Revoked through one instance: refused there at once, and by the other within a second.
    let read_id = id_of(&read);
    let revoked = request(
        &one.address,
        "DELETE",
        &format!("/api/keys/{read_id}"),
        &[("Authorization", &format!("Bearer {admin}"))],
        b"",
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(one.get("/api/models", &read).status, 401);
    assert!(
        holds_within(LEARNED_WITHIN, || two.get("/api/models", &read).status == 401),
        "the other instance still accepts the revoked key"
    );

    // Revoked with the command line on the database: refused by both within a second.
    let track = json!({"userId": "u1", "event": "page_view", "messageId": "m1"});
    for server in [&one, &two] {
        assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200, "cached");
    }
    let output = bin()
        .args(["keys", "revoke", "--workspace", "acme", "--id", &id_of(&ingest).to_string()])
        .args(store_args(dir.path()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for server in [&one, &two] {
        assert!(
            holds_within(LEARNED_WITHIN, || server.post_json("/v1/track", &ingest, &track).status == 401),
            "an instance still accepts the key revoked by the command line"
        );
    }
    for server in [&one, &two] {
        assert_eq!(server.get("/api/keys", &admin).status, 200, "the other keys still work");
    }

    // A browser key made through one instance: the other answers its origin's preflight.
    let origin = "https://shop.example.com";
    let preflight = |server: &Server| {
        request(&server.address, "OPTIONS", "/v1/t", &[("Origin", origin)], b"")
            .header("access-control-allow-origin")
            .map(str::to_string)
    };
    assert_eq!(preflight(&two), None, "no key is bound to the origin yet");
    let made = one.post_json("/api/keys", &admin, &json!({"scope": "browser", "origins": [origin]}));
    assert_eq!(made.status, 201, "{}", made.body);
    assert!(
        holds_within(LEARNED_WITHIN, || preflight(&two).as_deref() == Some(origin)),
        "the other instance does not allow the new browser key's origin"
    );
}

/// A rescoring after an activation through one instance is shared with the other: each takes
/// ranges of the leads, together they go through every lead once, and every lead ends with the
/// new version's score.
#[test]
fn a_rescoring_is_shared_between_the_instances() {
    let Some(Instances { dir: _dir, admin, ingest, read, one, two }) = Instances::start() else { return };
    assert_eq!(one.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    // Enough leads for several ranges (about 2,000 leads each), so that the other instance finds
    // some left when it joins, within a second.
    const LEADS: usize = 10_000;
    let batches: Vec<serde_json::Value> = (0..LEADS / 500)
        .map(|b| {
            let messages: Vec<_> = (b * 500..(b + 1) * 500)
                .map(|n| json!({"type": "track", "userId": format!("u{n}"), "event": "page_view", "messageId": format!("m{n}")}))
                .collect();
            json!({ "batch": messages })
        })
        .collect();
    std::thread::scope(|scope| {
        for (n, batch) in batches.iter().enumerate() {
            let (server, ingest) = ([&one, &two][n % 2], ingest.clone());
            scope.spawn(move || {
                let answer = server.post_json("/v1/batch", &ingest, batch);
                assert_eq!(answer.status, 200, "{}", answer.body);
            });
        }
    });
    let before = |server: &Server| rescored_here(server);
    let (one_before, two_before) = (before(&one), before(&two));

    // Page views worth 3 points each in the new version.
    let tripled = COUNTING_MODEL.replace("points = 1", "points = 3");
    assert_ne!(tripled, COUNTING_MODEL);
    let uploaded = one.post_text("/api/models", &admin, &tripled);
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let version = uploaded.json()["version"].as_i64().unwrap();
    let activated = one.post_text(&format!("/api/models/{version}/activate"), &admin, "");
    assert_eq!(activated.status, 202, "{}", activated.body);
    let models = wait_for_rescoring(&one, &read);
    assert_eq!(models["rescoring"]["done"], LEADS, "{models}");
    assert_eq!(models["rescoring"]["total"], LEADS, "{models}");

    let (by_one, by_two) = (rescored_here(&one) - one_before, rescored_here(&two) - two_before);
    assert_eq!(by_one + by_two, LEADS as u64, "every lead once: {by_one} by one, {by_two} by two");
    assert!(by_one > 0 && by_two > 0, "both took part: {by_one} by one, {by_two} by two");
    for n in (0..LEADS).step_by(997) {
        let lead = two.get(&format!("/api/leads/u{n}"), &read).json();
        assert_eq!(lead["scores"]["activity"]["value"], 3.0, "u{n}: {lead}");
    }
}

/// The leads an instance went through in rescorings, from its metrics.
fn rescored_here(server: &Server) -> u64 {
    let metrics = request(&server.address, "GET", "/metrics", &[], b"").body;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("leadscore_rescoring_leads_rescored_here_total "))
        .unwrap_or_else(|| panic!("no rescoring counter in {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// `--database-connections` is what an instance keeps open: twelve clients at once reach the
/// database through three connections, all used, never a fourth.
#[test]
fn an_instance_keeps_the_connections_it_is_given() {
    let Some((dir, _, ingest, _, server)) = one_instance(&["--database-connections", "3"]) else { return };
    let url = postgres_database(dir.path());
    let name = url.rsplit('/').next().unwrap().to_string();
    let server_url = url.rsplit_once('/').unwrap().0.to_string() + "/postgres";
    let most = std::sync::atomic::AtomicI64::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut watcher = postgres::Client::connect(&server_url, postgres::NoTls).unwrap();
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let open: i64 = watcher
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'leadscore' \
                         AND backend_type = 'client backend'",
                        &[&name],
                    )
                    .unwrap()
                    .get(0);
                most.fetch_max(open, std::sync::atomic::Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let senders: Vec<_> = (0..12)
            .map(|user| {
                let (server, ingest) = (&server, &ingest);
                scope.spawn(move || {
                    for i in 0..30 {
                        let message = json!({"userId": format!("user-{user}"), "event": "page_view",
                            "messageId": format!("c-{user}-{i}")});
                        let answer = server.post_json("/v1/track", ingest, &message);
                        assert_eq!(answer.status, 200, "{}", answer.body);
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    // The connections kept apart from the workers (the folder of counts, the elected passes'
    // locks) are named after what they do, and not counted here.
    assert_eq!(most.into_inner(), 3, "the workers' connections open at the most");
}

/// The library of Debian's `faketime` package, which makes a process it is preloaded into read
/// another time (`LEADSCORE_FAKETIME` names another path); `.ci/run` installs it.
fn faketime_library() -> Option<PathBuf> {
    let path = std::env::var_os("LEADSCORE_FAKETIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"));
    path.exists().then_some(path)
}

/// The seconds since midnight of an HTTP `Date` header (`Mon, 07 Dec 2026 01:02:03 GMT`).
fn seconds_of_day(date: &str) -> i64 {
    let time = date.split_whitespace().nth(4).unwrap_or_else(|| panic!("no time in the date {date:?}"));
    time.split(':').map(|part| part.parse::<i64>().unwrap()).fold(0, |seconds, part| seconds * 60 + part)
}

/// An instance whose clock is ten minutes ahead does not send a notification that another
/// instance is still sending: the outbox's leases are on the database's clock. On the clock of
/// the instance ahead, the other's lease of a minute would have ended nine minutes ago, and it
/// would send the notification a second time while the first sending still waits for an answer.
/// And what it queues is due at once, on the same clock.
#[test]
fn an_instance_whose_clock_is_ahead_leaves_alone_what_another_is_sending() {
    if !on_postgres() {
        eprintln!("PostgreSQL only: run with LEADSCORE_TEST_STORE=postgres");
        return;
    }
    let Some(faketime) = faketime_library() else {
        assert!(
            !std::env::var("CI").is_ok_and(|ci| ci == "true"),
            "the faketime library is not installed (Debian: faketime), or set LEADSCORE_FAKETIME"
        );
        eprintln!("skipped: the faketime library is not installed (Debian: faketime)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    let one = Server::start(dir.path(), &["--allow-private-webhooks"]);
    assert_eq!(one.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    // A receiver that reads requests and never answers: instance one's sending waits for its
    // timeout (10 s), holding its claim.
    let receiver = SilentReceiver::start();
    let hook = one.post_json("/api/webhooks", &admin, &json!({"url": receiver.url, "events": ["tier_changed"]}));
    assert_eq!(hook.status, 201, "{}", hook.body);
    for i in 0..3 {
        let message = json!({"userId": "ahead", "event": "page_view", "messageId": format!("ahead-{i}")});
        assert_eq!(one.post_json("/v1/track", &ingest, &message).status, 200);
    }
    assert_eq!(receiver.wait_for(1), 1, "instance one sends the lead's first notification");

    // Instance two starts ten minutes ahead; its dispatcher looks at the outbox at once.
    let child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-webhooks"])
        .args(store_args(dir.path()))
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME", "+10m")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let two = Server::attach(child, dir.path());
    let date = |server: &Server| server.get("/healthz", &admin).header("date").expect("a Date header").to_string();
    let ahead = (seconds_of_day(&date(&two)) - seconds_of_day(&date(&one))).rem_euclid(86_400);
    assert!((595..=605).contains(&ahead), "instance two's clock is {ahead} s ahead, not ten minutes");

    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(receiver.held(), 1, "instance two sent the notification instance one is still sending");

    // What instance two queues is due at once on the database's clock: stamped with its own, it
    // would wait the ten minutes for the database's clock to catch up.
    let answering = Receiver::start(0);
    let hook = two.post_json("/api/webhooks", &admin, &json!({"url": answering.url, "events": ["tier_changed"]}));
    assert_eq!(hook.status, 201, "{}", hook.body);
    for i in 0..3 {
        let message = json!({"userId": "queued-ahead", "event": "page_view", "messageId": format!("queued-ahead-{i}")});
        assert_eq!(two.post_json("/v1/track", &ingest, &message).status, 200);
    }
    let delivered = answering.wait_for(1);
    assert_eq!(delivered.len(), 1, "the notification instance two queued is sent within seconds, not minutes");
    assert_eq!(delivered[0].1["data"]["lead"]["user_id"], "queued-ahead", "{:?}", delivered[0].1);
}

/// An instance that stops while it sends notifications holds back only the leads whose
/// notifications it was sending, until its claims' leases end (a minute): another instance sends
/// the other leads' notifications to the same webhook at once. Counted against the webhook's
/// limit of notifications sent at once, the stopped instance's claims would hold back every lead
/// of the webhook for that minute.
#[test]
fn a_stopped_instance_holds_back_only_the_leads_it_was_sending() {
    let Some((dir, admin, ingest, _, mut one)) = one_instance(&["--allow-private-webhooks"]) else { return };
    // Instance one's sendings take the webhook's whole share (8 at once) and get no answer.
    const SHARE: usize = 8;
    let receiver = Receiver::holding(SHARE);
    let hook = one.post_json("/api/webhooks", &admin, &json!({"url": receiver.url, "events": ["tier_changed"]}));
    assert_eq!(hook.status, 201, "{}", hook.body);
    for lead in 0..SHARE {
        let message =
            json!({"userId": format!("held-{lead}"), "event": "page_view", "messageId": format!("held-{lead}")});
        assert_eq!(one.post_json("/v1/track", &ingest, &message).status, 200);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while receiver.held() < SHARE && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(receiver.held(), SHARE, "instance one sends the {SHARE} leads' first notifications");
    one.kill();

    let two = Server::start(dir.path(), &["--allow-private-webhooks"]);
    let message = json!({"userId": "after-the-stop", "event": "page_view", "messageId": "after-the-stop"});
    assert_eq!(two.post_json("/v1/track", &ingest, &message).status, 200);
    // Well within the minute the stopped instance's leases last.
    let delivered = receiver.wait_for(1);
    assert_eq!(delivered.len(), 1, "another lead's notification waited for the stopped instance's leases");
    assert_eq!(delivered[0].1["data"]["lead"]["user_id"], "after-the-stop", "{:?}", delivered[0].1);
}

/// Requests that arrive while an instance's ingestion transactions run are stored together in
/// the next one (`--database-writers`, `intake::groups`), and each is answered as if it had been
/// alone: its own lead, with the scores that count its own events, and a message id sent by two
/// requests at once stored once.
#[test]
fn requests_stored_together_are_each_answered_their_own_lead_and_scores() {
    // One transaction at a time: every request that arrives while it runs waits for the next.
    let Some((_dir, admin, ingest, read, server)) = one_instance(&["--database-writers", "1"]) else { return };
    wait_until_no_rescoring_runs(&server, &admin);
    const SENDERS: usize = 24;
    const EVENTS: usize = 6;
    let duplicates_seen = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for sender in 0..SENDERS {
            let (server, ingest, duplicates_seen) = (&server, ingest.clone(), &duplicates_seen);
            scope.spawn(move || {
                let user = format!("группа-{sender}");
                for i in 0..EVENTS {
                    let message = json!({"userId": user, "event": "page_view", "messageId": format!("{user}-{i}")});
                    let answer = server.post_json("/v1/track", &ingest, &message);
                    assert_eq!(answer.status, 200, "{}", answer.body);
                    let answer = answer.json();
                    assert_eq!(answer["duplicate"], false, "{answer}");
                    assert_eq!(answer["lead"]["user_id"], user.as_str(), "its own lead: {answer}");
                    assert_eq!(
                        answer["lead"]["scores"]["activity"]["value"],
                        (i + 1) as f64,
                        "{user}'s answer counts its own events so far: {answer}"
                    );
                    // Pairs of senders send one message each at once, with the same id.
                    let shared = json!({"userId": "shared", "event": "page_view", "messageId": format!("shared-{}-{i}", sender / 2)});
                    let answer = server.post_json("/v1/track", &ingest, &shared);
                    assert_eq!(answer.status, 200, "{}", answer.body);
                    duplicates_seen.lock().unwrap().push(answer.json()["duplicate"] == true);
                }
            });
        }
    });
    let duplicates = duplicates_seen.into_inner().unwrap();
    let stored = SENDERS / 2 * EVENTS;
    assert_eq!(duplicates.iter().filter(|d| !**d).count(), stored, "each shared message id is stored once");
    let lead = server.get("/api/leads/shared", &read).json();
    assert_eq!(lead["scores"]["activity"]["value"], stored as f64, "{lead}");
    for sender in 0..SENDERS {
        let lead = server.get(&format!("/api/leads/группа-{sender}"), &read).json();
        assert_eq!(lead["scores"]["activity"]["value"], EVENTS as f64, "{lead}");
    }
    // The requests did share transactions.
    let metrics = request(&server.address, "GET", "/metrics", &[], b"").body;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    let (requests, transactions) =
        (value("leadscore_ingestion_group_requests_sum"), value("leadscore_ingestion_group_requests_count"));
    assert!(requests >= (SENDERS * EVENTS * 2) as f64, "{requests} requests counted");
    assert!(
        transactions < requests / 2.0,
        "{requests} requests in {transactions} transactions: the waiting ones went together"
    );
}
