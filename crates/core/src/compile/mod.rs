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

use compiler::Compiler;
use rustc_hash::FxHashMap;

use crate::diagnostic::{Diagnostic, ModelError, Severity};
use crate::format::ModelFile;
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
    /// The whole file: `[model]`, `[lead]` and every score, then the trackers indexed by event
    /// type. `None` when the scores cannot be ordered (a cycle of components).
    fn model(&mut self, file: ModelFile) -> Option<Model> {
        self.lists(&file.lists);
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
            tests: Vec::new(),
        })
    }
}
