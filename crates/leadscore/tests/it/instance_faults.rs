//! Three `leadscore serve` instances on one PostgreSQL behind a load balancer, under load from
//! Segment's Python library, a load tool and racing identifies, while one instance is killed with
//! `kill -9` every few seconds and PostgreSQL crashes and restarts once. Afterwards:
//!
//! - every acknowledged message id is stored exactly once, and nothing else is stored;
//! - every lead's stored scores equal what the engine computes from its stored events;
//! - every webhook notification was delivered, in order per lead;
//! - the identities linked by racing instances ended in one lead each.
//!
//! The test runs on a PostgreSQL cluster of its own ([`crate::pg_cluster`]), since it crashes
//! the server, and needs `LEADSCORE_TEST_STORE=postgres` (`.ci/run` sets it), PostgreSQL's server
//! programs (`initdb`) and Segment's Python library (`LEADSCORE_SEGMENT_PYTHON`, see
//! [`crate::segment_python`]). Without the programs or the library it is skipped with a message,
//! except under `CI=true`, where it fails: a run that could not check anything never reads as a
//! pass. When a check fails, the instances' logs are kept (the message says where), and with
//! `LEADSCORE_TEST_KEEP_FAILED=1` the PostgreSQL cluster too, running, to query.
//!
//! # How each claim is checked
//!
//! - **Stored exactly once.** A message counts as acknowledged when its request was answered 200
//!   (for a batch, with the item `accepted` or `duplicate`); Segment's library acknowledges every
//!   message it did not hand to its `on_error` callback. The `events` table is read directly:
//!   every acknowledged id is there, none twice, none that no client sent.
//! - **Scores.** The model has no time in it (points per event type and for one attribute), so a
//!   lead's score is a plain function of its stored events and attributes, computed here from the
//!   `events` and `leads` rows with no code of the engine. Every lead's score as the API answers
//!   it and as stored must equal it (both, because they can differ: the API evaluates the lead
//!   when asked, the stored score is what lists, tiers, webhooks and the move to MQL act on).
//!   That alone could miss an event the engine no longer reaches
//!   (its events form a chain it walks), so the chain of every lead is checked to hold exactly the
//!   lead's events, and then the same model is activated again as a new version: its rescoring
//!   recomputes every lead from its stored events through the engine, and every lead's scores must
//!   come out unchanged.
//! - **Webhooks in order.** The receiver keeps every request. A notification's id is its row in the
//!   outbox, numbered in the order its lead's changes were committed (each change holds the lead's
//!   lock), so per lead the ids must rise in the order they first arrived; redeliveries of one
//!   (delivery is at least once) are allowed. Each lead's tier changes must also chain (each one's
//!   `previous_tier` is the tier of the one before), its stage changes likewise, and the last tier
//!   delivered must be the lead's tier now. Once the outbox is drained, every notification it holds
//!   as delivered must have reached the receiver, and the receiver nothing else. A notification
//!   claimed by an instance that was then killed (or lost the database) waits for its claim's
//!   lease, a minute, before another instance sends it: that wait is most of the test's time.
//! - **Racing merges.** Visitors browse anonymously, then their identify (`userId` with the
//!   `anonymousId`) goes to two instances at once, bypassing the balancer; half of them were known
//!   by their user id before, so that two leads merge. Every stored message of a person must then
//!   be on the one lead of its user id, and the anonymous id must resolve to that lead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::balancer::Balancer;
use crate::common::*;
use crate::pg_cluster::Cluster;

/// The model: points per event type and for one attribute, nothing that depends on time, so that
/// the test computes every lead's score from its rows ([`expected_score`]). Its `mql` tier moves
/// leads to the `mql` stage, which notifies too.
const MODEL: &str = r#"
[scores.activity]
tiers = [{ label = "cold" }, { label = "warm", min = 5 }, { label = "hot", min = 15 }, { label = "mql", min = 40 }]
[[scores.activity.rules]]
name = "page views"
event = "page_view"
points = 1
[[scores.activity.rules]]
name = "pricing"
event = "Pricing Viewed"
points = 3
[[scores.activity.rules]]
name = "sign-up"
event = "Signed Up"
points = 5
[[scores.activity.rules]]
name = "tech"
when = { field = "industry", equals = "Technology" }
points = 5
"#;

/// The points of one stored event of type `event_type`, as [`MODEL`] gives them.
fn event_points(event_type: &str) -> f64 {
    match event_type {
        "page_view" => 1.0,
        "Pricing Viewed" => 3.0,
        "Signed Up" => 5.0,
        _ => 0.0,
    }
}

/// A lead's score and tier under [`MODEL`], from its stored event types and attributes.
fn expected_score<'a>(event_types: impl IntoIterator<Item = &'a str>, attributes: &Value) -> (f64, &'static str) {
    let mut value: f64 = event_types.into_iter().map(event_points).sum();
    if attributes["industry"] == "Technology" {
        value += 5.0;
    }
    let tier = match value {
        v if v >= 40.0 => "mql",
        v if v >= 15.0 => "hot",
        v if v >= 5.0 => "warm",
        _ => "cold",
    };
    (value, tier)
}

const INSTANCES: usize = 3;
/// One instance is killed, and a new one started, this often.
const KILL_EVERY: Duration = Duration::from_secs(3);
/// PostgreSQL crashes and restarts right after this kill.
const CRASH_AT_KILL: usize = 4;
/// How long the load tool sends.
const LOAD_FOR: Duration = Duration::from_secs(30);
/// The load tool's threads and the users they send for (every thread sends for every user, so
/// that instances write the same leads at once).
const LOAD_THREADS: usize = 6;
const LOAD_USERS: usize = 120;
/// Messages in each of the load tool's batches (every third request).
const BATCH: usize = 12;
/// A pause between two requests of one load thread.
const LOAD_PAUSE: Duration = Duration::from_millis(5);
/// Visitors who identify on two instances at once, one every `LOAD_FOR / VISITORS`.
const VISITORS: usize = 10;
/// Users of the Segment library and the messages each sends, paced by `PYTHON_PAUSE` seconds.
const PYTHON_USERS: usize = 6;
const PYTHON_MESSAGES: usize = 20;
const PYTHON_PAUSE: &str = "0.2";
/// How many times a client sends a request before it gives up, pausing 100 ms more each time.
const ATTEMPTS: u64 = 10;
/// The longest wait for the outbox to be drained after the load: the lease of a notification
/// claimed by a killed instance (a minute) and the minute another instance may take to look again.
const DRAIN_WITHIN: Duration = Duration::from_secs(150);

