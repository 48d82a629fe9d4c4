//! Loading a model file for a command: read it, compile it, and show its diagnostics.
//!
//! A predictive score's `predictive = "FILE"` names a file written by `leadscore train`, and a
//! `[lists.NAME]` table's `file = "FILE"` a list file, both relative to the model file's
//! directory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use leadscore_core::{Compiled, ModelError, Predictor, PredictorLoader};
use leadscore_predict::predictive::{PredictiveError, PredictiveModel, SavedModel};

/// A model file's text and what the compiler made of it.
pub struct Loaded {
    pub path: String,
    pub source: String,
    pub compiled: Result<Compiled, ModelError>,
    /// Each predictive reference that loaded, with its file's text and algorithm (what
    /// `leadscore serve --model` stores in the workspace).
    pub predictive: BTreeMap<String, (String, &'static str)>,
    /// The list files the model's `[lists.NAME]` tables read (`file = "..."`), as written.
    pub list_files: Vec<String>,
}

pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the model file {}", path.display()))?;
    let loader = FilesBeside {
        directory: path.parent().unwrap_or(Path::new("")).to_path_buf(),
        predictive: RefCell::default(),
        list_files: RefCell::default(),
    };
    let compiled = leadscore_core::compile_with(&source, &loader);
    Ok(Loaded {
        path: path.display().to_string(),
        source,
        compiled,
        predictive: loader.predictive.into_inner(),
        list_files: loader.list_files.into_inner(),
    })
}

/// The files a model names (trained models, list files), read relative to the model file's
/// directory.
struct FilesBeside {
    directory: PathBuf,
    /// Each predictive reference that loaded, with its file's text and algorithm.
    predictive: RefCell<BTreeMap<String, (String, &'static str)>>,
    list_files: RefCell<Vec<String>>,
}

impl PredictorLoader for FilesBeside {
    fn load(&self, reference: &str) -> Result<Arc<dyn Predictor>, String> {
        let file = self.directory.join(reference);
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file)
            .map_err(|source| PredictiveError::Read { file: name.clone(), source }.to_string())?;
        let model = SavedModel::from_json(text.as_bytes(), &name)
            .and_then(|saved| PredictiveModel::new(saved, &name))
            .map_err(|e| e.to_string())?;
        self.predictive.borrow_mut().insert(reference.to_string(), (text, model.saved().fitted.name()));
        Ok(Arc::new(model))
    }

    fn read_list(&self, path: &str) -> Result<String, String> {
        self.list_files.borrow_mut().push(path.to_string());
        let file = self.directory.join(path);
        std::fs::read_to_string(&file).map_err(|error| format!("{}: {error}", file.display()))
    }
}

impl Loaded {
    /// The compiled model, after printing its warnings; or an error listing every problem.
    pub fn into_model(self) -> anyhow::Result<leadscore_core::Model> {
        match self.compiled {
            Ok(compiled) => {
                for warning in &compiled.warnings {
                    eprintln!("{}", warning.render(&self.path, &self.source));
                }
                Ok(compiled.model)
            }
            Err(error) => {
                let n = error.errors().count();
                anyhow::bail!(
                    "{}\nthe model has {n} error{}; `leadscore check {}` shows them all",
                    error.render(&self.path),
                    if n == 1 { "" } else { "s" },
                    self.path
                )
            }
        }
    }
}
