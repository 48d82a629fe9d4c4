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
    let dir = std::env::temp_dir().join(format!("leadscore-ingest-writer-{}", std::process::id()));
    let store = Store::open_ingesting(&dir, recent)?;
    let source = include_str!("../../../examples/reference.toml");
    let now = leadscore_store::now_ms();
    let workspace = store.write_blocking(move |c| {
        let workspace = workspaces::find_or_create(c, "bench", now)?;
        let version = models::add(c, workspace.id, source, &BTreeMap::new(), None, now)?;
        models::activate(c, workspace.id, version.id, models::Origin::Api, now)?;
        Ok(workspace.id)
    })?;
    let compiled = Arc::new(Models::default());
    let leads = Arc::new(LeadCache::new(store.generation()));
    let mut random = Lcg(7);
    let start = Instant::now();
    for r in 0..requests {
        let messages: Vec<Result<Message, String>> = (0..batch)
            .map(|i| {
                let mut properties = Map::new();
                properties.insert("path".to_string(), Value::String(format!("/docs/{}", random.below(50))));
                properties.insert("plan".to_string(), Value::String("pro".to_string()));
                Ok(Message {
                    kind: Kind::Track(EVENTS[random.below(EVENTS.len() as u64) as usize].to_string()),
                    user_id: Some(format!("user-{}", random.below(users))),
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
        store.write_coherent_blocking(move |c| ingest::ingest(c, &compiled, &leads, workspace, messages, now))?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let events = requests * batch;
    println!("{events} events in {seconds:.2} s: {:.0} events/s", events as f64 / seconds);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
