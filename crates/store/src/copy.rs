//! Copying a whole SQLite store (a data directory) into an empty PostgreSQL database, keeping
//! every id, and checking the copy: what `leadscore migrate-store` runs.
//!
//! # How
//! One PostgreSQL transaction does everything, so that a failure (of the copy or of its check)
//! leaves the target as empty as it was:
//! 1. the schema's first migration only (the tables, see `postgres/migrate.rs`);
//! 2. the rows of every table the service reads ([`TABLES`]), in an order that satisfies the
//!    foreign keys, by binary `COPY`; a lead merged into another is linked once every lead is
//!    there (a lead may be merged into a newer one);
//! 3. every identity column's sequence, and `lead_ids`, set past the highest id copied (an erased
//!    lead's too: its id is never given again);
//! 4. the later migrations, which fill the funnel's count tables from the rows copied, then the
//!    rows of the tables they made ([`LATER_TABLES`]) in place of what they derived. SQLite's
//!    own count tables, its indexes kept as tables (`message_ids`, `lead_search`) and
//!    PostgreSQL's generated columns are not copied: the target makes its own;
//! 5. the check ([`check`]): row counts, every lead's scores, the funnel's counts against a
//!    recount, every message id stored once. It runs before the commit, so a copy that differs
//!    is never committed.
//!
//! The source is read in one SQLite read transaction, with the data directory's lock held (as the
//! service holds it, see [`Store::open_ingesting`]): a store being written to would be copied
//! inconsistently, so a directory a running service holds is refused.

use std::path::{Path, PathBuf};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use rusqlite::types::ValueRef;

use crate::Store;
use crate::error::StoreError;
use crate::postgres::migrate;

/// How long connecting to the target may take (a mistyped host fails instead of hanging).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Rows per progress report of a large table.
const PROGRESS_EVERY: u64 = 100_000;

/// How a column is stored in PostgreSQL (SQLite's value is read as that type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    Bytes,
}

/// A table copied: its name, its columns (the same names in both schemas) and whether its `id`
/// is an identity column whose sequence must be moved past the ids copied.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    identity: bool,
}

use Kind::{Bytes, Int, Real, Text};

