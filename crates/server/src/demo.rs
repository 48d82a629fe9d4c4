//! A demo workspace: the B2B SaaS example model and a few thousand generated leads with their
//! events, ingested through the same path as real traffic. Deterministic: the same count gives
//! the same leads.

use leadscore_store::keys::{NewKey, Scope};
use leadscore_store::users::Role;
use leadscore_store::{Storage, StoreError};
use serde_json::{Map, Value, json};

use crate::ingest;
use crate::lead_cache::LeadCache;
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
        for chunk in messages.chunks(2000) {
            let chunk: Vec<Result<Message, String>> = chunk.iter().cloned().map(Ok).collect();
            let (models, leads) = (models.clone(), leads.clone());
            storage
                .write(move |transaction| ingest::ingest(transaction, &models, &leads, workspace_id, chunk, now))
                .await?;
        }
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

fn generate(n_leads: usize, now: i64) -> Vec<Message> {
    let mut random = Random(0x5eed_1ead_5c0e);
    // Names from a generator of their own, so that the other fields stay as they were.
    let mut names = Random(0x000a_11ce_5b0b);
    let mut messages = Vec::new();
    let day = 86_400_000;
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
            let at = now - random.below(100 * day as u64) as i64;
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
    messages
}
