//! `leadscore serve`: the real-time scoring service, on a SQLite file (`--data`) or on a
//! PostgreSQL database that several instances share (`--database`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use leadscore_server::AppState;
use leadscore_store::{Access, Location, Storage};

use super::StoreArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The store: a data directory (created if needed) or a PostgreSQL database
    #[command(flatten)]
    store: StoreArgs,
    /// Connections to the PostgreSQL database this instance keeps, each with a thread of its own:
    /// the requests it stores at once [default: 16]
    #[arg(long, env = "LEADSCORE_DATABASE_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=1000))]
    database_connections: Option<u64>,
    /// Ingestion transactions this instance runs at once on the PostgreSQL database; the requests
    /// that arrive while they run are stored together in the next ones [default: 2]
    #[arg(long, env = "LEADSCORE_DATABASE_WRITERS", value_parser = clap::value_parser!(u64).range(1..=1000))]
    database_writers: Option<u64>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8640")]
    listen: SocketAddr,
    /// Make this model file the active model of `--workspace` (a new version if it changed)
    #[arg(long)]
    model: Option<PathBuf>,
    /// The workspace `--model` applies to
    #[arg(long, default_value = "default")]
    workspace: String,
    /// Create a `demo` workspace with an example model and generated leads, and print its keys
    #[arg(long)]
    demo: bool,
    /// Leads the demo generates
    #[arg(long, default_value_t = 3000)]
    demo_leads: usize,
    /// Log as JSON lines instead of text
    #[arg(long)]
    log_json: bool,
    /// The first webhook retry waits this long (ms); later ones wait up to 5760 times more
    #[arg(long, default_value_t = 5000, hide = true)]
    webhook_retry_base_ms: i64,
    /// Leads a console preview compares per read snapshot
    #[arg(long, default_value_t = leadscore_server::preview::BATCH_LEADS, hide = true, value_parser = clap::value_parser!(u32).range(1..))]
    preview_batch_leads: u32,
    /// How long (ms) a console page that starts a preview waits for its result
    #[arg(long, default_value_t = 150, hide = true)]
    preview_wait_ms: u64,
    /// Re-evaluate every lead this often (seconds) so that tiers changed by time alone (decay,
    /// windows, inactivity) are recorded and notified
    #[arg(long, default_value_t = 600)]
    rescore_every: u64,
    /// Delete the events past each workspace's retention this often (seconds), and at start
    #[arg(long, default_value_t = 3600)]
    retention_every: u64,
    /// Message ids of the newest events kept in memory before they are merged into the on-disk
    /// index (about 80 bytes each): more means fewer disk writes per event and a longer start
    #[arg(long, default_value_t = leadscore_store::message_ids::DEFAULT_RECENT)]
    recent_message_ids: usize,
    /// Leads ingestion keeps in memory between requests (about 2 KB each with the reference
    /// model): a message for a remembered lead reads nothing from the database. The leads heard
    /// from most recently are kept
    #[arg(long, default_value_t = leadscore_server::lead_cache::DEFAULT_CAPACITY as u64,
          value_parser = clap::value_parser!(u64).range(2..))]
    remembered_leads: u64,
    /// Client connections held at most; more are refused with 503 as they arrive [default: the
    /// descriptor limit less 128, at most 10000]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Seconds a client has to send a request's head, from connecting or from its first byte
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request (keep it above a load
    /// balancer's idle timeout)
    #[arg(long, default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Let webhooks reach loopback, private, link-local and other non-public addresses (receivers
    /// on this machine or network); refused by default, so that a webhook cannot reach them
    #[arg(long)]
    allow_private_webhooks: bool,
    /// People reach the service over HTTPS through a proxy that ends TLS: the console's session
    /// cookie is marked Secure (browsers then never send it over plain HTTP)
    #[arg(long)]
    behind_https: bool,
    /// Requests per second one browser key may send (every page of its website together)
    #[arg(long, default_value_t = 200.0, value_parser = positive)]
    browser_key_rate: f64,
    /// Requests one browser key may send at once, above its rate
    #[arg(long, default_value_t = 1000.0, value_parser = positive)]
    browser_key_burst: f64,
    /// Requests per second one client address may send with a browser key
    #[arg(long, default_value_t = 5.0, value_parser = positive)]
    browser_address_rate: f64,
    /// Requests one client address may send at once with a browser key, above its rate
    #[arg(long, default_value_t = 50.0, value_parser = positive)]
    browser_address_burst: f64,
    /// New anonymous leads one client address may make per hour with a browser key
    #[arg(long, default_value_t = 100)]
    anonymous_per_address_per_hour: u32,
    /// What to do with a browser key's requests from known bots (crawlers, headless browsers):
    /// ignore (answered, not stored), mark (stored with `bot: true`) or allow
    #[arg(long, default_value = "ignore", value_parser = ["ignore", "mark", "allow"])]
    bots: String,
    /// Count headless browsers (HeadlessChrome, Puppeteer, Playwright) as visitors, not bots
    #[arg(long)]
    allow_headless_browsers: bool,
}

