//! PostgreSQL queries of the scores family (see [`crate::scores`] for SQLite's): each lead's
//! current scores (`lead_scores`, with the override in force on a score) and their history
//! (`score_history`, each score's entries linked back from its current row).
//!
//! # How it differs from SQLite
//! - A lead's scores are read in the order of their names' bytes, as SQLite's table clustered by
//!   `(lead_id, score)` gives them (`COLLATE "C"`, whatever the database's collation).
//! - A score the stored state does not know is inserted with `ON CONFLICT DO UPDATE`: a caller
//!   that read the scores in another transaction (a rescoring batch) may find that another
//!   instance gave the lead the score meanwhile, and then its own value replaces it, as an
//!   update would have.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::StoreError;
use crate::postgres::tx::Tx;
use crate::scores::*;

/// The columns [`stored_row`] reads, of `lead_scores s` and `score_overrides o`.
macro_rules! stored_score_columns {
    () => {
        "s.score, s.value, s.tier, s.model_id, s.evaluated_at, s.history_id, s.override_id,
         o.value, o.tier, s.computed_value, s.computed_tier, s.lead_id"
    };
}
/// The tables [`stored_score_columns`] reads.
macro_rules! stored_scores_from {
    () => {
        "FROM lead_scores s LEFT JOIN score_overrides o ON o.id = s.override_id"
    };
}
pub(crate) use {stored_score_columns, stored_scores_from};

/// A current score with the override in force on it: the override's own row is read only for
/// the few scores that name one.
pub(crate) const STORED_SCORES: &str = concat!("SELECT ", stored_score_columns!(), " ", stored_scores_from!());

/// A row of [`STORED_SCORES`].
fn stored_row(row: &postgres::Row) -> Result<(ScoreRow, Option<i64>), StoreError> {
    stored_row_at(row, 0)
}

/// The columns of [`STORED_SCORES`] from the row's column `at` on (`postgres::ingestion` reads
/// them among others).
pub(crate) fn stored_row_at(row: &postgres::Row, at: usize) -> Result<(ScoreRow, Option<i64>), StoreError> {
    let override_id: Option<i64> = row.try_get(at + 6)?;
    let overridden = match override_id {
        Some(id) => Some(Overridden {
            id,
            value: row.try_get(at + 7)?,
            tier: row.try_get(at + 8)?,
            computed_value: match row.try_get::<_, Option<f64>>(at + 9)? {
                Some(value) => value,
                None => row.try_get(at + 1)?,
            },
            computed_tier: row.try_get(at + 10)?,
        }),
        None => None,
    };
    let score = ScoreRow {
        score: row.try_get(at)?,
        value: row.try_get(at + 1)?,
        tier: row.try_get(at + 2)?,
        model_id: row.try_get(at + 3)?,
        evaluated_at: row.try_get(at + 4)?,
        overridden,
    };
    Ok((score, row.try_get(at + 5)?))
}

/// The current scores of each of `lead_ids` (ascending), in their order, in one query.
pub(crate) fn stored_of(connection: &mut Tx<'_>, lead_ids: &[i64]) -> Result<Vec<StoredScores>, StoreError> {
    if lead_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: Vec<Vec<(ScoreRow, Option<i64>)>> = lead_ids.iter().map(|_| Vec::new()).collect();
    let sql = format!("{STORED_SCORES} WHERE s.lead_id = ANY($1) ORDER BY s.lead_id, s.score COLLATE \"C\"");
    for row in connection.query(&sql, &[&lead_ids])? {
        let lead_id: i64 = row.try_get(11)?;
        if let Some(at) = position_of(lead_ids, lead_id) {
            found[at].push(stored_row(&row)?);
        }
    }
    Ok(found.into_iter().map(StoredScores::from_rows).collect())
}

/// Where `lead_id` is among `lead_ids`, which are ascending as the callers promise; asked in
/// another order, each lead is still found.
pub(crate) fn position_of(lead_ids: &[i64], lead_id: i64) -> Option<usize> {
    match lead_ids.binary_search(&lead_id) {
        Ok(at) => Some(at),
        Err(_) => lead_ids.iter().position(|id| *id == lead_id),
    }
}

