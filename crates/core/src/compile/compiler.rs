//! The compiler's state while it reads one model file, and what every level of the file shares:
//! the diagnostics reported so far, names interned to indexes (lead fields, event properties,
//! event types), the event trackers rules and qualifiers ask for, what every score is called and
//! holds (for conditions that test other scores), the named conditions, the scores the score being
//! compiled depends on, and the checks of numbers and durations.

use std::collections::HashSet;
use std::ops::Range;

use indexmap::IndexMap;
use rustc_hash::FxHashMap;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::format::{ConditionDef, OneOrMany};
use crate::model::Tracker;
use crate::predictor::PredictorLoader;
use crate::rules::condition::Condition;
use crate::rules::lists::{ListEntries, ListName};
use crate::time::Duration;

/// The largest number a model may hold (points, limits, thresholds, weights).
pub(super) const MAX_MAGNITUDE: f64 = 1e12;

/// Names interned in first-seen order.
#[derive(Default)]
pub(super) struct Names {
    pub(super) names: Vec<String>,
    index: FxHashMap<String, usize>,
}

impl Names {
    pub(super) fn intern(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// One model file's compilation in progress; each level of the file adds its methods in its own
/// module.
pub(super) struct Compiler<'p> {
    pub(super) predictors: &'p dyn PredictorLoader,
    pub(super) diagnostics: Vec<Diagnostic>,
    pub(super) lead_fields: Names,
    pub(super) event_properties: Names,
    pub(super) event_types: Names,
    pub(super) trackers: Vec<Tracker>,
    /// (event types or `None` for every type, tracker index)
    pub(super) tracker_types: Vec<(Option<Vec<usize>>, usize)>,
    /// Every score of the file by name, with what conditions on it may name.
    pub(super) score_index: FxHashMap<String, usize>,
    pub(super) score_outline: Vec<ScoreOutline>,
    /// `[conditions]`, compiled where they are used (on lead fields or event properties).
    pub(super) named_conditions: IndexMap<String, Spanned<ConditionDef>>,
    pub(super) used_conditions: HashSet<String>,
    /// The named conditions being expanded, innermost last (to report a condition using itself).
    pub(super) expanding: Vec<String>,
    /// The score being compiled, and the scores it must come after, each with where it is named.
    pub(super) current_score: Option<usize>,
    pub(super) dependencies: Vec<Dependency>,
    /// The lists `[lists.NAME]` changed; the others are the built-in ones.
    pub(super) lists: Vec<(ListName, ListEntries)>,
}

/// A score the score being compiled must be evaluated after, and where the file names it.
pub(super) struct Dependency {
    pub(super) score: usize,
    pub(super) at: Range<usize>,
    /// Named in `from` (cycles of components alone keep their own message).
    pub(super) component: bool,
}

/// What a condition on a score may test: the names of its rules and the labels of its tiers.
#[derive(Default)]
pub(super) struct ScoreOutline {
    pub(super) rules: HashSet<String>,
    /// Its tiers, its `disqualified_tier`, and for a score of segments without tiers of its own,
    /// its segments' tiers.
    pub(super) tiers: Vec<String>,
}

pub(super) fn span<T>(spanned: &Spanned<T>) -> Option<Range<usize>> {
    Some(spanned.span())
}

impl<'p> Compiler<'p> {
    pub(super) fn new(predictors: &'p dyn PredictorLoader) -> Compiler<'p> {
        Compiler {
            predictors,
            diagnostics: Vec::new(),
            lead_fields: Names::default(),
            event_properties: Names::default(),
            event_types: Names::default(),
            trackers: Vec::new(),
            tracker_types: Vec::new(),
            score_index: FxHashMap::default(),
            score_outline: Vec::new(),
            named_conditions: IndexMap::new(),
            used_conditions: HashSet::new(),
            expanding: Vec::new(),
            current_score: None,
            dependencies: Vec::new(),
            lists: Vec::new(),
        }
    }

    /// Records that the score being compiled must be evaluated after `score`, named at `at`
    /// (in `from` when `component`).
    pub(super) fn depend_on(&mut self, score: usize, at: Range<usize>, component: bool) {
        self.dependencies.push(Dependency { score, at, component });
    }

    pub(super) fn error(&mut self, message: impl Into<String>, span: Option<Range<usize>>) {
        self.diagnostics.push(Diagnostic::error(message, span));
    }

    pub(super) fn warning(&mut self, message: impl Into<String>, span: Option<Range<usize>>) {
        self.diagnostics.push(Diagnostic::warning(message, span));
    }

    pub(super) fn finite(&mut self, value: &Spanned<f64>, what: &str) -> f64 {
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

    pub(super) fn duration(&mut self, text: &Spanned<String>, what: &str) -> Option<Duration> {
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

    /// A new tracker for the events of `types` (`None`: of every type) that pass `filter`,
    /// keeping the `keep` most recent (`None`: all); returns its index.
    pub(super) fn tracker(
        &mut self,
        types: Option<&Spanned<OneOrMany>>,
        filter: Option<Condition>,
        keep: Option<usize>,
    ) -> usize {
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
}
