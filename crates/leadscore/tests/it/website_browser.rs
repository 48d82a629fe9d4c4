//! Segment's browser library, `@segment/analytics-next` as npm ships it, in headless Chromium on
//! a small website served on loopback, sending to a real `leadscore serve` with a browser key:
//! a page view, an identify with traits, a pricing view and a demo request; then the lead is read
//! back through the API, scored, explained, with its anonymous page view merged in. The same calls
//! from a second allowed origin with the library's batching delivery (`/v1/b`) make the same lead;
//! the same page on an origin the key is not bound to sends nothing.
//!
//! Needs the library's browser build (its `dist/umd` directory, vendored by `.ci/run` with
//! `npm install` into a cache directory) named by `LEADSCORE_ANALYTICS_NEXT`, and Chromium's
//! WebDriver as `tests/it/browser.rs` does:
//!
//! ```sh
//! npm install --prefix /tmp/ajs @segment/analytics-next@1.84.3
//! LEADSCORE_ANALYTICS_NEXT=/tmp/ajs/node_modules/@segment/analytics-next/dist/umd \
//!   LEADSCORE_CHROMEDRIVER=/usr/bin/chromedriver cargo test -p leadscore --test it website_browser
//! ```
//!
//! Without them when the tests are built, the test is reported as ignored; in CI (`CI=true`) it
//! runs and fails instead (see `build.rs`).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::browser::{browser, start_driver};
use crate::common::*;

const LIBRARY_VARIABLE: &str = "LEADSCORE_ANALYTICS_NEXT";

const MODEL: &str = r#"
[scores.activity]
tiers = [{ label = "cold" }, { label = "hot", min = 30 }]
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
name = "demo"
event = "Demo Requested"
points = 20
[[scores.activity.rules]]
name = "tech"
when = { field = "industry", equals = "Technology" }
points = 5
"#;

/// The page: loads the library as a marketer's snippet would (`cdnURL` and `apiHost` pointing
/// at leadscore), sending each call as it is made or, with `batching`, in batches (`/v1/b`),
/// and records in `window.outcome` what happened.
fn page(leadscore: &str, key: &str, user: &str, batching: bool) -> String {
    let delivery = if batching {
        r#", deliveryStrategy: { strategy: "batching", config: { size: 3, timeout: 200 } }"#
    } else {
        ""
    };
    format!(
        r#"<!doctype html><html><head><title>Pricing</title><script src="/analytics-next/index.js"></script></head>
<body><h1>Pricing</h1><script>
window.outcome = (async () => {{
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    {{ writeKey: "{key}", cdnURL: "http://{leadscore}" }},
    {{ integrations: {{ "Segment.io": {{ apiHost: "{leadscore}/v1", protocol: "http"{delivery} }} }}, retryQueue: false }}
  );
  const delivered = (ctx) => {{
    const failed = ctx.failedDelivery && ctx.failedDelivery();
    if (failed) throw new Error("not delivered: " + (failed.reason && failed.reason.message));
  }};
  delivered(await analytics.page("Pricing", {{ plan: "enterprise" }}));
  delivered(await analytics.identify("{user}", {{ email: "{user}@example.com", industry: "Technology" }}));
  delivered(await analytics.track("Pricing Viewed", {{ plan: "enterprise" }}));
  delivered(await analytics.track("Demo Requested", {{ form: "demo" }}));
  return "sent";
}})().catch((error) => "error: " + error);
</script></body></html>"#
    )
}

/// Serves `html` at `/` and the library's files under `/analytics-next/` on `listener`.
fn serve_site(listener: TcpListener, html: String, library: PathBuf) -> String {
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            // The rest of the head, unread.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let (status, kind, body) = match path.strip_prefix("/analytics-next/") {
                None if path == "/" => ("200 OK", "text/html; charset=utf-8", html.clone().into_bytes()),
                Some(file) if !file.contains("..") => match std::fs::read(library.join(file)) {
                    Ok(bytes) => ("200 OK", "application/javascript", bytes),
                    Err(_) => ("404 Not Found", "text/plain", b"no such file".to_vec()),
                },
                _ => ("404 Not Found", "text/plain", b"no such file".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    address
}

/// The library's browser build named by `LEADSCORE_ANALYTICS_NEXT`.
fn library() -> PathBuf {
    let dir = std::env::var_os(LIBRARY_VARIABLE).filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{LIBRARY_VARIABLE} is not set, so Segment's browser library cannot be tested against leadscore serve: \
             `npm install --prefix /tmp/ajs @segment/analytics-next@1.84.3` and set it to \
             /tmp/ajs/node_modules/@segment/analytics-next/dist/umd (.ci/run does)"
        )
    });
    assert!(dir.join("index.js").is_file(), "{} has no index.js: not the library's dist/umd", dir.display());
    dir
}

