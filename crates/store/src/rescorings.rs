//! The rescoring of a workspace's leads after a model activation, kept in the database: one row
//! per workspace (the running or the last rescoring), and its leads split into ranges of lead ids
//! ([`RescoringRange`]) that the instances sharing a database take one at a time ([`claim`]), so
//! that they rescore a workspace together. Each batch records how far its range got in the
//! transaction that saves its scores, so a rescoring cut short by a crash resumes after the last
//! lead it finished, and a second activation cannot slip in while one runs: [`begin`] refuses it
//! inside the writer's transaction.
//!
//! A range's claim is a lease ([`LEASE_MS`]) renewed by each batch, so that a range whose instance
//! stopped is taken over by another. SQLite's store has one writing process, whose runner of a
//! workspace's rescoring is the only one: its [`claim`] takes the first unfinished range whatever
//! its lease (a lease it finds was left by this process or a dead one). PostgreSQL's
//! (`postgres::rescorings`) respects leases, in the database's clock.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A workspace's running or last rescoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescoring {
    pub workspace_id: i64,
    pub model_id: i64,
    /// The version number of `model_id`.
    pub model_version: i64,
    pub cause: String,
    /// Leads done, over all its ranges.
    pub done: i64,
    pub total: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// After a rollback: automatic moves to MQL made since then may be undone.
    pub revert_automatic_since: Option<i64>,
}

/// A range of a rescoring's leads: those with ids after `first_after`, up to `until` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RescoringRange {
    pub workspace_id: i64,
    pub first_after: i64,
    pub until: i64,
    /// The range's leads up to this id are done.
    pub after_lead_id: i64,
    /// Leads done in this range.
    pub done: i64,
    pub finished_at: Option<i64>,
}

/// Whether [`begin`] may replace a rescoring that has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfRunning {
    /// Refuse with [`StoreError::Rescoring`]: the API's activations.
    Refuse,
    /// Start over with the new version: at start, before any rescoring runs in this process.
    Restart,
}

/// Leads a range is planned to hold: small enough that a workspace of a few thousand leads is
/// shared between instances, large enough that claiming a range costs nothing beside it.
pub const RANGE_LEADS: i64 = 2_000;

/// Ranges a rescoring is split into at most: enough to share a workspace of millions of leads
/// between many instances, few enough that its progress is summed at once.
pub const MAX_RANGES: i64 = 64;

/// How long a range's claim lasts without a batch written: after that, another instance may take
/// the range over (its instance stopped, or lost the database).
pub const LEASE_MS: i64 = 20_000;

/// The ranges (`first_after`, `until`) of a rescoring of `total` leads whose ids go from `min_id`
/// to `max_id`: about [`RANGE_LEADS`] leads each, at most [`MAX_RANGES`], split by id value (ids
/// are spread evenly enough; an uneven range only takes longer). The first starts at 0 and the
/// last is open-ended, so that every lead, also one created while the rescoring begins, is in one.
pub fn plan_ranges(total: i64, min_id: i64, max_id: i64) -> Vec<(i64, i64)> {
    let count = ((total + RANGE_LEADS - 1) / RANGE_LEADS).clamp(1, MAX_RANGES);
    let base = min_id.saturating_sub(1).max(0);
    let step = ((max_id - base).max(1) + count - 1) / count;
    let mut ranges = Vec::with_capacity(count as usize);
    let mut first_after = 0;
    for k in 1..count {
        let until = base + k * step;
        if until >= max_id {
            break;
        }
        ranges.push((first_after, until));
        first_after = until;
    }
    ranges.push((first_after, i64::MAX));
    ranges
}

/// Records the start of a rescoring of every lead of the workspace with `model_id`, and its
/// ranges.
pub fn begin(
    connection: &Connection,
    workspace_id: i64,
    model_id: i64,
    cause: &str,
    revert_automatic_since: Option<i64>,
    if_running: IfRunning,
    now: i64,
) -> Result<(), StoreError> {
    let running = get(connection, workspace_id)?.filter(|r| r.finished_at.is_none());
    if if_running == IfRunning::Refuse && running.is_some() {
        return Err(StoreError::Rescoring);
    }
    // A rescoring that starts over a rollback's unfinished one still owes the rollback's reverts.
    let revert_automatic_since = revert_automatic_since.or(running.and_then(|r| r.revert_automatic_since));
    let (total, min_id, max_id): (i64, Option<i64>, Option<i64>) = connection.query_row(
        "SELECT count(*), min(id), max(id) FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL",
        [workspace_id],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    connection.execute(
        "INSERT INTO rescorings (workspace_id, model_id, cause, total, started_at, finished_at, error,
                                 revert_automatic_since)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6)
         ON CONFLICT (workspace_id) DO UPDATE SET
             model_id = excluded.model_id, cause = excluded.cause, total = excluded.total,
             started_at = excluded.started_at, finished_at = NULL, error = NULL,
             revert_automatic_since = excluded.revert_automatic_since",
        params![workspace_id, model_id, cause, total, now, revert_automatic_since],
    )?;
    connection.execute("DELETE FROM rescoring_ranges WHERE workspace_id = ?1", [workspace_id])?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO rescoring_ranges (workspace_id, first_after, until_lead_id, after_lead_id, done)
         VALUES (?1, ?2, ?3, ?2, 0)",
    )?;
    for (first_after, until) in plan_ranges(total, min_id.unwrap_or(0), max_id.unwrap_or(0)) {
        insert.execute(params![workspace_id, first_after, until])?;
    }
    Ok(())
}

