//! Builds a data directory of one workspace with a million leads and their events, for measuring
//! how long rescoring every lead takes after an activation (`bench/service/rescore.sh`,
//! docs/benchmarks.md), written through the store's own functions as ingestion stores them.
//!
//!     cargo build --release -p leadscore-server --example rescore_data
//!     target/release/examples/rescore_data DIR [LEADS]
//!
//! LEADS leads (default 1,000,000) in workspace `bench`, user ids `user-1` to `user-LEADS` (the
//! ids bench/service/segment.lua sends events for), with the reference model of examples/ active:
//! a job title, industry, size and country, an e-mail, and 1 to 20 events each (10.5 on average)
//! of the reference model's types, spread over the last 90 days. The leads keep no state and no
//! scores: the first rescoring after the benchmark's first activation computes them. A fixed
//! seed: every run builds the same leads.

use std::collections::BTreeMap;
use std::time::Instant;

use leadscore_store::events::{self, NewEvent};
use leadscore_store::{Store, leads, models, workspaces};
use serde_json::json;

const TITLES: &[&str] =
    &["Chief Marketing Officer", "VP Sales", "Marketing Manager", "Engineer", "Analyst", "Director"];
const INDUSTRIES: &[&str] = &["Technology", "Retail", "Finance", "Technology", "Health"];
const COUNTRIES: &[&str] = &["US", "GB", "CA", "PL", "DE", "JP"];
const DOMAINS: &[&str] = &["acme.com", "gmail.com", "globex.io", "initech.com", "outlook.com"];
const EVENT_TYPES: &[&str] = &[
    "page_view",
    "page_view",
    "page_view",
    "page_view",
    "email_open",
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
const LEADS_PER_TRANSACTION: u64 = 10_000;
const DAY_MS: u64 = 86_400_000;

/// A lead to store: its attributes, e-mail, and events (type and time, oldest first).
type NewLead = (serde_json::Value, String, Vec<(&'static str, i64)>);

#[path = "support/lcg.rs"]
mod lcg;
use lcg::Lcg;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: rescore_data DIR [LEADS]")?;
    let total: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let store = Store::open_ingesting(std::path::Path::new(&dir), leadscore_store::message_ids::DEFAULT_RECENT)?;
    let source = include_str!("../../../examples/reference.toml");
    let now = leadscore_store::now_ms();
    let workspace_id = store.write_blocking(move |c| {
        let workspace = workspaces::find_or_create(c, "bench", now)?;
        let version = models::add(c, workspace.id, source, &BTreeMap::new(), Some("the rescoring benchmark"), now)?;
        models::activate(c, workspace.id, version.id, models::Origin::Api, now)?;
        Ok(workspace.id)
    })?;
    let started = Instant::now();
    let mut random = Lcg(7);
    let mut done = 0;
    let mut stored_events = 0u64;
    while done < total {
        let count = LEADS_PER_TRANSACTION.min(total - done);
        let batch: Vec<NewLead> = (done..done + count)
            .map(|i| {
                let attributes = json!({
                    "job_title": TITLES[random.below(TITLES.len() as u64) as usize],
                    "industry": INDUSTRIES[random.below(INDUSTRIES.len() as u64) as usize],
                    "employees": 10 + random.below(1000),
                    "country": COUNTRIES[random.below(COUNTRIES.len() as u64) as usize],
                });
                let email = format!("lead{i}@{}", DOMAINS[random.below(DOMAINS.len() as u64) as usize]);
                let n = 1 + random.below(20);
                let mut times: Vec<(&str, i64)> = (0..n)
                    .map(|_| {
                        let kind = EVENT_TYPES[random.below(EVENT_TYPES.len() as u64) as usize];
                        (kind, now - random.below(90 * DAY_MS) as i64)
                    })
                    .collect();
                times.sort_by_key(|(_, at)| *at);
                (attributes, email, times)
            })
            .collect();
        stored_events += batch.iter().map(|(_, _, events)| events.len() as u64).sum::<u64>();
        store.write_blocking(move |c| {
            let empty = serde_json::Map::new();
            let path = json!({"path": "/docs/1"});
            for (i, (attributes, email, lead_events)) in batch.into_iter().enumerate() {
                let number = done + i as u64 + 1;
                let first_at = lead_events.first().map_or(now, |(_, at)| *at);
                let mut lead = leads::create(c, workspace_id, Some(&format!("user-{number}")), first_at)?;
                lead.email = Some(email);
                lead.attributes = attributes.as_object().cloned().unwrap_or_default();
                for (k, (event_type, at)) in lead_events.iter().enumerate() {
                    let properties =
                        if *event_type == "page_view" { path.as_object().unwrap_or(&empty) } else { &empty };
                    let message_id = format!("seed-{number}-{k}");
                    let event = NewEvent { message_id: &message_id, event_type, at: *at, received_at: *at, properties };
                    events::insert(c, &mut lead, &event)?;
                    lead.last_event_at = Some(*at);
                    lead.updated_at = *at;
                }
                leads::save(c, &lead)?;
            }
            Ok(())
        })?;
        done += count;
        if done % 100_000 == 0 || done == total {
            eprintln!("{done} leads, {stored_events} events, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
