//! Scores (the model format's "Scores"): each score's components (`from`) and the order that
//! evaluates them first, its groups, limits and normalisation, its rules, tiers and qualifiers, or
//! the trained model of a predictive score.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::compiler::{Compiler, Dependency, span};
use super::conditions::Record;
use crate::diagnostic::Diagnostic;
use crate::engine::{MAX_PRECISION, round_to_precision};
use crate::format::{ScoreDef, TierDef};
use crate::model::{Group, PredictiveScore, Rule, Score, Segment};
use crate::predictor::Predictor;
use crate::rules::condition::Condition;

/// The number of fields a predictive score's explanation names unless `factors` says otherwise.
const DEFAULT_FACTORS: usize = 3;
/// Six decimals: what every value was written with before `precision` existed, so that a model
/// without the key scores as it always did, while the float noise of decay (`49.99999966`) is
/// rounded away before tiers are compared.
const DEFAULT_PRECISION: u8 = 6;

impl Compiler<'_> {
    /// Orders scores so that every score comes after the scores it depends on (components,
    /// segments, scores its conditions test); reports cycles at the first reference of one.
    /// `references[i]` lists score `i`'s dependencies with where each is named, and whether it
    /// is a component (`from`).
    pub(super) fn evaluation_order(&mut self, scores: &[Score], references: &[Vec<Dependency>]) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Visiting,
            Done,
        }
        fn visit(
            i: usize,
            references: &[Vec<Dependency>],
            marks: &mut [Mark],
            path: &mut Vec<usize>,
            order: &mut Vec<usize>,
        ) -> Result<(), Vec<usize>> {
            match marks[i] {
                Mark::Done => return Ok(()),
                Mark::Visiting => {
                    let start = path.iter().position(|&p| p == i).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(i);
                    return Err(cycle);
                }
                Mark::New => {}
            }
            marks[i] = Mark::Visiting;
            path.push(i);
            for dependency in &references[i] {
                visit(dependency.score, references, marks, path, order)?;
            }
            path.pop();
            marks[i] = Mark::Done;
            order.push(i);
            Ok(())
        }
        let mut marks = vec![Mark::New; scores.len()];
        let mut order = Vec::with_capacity(scores.len());
        for i in 0..scores.len() {
            if let Err(cycle) = visit(i, references, &mut marks, &mut Vec::new(), &mut order) {
                let names: Vec<&str> = cycle.iter().map(|&c| scores[c].name.as_str()).collect();
                let edges: Vec<&Dependency> =
                    cycle.windows(2).filter_map(|w| references[w[0]].iter().find(|d| d.score == w[1])).collect();
                let only_components = edges.iter().all(|d| d.component);
                let message = if cycle.len() == 2 && only_components {
                    format!("score `{}` is defined from itself", names[0])
                } else if only_components {
                    format!("scores are defined from each other in a cycle: {}", names.join(" -> "))
                } else {
                    format!(
                        "scores depend on each other in a cycle (through `from`, `segments` or conditions on scores): {}",
                        names.join(" -> ")
                    )
                };
                self.error(message, edges.first().map(|d| d.at.clone()));
                return None;
            }
        }
        Some(order)
    }

    /// One `[scores.<name>]` table: components, groups, rules, limits, tiers and qualifiers.
    pub(super) fn score(&mut self, name: String, def: ScoreDef, def_span: Range<usize>) -> Score {
        if !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') || name.is_empty() {
            self.error(
                format!("score name `{name}` can only have letters, digits, `_` and `-` (it names output columns)"),
                Some(def_span.clone()),
            );
        }
        let mut components = Vec::new();
        for (component, weight) in &def.from {
            let w = self.finite(weight, "a component's weight");
            match self.score_index.get(component).copied() {
                Some(i) => {
                    components.push((i, w));
                    self.depend_on(i, weight.span(), true);
                }
                None => self.error(
                    format!("score `{name}` is made from `{component}`, which is not a score of this model"),
                    span(weight),
                ),
            }
        }
        let predictive = def.predictive.as_ref().and_then(|reference| self.predictive(&name, reference, &def));
        if def.predictive.is_none()
            && let Some(factors) = &def.factors
        {
            self.error(
                format!("`factors` is for predictive scores, and score `{name}` has no `predictive`"),
                span(factors),
            );
        }
        let applies_to = def.applies_to.as_ref().and_then(|c| self.condition(c, Record::Lead));
        let segments = match &def.segments {
            Some(segments) => self.segments(&name, segments, &def),
            None => Vec::new(),
        };
        if def.rules.is_empty() && components.is_empty() && def.predictive.is_none() && def.segments.is_none() {
            self.warning(format!("score `{name}` has no rules and no `from`: it is always 0"), Some(def_span.clone()));
        }

        let mut groups = Vec::new();
        let mut group_index = FxHashMap::default();
        for (group_name, group) in &def.groups {
            let min = group.get_ref().min.as_ref().map(|m| self.finite(m, "a group's `min`"));
            let max = group.get_ref().max.as_ref().map(|m| self.finite(m, "a group's `max`"));
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                self.error(format!("group `{group_name}` has `min` {lo} above `max` {hi}"), span(group));
            }
            if min.is_none() && max.is_none() {
                self.warning(
                    format!("group `{group_name}` sets neither `min` nor `max`: it limits nothing"),
                    span(group),
                );
            }
            group_index.insert(group_name.clone(), groups.len());
            groups.push(Group { name: group_name.clone(), min, max });
        }

        let mut rules: Vec<Rule> = Vec::with_capacity(def.rules.len());
        let mut rule_names: FxHashMap<String, usize> = FxHashMap::default();
        for rule_def in def.rules {
            let rule_name = rule_def.get_ref().name.get_ref().clone();
            if rule_names.contains_key(&rule_name) {
                self.error(
                    format!("score `{name}` has two rules named `{rule_name}`: rule names must be unique"),
                    span(&rule_def.get_ref().name),
                );
            }
            if let Some(rule) = self.rule(rule_def, &group_index) {
                rule_names.insert(rule_name, rules.len());
                rules.push(rule);
            }
        }
        let used_groups: HashSet<usize> = rules.iter().filter_map(|r| r.group).collect();
        for (i, group) in groups.iter().enumerate() {
            if !used_groups.contains(&i) {
                let group_span = def.groups.get(&group.name).map(|g| g.span());
                self.diagnostics.push(Diagnostic::warning(format!("group `{}` has no rules", group.name), group_span));
            }
        }

        let min = def.min.as_ref().map(|m| self.finite(m, "a score's `min`"));
        let max = def.max.as_ref().map(|m| self.finite(m, "a score's `max`"));
        if let (Some(lo), Some(hi)) = (min, max)
            && lo >= hi
        {
            self.error(format!("score `{name}` has `min` {lo} not below `max` {hi}"), def.min.as_ref().and_then(span));
        }
        let normalize = def.normalize.as_ref().is_some_and(|n| *n.get_ref());
        if normalize && (min.is_none() || max.is_none()) {
            self.error(
                format!("score `{name}` sets `normalize = true` without both `min` and `max`: normalising maps [min, max] onto 0-100"),
                def.normalize.as_ref().and_then(span),
            );
        }

        let precision = match &def.precision {
            None => DEFAULT_PRECISION,
            Some(p) if (0..=i64::from(MAX_PRECISION)).contains(p.get_ref()) => *p.get_ref() as u8,
            Some(p) => {
                self.error(
                    format!("`precision` is a number of decimals from 0 to {MAX_PRECISION}, not {}", p.get_ref()),
                    span(p),
                );
                DEFAULT_PRECISION
            }
        };

        let tiers = self.tiers(&name, &def.tiers);
        self.warn_of_limits_finer_than_the_precision(&def.tiers, precision);
        let disqualified_tier =
            def.disqualified_tier.as_ref().map_or_else(|| "disqualified".to_string(), |t| t.get_ref().clone());
        if let Some(label) = &def.disqualified_tier {
            if label.get_ref().trim().is_empty() {
                self.error("`disqualified_tier` cannot be empty", span(label));
            } else if tiers.iter().any(|t| t.label == *label.get_ref()) {
                self.error(
                    format!("`disqualified_tier` `{}` is also a tier of this score: disqualified leads need a label of their own", label.get_ref()),
                    span(label),
                );
            }
        }
        let qualifiers =
            def.qualifiers.iter().filter_map(|q| self.qualifier(&name, q, &tiers, &rule_names, false)).collect();
        let disqualifiers =
            def.disqualifiers.iter().filter_map(|q| self.qualifier(&name, q, &tiers, &rule_names, true)).collect();
        Score {
            name,
            description: def.description,
            rules,
            groups,
            components,
            applies_to,
            segments,
            depends_on: Vec::new(),
            min,
            max,
            normalize,
            precision,
            tiers,
            qualifiers,
            disqualifiers,
            disqualified_tier,
            predictive,
        }
    }

    /// A score's `segments`: each a condition (or `otherwise`, last) and the score whose value
    /// the lead gets when it matches. Such a score has no points of its own.
    fn segments(
        &mut self,
        name: &str,
        defs: &Spanned<Vec<Spanned<crate::format::SegmentDef>>>,
        def: &ScoreDef,
    ) -> Vec<Segment> {
        let misplaced = [
            ("rules", !def.rules.is_empty()),
            ("from", !def.from.is_empty()),
            ("groups", !def.groups.is_empty()),
            ("predictive", def.predictive.is_some()),
            ("min", def.min.is_some()),
            ("max", def.max.is_some()),
            ("normalize", def.normalize.is_some()),
            ("precision", def.precision.is_some()),
        ];
        for (key, present) in misplaced {
            if present {
                self.error(
                    format!("score `{name}` takes its value from its `segments`, so it cannot have `{key}`: give it to the segments' scores"),
                    span(defs),
                );
            }
        }
        if defs.get_ref().is_empty() {
            self.error(format!("score `{name}` has an empty `segments` list"), span(defs));
        }
        let count = defs.get_ref().len();
        let mut segments = Vec::with_capacity(count);
        for (i, segment) in defs.get_ref().iter().enumerate() {
            let s = segment.get_ref();
            let when = match (&s.when, s.otherwise) {
                (Some(when), false) => self.condition(when, Record::Lead),
                (None, true) => {
                    if i + 1 != count {
                        self.error("an `otherwise` segment must be the last one", span(segment));
                    }
                    Some(Condition::Always)
                }
                _ => {
                    self.error("a segment needs either `when` or `otherwise = true`", span(segment));
                    None
                }
            };
            let target = s.score.get_ref();
            let index = match self.score_index.get(target) {
                Some(&index) if Some(index) == self.current_score => {
                    self.error(format!("score `{name}` cannot be its own segment"), span(&s.score));
                    None
                }
                Some(&index) => {
                    self.depend_on(index, s.score.span(), false);
                    Some(index)
                }
                None => {
                    self.error(format!("segment score `{target}` is not a score of this model"), span(&s.score));
                    None
                }
            };
            if let (Some(when), Some(score)) = (when, index) {
                segments.push(Segment { when, score });
            }
        }
        segments
    }

    /// A tier limit with more decimals than the score's value keeps is one no value can equal:
    /// `min = 50.005` with `precision = 2` is reached from 50.01 only, which is seldom meant.
    fn warn_of_limits_finer_than_the_precision(&mut self, tiers: &[Spanned<TierDef>], precision: u8) {
        for tier in tiers {
            let tier = tier.get_ref();
            for (key, limit) in [("min", &tier.min), ("max", &tier.max)] {
                if let Some(limit) = limit
                    && limit.get_ref().is_finite()
                    && round_to_precision(*limit.get_ref(), precision) != *limit.get_ref()
                {
                    self.warning(
                        format!(
                            "tier `{}` has `{key}` {}, with more decimals than the score's `precision` ({precision}): values are rounded to {precision} decimals before tiers are compared",
                            tier.label.get_ref(),
                            limit.get_ref()
                        ),
                        span(limit),
                    );
                }
            }
        }
    }

    /// Loads a predictive score's model and resolves its fields; a predictive score's value is
    /// the model's alone, so rules, components and limits are errors.
    fn predictive(&mut self, name: &str, reference: &Spanned<String>, def: &ScoreDef) -> Option<PredictiveScore> {
        let misplaced = [
            ("rules", !def.rules.is_empty()),
            ("from", !def.from.is_empty()),
            ("groups", !def.groups.is_empty()),
            ("min", def.min.is_some()),
            ("max", def.max.is_some()),
            ("normalize", def.normalize.is_some()),
        ];
        for (key, present) in misplaced {
            if present {
                self.error(
                    format!("score `{name}` is predictive (its value is the model's probability, 0-100), so it cannot have `{key}`: make another score for them"),
                    span(reference),
                );
            }
        }
        let factors = match &def.factors {
            None => DEFAULT_FACTORS,
            Some(n) if (0..=50).contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                self.error(format!("`factors` must be between 0 and 50, not {}", n.get_ref()), span(n));
                DEFAULT_FACTORS
            }
        };
        if reference.get_ref().trim().is_empty() {
            self.error("`predictive` names a trained model (a file written by `leadscore train`)", span(reference));
            return None;
        }
        let predictor: Arc<dyn Predictor> = match self.predictors.load(reference.get_ref()) {
            Ok(predictor) => predictor,
            Err(message) => {
                self.error(message, span(reference));
                return None;
            }
        };
        let slots = predictor.fields().iter().map(|field| self.lead_fields.intern(field)).collect();
        Some(PredictiveScore { reference: reference.get_ref().clone(), predictor, slots, factors })
    }
}
