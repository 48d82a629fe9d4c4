//! A website's pages sending with a browser key, as Segment's browser library does: the short
//! paths, `text/plain` bodies with the key inside or in basic auth, the settings document,
//! CORS for the key's origins only, and what a browser key may not do.

use base64::Engine;
use serde_json::{Value, json};

use crate::common::*;

const SITE: &str = "https://www.example.com";
const OTHER_SITE: &str = "http://localhost:8080";
const STRANGER: &str = "https://evil.example";
/// A visitor's browser, as its `User-Agent` says.
const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

/// Creates a browser key bound to `origins` with the command line.
fn create_browser_key(data: &std::path::Path, origins: &[&str]) -> String {
    let mut command = bin();
    command.args(["keys", "create", "--workspace", "acme", "--scope", "browser", "--data"]).arg(data);
    for origin in origins {
        command.args(["--origin", origin]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A POST from a page of `origin`, its body sent as `text/plain` as the library sends it.
fn from_page(server: &Server, origin: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut all = vec![("Origin", origin), ("Content-Type", "text/plain"), ("User-Agent", CHROME)];
    all.extend_from_slice(headers);
    request(&server.address, "POST", path, &all, body.to_string().as_bytes())
}

fn contribution<'a>(score: &'a Value, rule: &str) -> &'a Value {
    score["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == rule)
        .unwrap_or_else(|| panic!("no contribution of {rule}: {score}"))
}

#[test]
fn a_browser_key_sends_from_its_origins_and_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (admin, ingest, read) = keys_of_every_scope(&data, "acme");
    let browser = create_browser_key(&data, &[SITE, OTHER_SITE]);
    let server = Server::start(&data, &[]);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);

    // A preflight is answered for the key's origins, with the headers the library sends.
    let preflight = |origin: &str| {
        request(
            &server.address,
            "OPTIONS",
            "/v1/t",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization,content-type,x-retry-count"),
            ],
            b"",
        )
    };
    for origin in [SITE, OTHER_SITE] {
        let answer = preflight(origin);
        assert_eq!(answer.status, 204, "{}", answer.body);
        assert_eq!(answer.header("access-control-allow-origin"), Some(origin));
        let allowed = answer.header("access-control-allow-headers").unwrap().to_ascii_lowercase();
        for header in ["authorization", "content-type", "x-retry-count"] {
            assert!(allowed.contains(header), "{allowed}");
        }
        assert!(answer.header("access-control-allow-methods").unwrap().contains("POST"));
    }
    let refused = preflight(STRANGER);
    assert_eq!(refused.header("access-control-allow-origin"), None, "{refused:?}");

    // The settings document points the library back here.
    let settings =
        request(&server.address, "GET", &format!("/v1/projects/{browser}/settings"), &[("Origin", SITE)], b"");
    assert_eq!(settings.status, 200, "{}", settings.body);
    assert_eq!(settings.header("access-control-allow-origin"), Some(SITE));
    let segment = &settings.json()["integrations"]["Segment.io"];
    assert_eq!(segment["apiHost"], format!("{}/v1", server.address), "{segment}");
    assert_eq!(segment["protocol"], "http");
    assert_eq!(segment["apiKey"], browser.as_str());
    let unknown = request(&server.address, "GET", "/v1/projects/lsk_unknown/settings", &[], b"");
    assert_eq!(unknown.status, 404, "{}", unknown.body);

    // An anonymous page view with the key in the body, then an identify with the key in basic
    // auth, then a track: the answers carry no scores (a browser key reads nothing).
    let page = from_page(
        &server,
        SITE,
        "/v1/p",
        &[],
        &json!({ "writeKey": browser, "anonymousId": "anon-1", "messageId": "m-1", "type": "page",
                 "name": "Pricing", "properties": { "url": "https://www.example.com/pricing" } }),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("access-control-allow-origin"), Some(SITE));
    assert_eq!(page.json()["lead"], Value::Null, "{}", page.body);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{browser}:")));
    let identify = from_page(
        &server,
        SITE,
        "/v1/i",
        &[("Authorization", &basic)],
        &json!({ "userId": "u-1", "anonymousId": "anon-1", "messageId": "m-2",
                 "traits": { "email": "ada@example.com", "industry": "Technology" } }),
    );
    assert_eq!(identify.status, 200, "{}", identify.body);
    let track = from_page(
        &server,
        OTHER_SITE,
        "/v1/b",
        &[("Authorization", &basic)],
        &json!({ "sentAt": "2026-01-01T00:00:00Z", "batch": [
            { "type": "track", "userId": "u-1", "anonymousId": "anon-1", "messageId": "m-3",
              "event": "Pricing Viewed", "properties": { "plan": "enterprise" },
              "timestamp": "2026-01-01T00:00:00Z" },
        ] }),
    );
    assert_eq!(track.status, 200, "{}", track.body);
    assert_eq!(track.json()["leads"], json!([]), "{}", track.body);
    assert_eq!(track.json()["items"][0]["status"], "accepted", "{}", track.body);

    // Another origin's page is refused, without CORS headers.
    let stranger = from_page(
        &server,
        STRANGER,
        "/v1/t",
        &[("Authorization", &basic)],
        &json!({ "userId": "u-1", "messageId": "m-4", "event": "Pricing Viewed" }),
    );
    assert_eq!(stranger.status, 403, "{}", stranger.body);
    assert_eq!(stranger.json()["code"], "origin_not_allowed");
    assert_eq!(stranger.header("access-control-allow-origin"), None);

    // It cannot change an identified lead's e-mail address, merge two identified leads, or read.
    let changed = from_page(
        &server,
        SITE,
        "/v1/i",
        &[("Authorization", &basic)],
        &json!({ "userId": "u-1", "messageId": "m-5", "traits": { "email": "mallory@evil.example", "title": "CTO" } }),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    let crm = server.post_json("/v1/identify", &ingest, &json!({ "userId": "u-2", "messageId": "m-6" }));
    assert_eq!(crm.status, 200, "{}", crm.body);
    let merge = from_page(
        &server,
        SITE,
        "/v1/a",
        &[("Authorization", &basic)],
        &json!({ "userId": "u-1", "previousId": "u-2", "messageId": "m-7" }),
    );
    assert_eq!(merge.status, 400, "{}", merge.body);
    assert!(merge.json()["message"].as_str().unwrap().contains("identified lead"), "{}", merge.body);
    assert_eq!(server.get("/api/leads/u-1", &browser).status, 403);
    assert_eq!(server.get("/api/leads/u-2", &read).status, 200, "u-2 is still a lead of its own");

    // The lead: its anonymous page view merged in, scored and explained.
    let lead = server.get("/api/leads/u-1", &read);
    assert_eq!(lead.status, 200, "{}", lead.body);
    let lead = lead.json();
    assert_eq!(lead["email"], "ada@example.com", "{lead}");
    assert_eq!(lead["attributes"]["title"], "CTO", "the message's other traits are kept: {lead}");
    let activity = &lead["scores"]["activity"];
    assert_eq!(contribution(activity, "page views")["occurrences"], 1, "{activity}");
    assert_eq!(contribution(activity, "pricing")["points"], 10.0, "{activity}");
    assert_eq!(contribution(activity, "tech")["points"], 5.0, "{activity}");
    assert_eq!(activity["value"], 16.0, "{activity}");
}