/// A rate or a burst: a finite number above zero.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("`{text}` is not a number above zero")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only for a person at a terminal: in files and log collectors they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if args.log_json {
        subscriber.json().init()
    } else {
        subscriber.init()
    }

    let descriptors = leadscore_server::connections::raise_descriptor_limit();
    let mut connections = leadscore_server::connections::Limits {
        max_connections: leadscore_server::connections::default_max_connections(descriptors),
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
        ..Default::default()
    };
    if let Some(max) = args.max_connections {
        connections.max_connections = usize::try_from(max).unwrap_or(usize::MAX);
    }

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(async move {
        let location = args.store.location();
        let access = Access::Ingesting { recent_message_ids: args.recent_message_ids };
        let mut postgres = leadscore_store::postgres::PgOptions::default();
        if let Location::Directory(_) = &location {
            if args.database_connections.is_some() {
                anyhow::bail!(
                    "--database-connections (or LEADSCORE_DATABASE_CONNECTIONS) applies to a PostgreSQL database \
                     (--database); a data directory has one writer and no connections to set"
                );
            }
            if args.database_writers.is_some() {
                anyhow::bail!(
                    "--database-writers (or LEADSCORE_DATABASE_WRITERS) applies to a PostgreSQL database (--database); \
                     a data directory has one writer, which stores the requests that arrive together in one transaction"
                );
            }
        }
        if let Some(connections) = args.database_connections {
            postgres.connections = usize::try_from(connections).unwrap_or(usize::MAX);
        }
        let storage =
            location.open_with(access, &postgres).with_context(|| format!("cannot open the store at {location}"))?;
        if let Some(path) = &args.model {
            install_model(storage.as_ref(), &args.workspace, path).await?;
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        if args.demo {
            let demo =
                leadscore_server::demo::create(storage.as_ref(), "demo", args.demo_leads, leadscore_store::now_ms())
                    .await?;
            println!("demo workspace `{}`: {} leads, {} events", demo.workspace, demo.leads, demo.events);
            // Lines a shell can paste as they are; the README's examples use these names.
            println!("# paste these lines into another shell:");
            println!("export LEADSCORE_URL=http://{address}");
            for key in &demo.keys {
                println!("export {}_KEY={}", key.scope.as_str().to_ascii_uppercase(), key.secret);
            }
            println!("# then try: curl -H \"Authorization: Bearer $READ_KEY\" \"$LEADSCORE_URL/api/leads?limit=5\"");
            let (email, password) = &demo.account;
            println!("# or open http://{address}/ in a browser and sign in as {email} with the password {password}");
        }
        println!("leadscore listening on http://{address}");
        leadscore_server::log_start(address);
        let config = leadscore_server::Config {
            webhook_retry_base_ms: args.webhook_retry_base_ms.max(1),
            rescore_interval: std::time::Duration::from_secs(args.rescore_every.max(1)),
            retention_interval: std::time::Duration::from_secs(args.retention_every.max(1)),
            connections,
            allow_private_webhooks: args.allow_private_webhooks,
            behind_https: args.behind_https,
            preview_batch_leads: args.preview_batch_leads,
            preview_first_wait: std::time::Duration::from_millis(args.preview_wait_ms),
            remembered_leads: usize::try_from(args.remembered_leads).unwrap_or(usize::MAX),
            ingestion_writers: args
                .database_writers
                .map_or(leadscore_server::intake::lanes::DEFAULT_WRITERS, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            browser_limits: leadscore_server::abuse::Limits {
                per_key: leadscore_server::abuse::Rate {
                    per_second: args.browser_key_rate,
                    burst: args.browser_key_burst.max(1.0),
                },
                per_address: leadscore_server::abuse::Rate {
                    per_second: args.browser_address_rate,
                    burst: args.browser_address_burst.max(1.0),
                },
                anonymous_per_address_per_hour: args.anonymous_per_address_per_hour,
                bots: match args.bots.as_str() {
                    "mark" => leadscore_server::abuse::Bots::Mark,
                    "allow" => leadscore_server::abuse::Bots::Allow,
                    _ => leadscore_server::abuse::Bots::Ignore,
                },
                allow_headless: args.allow_headless_browsers,
            },
        };
        leadscore_server::serve(listener, AppState::with_storage(storage, config), leadscore_server::shutdown_signal())
            .await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Installs the model file given at start. The rule, so that a restart never silently undoes a
/// later choice:
/// - a file whose model (text and trained models) is new becomes a new version, activated: the
///   file was changed since it was last installed;
/// - a file whose model is already stored is activated when the active version also came from a
///   file (or none is active): the file is what the operator maintains;
/// - but when the newest choice was made through the API (an activation, a rollback, a
///   retrain), it stands, with a warning, until the file changes.
///
/// Every activation records a rescoring of every lead, which the service runs once it starts.
/// The trained models its predictive scores name are stored in the workspace under the name
/// written in the model (a new predictive version only if the file changed).
async fn install_model(storage: &dyn Storage, workspace: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let loaded = crate::model_file::load(path)?;
    let source = loaded.source.clone();
    let predictive = loaded.predictive.clone();
    let list_files = loaded.list_files.clone();
    loaded.into_model()?;
    // The service compiles the stored text again whenever it loads the model, and it reads no
    // files: a model that takes a list from a file would stop compiling there.
    if let Some(file) = list_files.first() {
        anyhow::bail!(
            "{}: a `[lists.NAME]` table reads `file = \"{file}\"`, and the service cannot read list files: put the \
             entries in the model with `entries = [...]` (or `add` / `remove`)",
            path.display()
        );
    }
    // The service names stored predictive models by what the model file wrote, and its API can
    // only address some names: refuse the others here rather than store what cannot be reached.
    if let Some(reference) = predictive.keys().find(|r| !leadscore_server::scoring::valid_name(r)) {
        anyhow::bail!(
            "{}: `predictive = \"{reference}\"`: the service stores trained models by name (letters, digits, `_`, \
             `-` and `.`); put the file beside the model file and name it alone, e.g. `predictive = \"conversion.json\"`",
            path.display()
        );
    }
    let workspace = workspace.to_string();
    let now = leadscore_store::now_ms();
    let outcome = storage
        .write(move |transaction| {
            use leadscore_store::models::Origin;
            use leadscore_store::storage::NewPredictiveModel;
            let workspace = transaction.find_or_create_workspace(&workspace, now)?;
            let mut pins = std::collections::BTreeMap::new();
            for (reference, (text, algorithm)) in &predictive {
                let latest = transaction.latest_predictive_model(workspace.id, reference)?;
                let id = match latest.filter(|l| l.body == *text) {
                    Some(latest) => latest.id,
                    None => {
                        let new = NewPredictiveModel {
                            workspace_id: workspace.id,
                            name: reference,
                            body: text,
                            algorithm,
                            origin: leadscore_store::predictive::Origin::Upload,
                        };
                        transaction.add_predictive_model(&new, now)?.id
                    }
                };
                pins.insert(reference.clone(), id);
            }
            let active = transaction.active_model(workspace.id)?;
            let stored = transaction.model_with_source(workspace.id, &source, &pins)?;
            if let (Some(active), Some(stored)) = (&active, &stored)
                && active.id == stored.id
            {
                return Ok(Installed::AlreadyActive(active.version));
            }
            // The newest choice decides: the newest activation still standing, or a rollback made
            // after it (a rollback undoes an activation rather than add one).
            let stack = transaction.model_activations(workspace.id)?;
            let top = stack.iter().rev().find(|a| a.undone_at.is_none());
            let last_rollback = stack.iter().filter_map(|a| a.undone_at).max();
            let chosen_through_api = top.is_some_and(|a| {
                a.origin != Origin::File.as_str() || last_rollback.is_some_and(|rolled| rolled >= a.at)
            });
            let version = match stored {
                Some(stored) if chosen_through_api => {
                    let active = active.map_or(0, |a| a.version);
                    return Ok(Installed::Kept { file: stored.version, active });
                }
                Some(stored) => stored,
                None => {
                    transaction.add_model_version(workspace.id, &source, &pins, Some("leadscore serve --model"), now)?
                }
            };
            leadscore_server::activation::activate(transaction, workspace.id, version.id, Origin::File, now)?;
            Ok(Installed::Activated(version.version))
        })
        .await?;
    match outcome {
        Installed::AlreadyActive(version) => eprintln!("model {} is version {version}, active", path.display()),
        Installed::Activated(version) => {
            eprintln!("model {} is version {version}, now active; every lead is rescored", path.display())
        }
        Installed::Kept { file, active } => {
            let message = format!(
                "model {} is version {file}, but version {active} was chosen through the API after it (activated or \
                 rolled back to) and stays active; change the file, or activate version {file} through the API, to \
                 use the file's model",
                path.display()
            );
            eprintln!("warning: {message}");
        }
    }
    Ok(())
}

/// What installing the model file did.
enum Installed {
    AlreadyActive(i64),
    Activated(i64),
    Kept { file: i64, active: i64 },
}
