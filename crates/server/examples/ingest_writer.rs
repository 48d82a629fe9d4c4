//! Drives ingestion in-process, without HTTP: the writer thread's work alone, for profiling it
//! (`valgrind --tool=callgrind`, `perf record`) with a workload that does not depend on a load
//! generator sharing the machine.
//!
//!     cargo build --release -p leadscore-server --example ingest_writer
//!     target/release/examples/ingest_writer [REQUESTS] [BATCH] [USERS] [sequential|random] [RECENT]
//!
//! REQUESTS requests (default 200) of BATCH track messages (default 500) from USERS distinct
//! users (default 5000), with sequential message ids or random UUID-like ones, keeping RECENT
//! message ids in memory (default as the service), with the reference model of bench/ active, as
//! bench/service/run.sh sends them over HTTP. Prints events/s of the whole run (one writer,
//! requests one after another: the writer's own rate, without group commit across requests).
//!
//! Environment knobs: `ZIPF=S` draws users with Zipf's law of exponent S (real traffic: a few
//! users send most events) instead of uniformly; `WARM=N` first sends N untimed requests (so that
//! a million users exist before timing); `REMEMBER=N` remembers N leads between requests (as
//! `leadscore serve --remembered-leads`); `KEEP=1` keeps the data directory and prints its path; `FROM=DIR` starts from a
//! copy of a kept one (with another `SEED=N` than the run that made it, or every message is a
//! duplicate).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use leadscore_server::ingest;
use leadscore_server::lead_cache::LeadCache;
use leadscore_server::messages::{Kind, Message};
use leadscore_server::scoring::Models;
use leadscore_store::{Store, models, workspaces};
use serde_json::{Map, Value};

const EVENTS: &[&str] = &[
    "page_view",
    "page_view",
    "page_view",
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "pricing_page_view",
    "webinar_attended",
    "form_submit",
    "careers_page_view",
    "support_ticket",
    "demo_request",
];

#[path = "support/lcg.rs"]
mod lcg;
use lcg::Lcg;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: u64| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (requests, batch, users) = (arg(1, 200), arg(2, 500), arg(3, 5000));
    let random_ids = std::env::args().nth(4).is_some_and(|a| a == "random");
    let recent = arg(5, leadscore_store::message_ids::DEFAULT_RECENT as u64) as usize;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dir = std::env::temp_dir().join(format!("leadscore-ingest-writer-{}", std::process::id()));
    if let Some(from) = env("FROM") {
        // A copy of a kept directory, so that every run starts from the same leads.
        let copied = std::process::Command::new("cp").arg("-a").arg(&from).arg(&dir).status()?;
        assert!(copied.success(), "cannot copy {from}");
    }
    let store = Store::open_ingesting(&dir, recent)?;
    let source = include_str!("../../../examples/reference.toml");
    let now = leadscore_store::now_ms();
    let workspace = store.write_blocking(move |c| {
        let workspace = workspaces::find_or_create(c, "bench", now)?;
        if models::active(c, workspace.id)?.is_none() {
            let version = models::add(c, workspace.id, source, &BTreeMap::new(), None, now)?;
            models::activate(c, workspace.id, version.id, models::Origin::Api, now)?;
        }
        Ok(workspace.id)
    })?;
    let compiled = Arc::new(Models::default());
    let remember = std::env::var("REMEMBER").ok().and_then(|r| r.parse().ok());
    let leads = Arc::new(LeadCache::with_capacity(
        store.generation(),
        remember.unwrap_or(leadscore_server::lead_cache::DEFAULT_CAPACITY),
    ));
    let zipf = env("ZIPF").map(|s| Zipf::new(users, s.parse().expect("ZIPF is a number")));
    let warm: u64 = env("WARM").map_or(0, |w| w.parse().expect("WARM is a number"));
    let mut random = Lcg(env("SEED").map_or(7, |s| s.parse().expect("SEED is a number")));
    let mut start = Instant::now();
    let mut written_before = written_bytes();
    // Messages whose lead ingestion remembered, and those it read from the database.
    let mut found = (0, 0);
    for r in 0..warm + requests {
        if r == warm {
            start = Instant::now();
            written_before = written_bytes();
        }
        let messages: Vec<Result<Message, String>> = (0..batch)
            .map(|i| {
                let mut properties = Map::new();
                properties.insert("path".to_string(), Value::String(format!("/docs/{}", random.below(50))));
                properties.insert("plan".to_string(), Value::String("pro".to_string()));
                Ok(Message {
                    kind: Kind::Track(EVENTS[random.below(EVENTS.len() as u64) as usize].to_string()),
                    user_id: Some(format!(
                        "user-{}",
                        match &zipf {
                            Some(zipf) => zipf.draw(&mut random),
                            None => random.below(users),
                        }
                    )),
                    anonymous_id: None,
                    message_id: if random_ids {
                        let (high, low) = (random.below(u64::MAX), random.below(u64::MAX));
                        format!("{high:016x}-{low:016x}")
                    } else {
                        format!("m-{r}-{i}")
                    },
                    at: now - 60_000,
                    traits: Map::new(),
                    properties,
                })
            })
            .collect();
        let (compiled, leads) = (compiled.clone(), leads.clone());
        let ingested =
            store.write_coherent_blocking(move |c| ingest::ingest(c, &compiled, &leads, workspace, messages, now))?;
        if r >= warm {
            found.0 += ingested.remembered;
            found.1 += ingested.looked_up;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let events = requests * batch;
    let written = written_bytes().saturating_sub(written_before);
    println!(
        "{events} events in {seconds:.2} s: {:.0} events/s, {:.0} bytes written per event",
        events as f64 / seconds,
        written as f64 / events as f64
    );
    println!("leads remembered for {:.1}% of the messages", 100.0 * found.0 as f64 / (found.0 + found.1).max(1) as f64);
    drop(store);
    if env("KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Bytes this process has caused to be written to storage (Linux's `/proc/self/io`), 0 elsewhere.
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines().find_map(|l| l.strip_prefix("write_bytes: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// Zipf's law over `0..n`: rank k drawn with probability proportional to 1 / (k + 1)^s, by
/// binary search in the cumulative weights. Ranks are scattered over the user numbers (a
/// multiplicative permutation) so that the busiest users are not the first leads created.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Zipf {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|k| {
                total += 1.0 / ((k + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, random: &mut Lcg) -> u64 {
        let n = self.cumulative.len() as u64;
        // The generator gives 31 bits: a resolution of 5e-10, finer than the rarest rank's share.
        let target = random.below(1 << 31) as f64 / (1u64 << 31) as f64 * self.cumulative[n as usize - 1];
        let rank = self.cumulative.partition_point(|&c| c < target) as u64;
        // 2,654,435,761 is prime, so coprime with any smaller n: the map permutes 0..n.
        rank.min(n - 1) * 2_654_435_761 % n
    }
}
