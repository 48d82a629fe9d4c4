//! Current scores of each lead and their history.

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

/// Replaces a lead's current scores; returns every change of value or tier and records those
/// `history` asks for.
pub fn save(
    connection: &Connection,
    lead_id: i64,
    rows: &[ScoreRow],
    cause: &str,
    history: History,
) -> Result<Vec<Change>, StoreError> {
    let previous = current(connection, lead_id)?;
    let mut changes = Vec::new();
    for row in rows {
        let before = previous.iter().find(|p| p.score == row.score);
        let changed = before.is_none_or(|b| (b.value - row.value).abs() > 1e-9 || b.tier != row.tier);
        let tier_changed = before.is_none_or(|b| b.tier != row.tier);
        let recorded = match history {
            History::EveryChange => {
                tier_changed || before.is_some_and(|b| (b.value - row.value).abs() >= HISTORY_MIN_CHANGE)
            }
            History::TierChanges => tier_changed,
        };
        connection
            .prepare_cached(
                "INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (lead_id, score) DO UPDATE SET value = excluded.value, tier = excluded.tier,
                 model_id = excluded.model_id, evaluated_at = excluded.evaluated_at",
            )?
            .execute(params![lead_id, row.score, row.value, row.tier, row.model_id, row.evaluated_at])?;
        if recorded {
            connection
                .prepare_cached(
                    "INSERT INTO score_history (lead_id, score, value, tier, previous_tier, model_id, at, cause)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    lead_id,
                    row.score,
                    row.value,
                    row.tier,
                    before.and_then(|b| b.tier.clone()),
                    row.model_id,
                    row.evaluated_at,
                    cause
                ])?;
        }
        if changed {
            changes.push(Change {
                score: row.score.clone(),
                value: row.value,
                previous_value: before.map(|b| b.value),
                tier: row.tier.clone(),
                previous_tier: before.and_then(|b| b.tier.clone()),
            });
        }
    }
    Ok(changes)
}

pub fn current(connection: &Connection, lead_id: i64) -> Result<Vec<ScoreRow>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT score, value, tier, model_id, evaluated_at FROM lead_scores WHERE lead_id = ?1 ORDER BY rowid",
    )?;
    let rows = statement.query_map([lead_id], |row| {
        Ok(ScoreRow {
            score: row.get(0)?,
            value: row.get(1)?,
            tier: row.get(2)?,
            model_id: row.get(3)?,
            evaluated_at: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
}

pub fn history(connection: &Connection, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT score, value, tier, previous_tier, at, cause FROM score_history WHERE lead_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![lead_id, limit], |row| {
        Ok(HistoryEntry {
            score: row.get(0)?,
            value: row.get(1)?,
            tier: row.get(2)?,
            previous_tier: row.get(3)?,
            at: row.get(4)?,
            cause: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
