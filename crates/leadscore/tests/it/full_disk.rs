//! `leadscore serve` on a disk that fills up: writes are refused with `503 storage_unavailable`,
//! `/readyz` says so, the log says the disk is full, nothing acknowledged is lost, and the
//! service takes writes again once space is freed, without a restart.
//!
//! The data directory is a 24 MB tmpfs mounted in a mount namespace of the server's own
//! (`unshare -m`, or `unshare -rm` without root), so the test needs no disk of its own to fill.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

/// Mounts a small tmpfs at `data` in a new mount namespace, creates keys there (written to
/// `out/SCOPE`), takes up 8 MB with `data/filler`, and starts the server on it.
fn start_on_a_small_disk(data: &std::path::Path, out: &std::path::Path, log: std::fs::File) -> Server {
    let script = r#"set -e
mount -t tmpfs -o size=24m tmpfs "$1"
for scope in admin ingest read; do "$2" keys create --data "$1" --workspace acme --scope "$scope" > "$3/$scope"; done
fallocate -l 8m "$1/filler"
exec "$2" serve --listen 127.0.0.1:0 --data "$1""#;
    let as_root = rustix::process::getuid().is_root();
    let child = Command::new("unshare")
        .arg(if as_root { "-m" } else { "-rm" })
        .args(["sh", "-c", script, "sh"])
        .arg(data)
        .arg(env!("CARGO_BIN_EXE_leadscore"))
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("unshare (util-linux) runs the server in a mount namespace of its own");
    Server::attach(child, data)
}

#[test]
fn a_full_disk_refuses_writes_with_503_and_recovers_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("out"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let log_path = dir.path().join("server.log");
    let server = start_on_a_small_disk(&data, &out, std::fs::File::create(&log_path).unwrap());
    let key = |scope: &str| std::fs::read_to_string(out.join(scope)).unwrap().trim().to_string();
    let (admin, ingest, read) = (key("admin"), key("ingest"), key("read"));
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);

    // Batches of page views for one lead, each with a kilobyte of text, until the disk is full.
    let padding: String = (0..1000).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
    let batch = |n: usize| {
        let messages: Vec<_> = (0..300)
            .map(|i| {
                json!({"type": "track", "userId": "filler", "event": "page_view", "messageId": format!("{n}-{i}"),
                       "properties": {"padding": padding}})
            })
            .collect();
        json!({ "batch": messages })
    };
    let mut accepted = 0;
    let mut refusal = None;
    for n in 0..400 {
        let answer = server.post_json("/v1/batch", &ingest, &batch(n));
        match answer.status {
            200 => accepted += answer.json()["items"].as_array().unwrap().len(),
            _ => {
                refusal = Some(answer);
                break;
            }
        }
    }
    let refusal = refusal.expect("the disk filled up");
    assert_eq!(refusal.status, 503, "{}", refusal.body);
    assert_eq!(refusal.json()["code"], "storage_unavailable", "{}", refusal.body);
    assert_eq!(refusal.header("retry-after"), Some("5"));
    assert!(accepted > 0);

    let ready = server.get("/readyz", "");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("writes fail"), "{}", ready.body);
    assert_eq!(server.get("/healthz", "").status, 200);
    // Reads go on.
    let lead = server.get("/api/leads/filler", &read);
    assert_eq!(lead.status, 200, "{}", lead.body);
    assert_eq!(lead.json()["scores"]["activity"]["value"].as_f64(), Some(accepted as f64));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("is full"), "the log says the disk is full: {log}");
    assert!(!log.contains("corrupt"), "{log}");

    // Space comes back: the service takes writes again by itself.
    std::fs::remove_file(format!("/proc/{}/root{}/filler", server.child.id(), data.display())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get("/readyz", "").status != 200 {
        assert!(Instant::now() < deadline, "still not ready 30 s after space was freed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let again = server.post_json("/v1/batch", &ingest, &batch(1000));
    assert_eq!(again.status, 200, "{}", again.body);
    accepted += 300;
    // Every acknowledged event counts once; nothing of the refused batch was stored.
    let lead = server.get("/api/leads/filler", &read).json();
    assert_eq!(lead["scores"]["activity"]["value"].as_f64(), Some(accepted as f64), "{lead}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("writes succeed again"), "{log}");
}