/// A lead's current scores as stored.
pub(crate) fn stored(connection: &mut Tx<'_>, lead_id: i64) -> Result<StoredScores, StoreError> {
    let sql = format!("{STORED_SCORES} WHERE s.lead_id = $1 ORDER BY s.score COLLATE \"C\"");
    let rows = connection.query(&sql, &[&lead_id])?;
    Ok(StoredScores::from_rows(rows.iter().map(stored_row).collect::<Result<_, _>>()?))
}

/// The newest `limit` entries of a lead's score history, newest first: each score's entries are
/// linked back from its current row (`history_id`, then `previous_id`), at most `limit` of each.
pub(crate) fn history(connection: &mut Tx<'_>, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows = connection.query(
        "WITH RECURSIVE chain(id, n) AS (
             SELECT history_id, 1::bigint FROM lead_scores WHERE lead_id = $1 AND history_id IS NOT NULL
             UNION
             SELECT h.previous_id, c.n + 1 FROM score_history h JOIN chain c ON h.id = c.id
             WHERE h.previous_id IS NOT NULL AND c.n < $2
         )
         SELECT h.score, h.value, h.tier, h.previous_tier, h.at, h.cause, h.override_id, h.override_action,
                o.set_by, o.reason, o.lifted_by, o.lifted_note, h.terms, h.model_id
         FROM chain c JOIN score_history h ON h.id = c.id LEFT JOIN score_overrides o ON o.id = h.override_id
         ORDER BY h.id DESC LIMIT $2",
        &[&lead_id, &i64::from(limit)],
    )?;
    rows.iter()
        .map(|row| {
            let override_id: Option<i64> = row.try_get(6)?;
            let lifted = row.try_get::<_, Option<String>>(7)?.as_deref() == Some("lifted");
            let (by, note) = if lifted { (10, 11) } else { (8, 9) };
            let override_change = match override_id {
                Some(override_id) => Some(OverrideChange {
                    override_id,
                    lifted,
                    by: row.try_get::<_, Option<String>>(by)?.unwrap_or_default(),
                    note: row.try_get(note)?,
                }),
                None => None,
            };
            Ok(HistoryEntry {
                score: row.try_get(0)?,
                value: row.try_get(1)?,
                tier: row.try_get(2)?,
                previous_tier: row.try_get(3)?,
                at: row.try_get(4)?,
                cause: row.try_get(5)?,
                override_change,
                terms: row.try_get(12)?,
                model_id: row.try_get(13)?,
            })
        })
        .collect()
}

/// One lead's scores to save over what is stored (see [`save_over_all`]).
pub(crate) struct LeadScores<'a> {
    pub(crate) lead_id: i64,
    /// What is stored (from [`stored`] or an earlier save), brought up to date.
    pub(crate) stored: &'a mut StoredScores,
    pub(crate) rows: &'a [ScoreRow],
    pub(crate) cause: &'a str,
    pub(crate) history: History,
    /// A history entry carries its score's terms when given.
    pub(crate) terms: &'a [HistoryTerms],
}

/// What saving one score does: decided from what is stored, before anything is written.
struct Planned<'a> {
    lead: usize,
    row: &'a ScoreRow,
    changed: bool,
    /// The history entry to insert, with the override set or lifted it names.
    recorded: Option<Option<(i64, &'static str)>>,
    previous_tier: Option<String>,
    previous_value: Option<f64>,
    /// The score's newest history entry: the one before the entry inserted, then that entry.
    history_id: Option<i64>,
    write: Option<RowWrite>,
}

/// Same as [`save_over_all`] for one lead, as SQLite's `scores::save_over` takes it (the tests
/// compare the two).
#[cfg(test)]
pub(crate) fn save_over(
    connection: &mut Tx<'_>,
    lead_id: i64,
    stored: &mut StoredScores,
    rows: &[ScoreRow],
    cause: &str,
    history: History,
    terms: &[HistoryTerms],
) -> Result<Vec<Change>, StoreError> {
    let mut leads = [LeadScores { lead_id, stored, rows, cause, history, terms }];
    Ok(save_over_all(connection, &mut leads)?.pop().unwrap_or_default())
}

