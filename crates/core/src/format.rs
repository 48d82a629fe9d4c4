//! The model file as written by people: plain serde data mirroring the TOML, one struct per table.
//!
//! Nothing here is checked beyond its TOML shape. [`crate::compile()`] turns a [`ModelFile`] into
//! the [`crate::Model`] the engine runs, and reports every mistake with the span kept by
//! [`toml::Spanned`]. docs/model-format.md documents every key; keep both in step.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// A whole model file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    #[serde(default)]
    pub model: ModelInfo,
    #[serde(default)]
    pub lead: LeadSection,
    /// The scores, in the order they are written (that is the order of output columns).
    #[serde(default)]
    pub scores: IndexMap<String, Spanned<ScoreDef>>,
    /// `[conditions.NAME]`: conditions written once and used anywhere a condition goes, as
    /// `{ condition = "NAME" }`.
    #[serde(default)]
    pub conditions: IndexMap<String, Spanned<ConditionDef>>,
    /// `[[tests]]`: leads with the scores the author expects them to get.
    #[serde(default)]
    pub tests: Vec<Spanned<TestDef>>,
    /// `[lists.NAME]`: the model's own version of a built-in list (`free_email`...).
    #[serde(default)]
    pub lists: IndexMap<String, Spanned<ListDef>>,
}

/// `[lists.NAME]`: replace a built-in list (`entries`, or a `file` of entries beside the model)
/// or adjust it (`add`, `remove`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDef {
    pub entries: Option<Spanned<Vec<Spanned<String>>>>,
    pub add: Option<Spanned<Vec<Spanned<String>>>>,
    pub remove: Option<Spanned<Vec<Spanned<String>>>>,
    /// A list file (one entry a line, `#` comments), relative to the model file.
    pub file: Option<Spanned<String>>,
}

/// `[model]`: what the model is.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
}

/// `[lead]`: how the engine reads leads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadSection {
    /// The field holding the lead's creation time (RFC 3339); inactivity rules count from it for
    /// leads without any qualifying event.
    pub created_at: Option<Spanned<String>>,
}

/// `[scores.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreDef {
    pub description: Option<String>,
    /// A predictive score: the trained model to use (a file path relative to the model file, or
    /// the name of a model the service trained). Its probability becomes the score, 0-100.
    pub predictive: Option<Spanned<String>>,
    /// How many of the fields that moved a predictive score most its explanation lists (default 3).
    pub factors: Option<Spanned<i64>>,
    /// The score applies only to leads matching this condition; other leads get 0 and no tier.
    pub applies_to: Option<Spanned<ConditionDef>>,
    /// The score takes the value (and, without tiers of its own, the tier) of the first of these
    /// scores whose condition the lead matches: one score per market or product line, read under
    /// one name.
    #[serde(default)]
    pub segments: Option<Spanned<Vec<Spanned<SegmentDef>>>>,
    /// Other scores this one adds up, each with its weight: `from = { fit = 1, engagement = 0.5 }`.
    #[serde(default)]
    pub from: IndexMap<String, Spanned<f64>>,
    #[serde(default)]
    pub rules: Vec<Spanned<RuleDef>>,
    /// Named groups of rules whose total is limited: `[scores.x.groups.email] max = 15`.
    #[serde(default)]
    pub groups: IndexMap<String, Spanned<GroupDef>>,
    /// Clamp the score to at least `min` and at most `max`.
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    /// Map [min, max] linearly onto 0-100 (needs both `min` and `max`).
    #[serde(default)]
    pub normalize: Option<Spanned<bool>>,
    /// How many decimals the score's value keeps, 0 to 6 (default 6): the value is rounded once,
    /// and tiers, files, answers, webhooks and history all read that rounded value.
    pub precision: Option<Spanned<i64>>,
    #[serde(default)]
    pub tiers: Vec<Spanned<TierDef>>,
    #[serde(default)]
    pub qualifiers: Vec<Spanned<QualifierDef>>,
    #[serde(default)]
    pub disqualifiers: Vec<Spanned<QualifierDef>>,
    /// The tier label a disqualified lead gets (default `disqualified`).
    pub disqualified_tier: Option<Spanned<String>>,
}

/// One entry of a score's `segments`: `{ when = {...}, score = "fit_emea" }`, or
/// `{ otherwise = true, score = "fit_rest" }` last.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    pub when: Option<Spanned<ConditionDef>>,
    #[serde(default)]
    pub otherwise: bool,
    pub score: Spanned<String>,
}

/// `[scores.x.groups.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    pub description: Option<String>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
}