/// Takes the workspace's first unfinished range for [`LEASE_MS`] (see the module's doc for why
/// SQLite's ignores the leases it finds); `None` when every range is finished.
pub fn claim(connection: &Connection, workspace_id: i64, now: i64) -> Result<Option<RescoringRange>, StoreError> {
    Ok(connection
        .prepare_cached(&format!(
            "UPDATE rescoring_ranges SET claimed_until = ?2
             WHERE workspace_id = ?1 AND first_after = (
                 SELECT first_after FROM rescoring_ranges
                 WHERE workspace_id = ?1 AND finished_at IS NULL ORDER BY first_after LIMIT 1)
             RETURNING {RANGE_COLUMNS}"
        ))?
        .query_row(params![workspace_id, now + LEASE_MS], range_from_row)
        .optional()?)
}

/// Records that the range's leads up to `after_lead_id` are done, `done` in the range, and renews
/// its claim.
pub fn advance(
    connection: &Connection,
    range: &RescoringRange,
    after_lead_id: i64,
    done: i64,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE rescoring_ranges SET after_lead_id = ?1, done = ?2, claimed_until = ?3
             WHERE workspace_id = ?4 AND first_after = ?5",
        )?
        .execute(params![after_lead_id, done, now + LEASE_MS, range.workspace_id, range.first_after])?;
    Ok(())
}

/// Records that the range is done; the rescoring is done, and recorded so, when it was its last
/// unfinished range. Answers whether it was.
pub fn finish_range(connection: &Connection, range: &RescoringRange, now: i64) -> Result<bool, StoreError> {
    connection.execute(
        "UPDATE rescoring_ranges SET finished_at = ?1 WHERE workspace_id = ?2 AND first_after = ?3",
        params![now, range.workspace_id, range.first_after],
    )?;
    let unfinished: i64 = connection.query_row(
        "SELECT count(*) FROM rescoring_ranges WHERE workspace_id = ?1 AND finished_at IS NULL",
        [range.workspace_id],
        |row| row.get(0),
    )?;
    if unfinished > 0 {
        return Ok(false);
    }
    finish(connection, range.workspace_id, None, now)?;
    Ok(true)
}

/// Records the end of the workspace's rescoring, with the error that stopped it, if any.
pub fn finish(connection: &Connection, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE rescorings SET finished_at = ?1, error = ?2 WHERE workspace_id = ?3",
        params![now, error, workspace_id],
    )?;
    Ok(())
}

/// The columns of [`Rescoring`], its progress summed over its ranges; for both stores.
pub(crate) const COLUMNS: &str = "r.workspace_id, r.model_id, m.version, r.cause,
     (SELECT CAST(coalesce(sum(g.done), 0) AS BIGINT) FROM rescoring_ranges g WHERE g.workspace_id = r.workspace_id),
     r.total, r.started_at, r.finished_at, r.error, r.revert_automatic_since
     FROM rescorings r JOIN models m ON m.id = r.model_id";

/// The columns of [`RescoringRange`]; for both stores.
pub(crate) const RANGE_COLUMNS: &str = "workspace_id, first_after, until_lead_id, after_lead_id, done, finished_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Rescoring> {
    Ok(Rescoring {
        workspace_id: row.get(0)?,
        model_id: row.get(1)?,
        model_version: row.get(2)?,
        cause: row.get(3)?,
        done: row.get(4)?,
        total: row.get(5)?,
        started_at: row.get(6)?,
        finished_at: row.get(7)?,
        error: row.get(8)?,
        revert_automatic_since: row.get(9)?,
    })
}

fn range_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RescoringRange> {
    Ok(RescoringRange {
        workspace_id: row.get(0)?,
        first_after: row.get(1)?,
        until: row.get(2)?,
        after_lead_id: row.get(3)?,
        done: row.get(4)?,
        finished_at: row.get(5)?,
    })
}

/// The workspace's running or last rescoring.
pub fn get(connection: &Connection, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
    Ok(connection
        .prepare_cached(&format!("SELECT {COLUMNS} WHERE r.workspace_id = ?1"))?
        .query_row([workspace_id], from_row)
        .optional()?)
}

/// One range of the workspace's rescoring, as stored now.
pub fn range(
    connection: &Connection,
    workspace_id: i64,
    first_after: i64,
) -> Result<Option<RescoringRange>, StoreError> {
    Ok(connection
        .prepare_cached(&format!(
            "SELECT {RANGE_COLUMNS} FROM rescoring_ranges WHERE workspace_id = ?1 AND first_after = ?2"
        ))?
        .query_row([workspace_id, first_after], range_from_row)
        .optional()?)
}