/// What the clients sent and what was acknowledged, by message id.
#[derive(Default)]
struct Ledger {
    sent: BTreeSet<String>,
    acknowledged: BTreeSet<String>,
    /// Answers by status, and requests whose connection broke before an answer.
    statuses: BTreeMap<u16, usize>,
    broken: usize,
    /// Requests given up after `ATTEMPTS`.
    gave_up: usize,
    /// Messages answered as already stored: sent again after an answer that was lost.
    duplicates: usize,
    /// Answers no fault explains (a 4xx, a 500, a refused item), to report.
    anomalies: Vec<String>,
}

/// Sends a JSON request through `address` until it is answered 200, as a client does through a
/// load balancer (an instance killed mid-request breaks the connection; PostgreSQL down is a 503),
/// and records what happened. Returns the answer's body, or `None` when it gave up.
fn post_until_ok(address: &str, path: &str, key: &str, body: &Value, ledger: &Mutex<Ledger>) -> Option<Value> {
    let authorization = format!("Bearer {key}");
    let headers = [("Authorization", authorization.as_str()), ("Content-Type", "application/json")];
    let text = body.to_string();
    for attempt in 1..=ATTEMPTS {
        let answer = try_request(address, "POST", path, &headers, text.as_bytes());
        {
            let mut ledger = ledger.lock().unwrap();
            match &answer {
                Ok(answer) => {
                    *ledger.statuses.entry(answer.status).or_default() += 1;
                    if answer.status != 200 && answer.status != 503 {
                        ledger.anomalies.push(format!("POST {path} {text}: {} {}", answer.status, answer.body));
                    }
                }
                Err(_) => ledger.broken += 1,
            }
        }
        if let Ok(answer) = answer
            && answer.status == 200
        {
            return serde_json::from_str(&answer.body).ok();
        }
        std::thread::sleep(Duration::from_millis(100 * attempt));
    }
    ledger.lock().unwrap().gave_up += 1;
    None
}

/// Sends one Segment message (`/v1/track`, `/v1/identify`) and records it as sent, and as
/// acknowledged if it was answered 200.
fn send_one(address: &str, path: &str, key: &str, message: Value, ledger: &Mutex<Ledger>) -> bool {
    let id = message["messageId"].as_str().unwrap().to_string();
    ledger.lock().unwrap().sent.insert(id.clone());
    let Some(answer) = post_until_ok(address, path, key, &message, ledger) else { return false };
    let mut ledger = ledger.lock().unwrap();
    ledger.acknowledged.insert(id);
    if answer["duplicate"] == true {
        ledger.duplicates += 1;
    }
    true
}

/// Sends a `/v1/batch` of `messages`; those its answer accepts (or finds already stored) are
/// acknowledged.
fn send_batch(address: &str, key: &str, messages: Vec<Value>, ledger: &Mutex<Ledger>) {
    let ids: Vec<String> = messages.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    ledger.lock().unwrap().sent.extend(ids.iter().cloned());
    let Some(answer) = post_until_ok(address, "/v1/batch", key, &json!({ "batch": messages }), ledger) else { return };
    let mut ledger = ledger.lock().unwrap();
    let items = answer["items"].as_array().cloned().unwrap_or_default();
    if items.len() != ids.len() {
        ledger.anomalies.push(format!(
            "a batch of {} messages was answered {} items: {answer}",
            ids.len(),
            items.len()
        ));
        return;
    }
    for (id, item) in ids.into_iter().zip(items) {
        match item["status"].as_str() {
            Some("accepted") => {
                ledger.acknowledged.insert(id);
            }
            Some("duplicate") => {
                ledger.acknowledged.insert(id);
                ledger.duplicates += 1;
            }
            _ => ledger.anomalies.push(format!("{id} was answered {item}")),
        }
    }
}

/// The load tool: `LOAD_THREADS` threads posting single tracks and batches (with an identify now
/// and then) for `LOAD_USERS` users through the balancer until `LOAD_FOR` has passed.
fn load_tool(balancer: &str, ingest: &str, ledger: &Mutex<Ledger>) {
    let until = Instant::now() + LOAD_FOR;
    std::thread::scope(|scope| {
        for thread in 0..LOAD_THREADS {
            scope.spawn(move || {
                let mut sequence = 0;
                while Instant::now() < until {
                    sequence += 1;
                    let user = format!("load-{}", (thread * 7 + sequence) % LOAD_USERS);
                    let id = format!("load-{thread}-{sequence}");
                    if sequence % 3 == 0 {
                        let mut messages = Vec::new();
                        for item in 0..BATCH {
                            let id = format!("{id}-{item}");
                            messages.push(match (sequence + item) % 8 {
                                0 => json!({"type": "identify", "userId": user, "messageId": id,
                                            "traits": {"industry": "Technology"}}),
                                1 | 4 => {
                                    json!({"type": "track", "userId": user, "event": "Pricing Viewed", "messageId": id})
                                }
                                6 if sequence % 9 == 0 => {
                                    json!({"type": "track", "userId": user, "event": "Signed Up", "messageId": id})
                                }
                                _ => json!({"type": "track", "userId": user, "event": "page_view", "messageId": id}),
                            });
                        }
                        send_batch(balancer, ingest, messages, ledger);
                    } else {
                        let track = json!({"userId": user, "event": "page_view", "messageId": id,
                                           "properties": {"url": format!("https://example.com/{sequence}")}});
                        send_one(balancer, "/v1/track", ingest, track, ledger);
                    }
                    std::thread::sleep(LOAD_PAUSE);
                }
            });
        }
    });
}

