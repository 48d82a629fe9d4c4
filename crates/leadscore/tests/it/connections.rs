//! `leadscore serve` against clients that hold connections: half-sent requests, idle keep-alive
//! connections and floods beyond the descriptor limit. The server runs as a real process with
//! the common limit of 1,024 descriptors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;

/// `leadscore serve` started through `sh` with `ulimit -n 1024`, as on many systems.
fn start_with_1024_descriptors(dir: &std::path::Path, extra: &str) -> Server {
    let binary = env!("CARGO_BIN_EXE_leadscore");
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n 1024 && exec '{binary}' serve --listen 127.0.0.1:0 --data '{}' {extra}", dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server::attach(child, dir)
}

/// Raises this process's own descriptor limit so that it can hold thousands of sockets.
fn raise_own_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
}

/// Whether the server closed its end: a read returns end of file or a reset, not "would block".
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn half_sent_requests_are_closed_and_the_service_keeps_answering() {
    raise_own_limit();
    let dir = tempfile::tempdir().unwrap();
    let ingest = create_key(dir.path(), "acme", "ingest");
    let server = start_with_1024_descriptors(dir.path(), "");

    // 2,000 connections, each with half a request, more than the server has descriptors for.
    let mut held = Vec::new();
    for _ in 0..2000 {
        let Ok(mut stream) = TcpStream::connect(&server.address) else { continue };
        let _ = stream.write_all(b"POST /v1/track HTTP/1.1\r\nHost: leadscore\r\nContent-Ty");
        held.push(stream);
    }
    assert!(held.len() >= 1900, "only {} connections opened", held.len());

    // Those over the cap are refused at once; the rest are closed by the head timeout.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut open: Vec<usize> = (0..held.len()).collect();
    let mut refused_early = 0;
    let started = Instant::now();
    while !open.is_empty() && Instant::now() < deadline {
        open.retain(|&i| !closed_by_server(&mut held[i]));
        if started.elapsed() < Duration::from_secs(3) {
            refused_early = held.len() - open.len();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(open.is_empty(), "{} half-sent requests still open after 30 s", open.len());
    assert!(refused_early >= 900, "only {refused_early} connections over the cap were refused at once");

    // While the client still holds its sockets, the service answers.
    let asked = Instant::now();
    let mut health = TcpStream::connect(&server.address).unwrap();
    health.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    health.write_all(b"GET /healthz HTTP/1.1\r\nHost: leadscore\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    health.read_to_string(&mut answer).expect("/healthz answers within a second");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(asked.elapsed() < Duration::from_secs(1));

    let track = json!({"userId": "u1", "event": "page_view", "messageId": "m1"});
    let tracked = server.post_json("/v1/track", &ingest, &track);
    assert_eq!(tracked.status, 200, "{}", tracked.body);
    drop(held);
}

#[test]
fn connections_over_the_cap_get_a_503_and_idle_ones_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_1024_descriptors(dir.path(), "--max-connections 4 --idle-timeout 2");

    // One request answered on a kept-alive connection, which then idles.
    let mut kept = TcpStream::connect(&server.address).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: leadscore\r\n\r\n").unwrap();
    let mut buffer = [0u8; 1024];
    let read = kept.read(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    let mut others: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&server.address).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));

    // A client over the cap that sends its request at once, as clients do, still reads the 503
    // (its unread request must not turn the close into a reset), whole.
    let mut fifth = TcpStream::connect(&server.address).unwrap();
    fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: leadscore\r\n\r\n").unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut refusal = String::new();
    fifth.read_to_string(&mut refusal).expect("the refusal is read to its end, not reset");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal:?}");
    assert!(refusal.contains("retry-after: 1"), "{refusal}");
    let (head, body) = refusal.split_once("\r\n\r\n").unwrap();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length: ")).expect("a content-length").parse().unwrap();
    assert_eq!(length, body.len(), "{refusal}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "too_many_connections");

    // The idle keep-alive connection is closed after its 2 s, the silent ones after 10 s.
    kept.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    assert_eq!(kept.read(&mut buffer).unwrap_or(0), 0, "the idle connection was closed");
    for other in &mut others {
        other.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        assert_eq!(other.read(&mut buffer).unwrap_or(0), 0, "the silent connection was closed");
    }
    assert_eq!(server.get("/healthz", "").status, 200);
}

#[test]
fn a_head_begun_on_an_idle_connection_gets_the_head_timeout_not_the_idle_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_1024_descriptors(dir.path(), "--header-timeout 2 --idle-timeout 60");
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: leadscore\r\n\r\n").unwrap();
    let mut buffer = [0u8; 1024];
    assert!(stream.read(&mut buffer).unwrap() > 0);
    // Idle for a moment (the idle deadline is a minute away), then half a head: closed within
    // the head timeout of its first byte, not at the idle deadline.
    std::thread::sleep(Duration::from_millis(500));
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: lead").unwrap();
    let sent = Instant::now();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(stream.read(&mut buffer).unwrap_or(0), 0, "the connection was closed");
    assert!(sent.elapsed() < Duration::from_secs(15), "closed after {:?}", sent.elapsed());
}