/// Every table the service reads, parents before the rows that refer to them.
const TABLES: &[Table] = &[
    Table { name: "workspaces", columns: &[("id", Int), ("name", Text), ("created_at", Int)], identity: true },
    Table {
        name: "models",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("version", Int),
            ("source", Text),
            ("created_at", Int),
            ("activated_at", Int),
            ("predictors", Text),
            ("uploaded_by", Text),
        ],
        identity: true,
    },
    Table { name: "active_models", columns: &[("workspace_id", Int), ("model_id", Int)], identity: false },
    Table {
        name: "model_activations",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("model_id", Int),
            ("origin", Text),
            ("at", Int),
            ("undone_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "predictive_models",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("name", Text),
            ("version", Int),
            ("body", Text),
            ("algorithm", Text),
            ("origin", Text),
            ("created_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "leads",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("user_id", Text),
            ("email", Text),
            ("attributes", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("last_event_at", Int),
            ("stage", Text),
            ("state", Text),
            ("state_model_id", Int),
            ("merged_into", Int),
            ("last_event_id", Int),
        ],
        // Lead ids come from the `lead_ids` sequence, set apart.
        identity: false,
    },
    Table {
        name: "anonymous_ids",
        columns: &[("workspace_id", Int), ("anonymous_id", Text), ("lead_id", Int)],
        identity: false,
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("lead_id", Int),
            ("message_id", Text),
            ("type", Text),
            ("at", Int),
            ("received_at", Int),
            ("properties", Text),
            ("previous_id", Int),
        ],
        identity: true,
    },
    Table {
        name: "lead_scores",
        columns: &[
            ("lead_id", Int),
            ("score", Text),
            ("value", Real),
            ("tier", Text),
            ("model_id", Int),
            ("evaluated_at", Int),
            ("history_id", Int),
            ("override_id", Int),
            ("computed_value", Real),
            ("computed_tier", Text),
        ],
        identity: false,
    },
    Table {
        name: "score_history",
        columns: &[
            ("id", Int),
            ("lead_id", Int),
            ("score", Text),
            ("value", Real),
            ("tier", Text),
            ("previous_tier", Text),
            ("model_id", Int),
            ("at", Int),
            ("cause", Text),
            ("previous_id", Int),
            ("override_id", Int),
            ("override_action", Text),
            ("terms", Text),
        ],
        identity: true,
    },
    Table {
        name: "stage_history",
        columns: &[
            ("id", Int),
            ("lead_id", Int),
            ("stage", Text),
            ("previous", Text),
            ("at", Int),
            ("actor", Text),
            ("reason", Text),
            ("workspace_id", Int),
        ],
        identity: true,
    },
    Table {
        name: "webhooks",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("url", Text),
            ("secret", Text),
            ("events", Text),
            ("score", Text),
            ("threshold", Real),
            ("created_at", Int),
            ("deleted_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("webhook_id", Int),
            ("lead_id", Int),
            ("event", Text),
            ("data", Text),
            ("created_at", Int),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("delivered_at", Int),
            ("failed_at", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("claimed_until", Int),
        ],
        identity: true,
    },
    Table {
        name: "deliveries",
        columns: &[
            ("id", Int),
            ("outbox_id", Int),
            ("at", Int),
            ("status", Int),
            ("error", Text),
            ("duration_ms", Int),
        ],
        identity: true,
    },
    Table {
        name: "rescorings",
        columns: &[
            ("workspace_id", Int),
            ("model_id", Int),
            ("cause", Text),
            ("total", Int),
            ("started_at", Int),
            ("finished_at", Int),
            ("error", Text),
            ("revert_automatic_since", Int),
        ],
        identity: false,
    },
    Table {
        name: "api_keys",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("prefix", Text),
            ("secret_hash", Bytes),
            ("scope", Text),
            ("created_at", Int),
            ("revoked_at", Int),
            ("name", Text),
            ("origins", Text),
        ],
        identity: true,
    },
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("email", Text),
            ("email_key", Text),
            ("role", Text),
            ("password_hash", Text),
            ("created_at", Int),
            ("disabled_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Int),
            ("token_hash", Bytes),
            ("user_id", Int),
            ("csrf_token", Text),
            ("created_at", Int),
            ("idle_until", Int),
            ("ends_at", Int),
            ("revoked_at", Int),
        ],
        identity: true,
    },
    Table { name: "sign_in_failures", columns: &[("id", Int), ("subject", Text), ("at", Int)], identity: true },
    Table { name: "erasure_salts", columns: &[("workspace_id", Int), ("salt", Bytes)], identity: false },
    Table {
        name: "erasures",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("lead_id", Int),
            ("erased_by", Text),
            ("erased_at", Int),
            ("leads", Int),
            ("events", Int),
            ("last_lead_id", Int),
            ("lifted_at", Int),
            ("lifted_by", Text),
        ],
        identity: true,
    },
    Table {
        name: "suppressions",
        columns: &[("workspace_id", Int), ("hash", Bytes), ("kind", Text), ("erasure_id", Int)],
        identity: false,
    },
    Table {
        name: "retention",
        columns: &[("workspace_id", Int), ("events_days", Int), ("set_at", Int), ("set_by", Text)],
        identity: false,
    },
    Table {
        name: "score_overrides",
        columns: &[
            ("id", Int),
            ("workspace_id", Int),
            ("lead_id", Int),
            ("score", Text),
            ("value", Real),
            ("tier", Text),
            ("reason", Text),
            ("set_by", Text),
            ("set_at", Int),
            ("expires_at", Int),
            ("lifted_at", Int),
            ("lifted_by", Text),
            ("lifted_note", Text),
        ],
        identity: true,
    },
];

/// The tables a later migration made, copied after every migration ran: whatever rows the
/// migrations derived from the tables copied before are replaced by the source's.
const LATER_TABLES: &[Table] = &[Table {
    name: "rescoring_ranges",
    columns: &[
        ("workspace_id", Int),
        ("first_after", Int),
        ("until_lead_id", Int),
        ("after_lead_id", Int),
        ("done", Int),
        ("finished_at", Int),
        ("claimed_until", Int),
    ],
    identity: false,
}];

/// Every table copied, in the order copied.
fn all_tables() -> impl Iterator<Item = &'static Table> {
    TABLES.iter().chain(LATER_TABLES)
}

/// Why a copy was refused or failed; nothing was committed to the target in any case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0} is not a leadscore data directory (it has no leadscore.db)")]
    NotADataDirectory(PathBuf),
    #[error(
        "a running leadscore service holds {0}: stop the service first (a copy of a store being written to would be inconsistent)"
    )]
    SourceInUse(PathBuf),
    #[error("the target database is not empty: {0}; copy into a new, empty database")]
    TargetNotEmpty(String),
    #[error("the copy differs from the source ({what}): {detail}; nothing was committed")]
    Differs { what: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<postgres::Error> for CopyError {
    fn from(error: postgres::Error) -> Self {
        CopyError::Store(StoreError::Postgres(error))
    }
}

impl From<rusqlite::Error> for CopyError {
    fn from(error: rusqlite::Error) -> Self {
        CopyError::Store(StoreError::Sqlite(error))
    }
}

/// What a copy did: the rows of each table, and each comparison of its check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Each table copied, in order, with its rows.
    pub tables: Vec<(String, u64)>,
    /// Each comparison made, with how many rows (or values) it compared; all were equal.
    pub checks: Vec<(String, u64)>,
}

/// Progress of a copy, told as it goes: a table's rows copied so far, and whether it is done.
pub type Progress<'a> = &'a mut (dyn FnMut(&str, u64, bool) + Send);