#[test]
fn a_browser_key_needs_origins_and_only_a_browser_key_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let create = |scope: &str, origins: &[&str]| {
        let mut command = bin();
        command.args(["keys", "create", "--workspace", "acme", "--scope", scope, "--data"]).arg(&data);
        for origin in origins {
            command.args(["--origin", origin]);
        }
        command.output().unwrap()
    };
    assert!(!create("browser", &[]).status.success());
    assert!(!create("ingest", &[SITE]).status.success());
    assert!(!create("browser", &["https://www.example.com/pricing"]).status.success());
    assert!(create("browser", &[SITE]).status.success());

    let admin = create_key(&data, "acme", "admin");
    let server = Server::start(&data, &[]);
    let made = server.post_json(
        "/api/keys",
        &admin,
        &json!({ "scope": "browser", "origins": ["HTTPS://Shop.Example.com:443"] }),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.json()["origins"], json!(["https://shop.example.com"]));
    // A key made through the API is allowed at once, without waiting for the origins to be read again.
    let preflight = request(&server.address, "OPTIONS", "/v1/b", &[("Origin", "https://shop.example.com")], b"");
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://shop.example.com"));
    let without = server.post_json("/api/keys", &admin, &json!({ "scope": "browser" }));
    assert_eq!((without.status, without.json()["code"].clone()), (400, json!("invalid_field")), "{}", without.body);
    let listed = server.get("/api/keys", &admin).json();
    let browsers = listed["keys"].as_array().unwrap().iter().filter(|k| k["scope"] == "browser").count();
    assert_eq!(browsers, 2, "{listed}");
}