/// The visitors: each browses anonymously through the balancer (half of them known by their user
/// id before), then identifies on two instances at once, bypassing the balancer (an identify
/// whose instance was just killed is sent again through the balancer), then browses once more
/// anonymously. One visitor every `LOAD_FOR / VISITORS`, so that some meet a kill or the crash.
fn racing_visitors(balancer: &Balancer, ingest: &str, ledger: &Mutex<Ledger>) {
    let spacing = LOAD_FOR / VISITORS as u32;
    for visitor in 0..VISITORS {
        let started = Instant::now();
        let (user, anonymous) = (format!("person-{visitor}"), format!("visitor-{visitor}"));
        if visitor % 2 == 0 {
            let signed_up =
                json!({"userId": user, "event": "Signed Up", "messageId": format!("person-{visitor}-signup")});
            send_one(&balancer.address, "/v1/track", ingest, signed_up, ledger);
        }
        for view in 0..3 {
            let viewed = json!({"anonymousId": anonymous, "event": "page_view",
                                "messageId": format!("visitor-{visitor}-view-{view}")});
            send_one(&balancer.address, "/v1/track", ingest, viewed, ledger);
        }
        let instances = balancer.backends();
        let barrier = Barrier::new(2);
        let linked: Vec<bool> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..2)
                .map(|racer| {
                    let instance = instances[racer % instances.len()].clone();
                    let identify = json!({"userId": user, "anonymousId": anonymous,
                                          "traits": {"industry": if visitor % 3 == 0 { "Technology" } else { "Retail" }},
                                          "messageId": format!("visitor-{visitor}-identify-{racer}")});
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let id = identify["messageId"].as_str().unwrap().to_string();
                        ledger.lock().unwrap().sent.insert(id.clone());
                        barrier.wait();
                        let authorization = format!("Bearer {ingest}");
                        let headers = [("Authorization", authorization.as_str()), ("Content-Type", "application/json")];
                        let direct =
                            try_request(&instance, "POST", "/v1/identify", &headers, identify.to_string().as_bytes());
                        let answered = match direct {
                            Ok(answer) => {
                                let mut held = ledger.lock().unwrap();
                                *held.statuses.entry(answer.status).or_default() += 1;
                                if answer.status != 200 && answer.status != 503 {
                                    held.anomalies.push(format!("identify {id}: {} {}", answer.status, answer.body));
                                }
                                answer.status == 200
                            }
                            Err(_) => {
                                ledger.lock().unwrap().broken += 1;
                                false
                            }
                        };
                        if answered {
                            ledger.lock().unwrap().acknowledged.insert(id);
                            true
                        } else {
                            send_one(&balancer.address, "/v1/identify", ingest, identify, ledger)
                        }
                    })
                })
                .collect();
            racers.into_iter().map(|racer| racer.join().unwrap()).collect()
        });
        assert!(linked.contains(&true), "neither identify of {user} was ever answered 200");
        let after = json!({"anonymousId": anonymous, "event": "Pricing Viewed", "messageId": format!("visitor-{visitor}-after")});
        send_one(&balancer.address, "/v1/track", ingest, after, ledger);
        std::thread::sleep(spacing.saturating_sub(started.elapsed()));
    }
}

/// Sends its messages with Segment's Python library: argv is the write key, the host, a JSON file
/// of messages and the pause between two (seconds). Prints, as JSON, the message ids the library
/// gave up on (its `on_error` callback) and those it could not queue.
const SCRIPT: &str = r#"
import json
import sys
import time

from segment.analytics import Client

write_key, host, path, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(path) as file:
    messages = json.load(file)
failed = []


def on_error(error, items):
    failed.extend(item.get("messageId") for item in items)
    print("on_error: %r (%d message(s))" % (error, len(items)), file=sys.stderr)


# Small batches often, and the library's own retries (with its backoff) on.
client = Client(write_key, host=host, on_error=on_error, max_retries=10, timeout=10,
                upload_size=5, upload_interval=0.2)
not_queued = []
for m in messages:
    if m["type"] == "identify":
        queued, _ = client.identify(m.get("userId"), traits=m.get("traits"), anonymous_id=m.get("anonymousId"),
                                    message_id=m["messageId"])
    elif m["type"] == "page":
        queued, _ = client.page(m.get("userId"), name="Pricing", properties=m.get("properties"),
                                anonymous_id=m.get("anonymousId"), message_id=m["messageId"])
    else:
        queued, _ = client.track(m.get("userId"), m["event"], m.get("properties"),
                                 anonymous_id=m.get("anonymousId"), message_id=m["messageId"])
    if not queued:
        not_queued.append(m["messageId"])
    time.sleep(pause)
client.flush()
client.join()
print(json.dumps({"failed": failed, "not_queued": not_queued}))
"#;

/// The messages the Segment library sends, users interleaved: each user identifies (odd users
/// first browse with an anonymous id that the identify links), then tracks page views, pricing
/// views and page calls.
fn python_messages() -> Vec<Value> {
    let mut messages = Vec::new();
    for i in 0..PYTHON_MESSAGES {
        for user_number in 0..PYTHON_USERS {
            let (user, anonymous) = (format!("py-{user_number}"), format!("py-anon-{user_number}"));
            let id = format!("py-{user_number}-{i}");
            let anonymous_phase = user_number % 2 == 1 && i < 3;
            messages.push(match i {
                _ if anonymous_phase => json!({"type": "page", "anonymousId": anonymous, "messageId": id,
                                               "properties": {"url": "https://example.com/pricing"}}),
                3 => json!({"type": "identify", "userId": user, "anonymousId": anonymous, "messageId": id,
                            "traits": {"industry": if user_number % 3 == 0 { "Technology" } else { "Retail" },
                                       "email": format!("{user}@example.com")}}),
                _ if i % 4 == 0 => json!({"type": "page", "userId": user, "messageId": id,
                                          "properties": {"url": "https://example.com/docs"}}),
                _ if i % 3 == 0 => json!({"type": "track", "userId": user, "event": "Pricing Viewed", "messageId": id}),
                _ => json!({"type": "track", "userId": user, "event": "page_view", "messageId": id}),
            });
        }
    }
    messages
}

