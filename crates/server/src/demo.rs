//! A demo workspace: the B2B SaaS example model and a few thousand generated leads with their
//! events, ingested through the same path as real traffic. Deterministic: the same count gives
//! the same leads.
//!
//! The last 120 days are replayed day by day, each day's messages scored at the end of that day,
//! so that score histories, automatic MQL moves and the funnel spread over time as a real
//! workspace's do; then a sales team follows up the MQLs (accepted, qualified, won, lost,
//! nurtured, disqualified, each move with its rep and, where one is needed, a reason).

use leadscore_store::keys::{NewKey, Scope};
use leadscore_store::stages::StageChange;
use leadscore_store::users::Role;
use leadscore_store::{Storage, StoreError, Transaction};
use serde_json::{Map, Value, json};

use crate::ingest;
use crate::lead_cache::LeadCache;
use crate::lifecycle::Stage;
use crate::messages::{Kind, Message};
use crate::scoring::Models;

/// The model the demo uses (also in examples/).
pub const DEMO_MODEL: &str = include_str!("../../../examples/b2b-saas.toml");

/// The console account of the demo workspace.
pub const DEMO_EMAIL: &str = "demo@example.com";

/// What `create` made.
pub struct Demo {
    pub workspace: String,
    pub leads: usize,
    pub events: usize,
    pub keys: Vec<NewKey>,
    /// The demo account's address and its new password (a fresh one at every start, since only
    /// its hash is stored).
    pub account: (String, String),
}

/// A small deterministic generator (xorshift64*), enough for demo data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const TITLES: &[&str] = &[
    "CEO",
    "VP Engineering",
    "VP of Marketing",
    "Chief Revenue Officer",
    "Marketing Manager",
    "Sales Manager",
    "Product Manager",
    "Software Engineer",
    "Data Analyst",
    "Consultant",
    "Student",
    "Office Manager",
];
const INDUSTRIES: &[&str] = &["Technology", "Finance", "Healthcare", "Retail", "Education", "Manufacturing"];
const COUNTRIES: &[&str] = &["US", "GB", "CA", "DE", "FR", "IN", "JP", "BR"];
const DOMAINS: &[&str] = &["northwind.io", "contoso.com", "globex.co.uk", "initech.de", "gmail.com", "umbrella.fr"];
const PAGES: &[&str] = &["/", "/blog/lead-scoring", "/pricing", "/careers", "/docs", "/product"];
/// People and companies of the markets leads come from, so that screens show every script.
const NAMES: &[(&str, &str)] = &[
    ("王小明", "北京云图科技有限公司"),
    ("李娜", "上海星河数据有限公司"),
    ("佐藤 花子", "株式会社サクラシステム"),
    ("鈴木 一郎", "富士テック株式会社"),
    ("Иван Петров", "„Пример Софт“ ООД"),
    ("Мария Георгиева", "Балкан Анализ АД"),
    ("Zofia Wójcik", "Przykład Sp. z o.o."),
    ("Łukasz Kowalczyk", "Żuraw Systemy S.A."),
    ("Emma Johnson", "Northwind Traders"),
    ("Lucas Martin", "Contoso SARL"),
    ("Hannah Müller", "Initech GmbH"),
    ("Liam Smith", "Globex Ltd"),
];

/// Creates the workspace `name` with the demo model, `n_leads` leads and keys of every scope.
/// Does nothing but make new keys if the workspace already has leads.
pub async fn create(storage: &dyn Storage, name: &str, n_leads: usize, now: i64) -> Result<Demo, StoreError> {
    let workspace_name = name.to_string();
    let (workspace_id, existing, keys) = storage
        .write(move |transaction| {
            let workspace = transaction.find_or_create_workspace(&workspace_name, now)?;
            if transaction.active_model(workspace.id)?.is_none() {
                let version = transaction.add_model_version(
                    workspace.id,
                    DEMO_MODEL,
                    &Default::default(),
                    Some("leadscore serve --demo"),
                    now,
                )?;
                transaction.activate_model(workspace.id, version.id, leadscore_store::models::Origin::Upload, now)?;
            }
            let existing = transaction.count_leads(workspace.id)?;
            let keys = [Scope::Admin, Scope::Read, Scope::Ingest]
                .into_iter()
                .map(|scope| transaction.new_key(workspace.id, scope, now))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((workspace.id, existing, keys))
        })
        .await?;
    let mut events = 0;
    if existing == 0 {
        let messages = generate(n_leads, now);
        events = messages.iter().filter(|m| matches!(m.kind, Kind::Track(_))).count();
        let models = std::sync::Arc::new(Models::default());
        // A plain write, not a coherent one: this cache is not the service's, whose remembered
        // leads the write must invalidate.
        let leads = std::sync::Arc::new(LeadCache::new(storage.generation()));
        for day in messages.chunk_by(|a, b| a.at / DAY == b.at / DAY) {
            // Scored when the day's last message arrived, as the service would have then.
            let scored_at = day.iter().map(|m| m.at).max().unwrap_or(now);
            for chunk in day.chunks(2000) {
                let chunk: Vec<Result<Message, String>> = chunk.iter().cloned().map(Ok).collect();
                let (models, leads) = (models.clone(), leads.clone());
                storage
                    .write(move |transaction| {
                        ingest::ingest(transaction, &models, &leads, workspace_id, chunk, scored_at)
                    })
                    .await?;
            }
        }
        storage.write(move |transaction| follow_up(transaction, workspace_id, n_leads, now)).await?;
    }
    let account = demo_account(storage, workspace_id, now).await?;
    Ok(Demo {
        workspace: name.to_string(),
        leads: if existing == 0 { n_leads } else { existing as usize },
        events,
        keys,
        account,
    })
}

