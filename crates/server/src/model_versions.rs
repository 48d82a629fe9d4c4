//! A workspace's scoring model versions, as the API (`routes/models.rs`) and the console
//! (`console/models.rs`) handle them alike: checking a model's text (the diagnostics `leadscore
//! check` prints, each with its line and column, and the model's own `[[tests]]` that fail), storing a new version with who uploaded it,
//! listing and reading versions, previewing one against the active version, activating one and
//! rolling back (each starting the rescoring it records).

use std::collections::BTreeMap;

use leadscore_core::diagnostic::line_column;
use leadscore_core::{Diagnostic, Severity};
use leadscore_store::models::{ModelVersion, Origin};
use leadscore_store::{Reads, StoreError, now_ms};
use serde::Serialize;

use crate::activation;
use crate::preview::{self, Comparison, Preview, Versions};
use crate::preview_jobs::{Key, Status};
use crate::state::AppState;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiagnosticSeverity {
    Error,
    Warning,
}

/// An error or a warning about a model, where `leadscore check` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Diagnostic)]
pub struct DiagnosticView {
    pub severity: DiagnosticSeverity,
    /// The line and column (from 1) it points at, or `null` for the model as a whole.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// The compiler's diagnostics with the line and column of their span in `source`.
pub fn located(source: &str, diagnostics: &[Diagnostic]) -> Vec<DiagnosticView> {
    diagnostics
        .iter()
        .map(|d| {
            let (line, column) = d.span.as_ref().map_or((None, None), |s| {
                let (l, c) = line_column(source, s.start);
                (Some(l), Some(c))
            });
            DiagnosticView {
                severity: if d.severity == Severity::Error {
                    DiagnosticSeverity::Error
                } else {
                    DiagnosticSeverity::Warning
                },
                line,
                column,
                message: d.message.clone(),
            }
        })
        .collect()
}

/// A model that does not compile: a summary, and every diagnostic with its line.
#[derive(Debug, Clone)]
pub struct InvalidModel {
    pub message: String,
    pub diagnostics: Vec<DiagnosticView>,
}

/// A model that compiles: what `leadscore check` warns of (the compiler's warnings and the tiers
/// no lead can reach, in the order of the text), and the predictive model versions it would be
/// pinned to.
pub struct ValidModel {
    pub warnings: Vec<DiagnosticView>,
    predictors: BTreeMap<String, i64>,
}

/// Compiles `source` as a new version of the workspace's model would be (predictive references
/// resolved to the latest version of each named predictive model), on a read snapshot.
pub async fn check(
    state: &AppState,
    workspace_id: i64,
    source: String,
) -> Result<Result<ValidModel, InvalidModel>, StoreError> {
    let models = state.models.clone();
    state
        .storage
        .read(move |reads| {
            let new_version = models.compile_new(reads, workspace_id, &source)?;
            Ok(match new_version.compiled {
                Ok(compiled) => {
                    // A model whose own tests fail is refused like one that does not compile:
                    // its author said what it must score, and it does not.
                    let failures: Vec<Diagnostic> = leadscore_core::model_tests::run(&compiled.model)
                        .iter()
                        .filter_map(|outcome| outcome.diagnostic())
                        .collect();
                    if let Some(first) = failures.first() {
                        return Ok(Err(InvalidModel {
                            message: format!(
                                "{} of the model's tests fail; the first: {}",
                                failures.len(),
                                first.message
                            ),
                            diagnostics: located(&source, &failures),
                        }));
                    }
                    let mut warnings = compiled.warnings;
                    warnings.extend(leadscore_core::check::warnings(&compiled.model));
                    // What the workspace's retention does to the rules (no place in the text: last).
                    if let Some(retention) = reads.retention(workspace_id)? {
                        let kept = leadscore_core::Duration::from_days(retention.events_days);
                        warnings.extend(leadscore_core::check::retention_warnings(&compiled.model, kept));
                    }
                    warnings.sort_by_key(|w| w.span.as_ref().map_or(0, |s| s.start));
                    Ok(ValidModel { warnings: located(&source, &warnings), predictors: new_version.predictors })
                }
                Err(error) => Err(InvalidModel {
                    message: match error.errors().next() {
                        Some(first) => {
                            format!("the model has {} error(s); the first: {}", error.errors().count(), first.message)
                        }
                        None => "the model has errors".to_string(),
                    },
                    diagnostics: located(&source, &error.diagnostics),
                }),
            })
        })
        .await
}

/// A version stored.
pub struct Saved {
    pub version: i64,
    /// Whether it is active: the workspace's first version is activated at once.
    pub active: bool,
    pub warnings: Vec<DiagnosticView>,
}

/// Checks `source` and, if it compiles, stores it as the workspace's next version, recording
/// `uploaded_by`; the workspace's first version is activated (and its leads rescored) at once.
pub async fn save(
    state: &AppState,
    workspace_id: i64,
    source: String,
    uploaded_by: String,
) -> Result<Result<Saved, InvalidModel>, StoreError> {
    let valid = match check(state, workspace_id, source.clone()).await? {
        Ok(valid) => valid,
        Err(invalid) => return Ok(Err(invalid)),
    };
    let predictors = valid.predictors;
    let now = now_ms();
    let (version, active) = state
        .storage
        .write(move |transaction| {
            let first = transaction.active_model(workspace_id)?.is_none();
            let version = transaction.add_model_version(workspace_id, &source, &predictors, Some(&uploaded_by), now)?;
            if first {
                activation::activate(transaction, workspace_id, version.id, Origin::Upload, now)?;
            }
            Ok((version, first))
        })
        .await?;
    if active {
        activation::rescore(state, workspace_id);
    }
    Ok(Ok(Saved { version: version.version, active, warnings: valid.warnings }))
}

/// A version as listed.
pub struct Listed {
    pub version: i64,
    pub created_at: i64,
    pub uploaded_by: Option<String>,
    pub active: bool,
}

/// The workspace's versions, oldest first, and which is active.
pub async fn list(state: &AppState, workspace_id: i64) -> Result<Vec<Listed>, StoreError> {
    state
        .storage
        .read(move |reads| {
            let active = reads.active_model(workspace_id)?.map(|v| v.id);
            let versions = reads.model_versions(workspace_id)?;
            Ok(versions
                .into_iter()
                .map(|listed| Listed {
                    version: listed.version,
                    created_at: listed.created_at,
                    active: Some(listed.id) == active,
                    uploaded_by: listed.uploaded_by,
                })
                .collect())
        })
        .await
}

/// A stored version with what is known of it.
pub struct Stored {
    pub model: ModelVersion,
    pub active: bool,
    pub uploaded_by: Option<String>,
    /// By predictive reference in the text: the predictive model's name and version it is pinned to.
    pub predictive: BTreeMap<String, (String, i64)>,
}

/// The workspace's version numbered `version`, in `reads`.
fn version_in(reads: &dyn Reads, workspace_id: i64, version: i64) -> Result<ModelVersion, StoreError> {
    reads
        .model_id_of_version(workspace_id, version)?
        .map(|id| reads.model_by_id(id))
        .transpose()?
        .flatten()
        .ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))
}