/// One entry of `tiers`: a labelled range of the score, both ends inclusive.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDef {
    pub label: Spanned<String>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    /// A tier that only qualifiers can give (a lead never reaches it by points).
    #[serde(default)]
    pub qualifier_only: bool,
}

/// One `[[scores.x.rules]]` entry. Which keys are present decides its kind (attribute, cases,
/// event or inactivity); the compiler rejects mixtures.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub group: Option<Spanned<String>>,
    pub points: Option<Spanned<f64>>,
    /// Attribute rule: the condition on lead fields. On an event or inactivity rule: the rule
    /// applies only to leads matching it.
    pub when: Option<Spanned<ConditionDef>>,
    /// Attribute rule with several outcomes: the first matching case gives its points.
    pub cases: Option<Spanned<Vec<Spanned<CaseDef>>>>,
    /// Event rule (or inactivity rule): the event type or types.
    pub event: Option<Spanned<OneOrMany>>,
    /// Event rule: a condition on the event's properties.
    #[serde(rename = "where")]
    pub filter: Option<Spanned<ConditionDef>>,
    /// Sequence: only occurrences that follow an event of this kind within a time count.
    pub after: Option<Spanned<PrecedentDef>>,
    /// Count at most the N most recent occurrences.
    pub max_count: Option<Spanned<i64>>,
    /// Points of the 1st, 2nd, ... counted occurrence (oldest first).
    pub progressive: Option<Spanned<Vec<f64>>>,
    /// Points by the number of counted occurrences.
    pub bands: Option<Spanned<Vec<Spanned<BandDef>>>>,
    /// Only occurrences in the last `window` count (`30d`).
    pub window: Option<Spanned<String>>,
    pub decay: Option<Spanned<DecayDef>>,
    /// Inactivity rule: no qualifying event for this long (`30d`) gives `points`.
    pub inactive_for: Option<Spanned<String>>,
}

/// `after = { event = "webinar_attended", within = "7d" }` on an event rule: an occurrence counts
/// only when an event of these types (matching `where`) happened at most `within` before it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecedentDef {
    pub event: Spanned<OneOrMany>,
    #[serde(rename = "where")]
    pub filter: Option<Spanned<ConditionDef>>,
    pub within: Spanned<String>,
}

/// `{ when = {...}, points = N }` in a rule's `cases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDef {
    pub when: Option<Spanned<ConditionDef>>,
    /// `otherwise = true` matches every lead (a last, default case).
    #[serde(default)]
    pub otherwise: bool,
    pub points: Spanned<f64>,
}

/// `{ min = 1, max = 3, points = 2 }` in a rule's `bands`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandDef {
    pub min: Spanned<i64>,
    pub max: Option<Spanned<i64>>,
    pub points: Spanned<f64>,
}

/// `decay = { half_life = "30d" }`, `{ lose_percent = 25, every = "30d" }` or
/// `{ steps = [{ older_than = "90d", factor = 0.5 }] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayDef {
    pub half_life: Option<Spanned<String>>,
    pub lose_percent: Option<Spanned<f64>>,
    pub every: Option<Spanned<String>>,
    pub steps: Option<Vec<Spanned<DecayStepDef>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayStepDef {
    pub older_than: Spanned<String>,
    pub factor: Spanned<f64>,
}

/// A condition: tests on one `field` (all must hold), tests on another `score`, a named
/// `condition`, or a combination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    pub field: Option<Spanned<String>>,
    /// Tests on another score of the lead: its value (`min`, `max`, `above`, `below`, `equals`,
    /// `one_of`), its `tier`, or whether one of its `rule`s applied.
    pub score: Option<Spanned<String>>,
    /// With `score`: the score's tier is this one (or one of these).
    pub tier: Option<Spanned<OneOrMany>>,
    /// With `score`: this rule of the score applied.
    pub rule: Option<Spanned<String>>,
    /// A condition of `[conditions]`, by name.
    pub condition: Option<Spanned<String>>,
    pub equals: Option<Spanned<Scalar>>,
    pub one_of: Option<Spanned<Vec<Scalar>>>,
    /// Case-insensitive substring test; a list matches if any entry is contained.
    pub contains: Option<Spanned<OneOrMany>>,
    pub starts_with: Option<Spanned<OneOrMany>>,
    pub regex: Option<Spanned<String>>,
    /// Numeric range, inclusive (`min`, `max`) or exclusive (`above`, `below`).
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    pub above: Option<Spanned<f64>>,
    pub below: Option<Spanned<f64>>,
    pub present: Option<Spanned<bool>>,
    pub missing: Option<Spanned<bool>>,
    /// The e-mail address's domain (after the last `@`, case-insensitive) is one of these.
    pub email_domain: Option<Spanned<OneOrMany>>,
    /// The e-mail address belongs to a free-mail provider (true) or not (false).
    pub free_email: Option<Spanned<bool>>,
    /// The address's domain, or a parent domain of it, is a disposable-mail service's.
    pub disposable_email: Option<Spanned<bool>>,
    /// The address's local part (before the last `@`, without a `+tag`) is a role's (`info`).
    pub role_email: Option<Spanned<bool>>,
    /// The text looks like keyboard mashing or a placeholder rather than a name.
    pub gibberish: Option<Spanned<bool>>,
    /// Make `equals`, `one_of` and `starts_with` case-insensitive.
    #[serde(default)]
    pub ignore_case: bool,
    pub all: Option<Spanned<Vec<Spanned<ConditionDef>>>>,
    pub any: Option<Spanned<Vec<Spanned<ConditionDef>>>>,
    pub not: Option<Box<Spanned<ConditionDef>>>,
}

