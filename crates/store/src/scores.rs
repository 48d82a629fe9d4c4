//! Current scores of each lead and their history. A score a person overrode
//! ([`crate::overrides`]) is stored with its effective value and tier, which lists rank and the
//! funnel counts, and the model's own beside them ([`Overridden`]); setting or lifting an
//! override is always a history entry, which names it.

use rusqlite::{Connection, params};

use crate::StoreError;

/// One score of a lead as evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    pub score: String,
    pub value: f64,
    pub tier: Option<String>,
    pub model_id: i64,
    pub evaluated_at: i64,
    /// The override in force on the score, if any: then `value` and `tier` are the overridden
    /// ones, the effective score.
    pub overridden: Option<Overridden>,
}

/// The override in force on a score: what a person set (a value, a tier or both, see
/// [`crate::overrides`]) and the model's own value and tier, which the effective ones replace.
#[derive(Debug, Clone, PartialEq)]
pub struct Overridden {
    /// The override's id in `score_overrides`.
    pub id: i64,
    pub value: Option<f64>,
    pub tier: Option<String>,
    pub computed_value: f64,
    pub computed_tier: Option<String>,
}

/// A change of value or tier, written to the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub score: String,
    pub value: f64,
    pub previous_value: Option<f64>,
    pub tier: Option<String>,
    pub previous_tier: Option<String>,
}

/// The smallest change of value the history records (decay moves every value a little between
/// two events; those drifts are not history).
pub const HISTORY_MIN_CHANGE: f64 = 0.5;

/// Which changes go into the score history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Tier changes and value changes of at least [`HISTORY_MIN_CHANGE`] (events, model changes).
    EveryChange,
    /// Only tier changes (time passing: decay moves values constantly).
    TierChanges,
}

impl History {
    /// Whether saving `row` over `before` writes a history entry: what a caller that prepares
    /// the entry's terms asks before working them out.
    pub fn records(self, before: Option<&ScoreRow>, row: &ScoreRow) -> bool {
        let tier_changed = before.is_none_or(|b| b.tier != row.tier);
        match self {
            History::EveryChange => {
                tier_changed || before.is_some_and(|b| (b.value - row.value).abs() >= HISTORY_MIN_CHANGE)
            }
            History::TierChanges => tier_changed,
        }
    }
}

/// Why one score moved, for its history entry: the score's name and its terms as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTerms {
    pub score: String,
    pub terms: String,
}

impl StoredScores {
    /// Whether the lead has no stored score (it was never scored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored row of `score`, if the lead has one.
    pub fn row(&self, score: &str) -> Option<&ScoreRow> {
        self.0.iter().find(|(row, _)| row.score == score).map(|(row, _)| row)
    }
}

/// A lead's current scores as stored, each with the id of its newest history entry: what
/// [`save`] compares new scores with and links history to. A caller that remembers a lead
/// between transactions keeps this too and saves with [`save_over`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredScores(Vec<(ScoreRow, Option<i64>)>);

/// What another store's queries build and keep up to date (see `crate::postgres::scores`).
impl StoredScores {
    /// Scores as read, each with the id of its newest history entry.
    pub(crate) fn from_rows(rows: Vec<(ScoreRow, Option<i64>)>) -> StoredScores {
        StoredScores(rows)
    }

    /// The id of the newest history entry of `score`, if the lead has the score and it has one.
    pub(crate) fn history_id(&self, score: &str) -> Option<i64> {
        self.0.iter().find(|(row, _)| row.score == score).and_then(|(_, id)| *id)
    }

    /// Records `row` as stored, with its newest history entry, in place of the score's row.
    pub(crate) fn put(&mut self, row: ScoreRow, history_id: Option<i64>) {
        match self.0.iter().position(|(stored, _)| stored.score == row.score) {
            Some(at) => self.0[at] = (row, history_id),
            None => self.0.push((row, history_id)),
        }
    }
}

