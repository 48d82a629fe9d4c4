//! Builds a data directory of one workspace with a million scored leads, for measuring the
//! console's leads pages (`bench/console/leads_pages.sh`, docs/benchmarks.md), written through
//! the store's own functions as the service would store them.
//!
//!     cargo build --release -p leadscore-server --example console_leads_data
//!     target/release/examples/console_leads_data DIR [LEADS]
//!
//! LEADS leads (default 1,000,000) in workspace `bench`, with the reference model of bench/
//! active: names in Latin, Polish, Bulgarian, Chinese and Japanese scripts, e-mails, companies,
//! a stage, an update time within the last year, and a value of the reference `score` (0 to 100,
//! so with many ties) with its tier. A fixed seed: every run builds the same leads.

use std::collections::BTreeMap;
use std::time::Instant;

use leadscore_store::scores::{History, ScoreRow};
use leadscore_store::{Store, leads, models, scores, workspaces};
use serde_json::json;

const FIRST: &[&str] =
    &["Anna", "Zofia", "Piotr", "Иван", "Мария", "Георги", "王", "李", "田中", "佐藤", "John", "Agnieszka"];
const LAST: &[&str] = &[
    "Nowak",
    "Wójcik",
    "Kowalska",
    "Петров",
    "Иванова",
    "Димитров",
    "芳",
    "小明",
    "美咲",
    "健太",
    "Smith",
    "Lewandowska",
];
const COMPANIES: &[&str] =
    &["Acme", "Globex", "Initech", "Umbrella", "Хедър ООД", "北京科技", "株式会社ミライ", "Soylent", "Stark", "Wayne"];
const STAGES: &[&str] =
    &["lead", "lead", "lead", "lead", "lead", "lead", "mql", "mql", "sal", "sql", "customer", "lost"];
const LEADS_PER_TRANSACTION: u64 = 20_000;

#[path = "support/lcg.rs"]
mod lcg;
use lcg::Lcg;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: console_leads_data DIR [LEADS]")?;
    let total: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let store = Store::open(std::path::Path::new(&dir))?;
    let source = include_str!("../../../examples/reference.toml");
    let now = leadscore_store::now_ms();
    let (workspace_id, model_id) = store.write_blocking(move |c| {
        let workspace = workspaces::find_or_create(c, "bench", now)?;
        let version = models::add(c, workspace.id, source, &BTreeMap::new(), Some("the console benchmark"), now)?;
        models::activate(c, workspace.id, version.id, models::Origin::Api, now)?;
        Ok((workspace.id, version.id))
    })?;
    let started = Instant::now();
    let mut random = Lcg(42);
    let mut done = 0;
    while done < total {
        let count = LEADS_PER_TRANSACTION.min(total - done);
        let batch: Vec<(String, serde_json::Value, &str, i64, f64)> = (done..done + count)
            .map(|i| {
                let (first, last) = (FIRST[random.below(12) as usize], LAST[random.below(12) as usize]);
                let company = COMPANIES[random.below(10) as usize];
                let attributes =
                    json!({"first_name": first, "last_name": last, "company": company, "industry": "Technology"});
                let stage = STAGES[random.below(12) as usize];
                let updated_at = now - random.below(365 * 86_400_000) as i64;
                let value = random.below(101) as f64;
                (format!("lead{i}@example{}.com", i % 1000), attributes, stage, updated_at, value)
            })
            .collect();
        store.write_blocking(move |c| {
            for (i, (email, attributes, stage, updated_at, value)) in batch.into_iter().enumerate() {
                let mut lead = leads::create(c, workspace_id, Some(&format!("u{}", done + i as u64)), updated_at)?;
                lead.email = Some(email);
                lead.attributes = attributes.as_object().cloned().unwrap_or_default();
                lead.stage = stage.to_string();
                lead.updated_at = updated_at;
                lead.last_event_at = Some(updated_at);
                leads::save(c, &lead)?;
                let tier = if value >= 50.0 {
                    "mql"
                } else if value >= 25.0 {
                    "warm"
                } else {
                    "cold"
                };
                let row = ScoreRow {
                    score: "score".into(),
                    value,
                    tier: Some(tier.into()),
                    model_id,
                    evaluated_at: updated_at,
                    overridden: None,
                };
                scores::save(c, lead.id, &[row], "event", History::EveryChange)?;
            }
            Ok(())
        })?;
        done += count;
        eprintln!("{done} leads, {:.0} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}