/// Copies the SQLite store of the data directory `from` into the empty PostgreSQL database at
/// `to` (a URL), then checks the copy, in one transaction committed only if the check passes.
pub fn copy_store(from: &Path, to: &str, progress: Progress<'_>) -> Result<CopyReport, CopyError> {
    let file = from.join("leadscore.db");
    if !file.is_file() {
        return Err(CopyError::NotADataDirectory(from.to_path_buf()));
    }
    // Opened as the service opens it (migrated to this version's schema), and held as it holds
    // it for as long as the copy runs: no service starts storing events meanwhile.
    let _held = match Store::open_ingesting(from, 0) {
        Ok(store) => store,
        Err(StoreError::InUse { .. }) => return Err(CopyError::SourceInUse(from.to_path_buf())),
        Err(error) => return Err(error.into()),
    };
    let source = rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let url = to.to_string();
    // The blocking client runs a runtime of its own, which cannot start on a thread that drives
    // asynchronous tasks: connect and copy on a thread of its own, as the store's workers do.
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let refused = |reason: String| StoreError::Connect { url: crate::postgres::redacted(&url), reason };
                let mut config: postgres::Config =
                    url.parse().map_err(|error: postgres::Error| refused(error.to_string()))?;
                config.connect_timeout(CONNECT_TIMEOUT);
                if config.get_application_name().is_none() {
                    config.application_name("leadscore migrate-store");
                }
                let mut client =
                    config.connect(postgres::NoTls).map_err(|error| refused(crate::postgres::with_causes(&error)))?;
                copy_connected(&source, &mut client, progress)
            })
            .join()
            .unwrap_or(Err(CopyError::Store(StoreError::Closed)))
    })
}

/// The copy and its check, from an open SQLite connection into a PostgreSQL client.
fn copy_connected(
    source: &rusqlite::Connection,
    client: &mut postgres::Client,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    refuse_a_target_in_use(client)?;
    // One snapshot of the source for the copy and the check.
    source.execute_batch("BEGIN")?;
    let result = copy_in_one_transaction(source, client, progress);
    let _ = source.execute_batch("COMMIT");
    result
}

fn copy_in_one_transaction(
    source: &rusqlite::Connection,
    client: &mut postgres::Client,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    let mut target = client.transaction()?;
    migrate::apply_through(&mut target, migrate::BASE_TABLES)?;
    let mut report = CopyReport::default();
    for table in TABLES {
        let rows = copy_table(source, &mut target, table, progress)?;
        report.tables.push((table.name.to_string(), rows));
    }
    set_sequences(&mut target)?;
    migrate::apply_through(&mut target, u32::MAX)?;
    for table in LATER_TABLES {
        target.execute(&format!("DELETE FROM {}", table.name), &[])?;
        let rows = copy_table(source, &mut target, table, progress)?;
        report.tables.push((table.name.to_string(), rows));
    }
    report.checks = check(source, &mut target)?;
    target.commit()?;
    Ok(report)
}

/// Refuses a database with leadscore's tables in it (and says which have rows): the copy makes
/// the schema itself, so that the funnel's counts are filled from what it copied.
fn refuse_a_target_in_use(client: &mut postgres::Client) -> Result<(), CopyError> {
    let mut names: Vec<&str> = all_tables().map(|table| table.name).collect();
    names.push("schema_migrations");
    let present: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name = ANY($1) ORDER BY table_name",
            &[&names],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let mut with_rows = Vec::new();
    for name in &present {
        // Names from the list above, known to exist: quoted all the same.
        let rows: i64 = client.query_one(&format!("SELECT count(*) FROM \"{name}\""), &[])?.get(0);
        if rows > 0 {
            with_rows.push(format!("{name} ({rows} rows)"));
        }
    }
    Err(CopyError::TargetNotEmpty(if with_rows.is_empty() {
        format!("it has leadscore's tables already ({}), though empty", present.join(", "))
    } else {
        format!("leadscore's tables have rows: {}", with_rows.join(", "))
    }))
}

