//! The planner's statistics of the store's tables, refreshed as the tables grow ([`refresh`]).
//!
//! Ingestion keeps one plan per statement ([`crate::postgres::Plans::Kept`]), made from
//! PostgreSQL's statistics of the tables when it is first run, and made again when they are
//! refreshed (an `ANALYZE` invalidates the plans that read the table). A plan made while a table
//! was nearly empty reads all of it, which is right then and wrong a million rows later:
//! autovacuum refreshes statistics on its own schedule (a minute apart at best, by default), so a
//! new store receiving a burst of events would keep scanning a table growing by thousands of rows
//! a second. The store refreshes a table's statistics itself, from the folder of counts' thread,
//! once the table holds more than twice the rows the statistics say and at least
//! [`GROWTH_FLOOR`] more: ten refreshes take a table from empty to a million rows.

use crate::StoreError;
use crate::postgres::tx::Tx;

/// Rows a table must have grown by before its statistics are refreshed, so that small tables do
/// not take an `ANALYZE` for every few rows.
pub(crate) const GROWTH_FLOOR: i64 = 1000;

/// Any number that no other application takes advisory locks with on the same database.
const REFRESH_LOCK: i64 = 7_305_683_311_020_552;

/// Refreshes the statistics of each table of the store's schema that has grown past what they
/// say (see the module's doc), one instance at a time: answers the tables refreshed, or `None`
/// when another instance holds the turn. The row counts compared are PostgreSQL's activity
/// statistics (`pg_stat_user_tables`), which lag writes by a second or so.
pub(crate) fn refresh(connection: &mut Tx<'_>) -> Result<Option<Vec<String>>, StoreError> {
    let granted: bool = connection.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&REFRESH_LOCK])?.get(0);
    if !granted {
        return Ok(None);
    }
    let grown: Vec<String> = connection
        .query(
            "SELECT s.relname::text FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
             WHERE s.schemaname = current_schema()
               AND s.n_live_tup > 2 * greatest(c.reltuples, 0)::bigint + $1
             ORDER BY s.relname",
            &[&GROWTH_FLOOR],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    for table in &grown {
        // A name read from the catalogue, quoted as an identifier.
        connection.execute(&format!("ANALYZE \"{}\"", table.replace('"', "\"\"")), &[])?;
    }
    Ok(Some(grown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::Plans;
    use crate::postgres::leads::lock_for_ingestion;
    use crate::postgres::leads::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    /// The blocks of `leads` and of its indexes this transaction has read so far.
    fn blocks_of_leads_read(t: &mut Tx<'_>) -> i64 {
        t.query_one(
            "SELECT sum(pg_stat_get_xact_blocks_fetched(oid))::bigint FROM pg_class
             WHERE oid = 'leads'::regclass OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'leads'::regclass)",
            &[],
        )
        .unwrap()
        .get(0)
    }

    /// An ingestion's plan, kept from when the table was empty, scans the whole table once it has
    /// grown, until the statistics are refreshed: then the leads are found by their index.
    #[test]
    fn a_plan_kept_while_a_table_was_empty_is_made_again_once_it_has_grown() {
        let Some(database) = TestDatabase::create() else { return };
        let mut ingesting = database.migrated_client();
        let mut elsewhere = database.migrated_client();
        let w = {
            let mut t = elsewhere.transaction();
            let w = workspace(&mut t, "w");
            t.commit().unwrap();
            w
        };
        ingesting.plan(Plans::Kept).unwrap();
        let lock = |connection: &mut crate::postgres::Connection| {
            let mut t = connection.transaction();
            let before = blocks_of_leads_read(&mut t);
            lock_for_ingestion(&mut t, w, &["u7", "u900"], &[]).unwrap();
            let read = blocks_of_leads_read(&mut t) - before;
            t.commit().unwrap();
            read
        };
        lock(&mut ingesting);
        elsewhere
            .batch_execute(
                "INSERT INTO leads (id, workspace_id, user_id, created_at, updated_at)
                 SELECT nextval('lead_ids'), 1, 'u' || i, 0, 0 FROM generate_series(1, 20000) i",
            )
            .unwrap();
        // The plan kept from the empty table reads the whole workspace, unless PostgreSQL dropped
        // its plans meanwhile (a backend that falls behind other sessions' catalogue changes, as
        // tests running beside make, forgets every plan): then this says nothing either way.
        let read = lock(&mut ingesting);
        if read < 1000 {
            eprintln!("the kept plan was made again before the refresh (other sessions' catalogue changes)");
        }

        // PostgreSQL's activity statistics reach the catalogue a little after the writes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let refreshed = loop {
            let mut t = elsewhere.transaction();
            let refreshed = refresh(&mut t).unwrap().expect("no other refresh holds the turn");
            t.commit().unwrap();
            if refreshed.iter().any(|table| table == "leads") || std::time::Instant::now() > deadline {
                break refreshed;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        assert!(refreshed.contains(&"leads".to_string()), "{refreshed:?}");
        let counted: f32 = elsewhere
            .transaction()
            .query_one("SELECT reltuples FROM pg_class WHERE oid = 'leads'::regclass", &[])
            .unwrap()
            .get(0);
        assert!(counted > 19_000.0, "the statistics count the leads: {counted}");
        let read = lock(&mut ingesting);
        assert!(read < 50, "planned again, the two leads are found by their index: {read} blocks");

        let mut t = elsewhere.transaction();
        assert_eq!(refresh(&mut t).unwrap(), Some(vec![]), "nothing has grown since");
    }
}
