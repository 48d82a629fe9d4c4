//! Lifecycle stages and the moves between them.
//!
//! The funnel runs lead, MQL, SAL, SQL, opportunity, customer; nurture, disqualified and lost sit
//! beside it. Scores move a lead to MQL automatically (a tier labelled `mql`, or any tier listed
//! after it, reached by points or by a qualifier); people move it further through the API.
//! Stages move forward; going back, or leaving disqualified, lost or customer, needs `force`.

use std::fmt;
use std::str::FromStr;

use leadscore_core::Model;
use leadscore_store::scores::{Change, ScoreRow};
use leadscore_store::stages::StageChange;

/// A lifecycle stage; as text, its lower-case name (`lead`, `mql`, ...), read in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Stage {
    Lead,
    Mql,
    Sal,
    Sql,
    Opportunity,
    Customer,
    Nurture,
    Disqualified,
    Lost,
}

pub const ALL: &[Stage] = &[
    Stage::Lead,
    Stage::Mql,
    Stage::Sal,
    Stage::Sql,
    Stage::Opportunity,
    Stage::Customer,
    Stage::Nurture,
    Stage::Disqualified,
    Stage::Lost,
];

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Lead => "lead",
            Stage::Mql => "mql",
            Stage::Sal => "sal",
            Stage::Sql => "sql",
            Stage::Opportunity => "opportunity",
            Stage::Customer => "customer",
            Stage::Nurture => "nurture",
            Stage::Disqualified => "disqualified",
            Stage::Lost => "lost",
        }
    }

    /// Position in the funnel; `None` for the stages beside it.
    fn funnel(self) -> Option<u8> {
        match self {
            Stage::Lead => Some(0),
            Stage::Mql => Some(1),
            Stage::Sal => Some(2),
            Stage::Sql => Some(3),
            Stage::Opportunity => Some(4),
            Stage::Customer => Some(5),
            Stage::Nurture | Stage::Disqualified | Stage::Lost => None,
        }
    }

    /// Stages that need a reason: they end or pause the lead's way to sales.
    pub fn needs_reason(self) -> bool {
        matches!(self, Stage::Nurture | Stage::Disqualified | Stage::Lost)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(text: &str) -> Result<Stage, String> {
        ALL.iter().copied().find(|s| s.as_str() == text.to_ascii_lowercase()).ok_or_else(|| {
            let names: Vec<&str> = ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown stage `{text}`: use one of {}", names.join(", "))
        })
    }
}

impl<'de> serde::Deserialize<'de> for Stage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Stage, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether a person may move a lead from `from` to `to`; the error says why not.
pub fn check_move(from: Stage, to: Stage, force: bool) -> Result<(), String> {
    if from == to {
        return Err(format!("the lead is already in stage {to}"));
    }
    if force {
        return Ok(());
    }
    match (from, to, from.funnel(), to.funnel()) {
        (Stage::Disqualified | Stage::Lost | Stage::Customer, _, _, _) => {
            Err(format!("a lead in stage {from} only moves with \"force\": true (for example to recycle it)"))
        }
        (_, Stage::Nurture | Stage::Disqualified | Stage::Lost, _, _) => Ok(()),
        (Stage::Nurture, _, _, Some(_)) => Ok(()),
        (_, _, Some(a), Some(b)) if b > a => Ok(()),
        _ => Err(format!("{from} to {to} goes back in the funnel: send \"force\": true to do it anyway")),
    }
}

/// The actor of the stage moves leadscore makes by itself (automatic MQL, and their reversal
/// after a rollback); a person's moves carry their own name.
pub const AUTOMATIC_ACTOR: &str = "leadscore";

/// Why the scores make a lead an MQL, if they do: the first score whose tier is `mql` or ranks
/// above it.
pub fn mql_reason(model: &Model, rows: &[ScoreRow], qualified_by: &[Option<String>]) -> Option<String> {
    for (index, row) in rows.iter().enumerate() {
        let Some(tier) = &row.tier else { continue };
        if is_mql_level(model, &row.score, Some(tier)) {
            return Some(match qualified_by.get(index).cloned().flatten() {
                Some(qualifier) => {
                    format!("score `{}` reached tier `{tier}` through qualifier `{qualifier}`", row.score)
                }
                None => format!("score `{}` reached tier `{tier}`", row.score),
            });
        }
    }
    None
}

/// Whether a tier of a score is `mql` or ranks above it.
pub fn is_mql_level(model: &Model, score: &str, tier: Option<&str>) -> bool {
    let Some(tier) = tier else { return false };
    let Some(score) = model.scores().iter().find(|s| s.name() == score) else { return false };
    let tiers = score.tiers();
    let mql = tiers.iter().position(|t| t.label().eq_ignore_ascii_case("mql"));
    let position = tiers.iter().position(|t| t.label() == tier);
    matches!((mql, position), (Some(mql), Some(position)) if position >= mql)
}

/// The automatic move to MQL that new scores call for: from stage lead whenever a score is at
/// an MQL tier; from nurture only when a score has just entered one (new engagement recycles the
/// lead, while a rep's decision is not undone by scores that were already there).
pub fn mql_move(
    model: &Model,
    stage: &str,
    rows: &[ScoreRow],
    qualified_by: &[Option<String>],
    changes: &[Change],
    now: i64,
) -> Option<StageChange> {
    let current: Stage = stage.parse().unwrap_or(Stage::Lead);
    let moves = match current {
        Stage::Lead => true,
        Stage::Nurture => changes.iter().any(|c| {
            is_mql_level(model, &c.score, c.tier.as_deref())
                && !is_mql_level(model, &c.score, c.previous_tier.as_deref())
        }),
        _ => false,
    };
    if !moves {
        return None;
    }
    let reason = mql_reason(model, rows, qualified_by)?;
    Some(StageChange {
        stage: Stage::Mql.to_string(),
        previous: Some(current.to_string()),
        at: now,
        actor: AUTOMATIC_ACTOR.to_string(),
        reason: Some(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves() {
        assert!(check_move(Stage::Mql, Stage::Sal, false).is_ok());
        assert!(check_move(Stage::Lead, Stage::Sql, false).is_ok());
        assert!(check_move(Stage::Sal, Stage::Nurture, false).is_ok());
        assert!(check_move(Stage::Nurture, Stage::Mql, false).is_ok());
        assert!(check_move(Stage::Sql, Stage::Mql, false).unwrap_err().contains("goes back"));
        assert!(check_move(Stage::Sql, Stage::Mql, true).is_ok());
        assert!(check_move(Stage::Lost, Stage::Lead, false).unwrap_err().contains("force"));
        assert!(check_move(Stage::Customer, Stage::Lost, false).is_err());
        assert!(check_move(Stage::Sal, Stage::Sal, true).is_err());
        assert_eq!("SAL".parse::<Stage>(), Ok(Stage::Sal));
        assert!("won".parse::<Stage>().unwrap_err().contains("use one of lead, mql"));
    }
}