/// Runs the Segment library's script through the balancer; records its messages as sent, and as
/// acknowledged those it neither gave up on nor failed to queue.
fn segment_library(
    python: &std::path::Path,
    dir: &std::path::Path,
    balancer: &str,
    ingest: &str,
    ledger: &Mutex<Ledger>,
) {
    let messages = python_messages();
    let ids: Vec<String> = messages.iter().map(|m| m["messageId"].as_str().unwrap().to_string()).collect();
    let (script, list) = (dir.join("send.py"), dir.join("messages.json"));
    std::fs::write(&script, SCRIPT).unwrap();
    std::fs::write(&list, serde_json::to_string(&messages).unwrap()).unwrap();
    ledger.lock().unwrap().sent.extend(ids.iter().cloned());
    let mut command = Command::new(python);
    command.arg(&script).arg(ingest).arg(format!("http://{balancer}")).arg(&list).arg(PYTHON_PAUSE);
    let (status, stdout, stderr) = crate::segment_python::run(command, Duration::from_secs(240));
    let status = status.unwrap_or_else(|| panic!("the Segment library did not finish in 240 s\n{stdout}\n{stderr}"));
    assert!(status.success(), "the Segment library's script failed ({status}):\n{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the script's report is not JSON ({e}):\n{stdout}\n{stderr}"));
    let lost: BTreeSet<&str> = ["failed", "not_queued"]
        .iter()
        .flat_map(|field| report[field].as_array().into_iter().flatten().filter_map(Value::as_str))
        .collect();
    eprintln!("segment library: {} messages, {} given up or not queued", ids.len(), lost.len());
    if !lost.is_empty() {
        eprintln!("its standard error:\n{stderr}");
    }
    let mut ledger = ledger.lock().unwrap();
    for id in ids {
        if !lost.contains(id.as_str()) {
            ledger.acknowledged.insert(id);
        }
    }
}

/// Sets the flag when dropped, so that the fault thread stops even when the test panics.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The faults: every `KILL_EVERY` one instance in turn is killed (SIGKILL) and taken out of the
/// balancer, and a new one started and put in; right after the `CRASH_AT_KILL`th kill PostgreSQL
/// crashes and restarts (before the new instance starts, which needs the database). Runs until
/// `stop`; returns the instances then running and what it did.
fn faults(
    mut instances: Vec<Server>,
    start: &(dyn Fn(usize) -> Server + Sync),
    cluster: &Cluster,
    balancer: &Balancer,
    stop: &AtomicBool,
) -> (Vec<Server>, Vec<String>) {
    let began = Instant::now();
    let mut done = Vec::new();
    let mut kills = 0;
    while !stop.load(Ordering::SeqCst) {
        let next = Instant::now() + KILL_EVERY;
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let slot = kills % instances.len();
        kills += 1;
        let address = instances[slot].address.clone();
        instances[slot].kill();
        balancer.remove(&address);
        done.push(format!("{:.1}s kill -9 {address}", began.elapsed().as_secs_f64()));
        if kills == CRASH_AT_KILL {
            let crashed = Instant::now();
            cluster.crash_and_restart();
            done.push(format!(
                "{:.1}s PostgreSQL crashed and restarted ({:.1}s down)",
                began.elapsed().as_secs_f64(),
                crashed.elapsed().as_secs_f64()
            ));
        }
        instances[slot] = start(kills + INSTANCES);
        balancer.add(&instances[slot].address);
    }
    (instances, done)
}