/// Saves the scores of every lead of `leads` as SQLite's `scores::save` saves one lead's (a
/// history entry when the score is new, its tier changed, an override was set or lifted, or the
/// history asks for every change; the row written unless nothing in it changed), and answers
/// each lead's changes. A fixed number of statements however many leads and scores: the history
/// entries in one, the rows in one per kind of write (an ingestion of a hundred leads would
/// otherwise make two hundred round trips, its leads locked all along).
pub(crate) fn save_over_all(
    connection: &mut Tx<'_>,
    leads: &mut [LeadScores<'_>],
) -> Result<Vec<Vec<Change>>, StoreError> {
    static STATEMENT: LazyLock<String> =
        LazyLock::new(|| format!("WITH {} SELECT id, lead_id, score FROM history", planned_parts(1)));
    let writes = PlannedWrites::of(leads);
    let mut history_ids = HashMap::new();
    if !writes.is_empty() {
        for entry in connection.query(&STATEMENT, &writes.params())? {
            history_ids.insert((entry.try_get(1)?, entry.try_get(2)?), entry.try_get(0)?);
        }
    }
    Ok(writes.finish(leads, &history_ids))
}

/// The parts of a statement's `WITH` that write what [`PlannedWrites`] planned, from its
/// [`PlannedWrites::params`] numbered from `$first`: the history entries it records (the part
/// `history` has the `id`, `lead_id` and `score` of each) and every row, whatever its kind of
/// write. One round trip for all the scores of an ingestion or of a rescoring's batch, and
/// another family's parts may come before them in the same statement
/// (`postgres::ingested::write_all`).
///
/// Each score of a lead is planned once: lead and score name an entry and a row, so each row is
/// written by one part of the statement, and each entry found again by them. Every
/// data-modifying part of a statement runs, whether read or not.
pub(crate) fn planned_parts(first: usize) -> String {
    let arrays = [
        "bigint", "text", "float8", "text", "bigint", "bigint", "bigint", "bigint", "float8", "text", "text", "bool",
        "text", "text", "bigint", "text", "text",
    ];
    let unnested: Vec<String> =
        arrays.iter().enumerate().map(|(at, kind)| format!("${}::{kind}[]", first + at)).collect();
    format!(
        "planned AS (
             SELECT * FROM unnest({})
                 AS p (lead_id, score, value, tier, model_id, at, previous_history_id, override_id, computed_value,
                       computed_tier, write, recorded, previous_tier, cause, history_override_id, override_action,
                       terms)
         ),
         history AS (
             INSERT INTO score_history
                 (lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_id,
                  override_id, override_action, terms)
             SELECT lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_history_id,
                    history_override_id, override_action, terms
             FROM planned WHERE recorded
             RETURNING id, lead_id, score
         ),
         n AS (
             SELECT p.*, coalesce(h.id, p.previous_history_id) AS history_id
             FROM planned p LEFT JOIN history h ON h.lead_id = p.lead_id AND h.score = p.score
             WHERE p.write IS NOT NULL
         ),
         value_writes AS (
             UPDATE lead_scores s SET value = n.value, evaluated_at = n.at, history_id = n.history_id
             FROM n WHERE n.write = 'value' AND s.lead_id = n.lead_id AND s.score = n.score
             RETURNING 1
         ),
         plain_writes AS (
             UPDATE lead_scores s SET value = n.value, tier = n.tier, model_id = n.model_id, evaluated_at = n.at,
                 history_id = n.history_id
             FROM n WHERE n.write = 'plain' AND s.lead_id = n.lead_id AND s.score = n.score
             RETURNING 1
         ),
         overridden_writes AS (
             UPDATE lead_scores s SET value = n.value, tier = n.tier, model_id = n.model_id, evaluated_at = n.at,
                 history_id = n.history_id, override_id = n.override_id, computed_value = n.computed_value,
                 computed_tier = n.computed_tier
             FROM n WHERE n.write = 'overridden' AND s.lead_id = n.lead_id AND s.score = n.score
             RETURNING 1
         ),
         new_writes AS (
             INSERT INTO lead_scores
                 (lead_id, score, value, tier, model_id, evaluated_at, history_id, override_id, computed_value,
                  computed_tier)
             SELECT lead_id, score, value, tier, model_id, at, history_id, override_id, computed_value, computed_tier
             FROM n WHERE n.write = 'new'
             ON CONFLICT (lead_id, score) DO UPDATE SET value = excluded.value, tier = excluded.tier,
                 model_id = excluded.model_id, evaluated_at = excluded.evaluated_at,
                 history_id = excluded.history_id, override_id = excluded.override_id,
                 computed_value = excluded.computed_value, computed_tier = excluded.computed_tier
             RETURNING 1
         )",
        unnested.join(", ")
    )
}

