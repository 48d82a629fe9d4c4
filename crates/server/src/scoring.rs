//! The bridge between stored leads and the engine: compiled models by id (with the predictive
//! models they are pinned to), a lead's field values and state, and evaluation into storable
//! score rows.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use leadscore_core::{Compiled, Event, LeadScores, LeadState, Model, ModelError, Predictor, Timestamp, Value};
use leadscore_predict::predictive::{PredictiveModel, SavedModel};
use leadscore_store::events::StoredEvent;
use leadscore_store::leads::LeadRow;
use leadscore_store::models::ModelVersion;
use leadscore_store::predictive::PredictiveVersion;
use leadscore_store::scores::ScoreRow;
use leadscore_store::{Reads, StoreError};

/// The event types identify, alias and group calls are stored under: kept for idempotency and
/// audit, never activity.
pub const IDENTIFY: &str = "identify";
pub const ALIAS: &str = "alias";
pub const GROUP: &str = "group";

/// Compiled models by their id, and the predictive models they use by theirs. A stored version
/// never changes, but a cache can be filled inside a transaction that then rolls back, and SQLite
/// gives the freed id to the next row, of any workspace: so a hit counts only if the entry was
/// made from the same stored row (workspace, text and pins; or workspace, name, version and
/// creation time).
#[derive(Default)]
pub struct Models {
    compiled: Mutex<HashMap<i64, (ModelVersion, Arc<Model>)>>,
    predictors: Mutex<HashMap<i64, (PredictiveIdentity, Arc<PredictiveModel>)>>,
}

/// What tells two stored predictive model versions apart when they had the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PredictiveIdentity {
    workspace_id: i64,
    name: String,
    version: i64,
    created_at: i64,
}

impl PredictiveIdentity {
    fn of(stored: &PredictiveVersion) -> PredictiveIdentity {
        PredictiveIdentity {
            workspace_id: stored.workspace_id,
            name: stored.name.clone(),
            version: stored.version,
            created_at: stored.created_at,
        }
    }
}

/// What compiling a model's text for a new version made: the compiler's result and, for each
/// predictive reference it resolved, the id of the stored predictive model to pin.
pub struct NewVersion {
    pub compiled: Result<Compiled, ModelError>,
    pub predictors: BTreeMap<String, i64>,
}

