//! From a model file's text to a [`Model`]: parse the TOML into [`crate::format`] types, then check
//! every rule, tier, qualifier and reference once, resolving names to indexes.
//!
//! The compiler keeps going after an error so that one run reports every mistake it can find
//! (TOML syntax and shape errors stop the parse, so those come one at a time). The engine never
//! re-checks what is verified here.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use rustc_hash::FxHashMap;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, ModelError};
use crate::format::{
    BandDef, ConditionDef, DecayDef, ModelFile, OneOrMany, QualifierDef, RuleDef, Scalar, ScoreDef, TierDef,
};
use crate::model::{EventTest, EventTypeId, Group, Model, PredictiveScore, Qualifier, Rule, Score, Tier, Tracker};
use crate::predictor::{NoPredictors, Predictor, PredictorLoader};
use crate::rules::RuleKind;
use crate::rules::attribute::{AttributeRule, CaseRule};
use crate::rules::condition::{Condition, OneOf, Test};
use crate::rules::event::{Band, Decay, EventPoints, EventRule};
use crate::rules::inactivity::InactivityRule;
use crate::time::Duration;

/// The largest number a model may hold (points, limits, thresholds, weights).
const MAX_MAGNITUDE: f64 = 1e12;

/// A compiled model with the warnings its file raised.
#[derive(Debug)]
pub struct Compiled {
    pub model: Model,
    pub warnings: Vec<Diagnostic>,
}

/// The number of fields a predictive score's explanation names unless `factors` says otherwise.
const DEFAULT_FACTORS: usize = 3;

/// Compiles a model file's text. Errors and warnings carry byte spans into `source`. A model with
/// a predictive score needs [`compile_with`].
pub fn compile(source: &str) -> Result<Compiled, ModelError> {
    compile_with(source, &NoPredictors)
}

/// Compiles a model file's text, loading the predictive models its scores name with `predictors`.
pub fn compile_with(source: &str, predictors: &dyn PredictorLoader) -> Result<Compiled, ModelError> {
    let file: ModelFile = match toml::from_str(source) {
        Ok(file) => file,
        Err(error) => {
            let message = error.message().trim_end().to_string();
            return Err(ModelError::new(vec![Diagnostic::error(message, error.span())], source));
        }
    };
    let mut compiler = Compiler::new(predictors);
    let model = compiler.model(file);
    let has_errors = compiler.diagnostics.iter().any(|d| d.severity == crate::diagnostic::Severity::Error);
    match model {
        Some(model) if !has_errors => {
            let mut warnings = compiler.diagnostics;
            warnings.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
            Ok(Compiled { model, warnings })
        }
        _ => Err(ModelError::new(compiler.diagnostics, source)),
    }
}

/// Names interned in first-seen order.
#[derive(Default)]
struct Names {
    names: Vec<String>,
    index: FxHashMap<String, usize>,
}