/// The workspace's version numbered `version` (`NotFound` if there is none).
pub async fn stored(state: &AppState, workspace_id: i64, version: i64) -> Result<Stored, StoreError> {
    state
        .storage
        .read(move |reads| {
            let model = version_in(reads, workspace_id, version)?;
            let active = reads.active_model(workspace_id)?.is_some_and(|active| active.id == model.id);
            let uploaded_by =
                reads.model_versions(workspace_id)?.into_iter().find(|v| v.id == model.id).and_then(|v| v.uploaded_by);
            let mut predictive = BTreeMap::new();
            for (reference, id) in &model.predictors {
                if let Some(pinned) = reads.predictive_model(workspace_id, *id)? {
                    predictive.insert(reference.clone(), (pinned.name, pinned.version));
                }
            }
            Ok(Stored { model, active, uploaded_by, predictive })
        })
        .await
}

/// How version `version` would score up to `limit` of the workspace's leads against the active
/// version, listing at most `max_changes` tier changes. Changes nothing.
pub async fn preview(
    state: &AppState,
    workspace_id: i64,
    version: i64,
    limit: u32,
    max_changes: u32,
) -> Result<Preview, StoreError> {
    let models = state.models.clone();
    state
        .storage
        .read(move |reads| {
            // Read in the snapshot, so that every event it holds is at or before this time.
            let now = now_ms();
            let candidate = version_in(reads, workspace_id, version)?;
            let active = reads.active_model(workspace_id)?;
            preview::compare(reads, &models, workspace_id, &candidate, active.as_ref(), limit, max_changes, now)
        })
        .await
}