/// Copies one table's rows by binary `COPY`; answers how many.
fn copy_table(
    source: &rusqlite::Connection,
    target: &mut postgres::Transaction<'_>,
    table: &Table,
    progress: Progress<'_>,
) -> Result<u64, CopyError> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let types: Vec<Type> = table
        .columns
        .iter()
        .map(|(_, kind)| match kind {
            Int => Type::INT8,
            Real => Type::FLOAT8,
            Text => Type::TEXT,
            Bytes => Type::BYTEA,
        })
        .collect();
    // A lead may be merged into a newer lead: the links are set once every lead is there.
    let merged_into = (table.name == "leads").then(|| names.iter().position(|name| *name == "merged_into")).flatten();
    let quoted: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    let mut statement = source.prepare(&format!("SELECT {} FROM {} ORDER BY 1", quoted.join(", "), table.name))?;
    let sink = target.copy_in(&format!("COPY {} ({}) FROM STDIN (FORMAT binary)", table.name, quoted.join(", ")))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut links: (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut rows = statement.query([])?;
    let mut copied = 0u64;
    while let Some(row) = rows.next()? {
        let mut cells: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(table.columns.len());
        for (index, (name, kind)) in table.columns.iter().enumerate() {
            let value = row.get_ref(index)?;
            let corrupt =
                || StoreError::Corrupt(format!("{}.{name} holds {:?}, not {kind:?}", table.name, value.data_type()));
            let cell: Box<dyn ToSql + Sync> = match (kind, value) {
                (_, ValueRef::Null) => match kind {
                    Int => Box::new(None::<i64>),
                    Real => Box::new(None::<f64>),
                    Text => Box::new(None::<String>),
                    Bytes => Box::new(None::<Vec<u8>>),
                },
                (Int, ValueRef::Integer(number)) => {
                    if Some(index) == merged_into {
                        links.0.push(row.get(0)?);
                        links.1.push(number);
                        Box::new(None::<i64>)
                    } else {
                        Box::new(number)
                    }
                }
                (Real, ValueRef::Real(number)) => Box::new(number),
                // SQLite stores a whole REAL as an integer when it can.
                (Real, ValueRef::Integer(number)) => Box::new(number as f64),
                (Text, ValueRef::Text(text)) => Box::new(std::str::from_utf8(text).map_err(|_| corrupt())?.to_string()),
                (Bytes, ValueRef::Blob(bytes)) => Box::new(bytes.to_vec()),
                _ => return Err(corrupt().into()),
            };
            cells.push(cell);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = cells.iter().map(|cell| cell.as_ref()).collect();
        writer.write(&refs)?;
        copied += 1;
        if copied.is_multiple_of(PROGRESS_EVERY) {
            progress(table.name, copied, false);
        }
    }
    writer.finish()?;
    if !links.0.is_empty() {
        target.execute(
            "UPDATE leads SET merged_into = link.into_id
             FROM unnest($1::BIGINT[], $2::BIGINT[]) AS link (id, into_id) WHERE leads.id = link.id",
            &[&links.0, &links.1],
        )?;
    }
    progress(table.name, copied, true);
    Ok(copied)
}

/// Moves every identity column's sequence past the highest id copied, and the lead ids' past
/// every lead's, erased ones included, so that no id is handed out twice.
fn set_sequences(target: &mut postgres::Transaction<'_>) -> Result<(), CopyError> {
    for table in TABLES.iter().filter(|table| table.identity) {
        target.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name} HAVING max(id) IS NOT NULL",
                name = table.name
            ),
            &[],
        )?;
    }
    target.execute(
        "SELECT setval('lead_ids', last) FROM (
             SELECT greatest((SELECT max(id) FROM leads), (SELECT max(last_lead_id) FROM erasures)) AS last
         ) AS highest WHERE last IS NOT NULL",
        &[],
    )?;
    Ok(())
}

/// Compares the copy with its source: row counts of every table, every lead's scores, the
/// funnel's counts against a recount of the rows, and every event's message id stored once.
/// Answers what was compared, or the first difference.
fn check(
    source: &rusqlite::Connection,
    target: &mut postgres::Transaction<'_>,
) -> Result<Vec<(String, u64)>, CopyError> {
    let mut checks = Vec::new();
    for table in all_tables() {
        let expected: i64 = source.query_row(&format!("SELECT count(*) FROM {}", table.name), [], |row| row.get(0))?;
        let found: i64 = target.query_one(&format!("SELECT count(*) FROM {}", table.name), &[])?.get(0);
        if expected != found {
            return Err(CopyError::Differs {
                what: format!("rows of {}", table.name),
                detail: format!("{expected} in the source, {found} in the copy"),
            });
        }
        checks.push((format!("rows of {}", table.name), expected.unsigned_abs()));
    }

    // Every lead's stored scores, in the same order from both.
    let mut statement =
        source.prepare("SELECT lead_id, score, value, tier, model_id FROM lead_scores ORDER BY lead_id, score")?;
    let mut expected = statement.query([])?;
    // Streamed, as the source's rows are: a large store's scores are not held in memory.
    let mut found = target.query_raw(
        "SELECT lead_id, score, value, tier, model_id FROM lead_scores ORDER BY lead_id, score COLLATE \"C\"",
        std::iter::empty::<&(dyn ToSql + Sync)>(),
    )?;
    let mut compared = 0u64;
    loop {
        let expected: Option<(i64, String, f64, Option<String>, i64)> = match expected.next()? {
            Some(row) => Some((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
            None => None,
        };
        let actual: Option<(i64, String, f64, Option<String>, i64)> =
            found.next()?.map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)));
        if expected.is_none() && actual.is_none() {
            break;
        }
        if expected != actual {
            let describe = |score: &Option<(i64, String, f64, Option<String>, i64)>| match score {
                Some((lead, name, value, tier, model)) => {
                    format!("lead {lead}'s {name} = {value} (tier {tier:?}, model {model})")
                }
                None => "nothing".to_string(),
            };
            return Err(CopyError::Differs {
                what: "stored scores".into(),
                detail: format!("the source has {}, the copy {}", describe(&expected), describe(&actual)),
            });
        }
        compared += 1;
    }
    drop(found);
    checks.push(("scores (lead, score, value, tier, model)".into(), compared));

    for (name, stored, recount) in FUNNEL_RECOUNTS {
        let differing: i64 = target
            .query_one(
                &format!(
                    "SELECT count(*) FROM (({stored} EXCEPT {recount}) UNION ALL ({recount} EXCEPT {stored})) AS d"
                ),
                &[],
            )?
            .get(0);
        if differing != 0 {
            return Err(CopyError::Differs {
                what: format!("funnel counts {name}"),
                detail: format!("{differing} rows differ from a recount of the rows copied"),
            });
        }
        let rows: i64 = target.query_one(&format!("SELECT count(*) FROM ({stored}) AS s"), &[])?.get(0);
        checks.push((format!("{name} against a recount"), rows.unsigned_abs()));
    }

    let expected: i64 =
        source.query_row("SELECT count(*) FROM (SELECT DISTINCT workspace_id, message_id FROM events)", [], |row| {
            row.get(0)
        })?;
    let (distinct, total): (i64, i64) = target
        .query_one("SELECT count(DISTINCT (workspace_id, message_id)), count(*) FROM events", &[])
        .map(|row| (row.get(0), row.get(1)))?;
    if distinct != total || distinct != expected {
        return Err(CopyError::Differs {
            what: "message ids".into(),
            detail: format!(
                "{total} events with {distinct} message ids in the copy, {expected} message ids in the source"
            ),
        });
    }
    checks.push(("message ids stored once".into(), distinct.unsigned_abs()));
    Ok(checks)
}