impl Models {
    /// The stored version compiled with the predictive models it was pinned to when stored.
    pub fn get(&self, reads: &dyn Reads, version: &ModelVersion) -> Result<Arc<Model>, StoreError> {
        let hit = self.compiled.lock().ok().and_then(|cache| {
            let (made_from, model) = cache.get(&version.id)?;
            let same = made_from.workspace_id == version.workspace_id
                && made_from.source == version.source
                && made_from.predictors == version.predictors;
            same.then(|| model.clone())
        });
        if let Some(model) = hit {
            return Ok(model);
        }
        let fault = RefCell::new(None);
        let loader = |reference: &str| -> Result<Arc<dyn Predictor>, String> {
            let Some(&id) = version.predictors.get(reference) else {
                return Err(format!("`{reference}` was not pinned to a predictive model when this version was stored"));
            };
            match self.predictor(reads, version.workspace_id, id) {
                Ok(model) => Ok(model),
                Err(error) => {
                    let message = error.to_string();
                    *fault.borrow_mut() = Some(error);
                    Err(message)
                }
            }
        };
        let compiled = leadscore_core::compile_with(&version.source, &loader);
        if let Some(error) = fault.into_inner() {
            return Err(error);
        }
        let compiled = compiled
            .map_err(|e| StoreError::ModelDoesNotCompile { model_id: version.id, reason: e.render("model") })?;
        let model = Arc::new(compiled.model);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(version.id, (version.clone(), model.clone()));
        }
        Ok(model)
    }

    /// Compiles a model's text for a new version of the workspace's model: each predictive
    /// reference resolves to the latest version of the workspace's predictive model of that name
    /// (an unknown name is a diagnostic at the reference). Store the version with the returned pins.
    pub fn compile_new(&self, reads: &dyn Reads, workspace_id: i64, source: &str) -> Result<NewVersion, StoreError> {
        let pins = RefCell::new(BTreeMap::new());
        let fault = RefCell::new(None);
        let loader = |reference: &str| -> Result<Arc<dyn Predictor>, String> {
            if !valid_name(reference) {
                return Err(format!(
                    "`{reference}` is not the name of a predictive model: names are letters, digits, `_`, `-` and `.`"
                ));
            }
            let found = reads
                .latest_predictive_model(workspace_id, reference)
                .and_then(|latest| latest.map(|stored| self.checked(stored)).transpose());
            match found {
                Ok(Some((id, model))) => {
                    pins.borrow_mut().insert(reference.to_string(), id);
                    Ok(model)
                }
                Ok(None) => Err(format!(
                    "no predictive model `{reference}` in this workspace: upload one with PUT /api/predictive-models/{reference}"
                )),
                Err(error) => {
                    let message = error.to_string();
                    *fault.borrow_mut() = Some(error);
                    Err(message)
                }
            }
        };
        let compiled = leadscore_core::compile_with(source, &loader);
        if let Some(error) = fault.into_inner() {
            return Err(error);
        }
        Ok(NewVersion { compiled, predictors: pins.into_inner() })
    }

    /// A stored predictive model version of the workspace, checked once and kept. The row is read
    /// each time (this runs only when a model is compiled) to tell whether the kept one is it.
    pub fn predictor(&self, reads: &dyn Reads, workspace_id: i64, id: i64) -> Result<Arc<PredictiveModel>, StoreError> {
        let stored = reads
            .predictive_model(workspace_id, id)?
            .ok_or_else(|| StoreError::NotFound(format!("no predictive model {id} in this workspace")))?;
        Ok(self.checked(stored)?.1)
    }

    /// A stored predictive model version checked (or found in the cache), with its id.
    fn checked(&self, stored: PredictiveVersion) -> Result<(i64, Arc<PredictiveModel>), StoreError> {
        let identity = PredictiveIdentity::of(&stored);
        let hit = self.predictors.lock().ok().and_then(|cache| {
            let (made_from, model) = cache.get(&stored.id)?;
            (*made_from == identity).then(|| model.clone())
        });
        if let Some(model) = hit {
            return Ok((stored.id, model));
        }
        let label = format!("predictive model `{}` v{}", stored.name, stored.version);
        let model = SavedModel::from_json(stored.body.as_bytes(), &label)
            .and_then(|saved| PredictiveModel::new(saved, &label))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((stored.id, self.remember(&stored, model)))
    }

    /// Keeps a predictive model just stored, so that it is not parsed and checked again.
    pub fn remember(&self, stored: &PredictiveVersion, model: PredictiveModel) -> Arc<PredictiveModel> {
        let model = Arc::new(model);
        if let Ok(mut cache) = self.predictors.lock() {
            cache.insert(stored.id, (PredictiveIdentity::of(stored), model.clone()));
        }
        model
    }
}

/// Whether `name` can name a predictive model: 1 to 100 letters, digits, `_`, `-` or `.`, so that
/// a file name such as `conversion.json` works too.
pub fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len()) && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The value of each field the model reads, from the lead's attributes; `email` and `user_id`
/// fall back to the lead's own columns (the batch reader gives `user_id` the lead's id too).
///
/// `created_at` does not fall back to the time the service first saw the lead: an imported lead
/// was first seen at its import, not when it was created, and a file scored by `leadscore score`
/// has no such time either. A lead without the attribute has no creation time, in both.
pub fn lead_values(model: &Model, lead: &LeadRow) -> Vec<Value> {
    field_values(model, &lead.attributes, lead.email.as_deref(), lead.user_id.as_deref())
}