/// Replaces a lead's current scores; returns every change of value or tier and records those
/// `history` asks for.
pub fn save(
    connection: &Connection,
    lead_id: i64,
    rows: &[ScoreRow],
    cause: &str,
    history: History,
) -> Result<Vec<Change>, StoreError> {
    save_over(connection, lead_id, &mut stored(connection, lead_id)?, rows, cause, history, &[])
}

/// Same as [`save`] given what is stored (from [`stored`] or a previous save in this or an
/// earlier transaction), which it brings up to date; a history entry carries its score's `terms`
/// when given.
pub fn save_over(
    connection: &Connection,
    lead_id: i64,
    stored: &mut StoredScores,
    rows: &[ScoreRow],
    cause: &str,
    history: History,
    terms: &[HistoryTerms],
) -> Result<Vec<Change>, StoreError> {
    let mut changes = Vec::new();
    for row in rows {
        let position = stored.0.iter().position(|(p, _)| p.score == row.score);
        let found = position.map(|i| &stored.0[i]);
        let before = found.map(|(b, _)| b);
        let SavePlan { changed, override_change, recorded, write } = plan_save(before, row, history);
        let mut history_id = found.and_then(|(_, id)| *id);
        if recorded {
            connection
                .prepare_cached(
                    "INSERT INTO score_history
                         (lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_id,
                          override_id, override_action, terms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    lead_id,
                    row.score,
                    row.value,
                    row.tier,
                    before.and_then(|b| b.tier.clone()),
                    row.model_id,
                    row.evaluated_at,
                    cause,
                    history_id,
                    override_change.map(|(id, _)| id),
                    override_change.map(|(_, action)| action),
                    terms.iter().find(|t| t.score == row.score).map(|t| t.terms.as_str())
                ])?;
            history_id = Some(connection.last_insert_rowid());
        }
        // A row known to exist is updated, a new one inserted: cheaper than an upsert, which tries
        // the insert first. Both statements take the same parameters.
        let write = write.map(|write| match write {
            // Most events change a value only: leaving the tier and version out of the statement
            // leaves out the trigger that counts leads per tier (0015_funnel_counts.sql).
            RowWrite::Value => {
                "UPDATE lead_scores SET value = ?3, evaluated_at = ?6, history_id = ?7 WHERE lead_id = ?1 AND score = ?2"
            }
            RowWrite::Plain => {
                "UPDATE lead_scores SET value = ?3, tier = ?4, model_id = ?5, evaluated_at = ?6, history_id = ?7
                 WHERE lead_id = ?1 AND score = ?2"
            }
            // An overridden score (or one whose override was just lifted) writes the override's
            // columns too: they are rare, so one statement does for every change of them.
            RowWrite::Overridden => {
                "UPDATE lead_scores SET value = ?3, tier = ?4, model_id = ?5, evaluated_at = ?6, history_id = ?7,
                     override_id = ?8, computed_value = ?9, computed_tier = ?10
                 WHERE lead_id = ?1 AND score = ?2"
            }
            RowWrite::New => {
                "INSERT INTO lead_scores
                     (lead_id, score, value, tier, model_id, evaluated_at, history_id, override_id, computed_value,
                      computed_tier)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            }
        });
        if let Some(sql) = write {
            let mut statement = connection.prepare_cached(sql)?;
            let row_params =
                params![lead_id, row.score, row.value, row.tier, row.model_id, row.evaluated_at, history_id];
            if statement.parameter_count() == row_params.len() {
                statement.execute(row_params)?;
            } else {
                let overridden = row.overridden.as_ref();
                statement.execute(params![
                    lead_id,
                    row.score,
                    row.value,
                    row.tier,
                    row.model_id,
                    row.evaluated_at,
                    history_id,
                    overridden.map(|o| o.id),
                    overridden.map(|o| o.computed_value),
                    overridden.and_then(|o| o.computed_tier.clone())
                ])?;
            }
        }
        if changed {
            changes.push(change(before, row));
        }
        if write.is_some() {
            match position {
                Some(i) => stored.0[i] = (row.clone(), history_id),
                None => stored.0.push((row.clone(), history_id)),
            }
        }
    }
    Ok(changes)
}