impl Names {
    fn intern(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// Which record a condition reads.
#[derive(Clone, Copy)]
enum Record {
    Lead,
    Event,
}

struct Compiler<'p> {
    predictors: &'p dyn PredictorLoader,
    diagnostics: Vec<Diagnostic>,
    lead_fields: Names,
    event_properties: Names,
    event_types: Names,
    trackers: Vec<Tracker>,
    /// (event types or `None` for every type, tracker index)
    tracker_types: Vec<(Option<Vec<usize>>, usize)>,
}

fn span<T>(spanned: &Spanned<T>) -> Option<Range<usize>> {
    Some(spanned.span())
}

impl<'p> Compiler<'p> {
    fn new(predictors: &'p dyn PredictorLoader) -> Compiler<'p> {
        Compiler {
            predictors,
            diagnostics: Vec::new(),
            lead_fields: Names::default(),
            event_properties: Names::default(),
            event_types: Names::default(),
            trackers: Vec::new(),
            tracker_types: Vec::new(),
        }
    }

    fn error(&mut self, message: impl Into<String>, span: Option<Range<usize>>) {
        self.diagnostics.push(Diagnostic::error(message, span));
    }

    fn warning(&mut self, message: impl Into<String>, span: Option<Range<usize>>) {
        self.diagnostics.push(Diagnostic::warning(message, span));
    }

    fn finite(&mut self, value: &Spanned<f64>, what: &str) -> f64 {
        let v = *value.get_ref();
        if !v.is_finite() {
            self.error(format!("{what} must be a finite number, not {v}"), span(value));
            return 0.0;
        }
        // Sums of larger numbers could overflow or lose every digit of a point.
        if v.abs() > MAX_MAGNITUDE {
            self.error(format!("{what} must be between -1e12 and 1e12, not {v}"), span(value));
            return 0.0;
        }
        v
    }

    fn duration(&mut self, text: &Spanned<String>, what: &str) -> Option<Duration> {
        match Duration::parse(text.get_ref()) {
            Ok(d) if d.0 > 0 => Some(d),
            Ok(_) => {
                self.error(format!("{what} must be longer than zero"), span(text));
                None
            }
            Err(message) => {
                self.error(format!("{what}: {message}"), span(text));
                None
            }
        }
    }

    fn model(&mut self, file: ModelFile) -> Option<Model> {
        let created_at_field = file.lead.created_at.as_ref().map(|f| self.lead_fields.intern(f.get_ref()));
        let score_index: FxHashMap<String, usize> =
            file.scores.keys().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        if file.scores.is_empty() {
            self.error("the model has no score: add a table such as [scores.fit] with rules", None);
        }
        let mut scores = Vec::with_capacity(file.scores.len());
        let mut from_spans = Vec::with_capacity(file.scores.len());
        for (name, def) in file.scores {
            let def_span = def.span();
            from_spans.push(def.get_ref().from.values().next().map(|w| w.span()));
            scores.push(self.score(name, def.into_inner(), def_span, &score_index));
        }
        let evaluation_order = self.evaluation_order(&scores, &from_spans)?;
        let mut trackers_by_type = vec![Vec::new(); self.event_types.names.len()];
        let mut trackers_for_any_type = Vec::new();
        for (types, tracker) in &self.tracker_types {
            match types {
                Some(types) => types.iter().for_each(|&t| trackers_by_type[t].push(*tracker)),
                None => trackers_for_any_type.push(*tracker),
            }
        }
        let event_type_index =
            self.event_types.names.iter().enumerate().map(|(i, name)| (name.clone(), EventTypeId(i as u32))).collect();
        Some(Model {
            name: file.model.name.unwrap_or_else(|| "model".to_string()),
            description: file.model.description,
            lead_fields: std::mem::take(&mut self.lead_fields.names),
            event_properties: std::mem::take(&mut self.event_properties.names),
            event_types: std::mem::take(&mut self.event_types.names),
            event_type_index,
            trackers: std::mem::take(&mut self.trackers),
            trackers_by_type,
            trackers_for_any_type,
            scores,
            evaluation_order,
            created_at_field,
        })
    }

    /// Orders scores so that components come first; reports cycles.
    fn evaluation_order(&mut self, scores: &[Score], from_spans: &[Option<Range<usize>>]) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Visiting,
            Done,
        }
        fn visit(
            i: usize,
            scores: &[Score],
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
            for &(component, _) in &scores[i].components {
                visit(component, scores, marks, path, order)?;
            }
            path.pop();
            marks[i] = Mark::Done;
            order.push(i);
            Ok(())
        }
        let mut marks = vec![Mark::New; scores.len()];
        let mut order = Vec::with_capacity(scores.len());
        for i in 0..scores.len() {
            if let Err(cycle) = visit(i, scores, &mut marks, &mut Vec::new(), &mut order) {
                let names: Vec<&str> = cycle.iter().map(|&c| scores[c].name.as_str()).collect();
                let message = if cycle.len() == 2 {
                    format!("score `{}` is defined from itself", names[0])
                } else {
                    format!("scores are defined from each other in a cycle: {}", names.join(" -> "))
                };
                self.error(message, from_spans[cycle[0]].clone());
                return None;
            }
        }
        Some(order)
    }