/// The size of the files in `dir`, in bytes.
fn size_of(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// A metric's value in the `/metrics` text, 0 when absent.
fn metric(server: &Server, key: &str, line_start: &str) -> f64 {
    let text = server.get("/metrics", key).body;
    text.lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_flood_of_anonymous_page_views_from_one_address_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (admin, _, read) = keys_of_every_scope(&data, "acme");
    let browser = create_browser_key(&data, &[SITE]);
    // Rate limits out of the way, so that only the cap on new anonymous leads bounds the flood.
    let unlimited = "1000000000";
    let server = Server::start(
        &data,
        &[
            "--browser-key-rate",
            unlimited,
            "--browser-key-burst",
            unlimited,
            "--browser-address-rate",
            unlimited,
            "--browser-address-burst",
            unlimited,
            "--anonymous-per-address-per-hour",
            "100",
        ],
    );
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    let before = size_of(&data);

    // 100,000 page views of 100,000 different anonymous visitors, all from 127.0.0.1.
    let mut accepted = 0;
    for request in 0..200 {
        let batch: Vec<Value> = (0..500)
            .map(|i| {
                json!({ "type": "page", "anonymousId": format!("flood-{request}-{i}"),
                        "messageId": format!("flood-{request}-{i}"), "properties": { "url": "https://www.example.com/" } })
            })
            .collect();
        let answer = from_page(&server, SITE, "/v1/b", &[], &json!({ "writeKey": browser, "batch": batch }));
        assert_eq!(answer.status, 200, "{}", answer.body);
        accepted += answer.json()["items"].as_array().unwrap().iter().filter(|i| i["status"] == "accepted").count();
    }
    assert_eq!(accepted, 100, "the first 100 new visitors of the hour, no more");
    let listed = server.get("/api/leads?limit=1000", &read).json();
    assert_eq!(listed["leads"].as_array().unwrap().len(), 100, "100 leads stored");
    let capped = metric(&server, &admin, "leadscore_browser_limited_total{outcome=\"anonymous_cap\"}");
    assert_eq!(capped, 99_900.0);
    // A known visitor still counts: its page views are not new leads.
    let again = from_page(
        &server,
        SITE,
        "/v1/p",
        &[],
        &json!({ "writeKey": browser, "anonymousId": "flood-0-0", "messageId": "again", "properties": {} }),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let stranger = from_page(
        &server,
        SITE,
        "/v1/p",
        &[],
        &json!({ "writeKey": browser, "anonymousId": "one-more", "messageId": "one-more", "properties": {} }),
    );
    assert_eq!((stranger.status, stranger.header("retry-after")), (429, Some("3600")), "{}", stranger.body);
    let after = size_of(&data);
    eprintln!("data directory: {before} bytes before the flood, {after} after (WAL included)");
}

#[test]
fn rate_limits_answer_429_with_retry_after_and_bots_are_ignored_or_marked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (admin, _, read) = keys_of_every_scope(&data, "acme");
    let browser = create_browser_key(&data, &[SITE]);
    let server = Server::start(&data, &["--browser-address-rate", "0.01", "--browser-address-burst", "3"]);
    let page = |id: &str, agent: &str| {
        let body = json!({ "writeKey": browser, "userId": id, "messageId": id, "properties": {} });
        request(
            &server.address,
            "POST",
            "/v1/p",
            &[("Origin", SITE), ("Content-Type", "text/plain"), ("User-Agent", agent)],
            body.to_string().as_bytes(),
        )
    };
    // A crawler is answered as if stored, and nothing is.
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    assert_eq!(page("crawled", googlebot).status, 200);
    assert_eq!(server.get("/api/leads/crawled", &read).status, 404);
    assert_eq!(page("p-1", CHROME).status, 200);
    assert_eq!(page("p-2", CHROME).status, 200);
    // The burst of 3 is spent (the crawler's request counted too); the next waits 100 s for a token.
    let limited = page("p-3", CHROME);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.json()["code"], "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("100"));
    assert_eq!(limited.header("access-control-allow-origin"), Some(SITE), "the page can read why");
    assert_eq!(server.get("/api/leads/p-3", &read).status, 404);
    assert_eq!(metric(&server, &admin, "leadscore_browser_limited_total{outcome=\"address_rate\"}"), 1.0);
    assert_eq!(metric(&server, &admin, "leadscore_browser_limited_total{outcome=\"bot_ignored\"}"), 1.0);
    drop(server);

    // Marked rather than ignored: stored with `bot: true`, which a model can test.
    let server = Server::start(&data, &["--bots", "mark"]);
    assert_eq!(
        request(
            &server.address,
            "POST",
            "/v1/i",
            &[("Origin", SITE), ("User-Agent", googlebot)],
            json!({ "writeKey": browser, "userId": "marked", "messageId": "marked", "traits": {} })
                .to_string()
                .as_bytes()
        )
        .status,
        200
    );
    let lead = server.get("/api/leads/marked", &read).json();
    assert_eq!(lead["attributes"]["bot"], true, "{lead}");
}