/// [`lead_values`] from a lead's attributes, e-mail and user id given apart (its earlier ones).
pub fn field_values(
    model: &Model,
    attributes: &serde_json::Map<String, serde_json::Value>,
    email: Option<&str>,
    user_id: Option<&str>,
) -> Vec<Value> {
    model
        .lead_fields()
        .iter()
        .map(|field| match attributes.get(field) {
            Some(value) => Value::from_json(value),
            None => match field.as_str() {
                "email" => email.map_or(Value::Missing, Value::text),
                "user_id" => user_id.map_or(Value::Missing, Value::text),
                _ => Value::Missing,
            },
        })
        .collect()
}

pub fn event_properties(model: &Model, properties: &serde_json::Map<String, serde_json::Value>) -> Vec<Value> {
    model.event_properties().iter().map(|p| properties.get(p).map_or(Value::Missing, Value::from_json)).collect()
}

/// Applies one stored or incoming event to a state.
pub fn apply(
    model: &Model,
    state: &mut LeadState,
    event_type: &str,
    at: i64,
    properties: &serde_json::Map<String, serde_json::Value>,
) {
    let values = event_properties(model, properties);
    state.apply(model, &Event { event_type: model.event_type(event_type), at: Timestamp(at), properties: &values });
}

/// The lead's state for `model`: the stored one when it was built for this model, else rebuilt
/// from every stored event. The second value says whether it was rebuilt (then it already holds
/// every stored event).
pub fn state_for(
    reads: &dyn Reads,
    model: &Model,
    model_id: i64,
    lead: &LeadRow,
) -> Result<(LeadState, bool), StoreError> {
    if let Some(state) = stored_state(model, model_id, lead) {
        return Ok((state, false));
    }
    if lead.last_event_id.is_none() {
        // No stored event (a new lead): nothing to read.
        return Ok((LeadState::new(model), true));
    }
    Ok((rebuilt_state(model, &reads.events_of(lead)?), true))
}

/// The lead's stored state, when it was built for `model` (whose id is `model_id`) and reads
/// back.
pub fn stored_state(model: &Model, model_id: i64, lead: &LeadRow) -> Option<LeadState> {
    if lead.state_model_id != Some(model_id) {
        return None;
    }
    LeadState::from_occurrences(model, parse_state(lead.state.as_deref()?)?)
}

/// A state built for `model` from a lead's stored events (oldest first).
pub fn rebuilt_state(model: &Model, events: &[StoredEvent]) -> LeadState {
    let mut state = LeadState::new(model);
    for StoredEvent { event_type, at, properties, .. } in events {
        if ![IDENTIFY, ALIAS, GROUP].contains(&event_type.as_str()) {
            apply(model, &mut state, event_type, *at, properties);
        }
    }
    state
}

/// The stored form of a lead's state: per tracker, its occurrence times (milliseconds), the first
/// as a number and each next one as its difference from the one before (they ascend, so it is
/// never negative), in base 36 and separated by `,`; each tracker ends with `;`. It is about a
/// third of the JSON array of arrays it replaces, which matters because the lead's row is
/// rewritten at every request that touches the lead. Written by hand: it is one loop each way.
pub fn state_text(occurrences: &[Vec<Timestamp>]) -> String {
    let mut text = String::with_capacity(16 * occurrences.len());
    for times in occurrences {
        let mut previous = None;
        for time in times {
            if previous.is_some() {
                text.push(',');
            }
            match previous {
                None if time.0 < 0 => {
                    text.push('-');
                    push_base36(&mut text, time.0.unsigned_abs());
                }
                None => push_base36(&mut text, time.0 as u64),
                Some(before) => push_base36(&mut text, time.0.abs_diff(before)),
            }
            previous = Some(time.0);
        }
        text.push(';');
    }
    text
}

fn push_base36(text: &mut String, mut number: u64) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = [0u8; 13];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = DIGITS[(number % 36) as usize];
        number /= 36;
        if number == 0 {
            break;
        }
    }
    text.extend(digits[start..].iter().map(|&d| d as char));
}