/// Tier changes a background preview lists.
pub const BACKGROUND_CHANGES_LISTED: u32 = 100;

/// A background preview: the versions compared (numbers) and where it stands (`None` for the
/// active version itself: nothing to compare, nothing started).
pub struct BackgroundPreview {
    pub version: i64,
    pub compared_with: Option<i64>,
    pub status: Option<Status>,
}

/// Version `version` against the active one over every lead of the workspace, in the
/// background: the kept result when it is fresh (see [`Status::is_stale`]), the progress of the
/// comparison running, or else a comparison started now (waiting `Config::preview_first_wait`
/// for it). `again`
/// starts a new one even when a fresh result is kept (never while one runs).
pub async fn background_preview(
    state: &AppState,
    workspace_id: i64,
    version: i64,
    again: bool,
) -> Result<BackgroundPreview, StoreError> {
    let (candidate, active, changed_at) = state
        .storage
        .read(move |reads| {
            let candidate = version_in(reads, workspace_id, version)?;
            // The stored scores a result counted against change at every activation and rollback.
            let changed_at = reads
                .model_activations(workspace_id)?
                .iter()
                .map(|activation| activation.at.max(activation.undone_at.unwrap_or(i64::MIN)))
                .max()
                .unwrap_or(i64::MIN);
            Ok((candidate, reads.active_model(workspace_id)?, changed_at))
        })
        .await?;
    let key = Key { workspace_id, candidate_id: candidate.id, active_id: active.as_ref().map(|a| a.id) };
    let compared_with = active.as_ref().map(|a| a.version);
    if compared_with == Some(version) {
        return Ok(BackgroundPreview { version, compared_with, status: None });
    }
    let now = now_ms();
    let status = match state.previews.status(key) {
        Some(status @ Status::Running { .. }) => status,
        Some(status) if !again && !status.is_stale(changed_at, now) => status,
        _ => {
            // The leads to compare (merged ones left out), from the counts the store keeps per
            // stage rather than a count of every row (a third of a second at a million leads).
            let total: i64 = state
                .storage
                .read(move |reads| Ok(reads.stage_counts(workspace_id)?.iter().map(|(_, n)| n).sum()))
                .await?;
            let job = state.previews.start(key, u64::try_from(total).unwrap_or(0), now);
            let (finished, wait) = tokio::sync::oneshot::channel();
            tokio::spawn(run_background_preview(state.clone(), key, job, candidate, active, finished));
            // Either it finished (the result is kept) or it goes on after the wait.
            let _ = tokio::time::timeout(state.config.preview_first_wait, wait).await;
            state.previews.status(key).unwrap_or(Status::Running { done: 0, total: 0, started_at: now })
        }
    };
    Ok(BackgroundPreview { version, compared_with, status: Some(status) })
}

