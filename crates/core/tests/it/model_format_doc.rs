//! Keeps docs/model-format.md honest: every TOML example in it is compiled.
//!
//! Fenced blocks are recognised by their info string:
//! - ```` ```toml ````: a whole model; it must compile without warnings, and its `[[tests]]` pass.
//! - ```` ```toml,warning ````: a whole model; it must compile with at least one warning.
//! - ```` ```toml,error ````: a model that must not compile.
//! - ```` ```toml,fragment ````: part of a model; it must be valid TOML, and is not compiled.
//!
//! When a `toml,error` or `toml,warning` block is directly followed by a ```` ```text ```` block,
//! that block must be exactly the diagnostics the compiler renders for a file named `model.toml`.
//! Any other info string starting with `toml` is an error, so that a misspelt fence cannot hide
//! an example from this test.

use std::sync::Arc;

use leadscore_core::{Compiled, ModelError, Predictor, PredictorLoader, Value, compile_with};

/// Stands in for the trained models the examples name (`predictive = "....json"`).
#[derive(Debug)]
struct ExamplePredictor(Vec<String>);

impl Predictor for ExamplePredictor {
    fn fields(&self) -> &[String] {
        &self.0
    }

    fn predict(&self, _: &[&Value], effects: Option<&mut Vec<f64>>) -> f64 {
        if let Some(effects) = effects {
            *effects = vec![0.0; self.0.len()];
        }
        0.5
    }
}

/// The files the examples name: trained models (`....json`) and the list file of the lists
/// example, whose text the reference shows.
struct ExampleFiles;

impl PredictorLoader for ExampleFiles {
    fn load(&self, reference: &str) -> Result<Arc<dyn Predictor>, String> {
        if reference.ends_with(".json") {
            Ok(Arc::new(ExamplePredictor(vec!["industry".to_string()])))
        } else {
            Err(format!("cannot read {reference}"))
        }
    }

    fn read_list(&self, path: &str) -> Result<String, String> {
        match path {
            "lists/throwaway.txt" => {
                Ok("# Throwaway domains seen in our sign-ups\nburner.example\ntempinbox.example   # since March\n"
                    .to_string())
            }
            _ => Err(format!("cannot read {path}")),
        }
    }
}

fn compile(text: &str) -> Result<Compiled, ModelError> {
    compile_with(text, &ExampleFiles)
}

/// One fenced block of the document.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    info: String,
    text: String,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in doc.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block { line: i + 1, info: info.trim().to_string(), text: String::new() });
                }
            }
            Some(block) => {
                if trimmed.trim_end() == "```" {
                    blocks.push(open.take().expect("a block is open"));
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "docs/model-format.md ends inside a fenced block");
    blocks
}

/// The diagnostics of a compiled or failed model, rendered as `leadscore check` shows them.
fn rendered(text: &str) -> String {
    match compile(text) {
        Ok(compiled) => compiled.warnings.iter().map(|w| w.render("model.toml", text)).collect::<Vec<_>>().join("\n"),
        Err(error) => error.render("model.toml"),
    }
}

#[test]
fn every_toml_example_in_the_model_format_reference_compiles() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/model-format.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let blocks = blocks(&doc);
    let mut failures = Vec::new();
    let mut counts = [0usize; 4];
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("docs/model-format.md:{}", block.line);
        let expected_output = blocks.get(i + 1).filter(|next| next.info == "text").map(|next| next.text.trim_end());
        match block.info.as_str() {
            "toml" => {
                counts[0] += 1;
                match compile(&block.text) {
                    Ok(compiled) if compiled.warnings.is_empty() => {
                        for outcome in leadscore_core::model_tests::run(&compiled.model) {
                            if let Some(failure) = outcome.diagnostic() {
                                failures.push(format!("{at}: {}", failure.render("model.toml", &block.text)));
                            }
                        }
                    }
                    Ok(_) => failures.push(format!(
                        "{at}: compiles with warnings; mark it ```toml,warning if that is meant:\n{}",
                        rendered(&block.text)
                    )),
                    Err(error) => failures.push(format!("{at}: does not compile:\n{}", error.render("model.toml"))),
                }
            }
            "toml,warning" => {
                counts[1] += 1;
                match compile(&block.text) {
                    Ok(compiled) if !compiled.warnings.is_empty() => {}
                    Ok(_) => failures.push(format!("{at}: marked `warning` but compiles without warnings")),
                    Err(error) => failures.push(format!("{at}: does not compile:\n{}", error.render("model.toml"))),
                }
            }
            "toml,error" => {
                counts[2] += 1;
                if compile(&block.text).is_ok() {
                    failures.push(format!("{at}: marked `error` but compiles"));
                }
            }
            "toml,fragment" => {
                counts[3] += 1;
                if let Err(error) = block.text.parse::<toml::Table>() {
                    failures.push(format!("{at}: a fragment that is not valid TOML: {}", error.message()));
                }
            }
            info if info.starts_with("toml") => failures
                .push(format!("{at}: unknown fence ```{info}: use toml, toml,warning, toml,error or toml,fragment")),
            _ => {}
        }
        if matches!(block.info.as_str(), "toml,error" | "toml,warning")
            && let Some(expected) = expected_output
        {
            let actual = rendered(&block.text);
            if actual != expected {
                failures.push(format!(
                    "{at}: the text block after this example does not match the compiler's output\n\
                     --- documented\n{expected}\n--- actual\n{actual}"
                ));
            }
        }
    }
    assert!(counts[0] >= 10, "expected at least 10 whole-model examples, found {}", counts[0]);
    assert!(counts[2] >= 1, "expected at least one error example");
    assert!(failures.is_empty(), "{} problem(s) in docs/model-format.md:\n\n{}", failures.len(), failures.join("\n\n"));
}
