//! Running `leadscore serve` as a real process on a temporary data directory, and a minimal
//! HTTP/1.1 client (std only) to talk to it.
//!
//! With `LEADSCORE_TEST_STORE=postgres` the same tests run on PostgreSQL: every data directory a
//! test makes stands for a database of its own on `LEADSCORE_TEST_POSTGRES` (the local server by
//! default), and the commands get `--database URL` where they would get `--data DIR` (see
//! [`store_args`]).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
}

/// A server process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub data: PathBuf,
}

impl Server {
    /// Starts `leadscore serve` on a free port and waits until it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Server::start_with_log(data, extra, Stdio::null())
    }

    /// Same as [`Server::start`], with the server's log (standard error) going to `log`.
    pub fn start_with_log(data: &Path, extra: &[&str], log: impl Into<Stdio>) -> Server {
        let child = bin()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(store_args(data))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the server starts");
        Server::attach(child, data)
    }

    /// Starts `leadscore serve` on the PostgreSQL database at `url` (rather than the database
    /// [`store_args`] makes for a directory), with its log going to `log`. Its `data` is empty.
    pub fn start_on(url: &str, extra: &[&str], log: impl Into<Stdio>) -> Server {
        let child = bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--database", url])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the server starts");
        Server::attach(child, Path::new(""))
    }

    /// Waits until a `leadscore serve` started with `--listen 127.0.0.1:0` and its standard
    /// output piped (directly or through `sh -c 'exec ...'`) listens.
    pub fn attach(mut child: Child, data: &Path) -> Server {
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines.next().expect("the server prints its address").unwrap();
            if let Some(address) = line.strip_prefix("leadscore listening on http://") {
                break address.to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, address, data: data.to_path_buf() }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str, key: &str) -> Response {
        request(&self.address, "GET", path, &[("Authorization", &format!("Bearer {key}"))], b"")
    }

    pub fn post_json(&self, path: &str, key: &str, body: &serde_json::Value) -> Response {
        let headers = [("Authorization", format!("Bearer {key}")), ("Content-Type", "application/json".to_string())];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(&self.address, "POST", path, &headers, body.to_string().as_bytes())
    }

    /// A request of any method with a JSON body (`PUT`), or none (`DELETE`).
    pub fn send(&self, method: &str, path: &str, key: &str, body: Option<&serde_json::Value>) -> Response {
        let authorization = format!("Bearer {key}");
        let mut headers = vec![("Authorization", authorization.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(&self.address, method, path, &headers, body.as_bytes())
    }

    pub fn post_text(&self, path: &str, key: &str, body: &str) -> Response {
        request(&self.address, "POST", path, &[("Authorization", &format!("Bearer {key}"))], body.as_bytes())
    }
}

/// Whether the tests run on PostgreSQL (`LEADSCORE_TEST_STORE=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("LEADSCORE_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// The arguments that name the store a test keeps in `data`: `--data DIR`, or with
/// [`on_postgres`], `--database URL` of a database made for that directory (the same one each
/// time it is asked).
pub fn store_args(data: &Path) -> Vec<std::ffi::OsString> {
    if on_postgres() {
        vec!["--database".into(), postgres_database(data).into()]
    } else {
        vec!["--data".into(), data.as_os_str().to_owned()]
    }
}

/// The URL of the database standing for the directory `data`, created on first use. Databases
/// are named after this process, and those of test processes that ended are dropped first.
pub fn postgres_database(data: &Path) -> String {
    use std::hash::{Hash, Hasher};
    use std::sync::Mutex;
    static MADE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let server = std::env::var("LEADSCORE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    let name = format!("leadscore_it_{}_{:016x}", std::process::id(), hasher.finish());
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base).to_string();
    let url = format!("{base}/{name}");
    let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if made.contains(&name) {
        return url;
    }
    let mut admin = postgres::Client::connect(&server, postgres::NoTls)
        .unwrap_or_else(|error| panic!("LEADSCORE_TEST_STORE=postgres needs a server at {server}: {error}"));
    if made.is_empty() {
        let existing = admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'leadscore_it_%'", &[]).unwrap();
        for row in existing {
            let old: String = row.get(0);
            let pid = old.split('_').nth(2).unwrap_or_default();
            if !Path::new("/proc").join(pid).exists() {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"));
            }
        }
    }
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    made.push(name);
    url
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates a key with the command line (the server may be running).
pub fn create_key(data: &Path, workspace: &str, scope: &str) -> String {
    create_key_in(store_args(data), workspace, scope)
}

/// Creates a key with the command line in the PostgreSQL database at `url`.
pub fn create_key_on(url: &str, workspace: &str, scope: &str) -> String {
    create_key_in(vec!["--database".into(), url.into()], workspace, scope)
}

fn create_key_in(store: Vec<std::ffi::OsString>, workspace: &str, scope: &str) -> String {
    let output =
        bin().args(["keys", "create", "--workspace", workspace, "--scope", scope]).args(store).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Whether `check` holds within `deadline`, asked every 50 ms: for a change made by another
/// process that a server learns of within about a second (the cache version it polls).
pub fn holds_within(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + deadline;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Keys of every scope for `workspace`: (admin, ingest, read).
pub fn keys_of_every_scope(data: &Path, workspace: &str) -> (String, String, String) {
    (create_key(data, workspace, "admin"), create_key(data, workspace, "ingest"), create_key(data, workspace, "read"))
}

/// Polls `GET /api/models` until the workspace's rescoring has finished (at most 30 s); returns
/// that answer.
pub fn wait_for_rescoring(server: &Server, key: &str) -> serde_json::Value {
    // A bound, not a measure: a rescoring that never ends fails, a slow one on a loaded machine
    // (PostgreSQL's tests run beside the fault test) does not.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let models = server.get("/api/models", key).json();
        if !models["rescoring"]["finished_at"].is_null() {
            return models;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the rescoring did not finish within 120 s");
}

/// Waits until no rescoring runs: none was started, or the last one finished. Activating a
/// version while one runs is refused with 409, and the first model a workspace gets starts one.
pub fn wait_until_no_rescoring_runs(server: &Server, key: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let models = server.get("/api/models", key).json();
        if models["rescoring"].is_null() || !models["rescoring"]["finished_at"].is_null() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the rescoring did not finish within 120 s");
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The first header of that name (lower-case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on a new connection.
pub fn request(address: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_request(address, method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub fn try_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other("no HTTP head"))?;
    let status =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| std::io::Error::other("no status"))?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_string() };
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(Response { status, body, headers })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// A model whose `activity` score counts page views one point each (no cap), to check counts.
pub const COUNTING_MODEL: &str = r#"
[scores.activity]
tiers = [{ label = "cold" }, { label = "hot", min = 3 }]
[[scores.activity.rules]]
name = "page views"
event = "page_view"
points = 1
[[scores.activity.rules]]
name = "pricing"
event = "Pricing Viewed"
where = { field = "plan", equals = "enterprise" }
points = 10
[[scores.activity.rules]]
name = "tech"
when = { field = "industry", equals = "Technology" }
points = 5
"#;

/// A request a [`Receiver`] got: its method and path, headers (names lower-cased), body and the
/// status it answered.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub status: u16,
}

/// A webhook receiver: answers the statuses it was given to its first requests (a redirect with
/// a `Location` on the same receiver), then 200, and keeps every request it got.
pub struct Receiver {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<ReceivedRequest>>>,
}

impl Receiver {
    /// Answers 500 to the first `failures` requests, then 200.
    pub fn start(failures: usize) -> Receiver {
        Receiver::answering(&vec![500; failures])
    }

    /// Answers `statuses` to the first requests, in order, then 200.
    pub fn answering(statuses: &[u16]) -> Receiver {
        Receiver::serving(statuses, 0)
    }

    /// Holds its first `n` requests open without answering them (each sender waits for its
    /// timeout), then answers 200.
    pub fn holding(n: usize) -> Receiver {
        Receiver::serving(&[], n)
    }

    /// Holds the first `hold` requests unanswered, then answers `statuses` in order, then 200.
    fn serving(statuses: &[u16], hold: usize) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let url = format!("http://{address}/hook");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let statuses = statuses.to_vec();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(mut request) = read_request(&mut stream) else { continue };
                let mut seen = seen.lock().unwrap();
                if seen.len() < hold {
                    // Status 0: read, never answered.
                    seen.push(request);
                    held.push(stream);
                    continue;
                }
                let status = statuses.get(seen.len() - hold).copied().unwrap_or(200);
                request.status = status;
                seen.push(request);
                let location = if (300..400).contains(&status) {
                    format!("Location: http://{address}/elsewhere\r\n")
                } else {
                    String::new()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} Answer\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, requests }
    }

    /// The bodies of the requests answered 200, parsed.
    pub fn delivered(&self) -> Vec<(Vec<(String, String)>, serde_json::Value)> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|request| request.status == 200)
            .map(|request| (request.headers.clone(), serde_json::from_str(&request.body).unwrap()))
            .collect()
    }

    /// How many requests it holds unanswered ([`Receiver::holding`]).
    pub fn held(&self) -> usize {
        self.requests.lock().unwrap().iter().filter(|request| request.status == 0).count()
    }

    /// Waits until `n` requests were answered 200 (at most 30 s).
    pub fn wait_for(&self, n: usize) -> Vec<(Vec<(String, String)>, serde_json::Value)> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n || std::time::Instant::now() > deadline {
                return delivered;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads one request (not answered yet: `status` 0).
fn read_request(stream: &mut TcpStream) -> Option<ReceivedRequest> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        if name == "content-length" {
            length = value.parse().ok()?;
        }
        headers.push((name, value));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(ReceivedRequest { method, path, headers, body: String::from_utf8(body).ok()?, status: 0 })
}

/// A webhook receiver that reads each request and never answers, holding the connection open
/// until the test ends: the dispatcher waits for its timeout.
pub struct SilentReceiver {
    pub url: String,
    /// How many requests it has read (and holds).
    pub held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentReceiver {
    pub fn start() -> SilentReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = held.clone();
        std::thread::spawn(move || {
            let mut open = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if read_request(&mut stream).is_some() {
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                open.push(stream);
            }
        });
        SilentReceiver { url, held }
    }

    /// How many requests it holds now.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until it holds `n` requests (at most 30 s); returns how many it holds.
    pub fn wait_for(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let held = self.held.load(std::sync::atomic::Ordering::SeqCst);
            if held >= n || std::time::Instant::now() > deadline {
                return held;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The password of the console accounts tests make.
pub const PASSWORD: &str = "correct horse battery";

/// Creates a console account of workspace `acme` with [`PASSWORD`], with the command line.
pub fn create_account(data: &Path, email: &str, role: &str) {
    let output = bin()
        .args(["users", "create", "--workspace", "acme", "--email", email, "--role", role])
        .args(store_args(data))
        .env("LEADSCORE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