/// Job `job`: compares the versions over every lead, keeping its progress and then its result
/// (or its failure) in `state.previews`; tells `finished` when done.
async fn run_background_preview(
    state: AppState,
    key: Key,
    job: u64,
    candidate: ModelVersion,
    active: Option<ModelVersion>,
    finished: tokio::sync::oneshot::Sender<()>,
) {
    let status = match compare_in_batches(&state, key, job, candidate, active).await {
        Ok(Some(preview)) => Status::Finished { preview: std::sync::Arc::new(preview), computed_at: now_ms() },
        // No longer wanted: replaced or forgotten.
        Ok(None) => return,
        Err(error) => {
            tracing::error!(%error, workspace_id = key.workspace_id, "a model preview failed");
            let message = if error.is_storage_failure() {
                "storage is failing on this server".to_string()
            } else {
                "the leads could not be read; the server's log says why".to_string()
            };
            Status::Failed { message, at: now_ms() }
        }
    };
    state.previews.update(job, status);
    let _ = finished.send(());
}

/// The comparison itself: a batch of leads per read snapshot, so that ingestion and other reads
/// go on in between; `None` when the job stopped because it is no longer wanted.
async fn compare_in_batches(
    state: &AppState,
    key: Key,
    job: u64,
    candidate: ModelVersion,
    active: Option<ModelVersion>,
) -> Result<Option<Preview>, StoreError> {
    let models = state.models.clone();
    let workspace_id = key.workspace_id;
    let versions = state
        .storage
        .read(move |reads| Ok(std::sync::Arc::new(Versions::load(reads, &models, candidate, active)?)))
        .await?;
    let mut comparison = Comparison::new(BACKGROUND_CHANGES_LISTED);
    let batch = state.config.preview_batch_leads.max(1);
    loop {
        let versions_here = versions.clone();
        let (compared, read) = state
            .storage
            .read(move |reads| {
                // Read in the snapshot, so that every event it holds is at or before this time.
                let now = now_ms();
                let read = comparison.next_batch(reads, &versions_here, workspace_id, batch, now)?;
                Ok((comparison, read))
            })
            .await?;
        comparison = compared;
        if read < batch as usize {
            return Ok(Some(comparison.report(&versions)));
        }
        if !state.previews.progress(job, comparison.leads) {
            return Ok(None);
        }
    }
}

/// The version a rollback would make active again: the one activated before the newest
/// activation still standing, if any.
pub async fn rollback_target(state: &AppState, workspace_id: i64) -> Result<Option<i64>, StoreError> {
    state
        .storage
        .read(move |reads| {
            let standing: Vec<_> =
                reads.model_activations(workspace_id)?.into_iter().filter(|a| a.undone_at.is_none()).collect();
            Ok(standing.len().checked_sub(2).map(|below| standing[below].version))
        })
        .await
}

/// Activates version `version` and starts rescoring every lead with it. Refused
/// ([`StoreError::Rescoring`]) while a rescoring runs.
pub async fn activate(state: &AppState, workspace_id: i64, version: i64) -> Result<ModelVersion, StoreError> {
    let now = now_ms();
    let activated = state
        .storage
        .write(move |transaction| {
            let id = version_in(transaction, workspace_id, version)?.id;
            activation::activate(transaction, workspace_id, id, Origin::Api, now)
        })
        .await?;
    activation::rescore(state, workspace_id);
    Ok(activated)
}

/// Rolls back to the version active before the current one and starts rescoring every lead with
/// it (see [`activation::rollback`]).
pub async fn rollback(state: &AppState, workspace_id: i64) -> Result<ModelVersion, StoreError> {
    let now = now_ms();
    let restored = state.storage.write(move |transaction| activation::rollback(transaction, workspace_id, now)).await?;
    activation::rescore(state, workspace_id);
    Ok(restored)
}

/// Each score of version `version` with its tiers' labels, lowest first, as the model lists
/// them (pages show tiers in this order rather than by name).
pub async fn tiers(
    state: &AppState,
    workspace_id: i64,
    version: i64,
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let models = state.models.clone();
    state
        .storage
        .read(move |reads| {
            let model = models.get(reads, &version_in(reads, workspace_id, version)?)?;
            Ok(model
                .scores()
                .iter()
                .map(|score| (score.name().to_string(), score.tiers().iter().map(|t| t.label().to_string()).collect()))
                .collect())
        })
        .await
}