/// The funnel's count tables (each key's changes summed, where they count something) and a count of
/// the rows they count; for the cohort walks, which move each row stands for.
const FUNNEL_RECOUNTS: &[(&str, &str, &str)] = &[
    (
        "tier_counts",
        "SELECT model_id, score, tier, sum(leads)::BIGINT FROM tier_counts GROUP BY 1, 2, 3 HAVING sum(leads) <> 0",
        "SELECT model_id, score, tier, count(*) FROM lead_scores GROUP BY model_id, score, tier",
    ),
    (
        "stage_counts",
        "SELECT workspace_id, stage, sum(leads)::BIGINT FROM stage_counts GROUP BY 1, 2 HAVING sum(leads) <> 0",
        "SELECT workspace_id, stage, count(*) FROM leads WHERE merged_into IS NULL GROUP BY workspace_id, stage",
    ),
    (
        "first_scores_by_week",
        "SELECT model_id, score, week, sum(scores)::BIGINT FROM first_scores_by_week GROUP BY 1, 2, 3 HAVING sum(scores) <> 0",
        "SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000, count(*)
         FROM score_history WHERE previous_id IS NULL GROUP BY 1, 2, 3",
    ),
    (
        "tier_changes_by_week",
        "SELECT model_id, score, week, tier, sum(change)::BIGINT FROM tier_changes_by_week GROUP BY 1, 2, 3, 4
         HAVING sum(change) <> 0",
        "SELECT model_id, score, week, tier, sum(change) FROM (
             SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000 AS week, tier, 1 AS change
             FROM score_history WHERE tier IS NOT NULL AND tier IS DISTINCT FROM previous_tier
             UNION ALL
             SELECT model_id, score, 345600000 + ((at - 345600000) / 604800000) * 604800000, previous_tier, -1
             FROM score_history WHERE previous_tier IS NOT NULL AND tier IS DISTINCT FROM previous_tier
         ) AS changes GROUP BY model_id, score, week, tier HAVING sum(change) <> 0",
    ),
    (
        "mql_cohorts",
        "SELECT stage_history_id, lead_id, at FROM mql_cohorts",
        "SELECT id, lead_id, at FROM stage_history WHERE stage = 'mql' AND workspace_id IS NOT NULL",
    ),
    (
        "outcome_moves",
        "SELECT stage_history_id, lead_id, at, stage FROM outcome_moves",
        "SELECT id, lead_id, at, stage FROM stage_history
         WHERE stage IN ('customer', 'lost', 'disqualified') AND workspace_id IS NOT NULL",
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::events::NewEvent;
    use crate::funnel::WEEK;
    use crate::keys::Scope;
    use crate::models::Origin;
    use crate::postgres::testing::TestDatabase;
    use crate::postgres::{PgOptions, PgStore};
    use crate::scores::{History, ScoreRow};
    use crate::stages::StageChange;
    use crate::storage::{
        IngestedLead, IngestionLookup, IngestionWrite, LeadSave, NewIdentities, Notification, ScoredLeadWrite,
    };
    use crate::webhooks::{Attempt, NewWebhook};
    use crate::{Reads, Storage};

    const MINUTE: i64 = 60_000;
    const AT: i64 = 10 * WEEK + 3 * MINUTE;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// A lead of `user` with two events, a score, and the stage moves given; answers its id.
    fn add_lead(
        storage: &Arc<dyn Storage>,
        runtime: &tokio::runtime::Runtime,
        workspace_id: i64,
        model_id: i64,
        user: &'static str,
        (value, tier): (f64, &'static str),
        stages: &'static [&'static str],
    ) -> i64 {
        runtime
            .block_on(storage.ingest(move |t| {
                let anonymous = format!("visitor-{user}");
                let lookup = IngestionLookup {
                    workspace_id,
                    message_ids: vec![],
                    user_ids: vec![user],
                    anonymous_ids: vec![anonymous.as_str()],
                    identifiers: Vec::new(),
                };
                let id = t.ingestion_snapshot(&lookup)?.next_lead_id;
                let mut lead = crate::leads::new_row(id, workspace_id, Some(user), AT);
                let properties = serde_json::Map::new();
                let (first, second) = (format!("{user}-1"), format!("{user}-2"));
                let event = |message_id, at| NewEvent {
                    message_id,
                    event_type: "visit",
                    at,
                    received_at: AT,
                    properties: &properties,
                };
                let mut write = IngestionWrite {
                    identities: NewIdentities {
                        workspace_id,
                        now: AT,
                        leads: vec![(id, Some(user.into()))],
                        links: vec![(anonymous.clone(), id)],
                    },
                    leads: vec![IngestedLead {
                        events: vec![event(&first, AT - 2), event(&second, AT - 1)],
                        save: LeadSave::Row(&lead),
                    }],
                };
                lead.last_event_id = t.write_ingested(&mut write)?[0];
                let lead = t.lead_by_id(workspace_id, id)?.expect("the lead just written");
                let rows = [ScoreRow {
                    score: "fit".into(),
                    value,
                    tier: Some(tier.into()),
                    model_id,
                    evaluated_at: AT,
                    overridden: None,
                }];
                let write = ScoredLeadWrite {
                    lead: &lead,
                    rows: &rows,
                    cause: "event",
                    history: History::EveryChange,
                    terms: &[],
                    stage: None,
                    notifications: &[],
                    lifted_overrides: &[],
                    now: AT,
                };
                t.save_scored_lead(&write, &mut Default::default())?;
                let mut previous = "lead";
                for (index, stage) in stages.iter().enumerate() {
                    let change = StageChange {
                        stage: stage.to_string(),
                        previous: Some(previous.into()),
                        at: AT + index as i64 * MINUTE,
                        actor: "ana@example.com".into(),
                        reason: None,
                    };
                    t.set_stage(id, &change)?;
                    previous = stage;
                }
                Ok(id)
            }))
            .unwrap()
    }

    /// Everything a workspace's reads answer, for comparing two stores.
    fn everything(storage: &Arc<dyn Storage>, runtime: &tokio::runtime::Runtime, workspace_id: i64) -> String {
        let reads = runtime
            .block_on(storage.read(move |r: &dyn Reads| {
                let leads = r.leads_after(workspace_id, 0, 100)?;
                let rows: Vec<_> = leads.iter().map(|(lead, _)| lead).collect();
                let events = r.events_of_leads(&rows)?;
                let mut per_lead = Vec::new();
                for lead in &rows {
                    per_lead.push(format!(
                        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                        r.score_history(lead.id, 100)?,
                        r.stage_history(lead.id)?,
                        r.lead_links(workspace_id, lead.id)?,
                        r.notifications_of_lead(workspace_id, lead.id)?,
                        r.erasure_of_lead(workspace_id, lead.id)?,
                    ));
                }
                let (from, to, now) = (AT - WEEK, AT + WEEK, AT + 10 * MINUTE);
                Ok(format!(
                    "{leads:?}\n{events:?}\n{per_lead:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                    r.tier_counts(workspace_id, "fit")?,
                    r.stage_counts(workspace_id)?,
                    r.mql_entries_by_week(workspace_id, from, to)?,
                    r.mql_journeys(workspace_id, from, to, now)?,
                    r.outcomes_by_tier(workspace_id, "fit", from, to)?,
                    r.erasures(workspace_id)?,
                    r.webhooks(workspace_id)?,
                    r.model_activations(workspace_id)?,
                ))
            }))
            .unwrap();
        let keys = runtime.block_on(storage.list_keys(workspace_id)).unwrap();
        let users = runtime.block_on(storage.list_users(workspace_id)).unwrap();
        format!("{reads}\n{keys:?}\n{users:?}")
    }

    /// A SQLite store with two workspaces, each with a model, keys, an account, a webhook with a
    /// delivery, scored leads moved through the funnel, a merge and an erasure; answers the
    /// workspaces' ids and a key's secret.
    fn sqlite_store(dir: &Path) -> (Vec<i64>, String) {
        let storage: Arc<dyn Storage> = Arc::new(Store::open_ingesting(dir, 100).unwrap());
        let runtime = runtime();
        let mut workspaces = Vec::new();
        let mut secret = String::new();
        for name in ["acme", "globex"] {
            let (workspace_id, model_id) = runtime
                .block_on(storage.write(move |t| {
                    let workspace_id = t.find_or_create_workspace(name, AT)?.id;
                    let model =
                        t.add_model_version(workspace_id, "[scores.fit]\nrules = []\n", &BTreeMap::new(), None, AT)?;
                    t.activate_model(workspace_id, model.id, Origin::Upload, AT)?;
                    Ok((workspace_id, model.id))
                }))
                .unwrap();
            workspaces.push(workspace_id);
            let key =
                runtime.block_on(storage.create_key(workspace_id, Scope::Admin, "ops".into(), Vec::new(), AT)).unwrap();
            secret = key.secret;
            let email = format!("ana@{name}.example.com");
            runtime
                .block_on(storage.create_user(workspace_id, email, crate::users::Role::Admin, "$argon2id$h".into(), AT))
                .unwrap();
            let hook = NewWebhook {
                url: "https://crm.example.com/hook".into(),
                events: vec!["tier_changed".into()],
                score: None,
                threshold: None,
            };
            let hook = runtime.block_on(storage.subscribe_webhook(workspace_id, hook, AT)).unwrap().id;

            let ana = add_lead(&storage, &runtime, workspace_id, model_id, "ana", (90.0, "hot"), &["mql", "customer"]);
            let bob = add_lead(&storage, &runtime, workspace_id, model_id, "bob", (40.0, "warm"), &["mql"]);
            add_lead(&storage, &runtime, workspace_id, model_id, "carol", (10.0, "cold"), &["lost"]);
            let dan = add_lead(&storage, &runtime, workspace_id, model_id, "dan", (95.5, "hot"), &[]);
            // The newest lead, erased: its id is never given again, in the copy either.
            let eve = add_lead(&storage, &runtime, workspace_id, model_id, "eve", (50.0, "warm"), &["mql"]);
            runtime
                .block_on(storage.ingest(move |t| {
                    // Bob is merged into a newer lead: the copy links him once both are there.
                    let from = t.lead_by_id(workspace_id, bob)?.expect("bob");
                    let mut into = t.lead_by_id(workspace_id, dan)?.expect("dan");
                    t.merge_leads(&from, &mut into)?;
                    t.erase_lead(workspace_id, eve, "command line", AT + MINUTE)?;
                    let data = format!(r#"{{"lead":{ana}}}"#);
                    t.queue_notifications(ana, &[Notification { webhook_id: hook, event: "tier_changed", data }], AT)
                }))
                .unwrap();
            let claimed = runtime
                .block_on(storage.claim_notifications(crate::webhooks::ClaimRequest {
                    per_webhook: 10,
                    sending: Vec::new(),
                    limit: 10,
                    now: AT,
                    lease_ms: MINUTE,
                }))
                .unwrap();
            let attempt = Attempt { at: AT, status: Some(200), error: None, duration_ms: 3 };
            runtime
                .block_on(storage.record_delivery_attempt(claimed.notifications[0].id, attempt, true, None))
                .unwrap();
        }
        (workspaces, secret)
    }

    #[test]
    fn a_copy_reads_the_same_as_its_source_and_goes_on_from_its_ids() {
        let Some(database) = TestDatabase::create() else { return };
        let dir = tempfile::tempdir().unwrap();
        let (workspaces, secret) = sqlite_store(dir.path());

        let mut told = Vec::new();
        let report = copy_store(dir.path(), &database.url, &mut |table, rows, done| {
            if done {
                told.push((table.to_string(), rows))
            }
        })
        .unwrap();
        assert_eq!(report.tables, told, "a line per table");
        let rows = |name: &str| report.tables.iter().find(|(table, _)| table == name).map(|(_, rows)| *rows);
        assert_eq!(
            (rows("workspaces"), rows("leads"), rows("erasures"), rows("deliveries")),
            (Some(2), Some(8), Some(2), Some(2))
        );
        assert!(report.checks.iter().any(|(what, compared)| what.starts_with("scores") && *compared > 0), "{report:?}");

        let runtime = runtime();
        let source: Arc<dyn Storage> = Arc::new(Store::open(dir.path()).unwrap());
        let copy: Arc<dyn Storage> =
            Arc::new(PgStore::connect(&database.url, PgOptions { connections: 2, ..PgOptions::default() }).unwrap());
        for &workspace_id in &workspaces {
            let expected = everything(&source, &runtime, workspace_id);
            assert!(expected.contains("merged_leads: [") && expected.contains("command line"), "{expected}");
            assert_eq!(everything(&copy, &runtime, workspace_id), expected);
        }
        assert!(runtime.block_on(copy.authenticate(secret)).unwrap().is_some(), "a key signs in");

        // New rows take ids past the copied ones, erased leads' included.
        let highest_lead: i64 = dir_query(dir.path(), "SELECT max(last_lead_id) FROM erasures");
        let acme = workspaces[0];
        let next = runtime
            .block_on(copy.ingest(move |t| {
                let lookup = IngestionLookup {
                    workspace_id: acme,
                    message_ids: vec![],
                    user_ids: vec!["erin"],
                    anonymous_ids: vec![],
                    identifiers: Vec::new(),
                };
                t.ingestion_snapshot(&lookup).map(|snapshot| snapshot.next_lead_id)
            }))
            .unwrap();
        assert!(next > highest_lead, "{next} after {highest_lead}");
        let key = runtime.block_on(copy.create_key(workspaces[0], Scope::Read, String::new(), Vec::new(), AT)).unwrap();
        let highest_key: i64 = dir_query(dir.path(), "SELECT max(id) FROM api_keys");
        assert_eq!(key.id, highest_key + 1);
    }

    fn dir_query(dir: &Path, sql: &str) -> i64 {
        let connection = rusqlite::Connection::open(dir.join("leadscore.db")).unwrap();
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn the_check_names_the_first_difference() {
        let Some(database) = TestDatabase::create() else { return };
        let dir = tempfile::tempdir().unwrap();
        sqlite_store(dir.path());
        copy_store(dir.path(), &database.url, &mut |_, _, _| {}).unwrap();
        let source = rusqlite::Connection::open(dir.path().join("leadscore.db")).unwrap();
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let differs = |client: &mut postgres::Client, change: &str| {
            let mut transaction = client.transaction().unwrap();
            transaction.batch_execute(change).unwrap();
            match check(&source, &mut transaction) {
                Err(CopyError::Differs { what, detail }) => format!("{what}: {detail}"),
                other => panic!("{change}: {other:?}"),
            }
        };
        assert!(check(&source, &mut client.transaction().unwrap()).is_ok(), "the copy is equal");
        let found = differs(
            &mut client,
            "UPDATE lead_scores SET value = value + 1 WHERE lead_id = (SELECT max(lead_id) FROM lead_scores)",
        );
        assert!(found.starts_with("stored scores: the source has lead"), "{found}");
        let found = differs(&mut client, "DELETE FROM deliveries WHERE id = 1");
        assert_eq!(found, "rows of deliveries: 2 in the source, 1 in the copy");
        let found = differs(&mut client, "INSERT INTO stage_counts (workspace_id, stage, leads) VALUES (1, 'lead', 1)");
        assert!(found.starts_with("funnel counts stage_counts: 2 rows differ"), "{found}");
    }

    #[test]
    fn a_target_with_rows_is_refused_and_left_as_it_was() {
        let Some(database) = TestDatabase::create() else { return };
        let dir = tempfile::tempdir().unwrap();
        sqlite_store(dir.path());
        drop(database.migrated_client());
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        client.execute("INSERT INTO workspaces (name, created_at) VALUES ('mine', 1)", &[]).unwrap();
        let refused = copy_store(dir.path(), &database.url, &mut |_, _, _| {});
        match refused {
            Err(CopyError::TargetNotEmpty(which)) => assert!(which.contains("workspaces (1 rows)"), "{which}"),
            other => panic!("{other:?}"),
        }
        let count: i64 = client.query_one("SELECT count(*) FROM workspaces", &[]).unwrap().get(0);
        assert_eq!(count, 1);
    }

    #[test]
    fn a_source_that_is_not_a_store_or_that_a_service_holds_is_refused() {
        let Some(database) = TestDatabase::create() else { return };
        let empty = tempfile::tempdir().unwrap();
        let refused = copy_store(empty.path(), &database.url, &mut |_, _, _| {});
        assert!(matches!(refused, Err(CopyError::NotADataDirectory(_))), "{refused:?}");
        assert!(!empty.path().join("leadscore.db").exists(), "nothing made where a path was mistyped");

        let dir = tempfile::tempdir().unwrap();
        let _service = Store::open_ingesting(dir.path(), 100).unwrap();
        let refused = copy_store(dir.path(), &database.url, &mut |_, _, _| {});
        match refused {
            Err(error @ CopyError::SourceInUse(_)) => assert!(error.to_string().contains("stop the service first")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_copy_leaves_the_target_empty() {
        let Some(database) = TestDatabase::create() else { return };
        let dir = tempfile::tempdir().unwrap();
        sqlite_store(dir.path());
        // A row PostgreSQL's schema refuses (a role no account can have): the copy fails midway.
        let connection = rusqlite::Connection::open(dir.path().join("leadscore.db")).unwrap();
        connection.execute("UPDATE users SET role = 'owner'", []).unwrap();
        drop(connection);
        let failed = copy_store(dir.path(), &database.url, &mut |_, _, _| {});
        assert!(matches!(failed, Err(CopyError::Store(_))), "{failed:?}");
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let tables: i64 = client
            .query_one("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()", &[])
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "not even the schema is left");
    }
}