/// How a save writes one score's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RowWrite {
    /// A value moved, nothing else: the tier, model and override columns are left out.
    Value,
    /// A plain score's value, tier or model.
    Plain,
    /// A score with an override in force, or one whose override was just lifted: the override's
    /// columns too.
    Overridden,
    /// A score the lead did not have.
    New,
}

/// What saving `row` over what is stored (`before`) does, as both stores decide it.
pub(crate) struct SavePlan {
    /// Whether the value or tier changed (a change the caller is told of).
    pub(crate) changed: bool,
    /// The override set or lifted by this save, which its history entry names.
    pub(crate) override_change: Option<(i64, &'static str)>,
    /// Whether a history entry is written.
    pub(crate) recorded: bool,
    /// How the row is written; `None` when nothing in it changed.
    pub(crate) write: Option<RowWrite>,
}

pub(crate) fn plan_save(before: Option<&ScoreRow>, row: &ScoreRow, history: History) -> SavePlan {
    let changed = is_change(before, row);
    // Setting, replacing or lifting an override is a person's act (or its expiry's): always
    // history, whatever it changed, naming the override set or lifted.
    let override_before = before.and_then(|b| b.overridden.as_ref()).map(|o| o.id);
    let override_now = row.overridden.as_ref().map(|o| o.id);
    let override_change = match (override_before, override_now) {
        (before, now) if before == now => None,
        (_, Some(id)) => Some((id, "set")),
        (Some(id), None) => Some((id, "lifted")),
        (None, None) => None,
    };
    let recorded = override_change.is_some() || history.records(before, row);
    // An unchanged score is not written again: decay moves most values between two events, but
    // fit scores and scores at a cap stay put, and each write costs index and WAL pages.
    let unchanged = !changed && before.is_some_and(|b| b.model_id == row.model_id && b.overridden == row.overridden);
    let plain = row.overridden.is_none() && before.is_none_or(|b| b.overridden.is_none());
    let write = match before {
        Some(_) if unchanged => None,
        Some(b) if plain && b.tier == row.tier && b.model_id == row.model_id => Some(RowWrite::Value),
        Some(_) if plain => Some(RowWrite::Plain),
        Some(_) => Some(RowWrite::Overridden),
        None => Some(RowWrite::New),
    };
    SavePlan { changed, override_change, recorded, write }
}

fn is_change(before: Option<&ScoreRow>, row: &ScoreRow) -> bool {
    before.is_none_or(|b| (b.value - row.value).abs() > 1e-9 || b.tier != row.tier)
}

fn change(before: Option<&ScoreRow>, row: &ScoreRow) -> Change {
    Change {
        score: row.score.clone(),
        value: row.value,
        previous_value: before.map(|b| b.value),
        tier: row.tier.clone(),
        previous_tier: before.and_then(|b| b.tier.clone()),
    }
}

impl StoredScores {
    /// Each stored score.
    pub fn rows(&self) -> impl Iterator<Item = &ScoreRow> {
        self.0.iter().map(|(row, _)| row)
    }

    /// The override in force on `score`, as stored.
    pub fn overridden(&self, score: &str) -> Option<&Overridden> {
        self.rows().find(|row| row.score == score).and_then(|row| row.overridden.as_ref())
    }