/// What the page at `url` ended with (`sent`, or `error: ...`).
async fn outcome(client: &fantoccini::Client, url: &str) -> String {
    client.goto(url).await.unwrap();
    let script = "const done = arguments[arguments.length - 1]; window.outcome.then(done, (e) => done('error: ' + e));";
    let outcome = client.execute_async(script, vec![]).await.unwrap();
    outcome.as_str().unwrap_or_default().to_string()
}

#[test]
#[cfg_attr(
    not(website_browser),
    ignore = "needs LEADSCORE_ANALYTICS_NEXT and LEADSCORE_CHROMEDRIVER (see the module's doc)"
)]
fn segments_browser_library_sends_from_an_allowed_origin_only() {
    let library = library();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (admin, _, read) = keys_of_every_scope(&data, "acme");
    // The sites listen before the key is made, as the key names their origins.
    let site_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", site_listener.local_addr().unwrap());
    // Another host name: cookies are shared by every port of a host, and the library keeps its
    // visitor's ids in cookies, so the second site would otherwise continue the first's visitor.
    let batching_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let batching_origin = format!("http://localhost:{}", batching_listener.local_addr().unwrap().port());
    let output = bin()
        .args(["keys", "create", "--workspace", "acme", "--scope", "browser", "--origin", &origin])
        .args(["--origin", &batching_origin, "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_string();
    // Headless Chromium is a bot unless allowed.
    let server = Server::start(&data, &["--allow-headless-browsers"]);
    assert_eq!(server.post_text("/api/models", &admin, MODEL).status, 201);

    let site = serve_site(site_listener, page(&server.address, &key, "web-visitor", false), library.clone());
    serve_site(batching_listener, page(&server.address, &key, "web-batched", true), library.clone());
    let stranger_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stranger = serve_site(stranger_listener, page(&server.address, &key, "web-stranger", false), library);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let driver = start_driver();
        let client = browser(&driver, 1280).await;
        let sent = outcome(&client, &format!("http://{site}/")).await;
        assert_eq!(sent, "sent");
        let batched = outcome(&client, &format!("{batching_origin}/")).await;
        assert_eq!(batched, "sent");
        // The batch leaves when it holds 3 calls or after 200 ms: wait for its lead, in the page.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.get("/api/leads/web-batched", &read).status != 200 {
            assert!(Instant::now() < deadline, "the batched calls never arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let refused = outcome(&client, &format!("http://{stranger}/")).await;
        assert!(refused.starts_with("error"), "a page of another origin sent: {refused}");
        client.close().await.unwrap();
    });

    // The library answers its calls once each was sent and accepted: the lead is there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lead = loop {
        let answer = server.get("/api/leads/web-visitor", &read);
        let lead = (answer.status == 200).then(|| answer.json());
        if let Some(lead) = lead.filter(|l| l["scores"]["activity"]["value"] == 36.0) {
            break lead;
        }
        assert!(Instant::now() < deadline, "the lead is not as sent: {}", answer.body);
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lead["email"], "web-visitor@example.com", "{lead}");
    let activity = &lead["scores"]["activity"];
    assert_eq!(activity["tier"], "hot", "{activity}");
    let points = |rule: &str| {
        activity["contributions"].as_array().unwrap().iter().find(|c| c["rule"] == rule).map(|c| c["points"].clone())
    };
    // The anonymous page view, merged into the lead when it identified.
    assert_eq!(points("page views"), Some(Value::from(1.0)), "{activity}");
    assert_eq!(points("pricing"), Some(Value::from(10.0)), "{activity}");
    assert_eq!(points("demo"), Some(Value::from(20.0)), "{activity}");
    assert_eq!(points("tech"), Some(Value::from(5.0)), "{activity}");
    let listed = server.get("/api/leads", &read).json();
    assert_eq!(listed["leads"].as_array().unwrap().len(), 2, "no anonymous lead left, none of the stranger: {listed}");
    // Batched: the same calls, the same lead.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let batched = server.get("/api/leads/web-batched", &read).json();
        if batched["scores"]["activity"]["value"] == 36.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the batched lead is not as sent: {batched}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.get("/api/leads/web-stranger", &read).status, 404);
}