impl ConditionDef {
    /// The keys written in this condition (not in the conditions it combines), in the order of
    /// the reference.
    pub fn keys(&self) -> Vec<&'static str> {
        [
            ("field", self.field.is_some()),
            ("score", self.score.is_some()),
            ("tier", self.tier.is_some()),
            ("rule", self.rule.is_some()),
            ("condition", self.condition.is_some()),
            ("equals", self.equals.is_some()),
            ("one_of", self.one_of.is_some()),
            ("contains", self.contains.is_some()),
            ("starts_with", self.starts_with.is_some()),
            ("regex", self.regex.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("above", self.above.is_some()),
            ("below", self.below.is_some()),
            ("present", self.present.is_some()),
            ("missing", self.missing.is_some()),
            ("email_domain", self.email_domain.is_some()),
            ("free_email", self.free_email.is_some()),
            ("ignore_case", self.ignore_case),
            ("all", self.all.is_some()),
            ("any", self.any.is_some()),
            ("not", self.not.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect()
    }
}

/// A qualifier (or disqualifier): when all its given tests hold, the lead gets `tier`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualifierDef {
    pub name: Spanned<String>,
    pub description: Option<String>,
    /// The tier the lead gets (qualifiers only; default: the score's highest points tier).
    pub tier: Option<Spanned<String>>,
    /// A condition on lead fields.
    pub when: Option<Spanned<ConditionDef>>,
    /// The lead has an event of this type (or types)...
    pub event: Option<Spanned<OneOrMany>>,
    #[serde(rename = "where")]
    pub filter: Option<Spanned<ConditionDef>>,
    /// ... in the last `within` (`30d`; default: ever) ...
    pub within: Option<Spanned<String>>,
    /// ... at least this many times (default 1).
    pub min_count: Option<Spanned<i64>>,
    /// Rules of the same score that must all apply to the lead (BANT: budget, authority, ...).
    pub rules: Option<Spanned<Vec<Spanned<String>>>>,
}

/// A string or a list of strings.
#[derive(Debug, Clone)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

// Written by hand rather than `#[serde(untagged)]`, whose error ("data did not match any
// variant") does not tell a model author what to write.
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings, like \"a\" or [\"a\", \"b\"]")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut many = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    many.push(item);
                }
                Ok(OneOrMany::Many(many))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v).map(Scalar::Integer).or(Ok(Scalar::Float(v as f64)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `[[tests]]`: one lead, its events and an as-of time, with what some scores should be.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestDef {
    pub name: Spanned<String>,
    /// RFC 3339: the instant the lead is scored at.
    pub as_of: Spanned<String>,
    /// The lead's fields, as a leads file or the API would give them.
    #[serde(default)]
    pub lead: IndexMap<String, toml::Value>,
    #[serde(default)]
    pub events: Vec<Spanned<TestEventDef>>,
    /// Per score name, its expected value and/or tier.
    pub expect: IndexMap<String, Spanned<ExpectDef>>,
}

/// One event of a test: `{ type = "page_view", at = "...", properties = { ... } }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestEventDef {
    #[serde(rename = "type")]
    pub event_type: Spanned<String>,
    pub at: Spanned<String>,
    #[serde(default)]
    pub properties: IndexMap<String, toml::Value>,
}

/// What a test expects of one score: its value (within 1e-6) and/or its tier (`""` for none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDef {
    pub value: Option<Spanned<f64>>,
    pub tier: Option<Spanned<String>>,
}
