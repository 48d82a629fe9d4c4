//! Tiers (the model format's "Tiers"): labelled ranges of a score, checked for order, overlaps
//! and gaps, and qualifier-only tiers.

use std::collections::HashSet;

use toml::Spanned;

use super::compiler::{Compiler, span};
use crate::format::TierDef;
use crate::model::Tier;

impl Compiler<'_> {
    /// A score's `tiers`, lowest first.
    pub(super) fn tiers(&mut self, score: &str, defs: &[Spanned<TierDef>]) -> Vec<Tier> {
        let mut tiers: Vec<Tier> = Vec::with_capacity(defs.len());
        let mut labels = HashSet::new();
        // The points tier written before the current one, with its span.
        let mut previous: Option<(f64, Option<f64>, String)> = None;
        for def in defs {
            let tier = def.get_ref();
            let label = tier.label.get_ref().clone();
            if label.is_empty() {
                self.error("a tier label cannot be empty", span(&tier.label));
            }
            if !labels.insert(label.clone()) {
                self.error(format!("score `{score}` has two tiers labelled `{label}`"), span(&tier.label));
            }
            let min = tier.min.as_ref().map(|m| self.finite(m, "a tier's `min`"));
            let max = tier.max.as_ref().map(|m| self.finite(m, "a tier's `max`"));
            if tier.qualifier_only {
                if min.is_some() || max.is_some() {
                    self.error(
                        format!("tier `{label}` is `qualifier_only` and so cannot have `min` or `max`"),
                        span(def),
                    );
                }
            } else {
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    self.error(format!("tier `{label}` has `min` {lo} above `max` {hi}"), span(def));
                }
                match (&previous, min) {
                    (Some(_), None) => self.error(
                        format!(
                            "tier `{label}` has no `min` but is not the lowest tier: list tiers from lowest to highest, each but the first with a `min`"
                        ),
                        span(def),
                    ),
                    (Some((prev_min, prev_max, prev_label)), Some(lo)) => {
                        if lo <= *prev_min {
                            self.error(
                                format!(
                                    "tier `{label}` (min {lo}) overlaps tier `{prev_label}` (min {prev_min}): list tiers from lowest to highest"
                                ),
                                span(def),
                            );
                        } else if let Some(prev_hi) = prev_max {
                            if *prev_hi >= lo {
                                self.error(
                                    format!(
                                        "tiers `{prev_label}` (up to {prev_hi}) and `{label}` (from {lo}) overlap"
                                    ),
                                    span(def),
                                );
                            } else if *prev_hi < lo {
                                self.warning(
                                    format!(
                                        "scores above {prev_hi} and below {lo} fall in no tier (between `{prev_label}` and `{label}`); drop `max` from `{prev_label}` to close the gap"
                                    ),
                                    span(def),
                                );
                            }
                        }
                    }
                    (None, _) => {}
                }
                previous = Some((min.unwrap_or(f64::NEG_INFINITY), max, label.clone()));
            }
            tiers.push(Tier { label, min, max, qualifier_only: tier.qualifier_only, span: def.span() });
        }
        // A qualifier raises a lead to its tier only from a lower one (in the written order).
        for (i, tier) in tiers.iter().enumerate() {
            if let Some(above) =
                tier.qualifier_only.then(|| tiers[i + 1..].iter().find(|t| !t.qualifier_only)).flatten()
            {
                self.warning(
                    format!(
                        "qualifier-only tier `{}` is listed below tier `{}`: leads in `{}` never get it; list it after the tiers it ranks above",
                        tier.label, above.label, above.label
                    ),
                    defs.get(i).map(|d| d.span()),
                );
            }
        }
        tiers
    }
}