/// What saving the scores of several leads writes, decided from what is stored before anything
/// is written (see [`save_over_all`]), as the columns [`planned_parts`] reads.
pub(crate) struct PlannedWrites<'a> {
    planned: Vec<Planned<'a>>,
    lead_ids: Vec<i64>,
    scores: Vec<&'a str>,
    values: Vec<f64>,
    tiers: Vec<Option<&'a str>>,
    model_ids: Vec<i64>,
    ats: Vec<i64>,
    previous_history_ids: Vec<Option<i64>>,
    override_ids: Vec<Option<i64>>,
    computed_values: Vec<Option<f64>>,
    computed_tiers: Vec<Option<&'a str>>,
    writes: Vec<Option<&'static str>>,
    recorded: Vec<bool>,
    previous_tiers: Vec<Option<String>>,
    causes: Vec<&'a str>,
    history_override_ids: Vec<Option<i64>>,
    override_actions: Vec<Option<&'static str>>,
    terms: Vec<Option<String>>,
}

impl<'a> PlannedWrites<'a> {
    pub(crate) fn of(leads: &[LeadScores<'a>]) -> PlannedWrites<'a> {
        let mut planned: Vec<Planned<'a>> = Vec::new();
        for (index, lead) in leads.iter().enumerate() {
            let rows: &'a [ScoreRow] = lead.rows;
            for row in rows {
                let before = lead.stored.row(&row.score);
                let SavePlan { changed, override_change, recorded, write } = plan_save(before, row, lead.history);
                planned.push(Planned {
                    lead: index,
                    row,
                    changed,
                    recorded: recorded.then_some(override_change),
                    previous_tier: before.and_then(|b| b.tier.clone()),
                    previous_value: before.map(|b| b.value),
                    history_id: lead.stored.history_id(&row.score),
                    write,
                });
            }
        }
        let cause = |p: &Planned<'a>| -> &'a str { leads[p.lead].cause };
        PlannedWrites {
            lead_ids: planned.iter().map(|p| leads[p.lead].lead_id).collect(),
            scores: planned.iter().map(|p| p.row.score.as_str()).collect(),
            values: planned.iter().map(|p| p.row.value).collect(),
            tiers: planned.iter().map(|p| p.row.tier.as_deref()).collect(),
            model_ids: planned.iter().map(|p| p.row.model_id).collect(),
            ats: planned.iter().map(|p| p.row.evaluated_at).collect(),
            previous_history_ids: planned.iter().map(|p| p.history_id).collect(),
            override_ids: planned.iter().map(|p| p.row.overridden.as_ref().map(|o| o.id)).collect(),
            computed_values: planned.iter().map(|p| p.row.overridden.as_ref().map(|o| o.computed_value)).collect(),
            computed_tiers: planned
                .iter()
                .map(|p| p.row.overridden.as_ref().and_then(|o| o.computed_tier.as_deref()))
                .collect(),
            writes: planned
                .iter()
                .map(|p| {
                    p.write.map(|write| match write {
                        RowWrite::Value => "value",
                        RowWrite::Plain => "plain",
                        RowWrite::Overridden => "overridden",
                        RowWrite::New => "new",
                    })
                })
                .collect(),
            recorded: planned.iter().map(|p| p.recorded.is_some()).collect(),
            previous_tiers: planned.iter().map(|p| p.previous_tier.clone()).collect(),
            causes: planned.iter().map(cause).collect(),
            history_override_ids: planned.iter().map(|p| p.recorded.flatten().map(|(id, _)| id)).collect(),
            override_actions: planned.iter().map(|p| p.recorded.flatten().map(|(_, action)| action)).collect(),
            terms: planned
                .iter()
                .map(|p| leads[p.lead].terms.iter().find(|t| t.score == p.row.score).map(|t| t.terms.clone()))
                .collect(),
            planned,
        }
    }

    /// Whether nothing is written: no entry recorded and no row changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.planned.iter().all(|p| p.recorded.is_none() && p.write.is_none())
    }

    /// The parameters of [`planned_parts`], in order.
    pub(crate) fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 17] {
        [
            &self.lead_ids,
            &self.scores,
            &self.values,
            &self.tiers,
            &self.model_ids,
            &self.ats,
            &self.previous_history_ids,
            &self.override_ids,
            &self.computed_values,
            &self.computed_tiers,
            &self.writes,
            &self.recorded,
            &self.previous_tiers,
            &self.causes,
            &self.history_override_ids,
            &self.override_actions,
            &self.terms,
        ]
    }

