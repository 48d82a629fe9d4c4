//! What every request handler shares.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use leadscore_store::{Storage, Store};

use crate::abuse::Guard;
use crate::browser_origins::BrowserOrigins;
use crate::key_cache::KeyCache;
use crate::lead_cache::LeadCache;
use crate::metrics::Metrics;
use crate::preview_jobs::PreviewJobs;
use crate::scoring::Models;

/// The service's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The storage every handler and background task goes through.
    pub storage: Arc<dyn Storage>,
    pub models: Arc<Models>,
    /// The leads ingestion remembers between requests (kept coherent by ingesting through
    /// `Storage::ingest`).
    pub leads: Arc<LeadCache>,
    pub keys: Arc<KeyCache>,
    /// The origins browser keys are bound to, for CORS.
    pub origins: Arc<BrowserOrigins>,
    /// Wakes the webhook dispatcher when notifications were queued.
    pub deliveries: Arc<Notify>,
    /// Background rescoring of workspaces, with progress.
    pub rescoring: Arc<RunningRescorings>,
    /// Model previews computed in the background for the console, with their progress.
    pub previews: Arc<PreviewJobs>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Rate limits, the anonymous-lead cap and bot filtering for browser keys.
    pub guard: Arc<Guard>,
    /// The ingestion transactions running and the requests waiting to go together into the next
    /// ones, where other processes write the same storage (see [`crate::intake::groups`]).
    pub intake: Arc<crate::intake::lanes::Lanes>,
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The first webhook retry waits this long; later ones wait multiples of it (see
    /// `delivery::RETRY_STEPS`), for at least a day in all at the default of 5 s.
    pub webhook_retry_base_ms: i64,
    /// How often every lead is re-evaluated so that time-driven tier changes are recorded.
    pub rescore_interval: std::time::Duration,
    /// How often the events past each workspace's retention are deleted (also at start).
    pub retention_interval: std::time::Duration,
    /// How many client connections are held, and for how long.
    pub connections: crate::connections::Limits,
    /// Whether webhooks may reach loopback, private, link-local and other addresses outside the
    /// public internet (`crate::egress`): off unless the operator turns it on.
    pub allow_private_webhooks: bool,
    /// Whether people reach the service over HTTPS (through a proxy that ends TLS): the
    /// console's session cookie is then marked `Secure`, so that browsers never send it in clear.
    pub behind_https: bool,
    /// Leads a console preview compares per read snapshot (its progress moves by this many).
    pub preview_batch_leads: u32,
    /// How long a console page that starts a preview waits for it, so that a small workspace's
    /// preview comes in the first answer.
    pub preview_first_wait: std::time::Duration,
    /// The limits on what browser keys send.
    pub browser_limits: crate::abuse::Limits,
    /// Leads ingestion remembers at most between requests (see [`crate::lead_cache`]).
    pub remembered_leads: usize,
    /// Ingestion transactions this instance runs at once where other processes write the same
    /// storage; requests that arrive while they run go together into the next ones (see
    /// [`crate::intake::groups`]).
    pub ingestion_writers: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            webhook_retry_base_ms: 5_000,
            rescore_interval: std::time::Duration::from_secs(600),
            retention_interval: std::time::Duration::from_secs(3600),
            connections: crate::connections::Limits::default(),
            allow_private_webhooks: false,
            behind_https: false,
            preview_batch_leads: crate::preview::BATCH_LEADS,
            preview_first_wait: std::time::Duration::from_millis(150),
            browser_limits: crate::abuse::Limits::default(),
            remembered_leads: crate::lead_cache::DEFAULT_CAPACITY,
            ingestion_writers: crate::intake::lanes::DEFAULT_WRITERS,
        }
    }
}

impl AppState {
    /// The state of a service that stores in SQLite.
    pub fn new(store: Store, config: Config) -> AppState {
        AppState::with_storage(Arc::new(store), config)
    }

    pub fn with_storage(storage: Arc<dyn Storage>, config: Config) -> AppState {
        AppState {
            leads: Arc::new(if storage.sole_writer() {
                LeadCache::with_capacity(storage.generation(), config.remembered_leads)
            } else {
                LeadCache::per_request(storage.generation())
            }),
            storage,
            models: Arc::new(Models::default()),
            keys: Arc::new(KeyCache::default()),
            origins: Arc::new(BrowserOrigins::default()),
            deliveries: Arc::new(Notify::new()),
            rescoring: Arc::new(RunningRescorings::default()),
            previews: Arc::new(PreviewJobs::default()),
            metrics: Arc::new(Metrics::default()),
            guard: Arc::new(Guard::new(config.browser_limits.clone())),
            intake: Arc::new(crate::intake::lanes::Lanes::new(config.ingestion_writers)),
            config: Arc::new(config),
        }
    }
}

/// The workspaces whose rescoring runs in this process.
#[derive(Default)]
pub struct RunningRescorings {
    running: Mutex<HashSet<i64>>,
}

impl RunningRescorings {
    /// Marks the workspace's rescoring as running here; `false` if it already was.
    pub fn claim(&self, workspace_id: i64) -> bool {
        self.running.lock().is_ok_and(|mut running| running.insert(workspace_id))
    }

    pub fn release(&self, workspace_id: i64) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&workspace_id);
        }
    }
}