    /// The changes that saving `rows` over these scores would report, without saving them (what
    /// a preview shows).
    pub fn changes(&self, rows: &[ScoreRow]) -> Vec<Change> {
        rows.iter()
            .filter_map(|row| {
                let before = self.0.iter().find(|(p, _)| p.score == row.score).map(|(b, _)| b);
                is_change(before, row).then(|| change(before, row))
            })
            .collect()
    }
}

/// A lead's current scores as stored.
pub fn stored(connection: &Connection, lead_id: i64) -> Result<StoredScores, StoreError> {
    let mut statement = connection.prepare_cached(&format!("{STORED_SCORES} WHERE s.lead_id = ?1"))?;
    let rows = statement.query_map([lead_id], |row| Ok((stored_row(row)?, row.get(5)?)))?;
    Ok(StoredScores(rows.collect::<Result<_, _>>()?))
}

/// The current scores of each of `lead_ids` (ascending), in their order, in one query: the
/// scores are clustered by lead, so the leads' range is read once, and rows of leads in the range
/// that were not asked for (another workspace's, merged ones) are skipped.
pub fn stored_of(connection: &Connection, lead_ids: &[i64]) -> Result<Vec<StoredScores>, StoreError> {
    let (Some(first), Some(last)) = (lead_ids.first(), lead_ids.last()) else { return Ok(Vec::new()) };
    let mut found: Vec<StoredScores> = lead_ids.iter().map(|_| StoredScores::default()).collect();
    let mut statement = connection.prepare_cached(&format!("{STORED_SCORES} WHERE s.lead_id BETWEEN ?1 AND ?2"))?;
    let mut rows = statement.query(params![first, last])?;
    while let Some(row) = rows.next()? {
        let lead_id: i64 = row.get(11)?;
        let Ok(at) = lead_ids.binary_search(&lead_id) else { continue };
        found[at].0.push((stored_row(row)?, row.get(5)?));
    }
    Ok(found)
}

/// A current score with the override in force on it: the override's own row is read only for
/// the few scores that name one.
const STORED_SCORES: &str = "SELECT s.score, s.value, s.tier, s.model_id, s.evaluated_at, s.history_id, s.override_id,
        o.value, o.tier, s.computed_value, s.computed_tier, s.lead_id
    FROM lead_scores s LEFT JOIN score_overrides o ON o.id = s.override_id";

fn stored_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ScoreRow> {
    let override_id: Option<i64> = row.get(6)?;
    let overridden = match override_id {
        Some(id) => Some(Overridden {
            id,
            value: row.get(7)?,
            tier: row.get(8)?,
            computed_value: row.get::<_, Option<f64>>(9)?.unwrap_or(row.get(1)?),
            computed_tier: row.get(10)?,
        }),
        None => None,
    };
    Ok(ScoreRow {
        score: row.get(0)?,
        value: row.get(1)?,
        tier: row.get(2)?,
        model_id: row.get(3)?,
        evaluated_at: row.get(4)?,
        overridden,
    })
}

/// One entry of a lead's score history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub score: String,
    pub value: f64,
    pub tier: Option<String>,
    pub previous_tier: Option<String>,
    pub at: i64,
    pub cause: String,
    /// The model version the value and tier were computed with.
    pub model_id: i64,
    /// The override this entry set or lifted, with who did it and why.
    pub override_change: Option<OverrideChange>,
    /// Why it moved (see [`HistoryTerms`]), when it was recorded with its terms.
    pub terms: Option<String>,
}

/// What a history entry did to an override, and who did it: for a setting, its author and
/// reason; for a lifting, who lifted it (a person, [`crate::overrides::EXPIRY`], a model
/// version) and the note given.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideChange {
    pub override_id: i64,
    pub lifted: bool,
    pub by: String,
    pub note: Option<String>,
}