/// [`state_text`] followed by `@` and the instant the state was last evaluated at (base 36
/// milliseconds): what explaining the next change of the lead's scores starts from.
pub fn scored_state_text(occurrences: &[Vec<Timestamp>], scored_at: i64) -> String {
    let mut text = state_text(occurrences);
    text.push('@');
    if scored_at < 0 {
        text.push('-');
    }
    push_base36(&mut text, scored_at.unsigned_abs());
    text
}

/// The instant a stored state was last evaluated at, when its text says ([`scored_state_text`]).
pub fn scored_at(text: &str) -> Option<i64> {
    let (_, time) = text.rsplit_once('@')?;
    match time.strip_prefix('-') {
        Some(digits) => 0i64.checked_sub_unsigned(u64::from_str_radix(digits, 36).ok()?),
        None => i64::try_from(u64::from_str_radix(time, 36).ok()?).ok(),
    }
}

/// Reads [`state_text`]'s form back (with or without [`scored_state_text`]'s instant); `None`
/// for anything else (such as the JSON earlier versions stored), and the state is then rebuilt
/// from the lead's events.
pub fn parse_state(text: &str) -> Option<Vec<Vec<Timestamp>>> {
    let text = match text.rsplit_once('@') {
        Some((state, _)) => state,
        None => text,
    };
    if !text.is_empty() && !text.ends_with(';') {
        return None;
    }
    text.split_terminator(';')
        .map(|tracker| {
            let mut previous: Option<i64> = None;
            tracker
                .split(',')
                .filter(|part| !tracker.is_empty() || !part.is_empty())
                .map(|part| {
                    let time = match previous {
                        None => match part.strip_prefix('-') {
                            Some(digits) => 0i64.checked_sub_unsigned(u64::from_str_radix(digits, 36).ok()?)?,
                            None => i64::try_from(u64::from_str_radix(part, 36).ok()?).ok()?,
                        },
                        Some(before) => before.checked_add_unsigned(u64::from_str_radix(part, 36).ok()?)?,
                    };
                    previous = Some(time);
                    Some(Timestamp(time))
                })
                .collect()
        })
        .collect()
}

/// Evaluates every score of a lead at `now` into rows to store.
pub fn evaluate(model: &Model, model_id: i64, lead: &LeadRow, state: &LeadState, now: i64) -> Vec<ScoreRow> {
    evaluate_with_qualifiers(model, model_id, lead, state, now).0
}

/// Every score of a lead at `now` with its explanation, as JSON by score name.
pub fn explain(model: &Model, lead: &LeadRow, state: &LeadState, now: i64) -> Vec<(String, serde_json::Value)> {
    let scores: LeadScores<'_> = model.evaluate(&lead_values(model, lead), state, Timestamp(now));
    scores
        .scores
        .iter()
        .map(|score| (score.name.to_string(), serde_json::to_value(score).unwrap_or(serde_json::Value::Null)))
        .collect()
}

/// A score's value, tier and explanation, then what would move it next: one score of the lead
/// answer, as `leadscore score --explain` writes it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ExplainedScore<'m> {
    #[serde(flatten)]
    pub result: &'m leadscore_core::ScoreResult<'m>,
    /// The next tier, the fewest events that reach it and when the score falls a tier without
    /// new activity (docs/model-format.md, "Outlook").
    pub outlook: &'m leadscore_core::ScoreOutlook<'m>,
}

/// Same as [`explain`], each score with its outlook ([`Model::outlook`]).
pub fn explain_with_outlook(
    model: &Model,
    lead: &LeadRow,
    state: &LeadState,
    now: i64,
) -> Vec<(String, serde_json::Value)> {
    let values = lead_values(model, lead);
    let scores: LeadScores<'_> = model.evaluate(&values, state, Timestamp(now));
    let outlooks = model.outlook(&values, state, Timestamp(now));
    scores
        .scores
        .iter()
        .zip(&outlooks)
        .map(|(result, outlook)| {
            let explained = ExplainedScore { result, outlook };
            (result.name.to_string(), serde_json::to_value(&explained).unwrap_or(serde_json::Value::Null))
        })
        .collect()
}