/// The demo workspace's admin account, with a fresh random password (printed by `serve --demo`,
/// so that the console can be tried at once).
async fn demo_account(storage: &dyn Storage, workspace_id: i64, now: i64) -> Result<(String, String), StoreError> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("no randomness for a password: {e}")))?;
    let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let to_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || crate::passwords::hash(&to_hash))
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    match storage.account_for_sign_in(DEMO_EMAIL.to_string()).await? {
        Some((user, _)) if user.workspace_id == workspace_id => {
            storage.set_password(workspace_id, user.id, hash, now).await?;
        }
        Some(_) => return Err(StoreError::Conflict(format!("{DEMO_EMAIL} has an account in another workspace"))),
        None => {
            storage.create_user(workspace_id, DEMO_EMAIL.to_string(), Role::Admin, hash, now).await?;
        }
    }
    Ok((DEMO_EMAIL.to_string(), password))
}

const DAY: i64 = 86_400_000;

/// The sales team's reps, who move the demo's MQLs on.
const REPS: &[&str] = &["ana.silva@example.com", "kenji.watanabe@example.com", "olga.ivanova@example.com"];

/// A stage a rep moves a lead to, with the reason the move needs (if it needs one).
type Move = (Stage, Option<&'static str>);

/// The sales team's follow-up of every MQL, in its own deterministic order: most are accepted
/// within days, some of those qualified, then won or lost; the rest disqualified or nurtured. A
/// move that would land after `now` is not made yet.
fn follow_up(transaction: &dyn Transaction, workspace_id: i64, n_leads: usize, now: i64) -> Result<(), StoreError> {
    let mut random = Random(0x0f01_10e5_a1e5);
    for i in 0..n_leads {
        let Some(lead) = transaction.lead_by_user_id(workspace_id, &format!("demo-{:05}", i + 1))? else {
            continue;
        };
        let Some(mql) = transaction.latest_stage(lead.id)?.filter(|change| change.stage == Stage::Mql.as_str()) else {
            continue;
        };
        let rep = random.pick(REPS);
        let mut path: Vec<(Move, i64)> = Vec::new();
        match random.below(10) {
            0 => path
                .push(((Stage::Disqualified, Some("a student researching for a course")), 1 + random.below(3) as i64)),
            1 => path.push(((Stage::Nurture, Some("no project before next year")), 2 + random.below(5) as i64)),
            2 | 3 => {}
            _ => {
                path.push(((Stage::Sal, None), 1 + random.below(4) as i64));
                if random.below(10) < 6 {
                    path.push(((Stage::Sql, None), 3 + random.below(12) as i64));
                    match random.below(10) {
                        0..=3 => path.push(((Stage::Customer, None), 10 + random.below(30) as i64)),
                        4..=6 => {
                            path.push(((Stage::Lost, Some("chose a competitor on price")), 7 + random.below(30) as i64))
                        }
                        _ => {}
                    }
                }
            }
        }
        let (mut previous, mut at) = (Stage::Mql, mql.at);
        for ((stage, reason), days_later) in path {
            at += days_later * DAY + random.below(8 * 3_600_000) as i64;
            if at > now {
                break;
            }
            let change = StageChange {
                stage: stage.to_string(),
                previous: Some(previous.to_string()),
                at,
                actor: rep.to_string(),
                reason: reason.map(str::to_string),
            };
            transaction.set_stage(lead.id, &change)?;
            previous = stage;
        }
    }
    Ok(())
}

/// The demo's messages in the order they happened: each lead identified once, then its events
/// between that day and `now`.
fn generate(n_leads: usize, now: i64) -> Vec<Message> {
    let mut random = Random(0x5eed_1ead_5c0e);
    // Names from a generator of their own, so that the other fields stay as they were.
    let mut names = Random(0x000a_11ce_5b0b);
    let mut messages = Vec::new();
    let day = DAY;
    for i in 0..n_leads {
        let user_id = format!("demo-{:05}", i + 1);
        let domain = random.pick(DOMAINS);
        let mut traits = Map::new();
        traits.insert("email".into(), json!(format!("lead{}@{domain}", i + 1)));
        traits.insert("job_title".into(), json!(random.pick(TITLES)));
        traits.insert("industry".into(), json!(random.pick(INDUSTRIES)));
        traits.insert("employees".into(), json!(1 + random.below(2000)));
        traits.insert("country".into(), json!(random.pick(COUNTRIES)));
        let (person, company) = NAMES[names.below(NAMES.len() as u64) as usize];
        traits.insert("name".into(), json!(person));
        traits.insert("company".into(), json!(company));
        let created = now - (1 + random.below(120)) as i64 * day;
        messages.push(Message {
            kind: Kind::Identify,
            user_id: Some(user_id.clone()),
            anonymous_id: None,
            message_id: format!("demo-identify-{}", i + 1),
            at: created,
            traits,
            properties: Map::new(),
        });
        let n_events = random.below(12);
        for j in 0..n_events {
            let at = created + random.below((now - created) as u64) as i64;
            let (name, properties): (&str, Value) = match random.below(10) {
                0..=4 => ("page_view", json!({ "url": format!("https://example.com{}", random.pick(PAGES)) })),
                5 => ("webinar_attended", json!({})),
                6 => (
                    "content_download",
                    json!({ "asset_type": if random.below(2) == 0 { "case_study" } else { "ebook" } }),
                ),
                7 => ("email_click", json!({ "url": "https://example.com/demo" })),
                8 => ("email_open", json!({ "campaign": "nurture-3" })),
                _ => ("support_ticket", json!({ "category": if random.below(2) == 0 { "sales" } else { "billing" } })),
            };
            messages.push(Message {
                kind: Kind::Track(name.to_string()),
                user_id: Some(user_id.clone()),
                anonymous_id: None,
                message_id: format!("demo-{}-{}", i + 1, j),
                at,
                traits: Map::new(),
                properties: properties.as_object().cloned().unwrap_or_default(),
            });
        }
    }
    // Stable: a lead's identify comes before its events of the same moment.
    messages.sort_by_key(|message| message.at);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::check_move;
    use leadscore_store::Store;

    /// The demo's history reads like a workspace's: automatic MQLs and reps' moves spread over
    /// many weeks, every move one a person could make, none in the future, and the lead's stage
    /// its latest move.
    #[tokio::test]
    async fn the_demo_history_spreads_over_weeks_with_allowed_moves_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let now = 1_796_428_800_000; // 2026-12-01
        let storage: &dyn Storage = &store;
        let demo = create(storage, "demo", 400, now).await.unwrap();
        assert_eq!(demo.leads, 400);
        let histories = storage
            .write(move |transaction| {
                let workspace = transaction.find_or_create_workspace("demo", now)?;
                let mut histories = Vec::new();
                for i in 0..400 {
                    let lead = transaction.lead_by_user_id(workspace.id, &format!("demo-{:05}", i + 1))?.unwrap();
                    histories.push((lead.stage.clone(), transaction.stage_history(lead.id)?));
                }
                Ok(histories)
            })
            .await
            .unwrap();
        let mut weeks_with_mql = std::collections::BTreeSet::new();
        let mut reached = std::collections::BTreeMap::<String, usize>::new();
        for (stage, history) in &histories {
            for change in history {
                assert!(change.at <= now, "a move after now: {change:?}");
                *reached.entry(change.stage.clone()).or_default() += 1;
                if change.stage == "mql" {
                    weeks_with_mql.insert(change.at / (7 * DAY));
                }
                if change.actor != crate::lifecycle::AUTOMATIC_ACTOR {
                    let from: Stage = change.previous.as_deref().unwrap().parse().unwrap();
                    let to: Stage = change.stage.parse().unwrap();
                    check_move(from, to, false).unwrap();
                    assert_eq!(to.needs_reason(), change.reason.is_some(), "{change:?}");
                }
            }
            let latest = history.iter().max_by_key(|change| change.at).map_or("lead", |c| c.stage.as_str());
            assert_eq!(stage, latest);
        }
        assert!(weeks_with_mql.len() >= 8, "MQLs in {} weeks only", weeks_with_mql.len());
        for stage in ["mql", "sal", "sql", "customer", "lost", "nurture", "disqualified"] {
            assert!(reached.get(stage).copied().unwrap_or(0) > 0, "no lead reached {stage}: {reached:?}");
        }
    }
}