/// The ranges of the workspace's rescoring, in order.
pub fn ranges(connection: &Connection, workspace_id: i64) -> Result<Vec<RescoringRange>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {RANGE_COLUMNS} FROM rescoring_ranges WHERE workspace_id = ?1 ORDER BY first_after"
    ))?;
    let rows = statement.query_map([workspace_id], range_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every rescoring that has not finished (to resume at start).
pub fn unfinished(connection: &Connection) -> Result<Vec<Rescoring>, StoreError> {
    let mut statement =
        connection.prepare(&format!("SELECT {COLUMNS} WHERE r.finished_at IS NULL ORDER BY r.workspace_id"))?;
    let rows = statement.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, models, workspaces};

    #[test]
    fn a_second_rescoring_is_refused_until_the_first_finishes_and_progress_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let ws = workspaces::find_or_create(c, "w", crate::now_ms())?.id;
                let v1 = models::add(c, ws, "[scores.s]", &Default::default(), None, crate::now_ms())?;
                begin(c, ws, v1.id, "model v1", None, IfRunning::Refuse, crate::now_ms())?;
                assert!(matches!(
                    begin(c, ws, v1.id, "again", None, IfRunning::Refuse, crate::now_ms()),
                    Err(StoreError::Rescoring)
                ));
                let range = claim(c, ws, 1)?.expect("one range, for no lead");
                assert_eq!((range.first_after, range.until), (0, i64::MAX));
                advance(c, &range, 41, 7, 2)?;
                let running = get(c, ws)?.unwrap();
                assert_eq!((running.done, running.model_version), (7, 1));
                assert_eq!(range_of(c, ws, 0).after_lead_id, 41);
                assert_eq!(unfinished(c)?.len(), 1);
                begin(c, ws, v1.id, "restart", Some(5), IfRunning::Restart, crate::now_ms())?;
                let restarted = get(c, ws)?.unwrap();
                assert_eq!((restarted.done, restarted.revert_automatic_since), (0, Some(5)));
                assert_eq!(range_of(c, ws, 0).after_lead_id, 0, "its ranges start over");
                finish(c, ws, None, crate::now_ms())?;
                assert!(unfinished(c)?.is_empty());
                begin(c, ws, v1.id, "model v1", None, IfRunning::Refuse, crate::now_ms())?;
                Ok(())
            })
            .unwrap();
    }

    fn range_of(c: &Connection, ws: i64, first_after: i64) -> RescoringRange {
        range(c, ws, first_after).unwrap().unwrap()
    }

    /// Every lead id, also one beyond the last at the start, is in exactly one range, and the
    /// ranges hold about the leads planned.
    #[test]
    fn ranges_cover_every_lead_id_once_and_share_the_leads() {
        assert_eq!(plan_ranges(0, 0, 0), [(0, i64::MAX)]);
        assert_eq!(plan_ranges(5, 3, 7), [(0, i64::MAX)], "a few leads make one range");
        assert_eq!(plan_ranges(5_000, 1, 5_000), [(0, 1_667), (1_667, 3_334), (3_334, i64::MAX)]);
        let many = plan_ranges(1_000_000, 10, 2_000_000);
        assert_eq!(many.len() as i64, MAX_RANGES);
        for (total, min_id, max_id) in [(2_001, 1, 2_001), (9_999, 500, 700), (1_000_000, 10, 2_000_000), (4, 1, 1)] {
            let ranges = plan_ranges(total, min_id, max_id);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().unwrap().1, i64::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "ranges follow each other: {ranges:?}");
                assert!(pair[0].0 < pair[0].1, "and hold some ids: {ranges:?}");
            }
        }
    }

    /// Ranges are claimed in order, each by one runner; the rescoring ends with its last range.
    #[test]
    fn a_rescoring_finishes_with_its_last_range() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let ws = workspaces::find_or_create(c, "w", 0)?.id;
                let mut lead =
                    c.prepare("INSERT INTO leads (workspace_id, created_at, updated_at) VALUES (?1, 0, 0)")?;
                for _ in 0..RANGE_LEADS + 1 {
                    lead.execute([ws])?;
                }
                let v1 = models::add(c, ws, "[scores.s]", &Default::default(), None, 0)?;
                begin(c, ws, v1.id, "model v1", None, IfRunning::Refuse, 1)?;
                assert_eq!(ranges(c, ws)?.len(), 2);
                let first = claim(c, ws, 2)?.unwrap();
                advance(c, &first, first.until, 1_000, 3)?;
                assert!(!finish_range(c, &first, 4)?, "one range is left");
                assert_eq!(get(c, ws)?.unwrap().finished_at, None);
                let second = claim(c, ws, 5)?.unwrap();
                assert_eq!(second.first_after, first.until);
                advance(c, &second, second.first_after + 10, 1_001, 6)?;
                assert!(finish_range(c, &second, 7)?);
                let finished = get(c, ws)?.unwrap();
                assert_eq!((finished.finished_at, finished.done, finished.total), (Some(7), 2_001, 2_001));
                assert_eq!(claim(c, ws, 8)?, None);
                Ok(())
            })
            .unwrap();
    }
}