    /// Once written, with `history_ids` the id of each entry inserted by lead and score: each
    /// lead's stored scores brought up to date, and its changes.
    pub(crate) fn finish(
        self,
        leads: &mut [LeadScores<'_>],
        history_ids: &HashMap<(i64, String), i64>,
    ) -> Vec<Vec<Change>> {
        let mut changes: Vec<Vec<Change>> = leads.iter().map(|_| Vec::new()).collect();
        for (at, mut plan) in self.planned.into_iter().enumerate() {
            if plan.recorded.is_some()
                && let Some(id) = history_ids.get(&(self.lead_ids[at], plan.row.score.clone()))
            {
                plan.history_id = Some(*id);
            }
            if plan.changed {
                changes[plan.lead].push(Change {
                    score: plan.row.score.clone(),
                    value: plan.row.value,
                    previous_value: plan.previous_value,
                    tier: plan.row.tier.clone(),
                    previous_tier: plan.previous_tier,
                });
            }
            if plan.write.is_some() {
                leads[plan.lead].stored.put(plan.row.clone(), plan.history_id);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::leads::tests::{create, workspace};
    use crate::postgres::testing::TestDatabase;

    fn row(value: f64, tier: &str, at: i64) -> ScoreRow {
        ScoreRow {
            score: "fit".to_string(),
            value,
            tier: Some(tier.to_string()),
            model_id: 1,
            evaluated_at: at,
            overridden: None,
        }
    }

    /// SQLite's `scores::save`: over what is stored.
    fn save(t: &mut Tx<'_>, lead_id: i64, rows: &[ScoreRow], cause: &str, history: History) -> Vec<Change> {
        let mut stored = stored(t, lead_id).unwrap();
        save_over(t, lead_id, &mut stored, rows, cause, history, &[]).unwrap()
    }

    /// Leads saved together are saved as each alone: the same rows, history and changes, over
    /// every kind of write (new scores, a value moved, a tier moved, nothing changed).
    #[test]
    fn leads_saved_together_are_saved_as_each_alone() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let named = |name: &str, value: f64, tier: Option<&str>, at: i64| ScoreRow {
            score: name.to_string(),
            value,
            tier: tier.map(str::to_string),
            model_id: 1,
            evaluated_at: at,
            overridden: None,
        };
        // Per lead, two rounds of rows; the second round moves a value, a tier, or nothing.
        let rounds: Vec<[Vec<ScoreRow>; 2]> = vec![
            [vec![named("fit", 10.0, Some("cold"), 1)], vec![named("fit", 12.0, Some("cold"), 2)]],
            [
                vec![named("fit", 10.0, Some("cold"), 1), named("intent", 1.0, None, 1)],
                vec![named("fit", 70.0, Some("hot"), 2), named("intent", 1.0, None, 2)],
            ],
            [vec![named("intent", 3.0, Some("warm"), 1)], vec![named("intent", 3.0, Some("warm"), 2)]],
        ];
        let terms = [HistoryTerms { score: "fit".to_string(), terms: "[\"visits\"]".to_string() }];
        let alone: Vec<i64> = rounds.iter().map(|_| create(&mut t, w, None, 0).id).collect();
        let together: Vec<i64> = rounds.iter().map(|_| create(&mut t, w, None, 0).id).collect();
        let mut stored_alone: Vec<StoredScores> = alone.iter().map(|_| StoredScores::default()).collect();
        let mut stored_together: Vec<StoredScores> = together.iter().map(|_| StoredScores::default()).collect();
        for (round, history) in [History::EveryChange, History::TierChanges].into_iter().enumerate() {
            let mut changes_alone = Vec::new();
            for (lead, rows) in rounds.iter().enumerate() {
                let stored = &mut stored_alone[lead];
                changes_alone
                    .push(save_over(&mut t, alone[lead], stored, &rows[round], "event", history, &terms).unwrap());
            }
            let mut leads: Vec<LeadScores<'_>> = stored_together
                .iter_mut()
                .zip(&rounds)
                .zip(&together)
                .map(|((stored, rows), &lead_id)| LeadScores {
                    lead_id,
                    stored,
                    rows: &rows[round],
                    cause: "event",
                    history,
                    terms: &terms,
                })
                .collect();
            let changes_together = save_over_all(&mut t, &mut leads).unwrap();
            assert_eq!(changes_together, changes_alone, "the changes of round {round}");
        }
        for (a, b) in alone.iter().zip(&together) {
            assert_eq!(
                stored(&mut t, *a).unwrap().rows().collect::<Vec<_>>(),
                stored(&mut t, *b).unwrap().rows().collect::<Vec<_>>()
            );
            assert_eq!(history(&mut t, *a, 10).unwrap(), history(&mut t, *b, 10).unwrap());
        }
        let entries: i64 = t.query_one("SELECT count(*) FROM score_history", &[]).unwrap().get(0);
        assert!(entries >= 8, "history written on both sides: {entries}");
        // Each history entry links to the score's entry before it, as a lone save links them.
        let unlinked: i64 = t
            .query_one(
                "SELECT count(*) FROM lead_scores s JOIN score_history h ON h.id = s.history_id
                 WHERE h.lead_id <> s.lead_id OR h.score <> s.score",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(unlinked, 0);
    }

    #[test]
    fn an_unchanged_score_is_neither_a_change_nor_history() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let lead = create(&mut t, w, Some("u"), 0);
        let first = save(&mut t, lead.id, &[row(10.0, "cold", 1)], "event", History::EveryChange);
        let again = save(&mut t, lead.id, &[row(10.0, "cold", 2)], "event", History::EveryChange);
        let drift = save(&mut t, lead.id, &[row(10.2, "cold", 3)], "decay", History::EveryChange);
        let moved = save(&mut t, lead.id, &[row(60.0, "hot", 4)], "event", History::EveryChange);
        let history = history(&mut t, lead.id, 10).unwrap();
        assert_eq!(first.len(), 1);
        assert!(again.is_empty());
        assert_eq!(drift.len(), 1, "a change, too small for the history");
        assert_eq!(moved[0].previous_tier.as_deref(), Some("cold"));
        assert_eq!(moved[0].previous_value, Some(10.2));
        // The first value and the tier change; not the repeat nor the drift.
        assert_eq!(history.len(), 2);
        assert_eq!((history[0].tier.as_deref(), history[0].previous_tier.as_deref()), (Some("hot"), Some("cold")));
        let stored = stored(&mut t, lead.id).unwrap();
        assert_eq!(stored.row("fit"), Some(&row(60.0, "hot", 4)));
        assert_eq!(super::history(&mut t, lead.id, 1).unwrap().len(), 1, "at most the limit");
    }

    /// A lead's scores are read in the order of their names' bytes, as SQLite's clustered table
    /// gives them, and a batch reads each lead's as one lead does.
    #[test]
    fn scores_read_in_byte_order_of_their_names() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let lead = create(&mut t, w, Some("u"), 0);
        let named = |name: &str| ScoreRow { score: name.into(), ..row(1.0, "cold", 0) };
        save(&mut t, lead.id, &[named("fit"), named("Intent"), named("engagement")], "event", History::TierChanges);
        let names: Vec<String> = stored(&mut t, lead.id).unwrap().rows().map(|r| r.score.clone()).collect();
        assert_eq!(names, ["Intent", "engagement", "fit"]);
        assert_eq!(stored_of(&mut t, &[lead.id]).unwrap(), [stored(&mut t, lead.id).unwrap()]);
        assert!(stored_of(&mut t, &[]).unwrap().is_empty());
    }

    /// Setting and lifting an override are history even when the effective score does not
    /// change, and the entries say who and why; the stored row reads back with the model's own
    /// score beside the effective one.
    #[test]
    fn an_override_set_and_lifted_is_history_naming_who_and_why() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let lead = create(&mut t, w, Some("u"), 0);
        save(&mut t, lead.id, &[row(10.0, "cold", 1)], "event", History::EveryChange);
        // The override's row, as the overrides family writes it.
        let id: i64 = t
            .query_one(
                "INSERT INTO score_overrides (workspace_id, lead_id, score, tier, reason, set_by, set_at)
                 VALUES ($1, $2, 'fit', 'cold', 'checked by hand', 'user ana@example.com', 2) RETURNING id",
                &[&w, &lead.id],
            )
            .unwrap()
            .get(0);
        let overridden = Overridden {
            id,
            value: None,
            tier: Some("cold".into()),
            computed_value: 10.0,
            computed_tier: Some("cold".into()),
        };
        let set = ScoreRow { overridden: Some(overridden), ..row(10.0, "cold", 2) };
        assert!(save(&mut t, lead.id, std::slice::from_ref(&set), "override", History::EveryChange).is_empty());
        let stored_while_set = stored(&mut t, lead.id).unwrap();
        t.execute(
            "UPDATE score_overrides SET lifted_at = 3, lifted_by = 'key 3', lifted_note = 'wrong lead' WHERE id = $1",
            &[&id],
        )
        .unwrap();
        save(&mut t, lead.id, &[row(10.0, "cold", 3)], "override lifted", History::EveryChange);
        let history = history(&mut t, lead.id, 10).unwrap();
        let kept = stored_while_set.overridden("fit").unwrap();
        assert_eq!((kept.computed_value, kept.tier.as_deref()), (10.0, Some("cold")));
        assert_eq!(stored(&mut t, lead.id).unwrap().overridden("fit"), None, "lifted");
        assert_eq!(history.len(), 3, "{history:?}");
        let lifted = history[0].override_change.as_ref().unwrap();
        assert_eq!((lifted.lifted, lifted.by.as_str(), lifted.note.as_deref()), (true, "key 3", Some("wrong lead")));
        let set = history[1].override_change.as_ref().unwrap();
        assert_eq!(
            (set.lifted, set.by.as_str(), set.note.as_deref()),
            (false, "user ana@example.com", Some("checked by hand"))
        );
        assert_eq!(history[2].override_change, None);
    }

    /// A history entry carries its score's terms when given, and a score another transaction gave
    /// the lead since it was read is replaced rather than refused.
    #[test]
    fn terms_are_kept_and_a_score_stored_meanwhile_is_replaced() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let lead = create(&mut t, w, Some("u"), 0);
        let mut read_before = stored(&mut t, lead.id).unwrap();
        save(&mut t, lead.id, &[row(5.0, "cold", 1)], "event", History::EveryChange);
        let terms = [HistoryTerms { score: "fit".into(), terms: r#"{"visits":2}"#.into() }];
        save_over(&mut t, lead.id, &mut read_before, &[row(50.0, "hot", 2)], "rescoring", History::EveryChange, &terms)
            .unwrap();
        assert_eq!(stored(&mut t, lead.id).unwrap().row("fit"), Some(&row(50.0, "hot", 2)));
        let newest = &history(&mut t, lead.id, 10).unwrap()[0];
        assert_eq!((newest.cause.as_str(), newest.terms.as_deref()), ("rescoring", Some(r#"{"visits":2}"#)));
    }
}
