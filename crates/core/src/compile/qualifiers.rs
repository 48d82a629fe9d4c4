//! Qualifiers and disqualifiers (the model format's section of that name): the tier each gives,
//! and its tests on the lead's fields, on its events and on the score's rules.

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::compiler::{Compiler, span};
use super::conditions::Record;
use crate::format::QualifierDef;
use crate::model::{EventTest, Qualifier, Tier};

impl Compiler<'_> {
    /// One entry of a score's `qualifiers` (or `disqualifiers`, which give no tier).
    pub(super) fn qualifier(
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
        Some(Qualifier { name, tier, when, event, rules, span: def.span() })
    }
}