/// The newest `limit` entries of a lead's score history, newest first: each score's entries are
/// linked back from its current row (`history_id`, then `previous_id`), at most `limit` of each.
pub fn history(connection: &Connection, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut statement = connection.prepare_cached(
        "WITH RECURSIVE chain(id, n) AS (
             SELECT history_id, 1 FROM lead_scores WHERE lead_id = ?1 AND history_id IS NOT NULL
             UNION
             SELECT h.previous_id, c.n + 1 FROM score_history h JOIN chain c ON h.id = c.id
             WHERE h.previous_id IS NOT NULL AND c.n < ?2
         )
         SELECT h.score, h.value, h.tier, h.previous_tier, h.at, h.cause, h.override_id, h.override_action,
                o.set_by, o.reason, o.lifted_by, o.lifted_note, h.terms, h.model_id
         FROM chain c JOIN score_history h ON h.id = c.id LEFT JOIN score_overrides o ON o.id = h.override_id
         ORDER BY h.id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![lead_id, limit], |row| {
        let override_id: Option<i64> = row.get(6)?;
        let lifted = row.get::<_, Option<String>>(7)?.as_deref() == Some("lifted");
        let override_change = match override_id {
            Some(override_id) if lifted => Some(OverrideChange {
                override_id,
                lifted,
                by: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
                note: row.get(11)?,
            }),
            Some(override_id) => Some(OverrideChange {
                override_id,
                lifted,
                by: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
                note: row.get(9)?,
            }),
            None => None,
        };
        Ok(HistoryEntry {
            score: row.get(0)?,
            value: row.get(1)?,
            tier: row.get(2)?,
            previous_tier: row.get(3)?,
            at: row.get(4)?,
            cause: row.get(5)?,
            override_change,
            terms: row.get(12)?,
            model_id: row.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, leads, workspaces};

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

    #[test]
    fn an_unchanged_score_is_neither_a_change_nor_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, again, moved, history) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let lead = leads::create(c, workspace.id, Some("u"), 0)?;
                let first = save(c, lead.id, &[row(10.0, "cold", 1)], "event", History::EveryChange)?;
                let again = save(c, lead.id, &[row(10.0, "cold", 2)], "event", History::EveryChange)?;
                let moved = save(c, lead.id, &[row(60.0, "hot", 3)], "event", History::EveryChange)?;
                Ok((first, again, moved, history(c, lead.id, 10)?))
            })
            .unwrap();
        assert_eq!(first.len(), 1);
        assert!(again.is_empty());
        assert_eq!(moved[0].previous_tier.as_deref(), Some("cold"));
        assert_eq!(moved[0].previous_value, Some(10.0));
        // The first value and the tier change; not the repeat.
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].tier.as_deref(), Some("hot"));
    }

    /// Setting and lifting an override are history even when the effective score does not
    /// change, and the entries say who and why; the stored row reads back with the model's own
    /// score beside the effective one.
    #[test]
    fn an_override_set_and_lifted_is_history_naming_who_and_why() {
        use crate::overrides::{self, NewOverride};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (stored_while_set, history) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", 0)?;
                let lead = leads::create(c, workspace.id, Some("u"), 0)?;
                save(c, lead.id, &[row(10.0, "cold", 1)], "event", History::EveryChange)?;
                let new = NewOverride {
                    workspace_id: workspace.id,
                    lead_id: lead.id,
                    score: "fit",
                    value: None,
                    tier: Some("cold"),
                    reason: "checked by hand",
                    set_by: "user ana@example.com",
                    expires_at: None,
                };
                let id = overrides::insert(c, &new, 2)?;
                let overridden = Overridden {
                    id,
                    value: None,
                    tier: Some("cold".into()),
                    computed_value: 10.0,
                    computed_tier: Some("cold".into()),
                };
                let set = ScoreRow { overridden: Some(overridden), ..row(10.0, "cold", 2) };
                assert!(save(c, lead.id, std::slice::from_ref(&set), "override", History::EveryChange)?.is_empty());
                let stored_while_set = stored(c, lead.id)?;
                overrides::lift(c, id, "key 3", Some("wrong lead"), 3)?;
                save(c, lead.id, &[row(10.0, "cold", 3)], "override lifted", History::EveryChange)?;
                Ok((stored_while_set, history(c, lead.id, 10)?))
            })
            .unwrap();
        let kept = stored_while_set.overridden("fit").unwrap();
        assert_eq!((kept.computed_value, kept.tier.as_deref()), (10.0, Some("cold")));
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
}
