//! Rules (the model format's "Rules"): which kind a rule is from its keys, and each kind checked
//! and compiled: attribute and case rules, event rules with their points, bands and decay, and
//! inactivity rules.

use std::ops::Range;

use rustc_hash::FxHashMap;
use toml::Spanned;

use super::compiler::{Compiler, MAX_MAGNITUDE, span};
use super::conditions::Record;
use crate::format::{BandDef, DecayDef, PrecedentDef, RuleDef};
use crate::model::Rule;
use crate::rules::RuleKind;
use crate::rules::attribute::{AttributeRule, CaseRule};
use crate::rules::condition::Condition;
use crate::rules::event::{Band, Decay, EventPoints, EventRule, Precedent};
use crate::rules::inactivity::InactivityRule;
use crate::time::Duration;

impl Compiler<'_> {
    /// One rule of a score: its group, then its kind, told apart by its keys (`inactive_for`, then
    /// `event`, then `when` or `cases`).
    pub(super) fn rule(&mut self, def: Spanned<RuleDef>, group_index: &FxHashMap<String, usize>) -> Option<Rule> {
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
                Some(rule_span.clone()),
            );
            None
        }?;
        Some(Rule { name, group, kind, span: rule_span })
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
                ("after", def.after.as_ref().map(|s| s.span())),
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
                ("cases", def.cases.as_ref().map(|s| s.span())),
                ("after", def.after.as_ref().map(|s| s.span())),
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
        let lead_condition = self.lead_condition(def)?;
        let tracker = self.tracker(def.event.as_ref(), filter, Some(1));
        Some(RuleKind::Inactivity(InactivityRule { tracker, after: after?, points: points?, lead_condition }))
    }

    fn event_rule(&mut self, name: &str, def: &RuleDef) -> Option<RuleKind> {
        self.forbid(name, "an event rule", &[("cases", def.cases.as_ref().map(|s| s.span()))]);
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
        let lead_condition = self.lead_condition(def)?;
        // Bands count at most what decides the band, so the count shown never depends on how
        // many older occurrences the state happens to hold.
        let max_count = if matches!(points, EventPoints::Bands(_)) { keep } else { max_count };
        let (keep, after) = match &def.after {
            // Which occurrences a sequence counts depends on the preceding events around each of
            // them, so every occurrence is kept: the most recent ones may not be preceded.
            Some(precedent) => (None, Some(self.precedent(precedent)?)),
            None => (keep, None),
        };
        let tracker = self.tracker(def.event.as_ref(), filter, keep);
        Some(RuleKind::Event(EventRule { tracker, window, max_count, points, decay, lead_condition, after }))
    }

    /// `when` on an event or inactivity rule: a condition on the lead.
    fn lead_condition(&mut self, def: &RuleDef) -> Option<Option<Condition>> {
        match &def.when {
            Some(when) => self.condition(when, Record::Lead).map(Some),
            None => Some(None),
        }
    }

    /// A sequence's `after = { event = "...", where = {...}, within = "7d" }`.
    fn precedent(&mut self, def: &Spanned<PrecedentDef>) -> Option<Precedent> {
        let p = def.get_ref();
        let within = self.duration(&p.within, "`within`");
        let filter = p.filter.as_ref().and_then(|f| self.condition(f, Record::Event));
        if p.filter.is_some() && filter.is_none() {
            return None;
        }
        let tracker = self.tracker(Some(&p.event), filter, None);
        Some(Precedent { tracker, within: within? })
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
}