/// Same as [`evaluate`], with the qualifier that set each score's tier, if any.
pub fn evaluate_with_qualifiers(
    model: &Model,
    model_id: i64,
    lead: &LeadRow,
    state: &LeadState,
    now: i64,
) -> (Vec<ScoreRow>, Vec<Option<String>>) {
    let scores: LeadScores<'_> = model.evaluate(&lead_values(model, lead), state, Timestamp(now));
    rows_of(&scores, model_id, now)
}

/// The rows to store of a lead's evaluated scores, with the qualifier that set each tier.
pub fn rows_of(scores: &LeadScores<'_>, model_id: i64, now: i64) -> (Vec<ScoreRow>, Vec<Option<String>>) {
    let qualified_by = scores.scores.iter().map(|s| s.qualified_by.map(str::to_string)).collect();
    let rows = scores
        .scores
        .iter()
        .map(|score| ScoreRow {
            score: score.name.to_string(),
            // Stored, answered and notified as batch output writes it.
            value: leadscore_core::round_score(score.value),
            tier: score.tier.map(str::to_string),
            model_id,
            evaluated_at: now,
            overridden: None,
        })
        .collect();
    (rows, qualified_by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::{Store, models, workspaces};

    #[test]
    fn stored_states_read_back_as_written() {
        let cases: Vec<Vec<Vec<i64>>> = vec![
            vec![],
            vec![vec![]],
            vec![vec![], vec![], vec![]],
            vec![vec![1_795_421_731_000], vec![], vec![0, 0, 5, 1_800_000_000_000]],
            vec![vec![-86_400_000, -1, 0, 35, 36, i64::MAX]],
            vec![vec![i64::MIN, i64::MIN, i64::MAX]],
        ];
        for occurrences in cases {
            let times: Vec<Vec<Timestamp>> =
                occurrences.iter().map(|t| t.iter().copied().map(Timestamp).collect()).collect();
            let text = state_text(&times);
            assert_eq!(parse_state(&text), Some(times), "{text}");
        }
        assert_eq!(state_text(&[vec![], vec![Timestamp(36), Timestamp(72)]]), ";10,10;");
        let scored = scored_state_text(&[vec![Timestamp(36)]], 1_795_421_731_000);
        assert_eq!(parse_state(&scored), Some(vec![vec![Timestamp(36)]]), "{scored}");
        assert_eq!(scored_at(&scored), Some(1_795_421_731_000));
        assert_eq!(scored_at(&scored_state_text(&[], -5)), Some(-5));
        assert_eq!(scored_at(";10,10;"), None);
        // The JSON earlier versions stored, and damaged text, are not states: they are rebuilt.
        for text in ["[[1,2],[]]", "[]", "1,2", "1,,2;", "1,#;", "-;", ";;-1,-1;", "zzzzzzzzzzzzzz;"] {
            assert_eq!(parse_state(text), None, "{text}");
        }
    }

    /// A lead whose stored state is the JSON of earlier versions is rebuilt from its events.
    #[test]
    fn a_state_stored_by_an_earlier_version_is_rebuilt_from_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let source = "[scores.activity]\nrules = [{ name = \"visits\", event = \"visit\", points = 1 }]\n";
        let (state, rebuilt) = store
            .write_blocking(move |c| {
                let workspace = workspaces::find_or_create(c, "w", leadscore_store::now_ms())?;
                let version = models::add(c, workspace.id, source, &BTreeMap::new(), None, leadscore_store::now_ms())?;
                let model = leadscore_core::compile(source).map_err(|e| StoreError::Corrupt(e.render("m")))?.model;
                let mut lead = leadscore_store::leads::create(c, workspace.id, Some("u"), 0)?;
                let none = serde_json::Map::new();
                for (id, at) in [("a", 10), ("b", 20)] {
                    let event = leadscore_store::events::NewEvent {
                        message_id: id,
                        event_type: "visit",
                        at,
                        received_at: at,
                        properties: &none,
                    };
                    leadscore_store::events::insert(c, &mut lead, &event)?;
                }
                lead.state = Some("[[10,20]]".to_string());
                lead.state_model_id = Some(version.id);
                let (state, rebuilt) = state_for(c, &model, version.id, &lead)?;
                Ok((state.occurrences().to_vec(), rebuilt))
            })
            .unwrap();
        assert!(rebuilt);
        assert_eq!(state, [vec![Timestamp(10), Timestamp(20)]]);
    }

    /// An inactivity rule sees no creation time for a lead without a `created_at` attribute,
    /// whenever the service first saw it: as `leadscore score` sees a file's lead without one.
    #[test]
    fn a_lead_without_created_at_has_no_creation_time() {
        let source = "[lead]\ncreated_at = \"created_at\"\n[scores.s]\n[[scores.s.rules]]\nname = \"quiet\"\ninactive_for = \"30d\"\npoints = -10\n";
        let model = leadscore_core::compile(source).unwrap().model;
        let now = 1_800_000_000_000;
        let mut lead = LeadRow {
            id: 1,
            workspace_id: 1,
            user_id: Some("u".to_string()),
            email: None,
            attributes: serde_json::Map::new(),
            created_at: now - 1000,
            updated_at: now,
            last_event_at: None,
            stage: "lead".to_string(),
            state: None,
            state_model_id: None,
            last_event_id: None,
        };
        assert_eq!(lead_values(&model, &lead), [Value::Missing]);
        let state = LeadState::new(&model);
        assert_eq!(evaluate(&model, 1, &lead, &state, now)[0].value, -10.0);
        lead.attributes.insert("created_at".to_string(), Timestamp(now - 1000).to_string().into());
        assert_eq!(evaluate(&model, 1, &lead, &state, now)[0].value, 0.0);
    }

    #[test]
    fn a_cached_model_of_a_rolled_back_version_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let cache = Arc::new(Models::default());
        let (a, b) = store
            .write_blocking(|c| {
                Ok((
                    workspaces::find_or_create(c, "a", leadscore_store::now_ms())?.id,
                    workspaces::find_or_create(c, "b", leadscore_store::now_ms())?.id,
                ))
            })
            .unwrap();
        let first = cache.clone();
        let rolled_back: Result<(), StoreError> = store.write_blocking(move |c| {
            let version =
                models::add(c, a, "[scores.alpha]\nrules = []\n", &BTreeMap::new(), None, leadscore_store::now_ms())?;
            first.get(c, &version)?;
            Err(StoreError::Conflict("changed my mind".to_string()))
        });
        assert!(rolled_back.is_err());
        let second = cache.clone();
        let names = store
            .write_blocking(move |c| {
                let version = models::add(
                    c,
                    b,
                    "[scores.beta]\nrules = []\n",
                    &BTreeMap::new(),
                    None,
                    leadscore_store::now_ms(),
                )?;
                Ok(second.get(c, &version)?.score_names().map(str::to_string).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!(names, ["beta"]);
    }

    #[test]
    fn a_model_whose_list_is_a_file_is_refused_with_what_to_write_instead() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let models = Models::default();
        let source = "[lists.disposable_email]\nfile = \"throwaway.txt\"\n[scores.s]\n[[scores.s.rules]]\nname = \"r\"\n\
                      when = { field = \"email\", disposable_email = true }\npoints = -5\n";
        let inline = "[lists.disposable_email]\nentries = [\"burner.example\"]\n[scores.s]\n[[scores.s.rules]]\n\
                      name = \"r\"\nwhen = { field = \"email\", disposable_email = true }\npoints = -5\n";
        let (refused, accepted) = store
            .write_blocking(move |c| {
                let workspace = workspaces::find_or_create(c, "w", leadscore_store::now_ms())?.id;
                Ok((models.compile_new(c, workspace, source)?, models.compile_new(c, workspace, inline)?))
            })
            .unwrap();
        let message = refused.compiled.unwrap_err().render("model");
        assert!(
            message.contains("`throwaway.txt` cannot be used: put its entries in the model with `entries = [\"...\"]`"),
            "{message}"
        );
        assert!(accepted.compiled.is_ok());
    }
}
