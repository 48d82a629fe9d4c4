//! The console in a real browser: Chromium, driven through its WebDriver (`chromedriver`),
//! against a real `leadscore serve`. A person signs in, reads the leads, filters them, opens a
//! lead and reads its explanation, moves its stage and signs out; a viewer is offered no move.
//! Every page is photographed at 1280 and 390 px into `target/console-screenshots/` (not
//! committed), for people to look at.
//!
//! Needs `LEADSCORE_CHROMEDRIVER` (the driver's path) and, if Chromium is not
//! `/usr/bin/chromium`, `LEADSCORE_CHROMIUM`:
//!
//! ```sh
//! apt-get install chromium chromium-driver
//! LEADSCORE_CHROMEDRIVER=/usr/bin/chromedriver cargo test -p leadscore --test it browser
//! ```
//!
//! Without the variable when the tests are built, the test is reported as ignored; in CI
//! (`CI=true`) it runs and fails instead (see `build.rs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::*;

/// `chromedriver` on a port of its own; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    let path = std::env::var("LEADSCORE_CHROMEDRIVER").expect("LEADSCORE_CHROMEDRIVER names chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver { child, url }
}

/// A headless Chromium session as wide as `width` (a phone's metrics below 600 px).
async fn browser(driver: &Driver, width: u32) -> Client {
    let chromium = std::env::var("LEADSCORE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let mut options = json!({
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={width},900")],
    });
    if width < 600 {
        options["mobileEmulation"] = json!({"deviceMetrics": {"width": width, "height": 844, "pixelRatio": 1.0}});
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".to_string(), options);
    // Finding an element waits for it a moment: a form's answer may come after the click returns.
    capabilities.insert("timeouts".to_string(), json!({"implicit": 5000}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Photographs the whole page as `name-WIDTH.png`.
async fn photograph(client: &Client, name: &str, width: u32) {
    let height = client.execute("return document.documentElement.scrollHeight", vec![]).await.unwrap();
    let height = height.as_u64().unwrap_or(900).clamp(600, 4000) as u32;
    if width >= 600 {
        client.set_window_size(width, height).await.unwrap();
    }
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}-{width}.png")), png).unwrap();
}

/// Waits until the browser is at a path ending with `path` (a form's answer may come after the
/// click returns).
async fn wait_for_path(client: &Client, path: &str) {
    wait_for_url(client, |url| url.path().ends_with(path), path).await;
}

async fn wait_for_url(client: &Client, arrived: impl Fn(&url::Url) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.unwrap();
        if arrived(&url) {
            return;
        }
        assert!(Instant::now() < deadline, "still at {url}, not at {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(client: &Client, base: &str, email: &str) {
    client.goto(&format!("{base}/sign-in")).await.unwrap();
    client.find(Locator::Id("email")).await.unwrap().send_keys(email).await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    client.find(Locator::Css("main form button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_path(client, "/leads").await;
}

#[test]
#[cfg_attr(not(browser), ignore = "needs LEADSCORE_CHROMEDRIVER (see the module's doc)")]
fn a_person_works_the_leads_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "zofia.wojcik@example.pl", "editor");
    create_account(dir.path(), "viewer@example.com", "viewer");
    let server = Server::start(dir.path(), &[]);
    let model = "[scores.engagement]\ntiers = [{ label = \"cold\" }, { label = \"warm\", min = 2 }, { label = \"hot\", min = 4 }]\n[[scores.engagement.rules]]\nname = \"pricing page\"\nevent = \"page_view\"\nwhere = { field = \"url\", contains = \"pricing\" }\npoints = 2\n[[scores.engagement.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    let people =
        [("wang@example.cn", "王小明", 3), ("sato@example.jp", "佐藤 花子", 2), ("ivan@example.bg", "Иван Петров", 1)];
    for (email, name, visits) in people {
        let identify =
            json!({"userId": email, "messageId": format!("id-{email}"), "traits": {"email": email, "name": name}});
        assert_eq!(server.post_json("/v1/identify", &ingest, &identify).status, 200);
        for n in 0..visits {
            let track = json!({"userId": email, "event": "page_view", "messageId": format!("{email}-{n}"), "properties": {"url": "/pricing"}});
            assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
        }
    }
    let base = format!("http://{}", server.address);
    let driver = start_driver();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for width in [1280, 390] {
            let client = browser(&driver, width).await;
            client.goto(&format!("{base}/")).await.unwrap();
            wait_for_path(&client, "/sign-in").await;
            photograph(&client, "sign-in", width).await;

            // A wrong password: the problem at the top, linked to the field.
            client.find(Locator::Id("email")).await.unwrap().send_keys("zofia.wojcik@example.pl").await.unwrap();
            client.find(Locator::Id("password")).await.unwrap().send_keys("not it").await.unwrap();
            client.find(Locator::Css("main form button[type=submit]")).await.unwrap().click().await.unwrap();
            let problem = client.find(Locator::Css(".error-summary a")).await.unwrap();
            assert_eq!(problem.text().await.unwrap(), "The e-mail address or the password is wrong");
            assert_eq!(problem.attr("href").await.unwrap().as_deref(), Some("#password"));
            photograph(&client, "sign-in-error", width).await;

            // Signed in: the leads, best first.
            client.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
            client.find(Locator::Css("main form button[type=submit]")).await.unwrap().click().await.unwrap();
            wait_for_path(&client, "/leads").await;
            let names = client.find_all(Locator::Css("table.leads .lead-main")).await.unwrap();
            let mut shown = Vec::new();
            for name in names {
                shown.push(name.text().await.unwrap());
            }
            assert_eq!(shown, ["王小明", "佐藤 花子", "Иван Петров"], "by name, best first");
            photograph(&client, "leads", width).await;

            // Filtered by tier through the form: the filter goes into the URL.
            client.find(Locator::Id("tier")).await.unwrap().select_by_value("hot").await.unwrap();
            client.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
            let filtered =
                |url: &url::Url| url.query().is_some_and(|q| q.contains("score=engagement&order=desc&tier=hot&stage="));
            wait_for_url(&client, filtered, "the filtered leads").await;
            // 王小明 (9 points) and 佐藤 花子 (6) are hot; Иван Петров (3) is warm.
            assert_eq!(client.find_all(Locator::Css("table.leads tbody tr")).await.unwrap().len(), 2);

            // A lead: the waterfall explains every point.
            client.find(Locator::LinkText("王小明")).await.unwrap().click().await.unwrap();
            wait_for_path(&client, "/leads/wang%40example.cn").await;
            assert_eq!(client.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "王小明");
            let labels = client.find_all(Locator::Css(".wf-label")).await.unwrap();
            let mut read = Vec::new();
            for label in labels {
                read.push(label.text().await.unwrap());
            }
            assert_eq!(read, ["pricing page ×3", "visit ×3", "Score"]);
            photograph(&client, "lead", width).await;

            if width == 1280 {
                // An editor moves it, with a reason, and sees the move in its history.
                client.find(Locator::Id("move-stage")).await.unwrap().select_by_value("sal").await.unwrap();
                client.find(Locator::Id("move-reason")).await.unwrap().send_keys("Called; wants a demo").await.unwrap();
                client.find(Locator::Css("form.move-form button")).await.unwrap().click().await.unwrap();
                let history = client.find(Locator::Css("#stages-title + ol")).await.unwrap().text().await.unwrap();
                assert!(history.contains("lead → sal") && history.contains("Called; wants a demo"), "{history}");
            }

            client.find(Locator::Css("form.account button")).await.unwrap().click().await.unwrap();
            wait_for_path(&client, "/sign-in").await;
            client.goto(&format!("{base}/leads")).await.unwrap();
            assert!(client.current_url().await.unwrap().path().ends_with("/sign-in"), "signed out");
            client.close().await.unwrap();
        }

        // A viewer reads the lead but is offered no move.
        let client = browser(&driver, 1280).await;
        sign_in(&client, &base, "viewer@example.com").await;
        client.goto(&format!("{base}/leads/wang@example.cn")).await.unwrap();
        assert!(client.find(Locator::Css("form.move-form")).await.is_err());
        client.close().await.unwrap();
    });
}

// The leads list at scale and a lead's score over time.

#[test]
#[cfg_attr(not(browser), ignore = "needs LEADSCORE_CHROMEDRIVER (see the module's doc)")]
fn a_rep_searches_the_leads_turns_the_page_and_reads_a_score_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "rep@example.com", "viewer");
    let server = Server::start(dir.path(), &[]);
    let model = "[scores.engagement]\ntiers = [{ label = \"cold\" }, { label = \"warm\", min = 3 }, { label = \"hot\", min = 6 }]\n[[scores.engagement.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n[[scores.engagement.rules]]\nname = \"demo request\"\nevent = \"demo_request\"\npoints = 4\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    // 70 leads, names in several scripts (a long Bulgarian company name among them).
    let names =
        ["Zofia Wójcik", "Иван Петров", "王芳", "田中 美咲", "Георги Димитров", "Agnieszka Lewandowska-Szczepańska"];
    let mut batch = Vec::new();
    for i in 0..70 {
        let traits = json!({
            "name": format!("{} {i}", names[i % names.len()]),
            "email": format!("lead{i}@example.com"),
            "company": if i % 3 == 0 { "Международна търговска компания ЕООД" } else { "北京科技有限公司" },
        });
        batch.push(
            json!({"type": "identify", "userId": format!("u{i}"), "traits": traits, "messageId": format!("i{i}")}),
        );
        batch.push(
            json!({"type": "track", "userId": format!("u{i}"), "event": "page_view", "messageId": format!("t{i}")}),
        );
    }
    assert_eq!(server.post_json("/v1/batch", &ingest, &json!({"batch": batch})).status, 200);
    // One lead with a story: visits over a week, a demo request, moves to mql and sal.
    let day = 86_400_000_i64;
    let start = leadscore_store::now_ms() - 8 * day;
    let at = |offset: i64| leadscore_core::Timestamp(start + offset).to_string();
    for (n, (event, when)) in [
        ("page_view", 0),
        ("page_view", day),
        ("page_view", 2 * day),
        ("demo_request", 4 * day),
        ("page_view", 6 * day),
    ]
    .iter()
    .enumerate()
    {
        let track = json!({"userId": "u1", "event": event, "messageId": format!("story-{n}"), "timestamp": at(*when)});
        assert_eq!(server.post_json("/v1/track", &ingest, &track).status, 200);
    }
    let moved = json!({"stage": "sal", "reason": "Called; wants a demo", "actor": "Zofia"});
    assert_eq!(server.post_json("/api/leads/u1/stage", &admin, &moved).status, 200);

    let base = format!("http://{}", server.address);
    let driver = start_driver();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for width in [1280, 390] {
            let client = browser(&driver, width).await;
            sign_in(&client, &base, "rep@example.com").await;

            // A text search in Cyrillic, in another case than stored.
            client.find(Locator::Id("q")).await.unwrap().send_keys("иВАН").await.unwrap();
            client.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
            wait_for_url(&client, |url| url.query().is_some_and(|q| q.starts_with("q=")), "the search").await;
            let found = client.find_all(Locator::Css("table.leads .lead-main")).await.unwrap();
            assert_eq!(found.len(), 12, "every Иван Петров and no other");
            for name in found {
                assert!(name.text().await.unwrap().starts_with("Иван Петров"));
            }
            photograph(&client, "leads-search", width).await;

            // The next page, by cursor, then the page before it again.
            client.goto(&format!("{base}/leads")).await.unwrap();
            photograph(&client, "leads-filters", width).await;
            client.find(Locator::Css("a[rel=next]")).await.unwrap().click().await.unwrap();
            wait_for_url(&client, |url| url.query().is_some_and(|q| q.contains("cursor=n")), "the next page").await;
            assert_eq!(client.find_all(Locator::Css("table.leads tbody tr")).await.unwrap().len(), 20);
            photograph(&client, "leads-next-page", width).await;
            client.find(Locator::Css("a[rel=prev]")).await.unwrap().click().await.unwrap();
            wait_for_url(&client, |url| url.query().is_some_and(|q| q.contains("cursor=p")), "the previous page").await;
            assert_eq!(client.find_all(Locator::Css("table.leads tbody tr")).await.unwrap().len(), 50);

            // The lead with a story: its score over time, tiers, events and stage moves marked.
            client.goto(&format!("{base}/leads/u1")).await.unwrap();
            let chart = client.find(Locator::Css(".tc-box[role=img]")).await.unwrap();
            let label = chart.attr("aria-label").await.unwrap().unwrap();
            assert!(
                label.starts_with("engagement from ") && label.contains("stage moves: 1, events marked: 7"),
                "{label}"
            );
            let stages = client.find_all(Locator::Css(".tc-stage-label")).await.unwrap();
            assert_eq!(stages.len(), 1);
            assert_eq!(stages[0].text().await.unwrap(), "sal");
            let thresholds = client.find_all(Locator::Css(".tc-threshold-label")).await.unwrap();
            let mut read = Vec::new();
            for threshold in thresholds {
                read.push(threshold.text().await.unwrap());
            }
            assert_eq!(read, ["warm 3", "hot 6"]);
            photograph(&client, "lead-over-time", width).await;

            // An unknown address: the console's page, not JSON.
            client.goto(&format!("{base}/no-such-page")).await.unwrap();
            assert_eq!(client.find(Locator::Css("h1")).await.unwrap().text().await.unwrap(), "Page not found");
            photograph(&client, "not-found", width).await;
            client.close().await.unwrap();
        }
    });
}