#[test]
fn three_instances_survive_kills_and_a_database_crash_under_load() {
    if !on_postgres() {
        eprintln!("PostgreSQL only: run with LEADSCORE_TEST_STORE=postgres");
        return;
    }
    let ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let Some(binaries) = Cluster::binaries() else {
        assert!(!ci, "PostgreSQL's server programs (initdb) are not installed: set LEADSCORE_TEST_PG_BIN");
        eprintln!("skipped: PostgreSQL's server programs (initdb) are not installed");
        return;
    };
    let Some(python) = std::env::var_os("LEADSCORE_SEGMENT_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from) else {
        assert!(!ci, "LEADSCORE_SEGMENT_PYTHON is not set (see segment_python.rs)");
        eprintln!("skipped: LEADSCORE_SEGMENT_PYTHON is not set (see segment_python.rs)");
        return;
    };
    let test_began = Instant::now();
    let cluster = Cluster::start(&binaries);
    let url = cluster.create_database("leadscore");
    let dir = tempfile::tempdir().unwrap();
    // The instances' logs, kept when a check fails (the path is in the message).
    let logs = tempfile::Builder::new().prefix("leadscore-instance-faults-").tempdir().unwrap();
    let admin = create_key_on(&url, "acme", "admin");
    let ingest = create_key_on(&url, "acme", "ingest");
    let read = create_key_on(&url, "acme", "read");

    let logs_path = logs.path().to_path_buf();
    let start = {
        let url = url.clone();
        move |number: usize| {
            let log = std::fs::File::create(logs_path.join(format!("instance-{number}.log"))).unwrap();
            Server::start_on(&url, &["--allow-private-webhooks", "--webhook-retry-base-ms", "100"], log)
        }
    };
    let instances: Vec<Server> = (0..INSTANCES).map(&start).collect();
    let balancer = Balancer::start(instances.iter().map(|i| i.address.clone()).collect());
    let through = |method: &str, path: &str, key: &str, body: &[u8]| {
        request(&balancer.address, method, path, &[("Authorization", &format!("Bearer {key}"))], body)
    };
    let uploaded = through("POST", "/api/models", &admin, MODEL.as_bytes());
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    let receiver = Receiver::start(0);
    let hook = instances[0].post_json(
        "/api/webhooks",
        &admin,
        &json!({"url": receiver.url, "events": ["tier_changed", "score_crossed", "stage_changed", "became_mql"],
                "score": "activity", "threshold": 10}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let webhook_id = hook.json()["id"].as_i64().unwrap();

    // The load and the faults, at once.
    let ledger = Mutex::new(Ledger::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load_began = Instant::now();
    let (instances, faults_done) = std::thread::scope(|scope| {
        let _stop_on_panic = StopOnDrop(stop.clone());
        let fault_thread = scope.spawn(|| faults(instances, &start, &cluster, &balancer, &stop));
        let clients = [
            scope.spawn(|| load_tool(&balancer.address, &ingest, &ledger)),
            scope.spawn(|| racing_visitors(&balancer, &ingest, &ledger)),
            scope.spawn(|| segment_library(&python, dir.path(), &balancer.address, &ingest, &ledger)),
        ];
        let outcomes: Vec<_> = clients.into_iter().map(|client| client.join()).collect();
        stop.store(true, Ordering::SeqCst);
        let faults = fault_thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        for outcome in outcomes {
            if let Err(panic) = outcome {
                std::panic::resume_unwind(panic);
            }
        }
        faults
    });
    let load_took = load_began.elapsed();
    let ledger = ledger.into_inner().unwrap();
    eprintln!("load: {:.1}s; faults:\n  {}", load_took.as_secs_f64(), faults_done.join("\n  "));
    eprintln!(
        "requests: answers by status {:?}, {} broken connections, {} given up after {ATTEMPTS} attempts; \
         {} messages answered as already stored when sent again",
        ledger.statuses, ledger.broken, ledger.gave_up, ledger.duplicates
    );
    // Kills that broke no request in flight would prove little (a 503 may be a race lost).
    assert!(ledger.broken > 0, "no connection broke: the kills hit no request in flight");
    assert!(faults_done.len() >= 6, "too few faults happened during the load: {faults_done:?}");
    assert!(faults_done.iter().any(|f| f.contains("PostgreSQL")), "PostgreSQL never crashed: {faults_done:?}");

    let mut database = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let workspace: i64 = database.query_one("SELECT id FROM workspaces WHERE name = 'acme'", &[]).unwrap().get(0);
    let mut failures: Vec<String> = ledger.anomalies.iter().map(|a| format!("unexpected answer: {a}")).collect();

    // Every notification is sent, or given up: then the receiver has all it will ever get.
    let drain_began = Instant::now();
    let drained = holds_within(DRAIN_WITHIN, || {
        let pending: i64 = database
            .query_one(
                "SELECT count(*) FROM outbox WHERE webhook_id = $1 AND delivered_at IS NULL AND failed_at IS NULL",
                &[&webhook_id],
            )
            .unwrap()
            .get(0);
        pending == 0
    });
    let drain_took = drain_began.elapsed();
    if !drained {
        failures
            .push(format!("the outbox still held pending notifications {}s after the load", DRAIN_WITHIN.as_secs()));
        // Why, from what the outbox and the instances' logs say: the logs are kept, but only
        // the failure's message reaches whoever reads a remote run.
        failures.extend(outbox_diagnosis(&mut database, webhook_id));
        failures.extend(log_diagnosis(logs.path()));
    }

    failures.extend(check_message_ids(&mut database, workspace, &ledger));
    let leads = stored_leads(&mut database, workspace);
    failures.extend(check_chains(&mut database, &leads));
    failures.extend(check_scores(&leads, |lead| {
        let answer = through("GET", &format!("/api/leads/{lead}"), &read, b"");
        (answer.status == 200).then(|| answer.json()["scores"]["activity"].clone())
    }));
    failures.extend(check_notifications(&mut database, webhook_id, &receiver, &leads));
    failures.extend(check_people(&mut database, workspace, &leads));

    // The same model again, as a new version: its rescoring recomputes every lead from its stored
    // events through the engine.
    let rescoring_began = Instant::now();
    let again = through("POST", "/api/models", &admin, format!("{MODEL}\n# the same rules again\n").as_bytes());
    assert_eq!(again.status, 201, "{}", again.body);
    let version = again.json()["version"].as_i64().unwrap();
    let activated = through("POST", &format!("/api/models/{version}/activate"), &admin, b"");
    assert_eq!(activated.status, 202, "{}", activated.body);
    wait_for_rescoring(&instances[0], &read);
    let rescoring_took = rescoring_began.elapsed();
    let model_id: i64 = database
        .query_one("SELECT id FROM models WHERE workspace_id = $1 AND version = $2", &[&workspace, &version])
        .unwrap()
        .get(0);
    let rescored = stored_leads(&mut database, workspace);
    failures.extend(check_rescored(&leads, &rescored, model_id));

    let sent = ledger.sent.len();
    let stored = leads.values().map(|lead| lead.events.len()).sum::<usize>();
    let delivered = receiver.delivered().len();
    eprintln!(
        "messages: {sent} sent, {} acknowledged, {stored} stored; {} leads; {delivered} webhook requests answered; \
         outbox drained in {:.1}s; rescoring {:.1}s; test {:.1}s",
        ledger.acknowledged.len(),
        leads.len(),
        drain_took.as_secs_f64(),
        rescoring_took.as_secs_f64(),
        test_began.elapsed().as_secs_f64()
    );
    drop(instances);
    if !failures.is_empty() {
        let logs = logs.keep();
        // The database as the failure left it, when asked for.
        if std::env::var_os("LEADSCORE_TEST_KEEP_FAILED").is_some() {
            eprintln!("{}", cluster.keep());
        }
        // The diagnosis first, then the first failures.
        let (diagnosis, other): (Vec<&String>, Vec<&String>) =
            failures.iter().partition(|failure| failure.starts_with("diagnosis: "));
        let diagnosed = diagnosis.len();
        let shown: Vec<&str> = diagnosis.into_iter().chain(other.into_iter().take(40)).map(String::as_str).collect();
        panic!(
            "{} failure(s) (the instances' logs are in {}):\n{}",
            failures.len() - diagnosed,
            logs.display(),
            shown.join("\n")
        );
    }
}

/// A lead as stored, with what the checks need.
#[derive(Debug, Clone)]
struct StoredLead {
    id: i64,
    user_id: Option<String>,
    merged_into: Option<i64>,
    attributes: Value,
    stage: String,
    last_event_id: Option<i64>,
    /// Its events: (id, message id, type).
    events: Vec<(i64, String, String)>,
    /// Its stored `activity` score: (value, tier, model id).
    score: Option<(f64, Option<String>, i64)>,
}

impl StoredLead {
    /// How a failure names the lead.
    fn name(&self) -> String {
        match &self.user_id {
            Some(user) => format!("lead {} ({user})", self.id),
            None => format!("lead {} (anonymous)", self.id),
        }
    }
}

/// Every lead of the workspace with its events and stored score, by id.
fn stored_leads(database: &mut postgres::Client, workspace: i64) -> BTreeMap<i64, StoredLead> {
    let mut leads = BTreeMap::new();
    let rows = database
        .query(
            "SELECT id, user_id, merged_into, attributes, stage, last_event_id FROM leads WHERE workspace_id = $1",
            &[&workspace],
        )
        .unwrap();
    for row in rows {
        let attributes: String = row.get(3);
        let lead = StoredLead {
            id: row.get(0),
            user_id: row.get(1),
            merged_into: row.get(2),
            attributes: serde_json::from_str(&attributes).unwrap(),
            stage: row.get(4),
            last_event_id: row.get(5),
            events: Vec::new(),
            score: None,
        };
        leads.insert(lead.id, lead);
    }
    let events = database
        .query("SELECT lead_id, id, message_id, type FROM events WHERE workspace_id = $1 ORDER BY id", &[&workspace])
        .unwrap();
    for row in events {
        let lead: i64 = row.get(0);
        leads.get_mut(&lead).unwrap().events.push((row.get(1), row.get(2), row.get(3)));
    }
    let scores = database
        .query(
            "SELECT s.lead_id, s.value, s.tier, s.model_id FROM lead_scores s JOIN leads l ON l.id = s.lead_id
             WHERE l.workspace_id = $1 AND s.score = 'activity'",
            &[&workspace],
        )
        .unwrap();
    for row in scores {
        let lead: i64 = row.get(0);
        leads.get_mut(&lead).unwrap().score = Some((row.get(1), row.get(2), row.get(3)));
    }
    leads
}

/// Every acknowledged message id is stored, none twice, and nothing no client sent is stored.
fn check_message_ids(database: &mut postgres::Client, workspace: i64, ledger: &Ledger) -> Vec<String> {
    let mut failures = Vec::new();
    let rows = database
        .query("SELECT message_id, count(*) FROM events WHERE workspace_id = $1 GROUP BY message_id", &[&workspace])
        .unwrap();
    let mut stored = BTreeSet::new();
    for row in rows {
        let (id, count): (String, i64) = (row.get(0), row.get(1));
        if count != 1 {
            failures.push(format!("message {id} is stored {count} times"));
        }
        if !ledger.sent.contains(&id) {
            failures.push(format!("message {id} is stored, but no client sent it"));
        }
        stored.insert(id);
    }
    for id in ledger.acknowledged.difference(&stored) {
        failures.push(format!("message {id} was acknowledged but is not stored"));
    }
    let unacknowledged_stored = stored.difference(&ledger.acknowledged).count();
    eprintln!(
        "message ids: {} sent, {} acknowledged, {} stored ({unacknowledged_stored} of them never acknowledged: \
         answers lost with a killed instance, or given up)",
        ledger.sent.len(),
        ledger.acknowledged.len(),
        stored.len()
    );
    failures
}

/// Every lead's chain of events (what the engine walks from `last_event_id`) holds exactly the
/// events stored for it; a merged lead holds none.
fn check_chains(database: &mut postgres::Client, leads: &BTreeMap<i64, StoredLead>) -> Vec<String> {
    let mut failures = Vec::new();
    for lead in leads.values() {
        let chain: BTreeSet<i64> = database
            .query(
                "WITH RECURSIVE chain(id) AS (
                     SELECT $1::bigint WHERE $1::bigint IS NOT NULL
                     UNION
                     SELECT e.previous_id FROM events e JOIN chain c ON e.id = c.id WHERE e.previous_id IS NOT NULL
                 ) SELECT id FROM chain",
                &[&lead.last_event_id],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let own: BTreeSet<i64> = lead.events.iter().map(|(id, _, _)| *id).collect();
        if chain != own {
            let missing: Vec<&i64> = own.difference(&chain).collect();
            let foreign: Vec<&i64> = chain.difference(&own).collect();
            failures.push(format!(
                "{}: its chain of events misses its events {missing:?} and holds others' {foreign:?}",
                lead.name()
            ));
        }
    }
    failures
}

/// Every lead not merged into another has the score computed here from its events and
/// attributes, stored and as the API answers it (`api` gives a lead's `scores.activity`); a
/// merged lead has none.
fn check_scores(leads: &BTreeMap<i64, StoredLead>, api: impl Fn(i64) -> Option<Value>) -> Vec<String> {
    let mut failures = Vec::new();
    for lead in leads.values() {
        if lead.merged_into.is_some() {
            if let Some(score) = &lead.score {
                failures.push(format!("{} was merged but still has a score {score:?}", lead.name()));
            }
            continue;
        }
        let (value, tier) = expected_score(lead.events.iter().map(|(_, _, kind)| kind.as_str()), &lead.attributes);
        let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, kind) in &lead.events {
            *by_type.entry(kind.as_str()).or_default() += 1;
        }
        let stored = lead.score.as_ref().map(|(value, tier, _)| (*value, tier.clone()));
        if stored != Some((value, Some(tier.to_string()))) {
            failures.push(format!(
                "{}: stored score {stored:?}, computed from its events {by_type:?} and industry {}: {value} ({tier})",
                lead.name(),
                lead.attributes["industry"]
            ));
        }
        match api(lead.id) {
            Some(answered) if answered["value"] == value && answered["tier"] == tier => {}
            answered => failures.push(format!(
                "{}: the API answers {:?}, computed from its events {by_type:?}: {value} ({tier})",
                lead.name(),
                answered.map(|a| (a["value"].clone(), a["tier"].clone()))
            )),
        }
    }
    failures
}

/// After the rescoring by the new version of the same model, every lead not merged has the same
/// score and tier as before, now under that version.
fn check_rescored(before: &BTreeMap<i64, StoredLead>, after: &BTreeMap<i64, StoredLead>, model_id: i64) -> Vec<String> {
    let mut failures = Vec::new();
    for (id, lead) in before {
        if lead.merged_into.is_some() {
            continue;
        }
        let was = lead.score.as_ref().map(|(value, tier, _)| (*value, tier.clone()));
        let now = after.get(id).and_then(|l| l.score.clone());
        match now {
            Some((value, tier, model)) if Some((value, tier.clone())) == was && model == model_id => {}
            now => failures.push(format!(
                "{}: scored {was:?} from its events as they came, but {now:?} when the engine rescored it from \
                 its stored events (model id {model_id})",
                lead.name()
            )),
        }
    }
    failures
}

/// Every notification the outbox holds as delivered reached the receiver, and it received no
/// other; per lead, first deliveries arrived in the order of their ids, tier and stage changes
/// chain, and the last tier delivered is the lead's tier now.
fn check_notifications(
    database: &mut postgres::Client,
    webhook_id: i64,
    receiver: &Receiver,
    leads: &BTreeMap<i64, StoredLead>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let outbox: BTreeMap<i64, (i64, bool)> = database
        .query("SELECT id, lead_id, delivered_at IS NOT NULL FROM outbox WHERE webhook_id = $1", &[&webhook_id])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect();
    // First deliveries per lead, in the order they arrived.
    let mut arrived: BTreeMap<i64, Vec<(i64, Value)>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut repeated = 0;
    for (_, body) in receiver.delivered() {
        let id: i64 =
            body["id"].as_str().and_then(|id| id.strip_prefix("evt_")).and_then(|id| id.parse().ok()).unwrap();
        if !seen.insert(id) {
            repeated += 1;
            continue;
        }
        let lead = body["data"]["lead"]["id"].as_i64().unwrap();
        match outbox.get(&id) {
            None => {
                failures.push(format!("the receiver got notification {id}, which the outbox does not hold: {body}"))
            }
            Some((outbox_lead, _)) if *outbox_lead != lead => failures
                .push(format!("notification {id} names lead {lead}, but the outbox has it for lead {outbox_lead}")),
            Some(_) => {}
        }
        arrived.entry(lead).or_default().push((id, body));
    }
    for (id, (lead, delivered)) in &outbox {
        if !delivered {
            failures.push(format!("notification {id} of lead {lead} was never delivered"));
        } else if !seen.contains(id) {
            failures.push(format!(
                "notification {id} of lead {lead} is delivered in the outbox but never reached the receiver"
            ));
        }
    }
    for (lead, notifications) in &arrived {
        let ids: Vec<i64> = notifications.iter().map(|(id, _)| *id).collect();
        if ids.windows(2).any(|pair| pair[0] > pair[1]) {
            failures.push(format!("lead {lead}'s notifications arrived out of order: {ids:?}"));
        }
        let mut tier: Option<String> = None;
        let mut stage = "lead".to_string();
        for (id, body) in notifications {
            let data = &body["data"];
            match body["type"].as_str().unwrap_or_default() {
                "tier_changed" => {
                    let previous = data["previous_tier"].as_str().map(str::to_string);
                    if previous != tier {
                        failures.push(format!(
                            "lead {lead}: notification {id} moves from tier {previous:?}, but the one before moved to {tier:?} ({ids:?})"
                        ));
                    }
                    tier = data["tier"].as_str().map(str::to_string);
                }
                "stage_changed" => {
                    if data["previous"] != stage.as_str() {
                        failures.push(format!(
                            "lead {lead}: notification {id} moves from stage {}, but the one before moved to {stage} ({ids:?})",
                            data["previous"]
                        ));
                    }
                    stage = data["stage"].as_str().unwrap_or_default().to_string();
                }
                _ => {}
            }
        }
        if let Some(stored) = leads.get(lead).filter(|l| l.merged_into.is_none()) {
            let stored_tier = stored.score.as_ref().and_then(|(_, tier, _)| tier.clone());
            if tier != stored_tier {
                failures.push(format!(
                    "{}: its last tier notified is {tier:?}, its tier is {stored_tier:?}",
                    stored.name()
                ));
            }
            if stage != stored.stage {
                failures.push(format!(
                    "{}: its last stage notified is {stage}, its stage is {}",
                    stored.name(),
                    stored.stage
                ));
            }
        }
    }
    for lead in leads.values().filter(|l| l.merged_into.is_none() && l.score.is_some()) {
        if !arrived.contains_key(&lead.id) {
            failures.push(format!("{}: no notification of it arrived, not even its first tier", lead.name()));
        }
    }
    // A notification a killed instance had claimed waits for its claim's lease (a minute) to end.
    let late: i64 = database
        .query_one(
            "SELECT count(*) FROM outbox WHERE webhook_id = $1 AND delivered_at - created_at > 30000",
            &[&webhook_id],
        )
        .unwrap()
        .get(0);
    eprintln!(
        "notifications: {} in the outbox, {} arrived ({repeated} more times again: at least once); \
         {late} delivered over 30 s late (claimed by an instance that was killed or lost the database)",
        outbox.len(),
        seen.len()
    );
    failures
}

/// What holds the outbox's pending notifications back, one line per kind: the database's clock
/// against this machine's, the pending notifications grouped by attempts, error and claim, what
/// holds each lead's oldest pending one back, and the last attempts recorded.
fn outbox_diagnosis(database: &mut postgres::Client, webhook_id: i64) -> Vec<String> {
    let mut lines = Vec::new();
    let here_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64);
    let now: i64 = match database.query_one("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint", &[]) {
        Ok(row) => row.get(0),
        Err(error) => return vec![format!("diagnosis: cannot read the database's clock: {error}")],
    };
    lines.push(format!("diagnosis: the database's clock is {} ms ahead of the test's", now - here_ms));
    let grouped = database.query(
        "SELECT attempts, coalesce(last_error, '-'), coalesce(claimed_until > $2, false), count(*),
                min(next_attempt_at) - $2, max(next_attempt_at) - $2, min(claimed_until) - $2, max(claimed_until) - $2
         FROM outbox WHERE webhook_id = $1 AND delivered_at IS NULL AND failed_at IS NULL
         GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10",
        &[&webhook_id, &now],
    );
    for row in grouped.iter().flatten() {
        let (attempts, error, claimed, count): (i64, String, bool, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let (due_from, due_to): (i64, i64) = (row.get(4), row.get(5));
        let (lease_from, lease_to): (Option<i64>, Option<i64>) = (row.get(6), row.get(7));
        lines.push(format!(
            "diagnosis: {count} pending after {attempts} attempt(s), last error {error:?}, claimed now: {claimed}; \
             due in {due_from}..{due_to} ms; leases end in {lease_from:?}..{lease_to:?} ms"
        ));
    }
    let heads = database.query(
        "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= $2),
                count(*) FILTER (WHERE claimed_until > $2)
         FROM outbox o WHERE webhook_id = $1 AND delivered_at IS NULL AND failed_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.webhook_id = o.webhook_id AND p.lead_id = o.lead_id
                           AND p.id < o.id AND p.delivered_at IS NULL AND p.failed_at IS NULL)",
        &[&webhook_id, &now],
    );
    if let Some(row) = heads.iter().flatten().next() {
        let (heads, due, claimed): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        lines.push(format!("diagnosis: {heads} leads wait; the oldest pending of {due} is due, of {claimed} claimed"));
    }
    let attempts = database.query(
        "SELECT d.outbox_id, d.at - $2, d.status, coalesce(d.error, '-') FROM deliveries d
         JOIN outbox o ON o.id = d.outbox_id WHERE o.webhook_id = $1 ORDER BY d.id DESC LIMIT 5",
        &[&webhook_id, &now],
    );
    for row in attempts.iter().flatten() {
        let (id, ago, status, error): (i64, i64, Option<i64>, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        lines.push(format!("diagnosis: attempt of notification {id} at {ago} ms: status {status:?}, error {error:?}"));
    }
    lines
}

/// The warnings and errors of the instances' logs in `dir`, counted by message (each number
/// replaced by `#`), the most frequent first.
fn log_diagnosis(dir: &std::path::Path) -> Vec<String> {
    let mut counts: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let instance = entry.file_name().to_string_lossy().trim_end_matches(".log").to_string();
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else { continue };
            let mut message = String::new();
            for c in line[at..].trim().chars() {
                match c {
                    '0'..='9' | '.' if message.ends_with('#') => {}
                    '0'..='9' => message.push('#'),
                    c => message.push(c),
                }
            }
            let (count, instances) = counts.entry(message).or_default();
            *count += 1;
            instances.insert(instance.clone());
        }
    }
    let mut counted: Vec<_> = counts.into_iter().collect();
    counted.sort_by_key(|(_, (count, _))| std::cmp::Reverse(*count));
    counted
        .into_iter()
        .take(12)
        .map(|(message, (count, instances))| {
            let instances: Vec<String> = instances.into_iter().collect();
            format!("diagnosis: {count} x [{}] {message}", instances.join(", "))
        })
        .collect()
}