    fn score(
        &mut self,
        name: String,
        def: ScoreDef,
        def_span: Range<usize>,
        score_index: &FxHashMap<String, usize>,
    ) -> Score {
        if !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') || name.is_empty() {
            self.error(
                format!("score name `{name}` can only have letters, digits, `_` and `-` (it names output columns)"),
                Some(def_span.clone()),
            );
        }
        let mut components = Vec::new();
        for (component, weight) in &def.from {
            let w = self.finite(weight, "a component's weight");
            match score_index.get(component) {
                Some(&i) => components.push((i, w)),
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
        if def.rules.is_empty() && components.is_empty() && def.predictive.is_none() {
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

        let tiers = self.tiers(&name, &def.tiers);
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
            min,
            max,
            normalize,
            tiers,
            qualifiers,
            disqualifiers,
            disqualified_tier,
            predictive,
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

    fn tiers(&mut self, score: &str, defs: &[Spanned<TierDef>]) -> Vec<Tier> {
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

    fn qualifier(
        &mut self,
        score: &str,
        def: &Spanned<QualifierDef>,
        tiers: &[Tier],
        rule_names: &FxHashMap<String, usize>,
        disqualifier: bool,
    ) -> Option<Qualifier> {
        let q = def.get_ref();
        let name = q.name.get_ref().clone();
        let kind = if disqualifier { "disqualifier" } else { "qualifier" };
        let tier = if disqualifier {
            if let Some(tier) = &q.tier {
                self.error(
                    format!(
                        "{kind} `{name}` cannot set `tier`: disqualified leads get the score's `disqualified_tier`"
                    ),
                    span(tier),
                );
            }
            0
        } else {
            match &q.tier {
                Some(label) => match tiers.iter().position(|t| t.label == *label.get_ref()) {
                    Some(i) => i,
                    None => {
                        self.error(
                            format!(
                                "{kind} `{name}` gives tier `{}`, which score `{score}` does not have",
                                label.get_ref()
                            ),
                            span(label),
                        );
                        return None;
                    }
                },
                None => match tiers.iter().rposition(|t| !t.qualifier_only) {
                    Some(i) => i,
                    None => {
                        self.error(
                            format!("{kind} `{name}` needs `tier`: score `{score}` has no tier reached by points to default to"),
                            span(def),
                        );
                        return None;
                    }
                },
            }
        };
        let when = q.when.as_ref().and_then(|w| self.condition(w, Record::Lead));
        let event = match &q.event {
            Some(types) => {
                let min_count = match &q.min_count {
                    Some(n) if *n.get_ref() >= 1 => *n.get_ref() as usize,
                    Some(n) => {
                        self.error("`min_count` must be at least 1", span(n));
                        1
                    }
                    None => 1,
                };
                let within = q.within.as_ref().and_then(|w| self.duration(w, "`within`"));
                let filter = q.filter.as_ref().and_then(|f| self.condition(f, Record::Event));
                let tracker = self.tracker(Some(types), filter, Some(min_count));
                Some(EventTest { tracker, within, min_count })
            }
            None => {
                for (key, present) in [
                    ("where", q.filter.as_ref().map(|f| f.span())),
                    ("within", q.within.as_ref().map(|f| f.span())),
                    ("min_count", q.min_count.as_ref().map(|f| f.span())),
                ] {
                    if let Some(key_span) = present {
                        self.error(format!("{kind} `{name}` sets `{key}` but no `event`"), Some(key_span));
                    }
                }
                None
            }
        };
        let mut rules = Vec::new();
        if let Some(names) = &q.rules {
            if names.get_ref().is_empty() {
                self.error(
                    format!("{kind} `{name}` has an empty `rules` list: name the rules that must all apply"),
                    span(names),
                );
            }
            for rule in names.get_ref() {
                match rule_names.get(rule.get_ref()) {
                    Some(&i) => rules.push(i),
                    None => self.error(
                        format!(
                            "{kind} `{name}` requires rule `{}`, which score `{score}` does not have",
                            rule.get_ref()
                        ),
                        span(rule),
                    ),
                }
            }
        }
        if q.when.is_none() && q.event.is_none() && q.rules.is_none() {
            self.error(format!("{kind} `{name}` tests nothing: give it `when`, `event` or `rules`"), span(def));
            return None;
        }
        Some(Qualifier { name, tier, when, event, rules })
    }

    fn tracker(&mut self, types: Option<&Spanned<OneOrMany>>, filter: Option<Condition>, keep: Option<usize>) -> usize {
        let index = self.trackers.len();
        self.trackers.push(Tracker { filter, keep_most_recent: keep });
        let type_ids = types.map(|types| {
            let names = types.get_ref().clone().into_vec();
            if names.is_empty() {
                self.error("`event` needs at least one event type", span(types));
            }
            let mut ids: Vec<usize> = Vec::with_capacity(names.len());
            for name in &names {
                if name.is_empty() {
                    self.error("an event type cannot be empty", span(types));
                }
                let id = self.event_types.intern(name);
                if ids.contains(&id) {
                    self.warning(format!("event type `{name}` is listed twice; it counts once"), span(types));
                } else {
                    ids.push(id);
                }
            }
            ids
        });
        self.tracker_types.push((type_ids, index));
        index
    }

    fn rule(&mut self, def: Spanned<RuleDef>, group_index: &FxHashMap<String, usize>) -> Option<Rule> {
        let rule_span = def.span();
        let def = def.into_inner();
        let name = def.name.get_ref().clone();
        if name.is_empty() {
            self.error("a rule name cannot be empty", span(&def.name));
        }
        let group = match &def.group {
            Some(g) => match group_index.get(g.get_ref()) {
                Some(&i) => Some(i),
                None => {
                    self.error(
                        format!(
                            "rule `{name}` is in group `{}`, which this score's `groups` does not declare",
                            g.get_ref()
                        ),
                        span(g),
                    );
                    None
                }
            },
            None => None,
        };
        let kind = if def.inactive_for.is_some() {
            self.inactivity_rule(&name, &def)
        } else if def.event.is_some() {
            self.event_rule(&name, &def)
        } else if def.when.is_some() || def.cases.is_some() {
            self.attribute_rule(&name, &def)
        } else {
            self.error(
                format!(
                    "rule `{name}` needs `when` (a condition on lead fields), `cases`, `event` (an event rule) or `inactive_for` (an inactivity rule)"
                ),
                Some(rule_span),
            );
            None
        }?;
        Some(Rule { name, group, kind })
    }

    /// Reports each key present that a rule of this kind cannot have.
    fn forbid(&mut self, name: &str, kind: &str, keys: &[(&str, Option<Range<usize>>)]) {
        for (key, key_span) in keys {
            if let Some(key_span) = key_span {
                self.error(format!("rule `{name}` is {kind} and cannot have `{key}`"), Some(key_span.clone()));
            }
        }
    }

    fn required_points(&mut self, name: &str, def: &RuleDef, rule_span: Option<Range<usize>>) -> Option<f64> {
        match &def.points {
            Some(points) => Some(self.finite(points, "`points`")),
            None => {
                self.error(format!("rule `{name}` needs `points`"), rule_span);
                None
            }
        }
    }

    fn attribute_rule(&mut self, name: &str, def: &RuleDef) -> Option<RuleKind> {
        self.forbid(
            name,
            "an attribute rule",
            &[
                ("where", def.filter.as_ref().map(|s| s.span())),
                ("max_count", def.max_count.as_ref().map(|s| s.span())),
                ("progressive", def.progressive.as_ref().map(|s| s.span())),
                ("bands", def.bands.as_ref().map(|s| s.span())),
                ("window", def.window.as_ref().map(|s| s.span())),
                ("decay", def.decay.as_ref().map(|s| s.span())),
            ],
        );
        match (&def.when, &def.cases) {
            (Some(when), None) => {
                let points = self.required_points(name, def, span(&def.name));
                let when = self.condition(when, Record::Lead);
                Some(RuleKind::Attribute(AttributeRule { when: when?, points: points? }))
            }
            (None, Some(cases)) => {
                if let Some(points) = &def.points {
                    self.error(
                        format!("rule `{name}` has `cases`, which give the points: drop `points`"),
                        span(points),
                    );
                }
                if cases.get_ref().is_empty() {
                    self.error(format!("rule `{name}` has no cases"), span(cases));
                }
                let mut compiled = Vec::new();
                let n_cases = cases.get_ref().len();
                for (i, case) in cases.get_ref().iter().enumerate() {
                    let c = case.get_ref();
                    let points = self.finite(&c.points, "`points`");
                    let condition = match (&c.when, c.otherwise) {
                        (Some(when), false) => self.condition(when, Record::Lead),
                        (None, true) => {
                            if i + 1 != n_cases {
                                self.error("an `otherwise` case must be the last one", span(case));
                            }
                            Some(Condition::Always)
                        }
                        _ => {
                            self.error("a case needs either `when` or `otherwise = true`", span(case));
                            None
                        }
                    };
                    compiled.extend(condition.map(|condition| (condition, points)));
                }
                (compiled.len() == n_cases).then_some(RuleKind::Cases(CaseRule { cases: compiled }))
            }
            _ => {
                self.error(format!("rule `{name}` has both `when` and `cases`: use one"), span(&def.name));
                None
            }
        }
    }

    fn inactivity_rule(&mut self, name: &str, def: &RuleDef) -> Option<RuleKind> {
        self.forbid(
            name,
            "an inactivity rule",
            &[
                ("when", def.when.as_ref().map(|s| s.span())),
                ("cases", def.cases.as_ref().map(|s| s.span())),
                ("max_count", def.max_count.as_ref().map(|s| s.span())),
                ("progressive", def.progressive.as_ref().map(|s| s.span())),
                ("bands", def.bands.as_ref().map(|s| s.span())),
                ("window", def.window.as_ref().map(|s| s.span())),
                ("decay", def.decay.as_ref().map(|s| s.span())),
            ],
        );
        let points = self.required_points(name, def, span(&def.name));
        let after = def.inactive_for.as_ref().and_then(|d| self.duration(d, "`inactive_for`"));
        let filter = def.filter.as_ref().and_then(|f| self.condition(f, Record::Event));
        let tracker = self.tracker(def.event.as_ref(), filter, Some(1));
        Some(RuleKind::Inactivity(InactivityRule { tracker, after: after?, points: points? }))
    }

    fn event_rule(&mut self, name: &str, def: &RuleDef) -> Option<RuleKind> {
        self.forbid(
            name,
            "an event rule",
            &[("when", def.when.as_ref().map(|s| s.span())), ("cases", def.cases.as_ref().map(|s| s.span()))],
        );
        let max_count = match &def.max_count {
            Some(n) if *n.get_ref() >= 1 => Some(*n.get_ref() as usize),
            Some(n) => {
                self.error("`max_count` must be at least 1", span(n));
                None
            }
            None => None,
        };
        let window = def.window.as_ref().and_then(|w| self.duration(w, "`window`"));
        let decay = def.decay.as_ref().and_then(|d| self.decay(d));
        let given: Vec<&str> = [
            def.points.as_ref().map(|_| "points"),
            def.progressive.as_ref().map(|_| "progressive"),
            def.bands.as_ref().map(|_| "bands"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                format!("event rule `{name}` needs one of `points`, `progressive` or `bands`")
            } else {
                format!("event rule `{name}` has {}: use only one", given.join(" and "))
            };
            self.error(message, span(&def.name));
            return None;
        }
        let (points, keep) = if let Some(points) = &def.points {
            (EventPoints::Each(self.finite(points, "`points`")), max_count)
        } else if let Some(schedule) = &def.progressive {
            let steps: Vec<f64> = schedule.get_ref().clone();
            if steps.is_empty() {
                self.error("`progressive` needs at least one step", span(schedule));
            }
            if steps.iter().any(|s| !s.is_finite() || s.abs() > MAX_MAGNITUDE) {
                self.error("`progressive` steps must be finite numbers between -1e12 and 1e12", span(schedule));
            }
            let keep = max_count.map_or(steps.len(), |n| n.min(steps.len()));
            (EventPoints::Progressive(steps), Some(keep))
        } else {
            let bands_def = def.bands.as_ref().expect("one of the three is given");
            if decay.is_some() {
                self.error(
                    format!("event rule `{name}` has `bands` and `decay`: bands give points for a count, which cannot decay; use `window` to age occurrences out"),
                    def.decay.as_ref().and_then(span),
                );
            }
            let bands = self.bands(bands_def.get_ref());
            if bands.is_empty() {
                self.error("`bands` needs at least one band", span(bands_def));
            }
            let need = bands.iter().map(|b| b.max.map_or(b.min, |m| m + 1)).max().unwrap_or(0);
            let keep = max_count.map_or(need, |n| n.min(need));
            (EventPoints::Bands(bands), Some(keep))
        };
        let filter = def.filter.as_ref().and_then(|f| self.condition(f, Record::Event));
        let tracker = self.tracker(def.event.as_ref(), filter, keep);
        // Bands count at most what decides the band, so the count shown never depends on how
        // many older occurrences the state happens to hold.
        let max_count = if matches!(points, EventPoints::Bands(_)) { keep } else { max_count };
        Some(RuleKind::Event(EventRule { tracker, window, max_count, points, decay }))
    }

    fn bands(&mut self, defs: &[Spanned<BandDef>]) -> Vec<Band> {
        let mut bands: Vec<Band> = Vec::new();
        for def in defs {
            let b = def.get_ref();
            let min = *b.min.get_ref();
            let max = b.max.as_ref().map(|m| *m.get_ref());
            let points = self.finite(&b.points, "a band's `points`");
            if min < 1 {
                self.error("a band's `min` must be at least 1 (no occurrence earns nothing)", span(&b.min));
                continue;
            }
            if let Some(max) = max
                && max < min
            {
                self.error(format!("a band's `max` {max} is below its `min` {min}"), span(def));
                continue;
            }
            if let Some(previous) = bands.last() {
                match previous.max {
                    Some(prev_max) if (prev_max as i64) < min => {}
                    _ => {
                        self.error(
                            "bands overlap or are out of order: list them from the fewest occurrences up, each `min` above the previous band's `max`",
                            span(def),
                        );
                        continue;
                    }
                }
            }
            bands.push(Band { min: min as usize, max: max.map(|m| m as usize), points });
        }
        bands
    }

    fn decay(&mut self, def: &Spanned<DecayDef>) -> Option<Decay> {
        let d = def.get_ref();
        let kinds = [d.half_life.is_some(), d.lose_percent.is_some() || d.every.is_some(), d.steps.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            self.error(
                "`decay` needs exactly one of `half_life = \"30d\"`, `lose_percent = 25, every = \"30d\"` or `steps = [{ older_than = \"90d\", factor = 0.5 }]`",
                span(def),
            );
            return None;
        }
        if let Some(half_life) = &d.half_life {
            let half_life = self.duration(half_life, "`half_life`")?;
            return Some(Decay::HalfLife { half_life_days: half_life.as_days() });
        }
        if let Some(steps) = &d.steps {
            if steps.is_empty() {
                self.error("`steps` is empty: give at least one `{ older_than = \"90d\", factor = 0.5 }`", span(def));
            }
            let mut compiled: Vec<(Duration, f64)> = Vec::new();
            for step in steps {
                let s = step.get_ref();
                let older_than = self.duration(&s.older_than, "`older_than`");
                let factor = self.finite(&s.factor, "`factor`");
                if !(0.0..=1.0).contains(&factor) {
                    self.error("a decay step's `factor` is the share kept, between 0 and 1", span(&s.factor));
                }
                if let Some(older_than) = older_than {
                    if compiled.last().is_some_and(|(previous, _)| *previous >= older_than) {
                        self.error("decay steps must be listed from the youngest `older_than` up", span(step));
                    }
                    compiled.push((older_than, factor));
                }
            }
            return Some(Decay::Steps(compiled));
        }
        let (Some(percent), Some(every)) = (&d.lose_percent, &d.every) else {
            self.error("a linear decay needs both `lose_percent` and `every`", span(def));
            return None;
        };
        let percent_value = self.finite(percent, "`lose_percent`");
        if !(percent_value > 0.0 && percent_value <= 100.0) {
            self.error("`lose_percent` must be above 0 and at most 100", span(percent));
        }
        let every = self.duration(every, "`every`")?;
        Some(Decay::Linear { percent: percent_value, every })
    }

    fn slot(&mut self, record: Record, field: &str) -> usize {
        match record {
            Record::Lead => self.lead_fields.intern(field),
            Record::Event => self.event_properties.intern(field),
        }
    }

    fn condition(&mut self, def: &Spanned<ConditionDef>, record: Record) -> Option<Condition> {
        let c = def.get_ref();
        let combinators = [c.all.is_some(), c.any.is_some(), c.not.is_some()].iter().filter(|b| **b).count();
        let tests_given = c.equals.is_some()
            || c.one_of.is_some()
            || c.contains.is_some()
            || c.starts_with.is_some()
            || c.regex.is_some()
            || c.min.is_some()
            || c.max.is_some()
            || c.above.is_some()
            || c.below.is_some()
            || c.present.is_some()
            || c.missing.is_some()
            || c.email_domain.is_some()
            || c.free_email.is_some();
        if combinators > 0 {
            if c.ignore_case {
                self.error("`ignore_case` applies to the tests of one `field`: put it inside the conditions of `all`, `any` or `not`", span(def));
            }
            if combinators > 1 || c.field.is_some() || tests_given {
                self.error(
                    "a condition is either tests on one `field` or one of `all`, `any`, `not`: split it with `all = [...]`",
                    span(def),
                );
                return None;
            }
            if let Some(all) = &c.all {
                let parts = self.conditions(all, record)?;
                return Some(Condition::All(parts));
            }
            if let Some(any) = &c.any {
                let parts = self.conditions(any, record)?;
                return Some(Condition::Any(parts));
            }
            let inner = self.condition(c.not.as_ref().expect("counted above"), record)?;
            return Some(Condition::Not(Box::new(inner)));
        }
        let Some(field) = &c.field else {
            self.error("a condition needs a `field` to test (or `all`, `any`, `not`)", span(def));
            return None;
        };
        if !tests_given {
            self.error(
                format!(
                    "the condition on `{}` tests nothing: add `equals`, `one_of`, `contains`, `regex`, `min`/`max`, `present`, `email_domain` or `free_email`",
                    field.get_ref()
                ),
                span(def),
            );
            return None;
        }
        if c.ignore_case && c.equals.is_none() && c.one_of.is_none() && c.starts_with.is_none() {
            self.warning(
                "`ignore_case` changes only `equals`, `one_of` and `starts_with` (`contains` always ignores case; write `(?i)` in a `regex`)",
                span(def),
            );
        }
        let slot = self.slot(record, field.get_ref());
        let mut tests = Vec::new();
        let mut ok = true;
        if let Some(equals) = &c.equals {
            let one = std::slice::from_ref(equals.get_ref());
            match self.one_of_test(one, c.ignore_case, "equals", span(equals)) {
                Some(test) => tests.push(test),
                None => ok = false,
            }
        }
        if let Some(one_of) = &c.one_of {
            if one_of.get_ref().is_empty() {
                self.error("`one_of` is empty, so it never matches", span(one_of));
                ok = false;
            }
            match self.one_of_test(one_of.get_ref(), c.ignore_case, "one_of", span(one_of)) {
                Some(test) => tests.push(test),
                None => ok = false,
            }
        }
        if let Some(contains) = &c.contains {
            ok &= self.literal_regex(contains, "contains", "", true, &mut tests);
        }
        if let Some(starts_with) = &c.starts_with {
            ok &= self.literal_regex(starts_with, "starts_with", "^", c.ignore_case, &mut tests);
        }
        if let Some(pattern) = &c.regex {
            match RegexBuilder::new(pattern.get_ref()).size_limit(1 << 20).build() {
                Ok(regex) => tests.push(Test::Matches(regex)),
                Err(error) => {
                    let text = error.to_string();
                    let last = text.lines().last().unwrap_or_default().trim();
                    let detail = last.strip_prefix("error: ").unwrap_or(last);
                    self.error(format!("`regex` is not a valid regular expression: {detail}"), span(pattern));
                    ok = false;
                }
            }
        }
        for (key, value, make) in [
            ("min", &c.min, Test::AtLeast as fn(f64) -> Test),
            ("max", &c.max, Test::AtMost),
            ("above", &c.above, Test::Above),
            ("below", &c.below, Test::Below),
        ] {
            if let Some(v) = value {
                let number = self.finite(v, &format!("`{key}`"));
                tests.push(make(number));
            }
        }
        if let (Some(lo), Some(hi)) = (&c.min, &c.max)
            && lo.get_ref() > hi.get_ref()
        {
            self.warning("`min` is above `max`, so this condition never matches", span(def));
        }
        if let Some(present) = &c.present {
            tests.push(Test::Present(*present.get_ref()));
        }
        if let Some(missing) = &c.missing {
            tests.push(Test::Present(!*missing.get_ref()));
        }
        if let Some(domains) = &c.email_domain {
            let list = domains.get_ref().clone().into_vec();
            if list.is_empty() {
                self.error("`email_domain` is empty, so it never matches", span(domains));
                ok = false;
            }
            tests.push(Test::EmailDomainIn(
                list.iter().map(|d| d.trim().trim_start_matches('@').to_lowercase()).collect(),
            ));
        }
        if let Some(free) = &c.free_email {
            tests.push(Test::FreeEmail(*free.get_ref()));
        }
        ok.then_some(Condition::Field { slot, tests })
    }

    fn conditions(&mut self, defs: &Spanned<Vec<Spanned<ConditionDef>>>, record: Record) -> Option<Vec<Condition>> {
        if defs.get_ref().is_empty() {
            self.error("`all` / `any` needs at least one condition", span(defs));
            return None;
        }
        let compiled: Vec<Option<Condition>> = defs.get_ref().iter().map(|d| self.condition(d, record)).collect();
        compiled.into_iter().collect()
    }

    /// `equals` / `one_of`: texts compared exactly (or with Unicode case folding), numbers and
    /// booleans by meaning.
    fn one_of_test(
        &mut self,
        values: &[Scalar],
        ignore_case: bool,
        key: &str,
        at: Option<Range<usize>>,
    ) -> Option<Test> {
        let mut texts = HashSet::new();
        let mut numbers = Vec::new();
        let mut bools = Vec::new();
        for value in values {
            match value {
                Scalar::Text(t) => {
                    texts.insert(t.clone());
                }
                Scalar::Integer(i) => numbers.push(*i as f64),
                Scalar::Float(f) if f.is_finite() => numbers.push(*f),
                Scalar::Float(f) => {
                    self.error(format!("`{key}` must list finite numbers, not {f}"), at.clone());
                    return None;
                }
                Scalar::Bool(b) => bools.push(*b),
            }
        }
        let folded = if ignore_case && !texts.is_empty() {
            let alternatives: Vec<String> = texts.iter().map(|t| regex::escape(t)).collect();
            match Regex::new(&format!("(?i)^(?:{})$", alternatives.join("|"))) {
                Ok(regex) => {
                    texts.clear();
                    Some(regex)
                }
                Err(error) => {
                    self.error(format!("`{key}` is too large to match: {error}"), at);
                    return None;
                }
            }
        } else {
            None
        };
        Some(Test::OneOf(Box::new(OneOf { texts, folded, numbers, bools })))
    }

    /// `contains` / `starts_with`: literals joined into one regex.
    fn literal_regex(
        &mut self,
        words: &Spanned<OneOrMany>,
        key: &str,
        anchor: &str,
        ignore_case: bool,
        tests: &mut Vec<Test>,
    ) -> bool {
        let list = words.get_ref().clone().into_vec();
        if list.is_empty() || list.iter().any(String::is_empty) {
            self.error(format!("`{key}` needs non-empty text"), span(words));
            return false;
        }
        let alternatives: Vec<String> = list.iter().map(|w| regex::escape(w)).collect();
        let flags = if ignore_case { "(?i)" } else { "" };
        let pattern = format!("{flags}{anchor}(?:{})", alternatives.join("|"));
        match Regex::new(&pattern) {
            Ok(regex) => {
                tests.push(Test::Matches(regex));
                true
            }
            Err(error) => {
                self.error(format!("`{key}` is too large to match: {error}"), span(words));
                false
            }
        }
    }
}
