//! From a model file's text to a [`Model`]: parse the TOML into [`crate::format`] types, then check
//! every rule, tier, qualifier and reference once, resolving names to indexes.
//!
//! The compiler keeps going after an error so that one run reports every mistake it can find
//! (TOML syntax and shape errors stop the parse, so those come one at a time). The engine never
//! re-checks what is verified here.
//!
//! This module reads `[model]` and `[lead]` and assembles the [`Model`]; the rest has one module
//! per level of the file, named after the sections of docs/model-format.md: `scores` (Scores),
//! `tiers` (Tiers), `rules` (Rules), `conditions` (Conditions), `lists` (A model's own lists, which
//! conditions read) and `qualifiers` (Qualifiers and disqualifiers). `compiler` holds what they
//! share. Each adds the checks of its level to the compiler, and a level only calls the levels
//! below it (scores, then tiers, qualifiers and rules, then conditions, then lists), so that no
//! two of them depend on each other.

mod compiler;
mod conditions;
mod lists;
mod qualifiers;
mod rules;
mod scores;
mod tiers;

use compiler::{Compiler, ScoreOutline};

use crate::diagnostic::{Diagnostic, ModelError, Severity};
use crate::format::{ModelFile, ScoreDef};
use crate::model::{EventTypeId, Model};
use crate::predictor::{NoPredictors, PredictorLoader};

/// A compiled model with the warnings its file raised.
#[derive(Debug)]
pub struct Compiled {
    pub model: Model,
    pub warnings: Vec<Diagnostic>,
}

/// Compiles a model file's text. Errors and warnings carry byte spans into `source`. A model with
/// a predictive score needs [`compile_with`].
pub fn compile(source: &str) -> Result<Compiled, ModelError> {
    compile_with(source, &NoPredictors)
}

/// Compiles a model file's text, loading the predictive models its scores name with `predictors`.
pub fn compile_with(source: &str, predictors: &dyn PredictorLoader) -> Result<Compiled, ModelError> {
    let mut file: ModelFile = match toml::from_str(source) {
        Ok(file) => file,
        Err(error) => {
            let message = error.message().trim_end().to_string();
            return Err(ModelError::new(vec![Diagnostic::error(message, error.span())], source));
        }
    };
    let tests = std::mem::take(&mut file.tests);
    let mut compiler = Compiler::new(predictors);
    let mut model = compiler.model(file);
    if let Some(model) = &mut model {
        model.tests = crate::model_tests::compile_tests(model, tests, &mut compiler.diagnostics);
    }
    // A named condition used in several places reports its mistakes once.
    let mut seen = std::collections::HashSet::new();
    compiler.diagnostics.retain(|d| seen.insert((d.severity, d.message.clone(), d.span.clone())));
    let has_errors = compiler.diagnostics.iter().any(|d| d.severity == Severity::Error);
    match model {
        Some(model) if !has_errors => {
            let mut warnings = compiler.diagnostics;
            warnings.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
            Ok(Compiled { model, warnings })
        }
        _ => Err(ModelError::new(compiler.diagnostics, source)),
    }
}

impl Compiler<'_> {
    /// The whole file: `[model]`, `[lead]`, `[conditions]` and every score, then the trackers
    /// indexed by event type. `None` when the scores cannot be ordered (a cycle of dependencies).
    fn model(&mut self, mut file: ModelFile) -> Option<Model> {
        self.lists(&file.lists);
        let created_at_field = file.lead.created_at.as_ref().map(|f| self.lead_fields.intern(f.get_ref()));
        self.score_index = file.scores.keys().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        self.score_outline = outline(&file);
        self.named_conditions = std::mem::take(&mut file.conditions);
        for name in self.named_conditions.keys() {
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                let at = self.named_conditions[name].span();
                self.diagnostics.push(Diagnostic::error(
                    format!("condition name `{name}` can only have letters, digits, `_` and `-`"),
                    Some(at),
                ));
            }
        }
        if file.scores.is_empty() {
            self.error("the model has no score: add a table such as [scores.fit] with rules", None);
        }
        let mut scores = Vec::with_capacity(file.scores.len());
        let mut references = Vec::with_capacity(file.scores.len());
        for (index, (name, def)) in file.scores.into_iter().enumerate() {
            let def_span = def.span();
            self.current_score = Some(index);
            let mut score = self.score(name, def.into_inner(), def_span);
            let dependencies = std::mem::take(&mut self.dependencies);
            score.depends_on = dependencies.iter().map(|d| d.score).collect();
            score.depends_on.sort_unstable();
            score.depends_on.dedup();
            references.push(dependencies);
            scores.push(score);
        }
        self.current_score = None;
        let unused: Vec<(String, std::ops::Range<usize>)> = self
            .named_conditions
            .iter()
            .filter(|(name, _)| !self.used_conditions.contains(*name))
            .map(|(name, def)| (name.clone(), def.span()))
            .collect();
        for (name, at) in unused {
            self.warning(format!("condition `{name}` is not used by any score"), Some(at));
        }
        let evaluation_order = self.evaluation_order(&scores, &references)?;
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
            tests: Vec::new(),
        })
    }
}

/// What conditions on scores may name, for every score of the file before any is compiled: its
/// rules and its tiers (with its `disqualified_tier`, and for a score of segments without tiers of
/// its own, the tiers its segments give).
fn outline(file: &ModelFile) -> Vec<ScoreOutline> {
    fn tiers(file: &ModelFile, def: &ScoreDef, seen: &mut Vec<String>) -> Vec<String> {
        let mut labels: Vec<String> = def.tiers.iter().map(|t| t.get_ref().label.get_ref().clone()).collect();
        labels.push(def.disqualified_tier.as_ref().map_or_else(|| "disqualified".to_string(), |t| t.get_ref().clone()));
        if def.tiers.is_empty()
            && let Some(segments) = &def.segments
        {
            for segment in segments.get_ref() {
                let target = segment.get_ref().score.get_ref();
                // A cycle of segments is reported when the scores are ordered.
                if seen.contains(target) {
                    continue;
                }
                if let Some(target_def) = file.scores.get(target) {
                    seen.push(target.clone());
                    for label in tiers(file, target_def.get_ref(), seen) {
                        if !labels.contains(&label) {
                            labels.push(label);
                        }
                    }
                }
            }
        }
        labels
    }
    file.scores
        .iter()
        .map(|(name, def)| ScoreOutline {
            rules: def.get_ref().rules.iter().map(|r| r.get_ref().name.get_ref().clone()).collect(),
            tiers: tiers(file, def.get_ref(), &mut vec![name.clone()]),
        })
        .collect()
}