/// People known by an anonymous id and then a user id (the racing visitors and the Segment
/// library's odd users): every stored message of one is on the one lead of its user id, and its
/// anonymous id resolves to that lead.
fn check_people(database: &mut postgres::Client, workspace: i64, leads: &BTreeMap<i64, StoredLead>) -> Vec<String> {
    let mut failures = Vec::new();
    let people = (0..VISITORS)
        .map(|v| (format!("person-{v}"), format!("visitor-{v}"), vec![format!("person-{v}-"), format!("visitor-{v}-")]))
        .chain(
            (0..PYTHON_USERS)
                .filter(|u| u % 2 == 1)
                .map(|u| (format!("py-{u}"), format!("py-anon-{u}"), vec![format!("py-{u}-")])),
        );
    // Every stored message: the lead holding it, and its type.
    let holder: BTreeMap<&str, (&StoredLead, &str)> = leads
        .values()
        .flat_map(|lead| lead.events.iter().map(move |(_, message, kind)| (message.as_str(), (lead, kind.as_str()))))
        .collect();
    for (user, anonymous, prefixes) in people {
        let of_person: Vec<(&str, &StoredLead, &str)> = holder
            .iter()
            .filter(|(message, _)| prefixes.iter().any(|prefix| message.starts_with(prefix.as_str())))
            .map(|(message, (lead, kind))| (*message, *lead, *kind))
            .collect();
        // Every identify of a person carries both ids. The library may have given up on its
        // only one (not acknowledged, so not a fault): then nothing links them.
        if !of_person.iter().any(|(_, _, kind)| *kind == "identify") {
            eprintln!("{user}: no identify linking {anonymous} was stored; not checked");
            continue;
        }
        let Some(lead) = leads.values().find(|l| l.user_id.as_deref() == Some(user.as_str())) else {
            failures.push(format!("no lead has the user id {user}"));
            continue;
        };
        for (message, holding, _) in &of_person {
            if holding.id != lead.id {
                failures.push(format!("{user}: message {message} is on {}, not on {}", holding.name(), lead.name()));
            }
        }
        let resolved: Option<i64> = database
            .query_opt(
                "SELECT lead_id FROM anonymous_ids WHERE workspace_id = $1 AND anonymous_id = $2",
                &[&workspace, &anonymous],
            )
            .unwrap()
            .map(|row| row.get(0));
        if resolved != Some(lead.id) {
            failures.push(format!(
                "{user}: the anonymous id {anonymous} resolves to lead {resolved:?}, not {}",
                lead.name()
            ));
        }
    }
    failures
}
