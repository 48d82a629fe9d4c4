//! The e-mail lists and the `gibberish` test through TOML: the built-in lists, a model's own
//! `[lists.NAME]` (entries, additions and removals, a file read through the loader), and the
//! located errors of a list that cannot be used.

use std::sync::Arc;

use crate::common::*;
use leadscore_core::{Predictor, PredictorLoader, compile, compile_with};

/// A model giving `points` when `condition` holds on `email`, with `extra` (list tables) after.
fn with_condition(condition: &str, extra: &str) -> String {
    format!(
        "[scores.s]\n[[scores.s.rules]]\nname = \"r\"\nwhen = {{ field = \"email\", {condition} }}\npoints = 1\n{extra}"
    )
}

fn points(model: &leadscore_core::Model, email: &str) -> f64 {
    first(model, &[("email", email)], &[]).0
}

#[test]
fn built_in_lists() {
    let disposable = model(&with_condition("disposable_email = true", ""));
    assert_close(points(&disposable, "x@mailinator.com"), 1.0);
    assert_close(points(&disposable, "x@eu.mail.MAILINATOR.com"), 1.0);
    assert_close(points(&disposable, "x@acme.com"), 0.0);
    let role = model(&with_condition("role_email = true", ""));
    assert_close(points(&role, "Sales+spring@acme.com"), 1.0);
    assert_close(points(&role, "jane@acme.com"), 0.0);
    let person = model(&with_condition("role_email = false", ""));
    assert_close(points(&person, "jane@acme.com"), 1.0);
    assert_close(points(&person, "jane"), 0.0);
    let free = model(&with_condition("free_email = true", ""));
    assert_close(points(&free, "x@gmx.at"), 1.0);
    let name = model(
        "[scores.s]\n[[scores.s.rules]]\nname = \"r\"\nwhen = { field = \"name\", gibberish = true }\npoints = -10\n",
    );
    assert_close(first(&name, &[("name", "asdfgh")], &[]).0, -10.0);
    assert_close(first(&name, &[("name", "Nguyễn Thị Minh Khai")], &[]).0, 0.0);
    assert_close(first(&name, &[], &[]).0, 0.0);
}

#[test]
fn a_model_replaces_or_adjusts_a_list() {
    let own = model(&with_condition(
        "free_email = true",
        "[lists.free_email]\nentries = [\"Mail.Example\", \"post.example\"]\n",
    ));
    assert_close(points(&own, "x@mail.example"), 1.0);
    assert_close(points(&own, "x@gmail.com"), 0.0);
    let adjusted = model(&with_condition(
        "role_email = true",
        "[lists.role_email]\nadd = [\"vertrieb\", \"anfragen\"]\nremove = [\"INFO\"]\n",
    ));
    assert_close(points(&adjusted, "vertrieb@acme.de"), 1.0);
    assert_close(points(&adjusted, "sales@acme.com"), 1.0);
    assert_close(points(&adjusted, "info@acme.com"), 0.0);
    // A list changed by one model is not changed for another.
    let other = model(&with_condition("role_email = true", ""));
    assert_close(points(&other, "info@acme.com"), 1.0);
    assert_close(points(&other, "vertrieb@acme.de"), 0.0);
}

#[test]
fn removing_what_is_not_listed_is_a_warning() {
    let compiled = compile(&with_condition("role_email = true", "[lists.role_email]\nremove = [\"jane\"]\n")).unwrap();
    let rendered: Vec<String> = compiled.warnings.iter().map(|w| w.message.clone()).collect();
    assert_eq!(rendered, ["`jane` is not in the `role_email` list, so removing it changes nothing"]);
}

/// Reads list files from a map, as the command line reads them beside the model file.
struct Files(Vec<(&'static str, &'static str)>);

impl PredictorLoader for Files {
    fn load(&self, reference: &str) -> Result<Arc<dyn Predictor>, String> {
        Err(format!("no model {reference}"))
    }

    fn read_list(&self, path: &str) -> Result<String, String> {
        self.0
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, text)| text.to_string())
            .ok_or_else(|| "No such file".to_string())
    }
}

#[test]
fn a_list_file_is_read_through_the_loader() {
    let files =
        Files(vec![("lists/throwaway.txt", "# our own\nthrowaway.example\n\nBURNER.example # seen in March\n")]);
    let text = with_condition("disposable_email = true", "[lists.disposable_email]\nfile = \"lists/throwaway.txt\"\n");
    let model = compile_with(&text, &files).unwrap().model;
    assert_close(points(&model, "x@burner.example"), 1.0);
    assert_close(points(&model, "x@a.throwaway.example"), 1.0);
    assert_close(points(&model, "x@mailinator.com"), 0.0);
    // Without a loader that reads files (the service's), the model must hold its entries.
    let refused = compile(&text).unwrap_err().render("model.toml");
    assert!(refused.contains("put its entries in the model with `entries = [\"...\"]`"), "{refused}");
}

#[test]
fn bad_lists_are_located() {
    let files = Files(vec![("bad.txt", "ok.example\nnot ok.example\nx@y.example\n"), ("empty.txt", "# nothing\n")]);
    let bad = |extra: &str| {
        compile_with(&with_condition("free_email = true", extra), &files).unwrap_err().render("model.toml")
    };
    insta::assert_snapshot!(
        "bad_lists",
        [
            bad("[lists.spam_domains]\nentries = [\"a.example\"]\n"),
            bad("[lists.free_email]\n"),
            bad("[lists.free_email]\nentries = [\"a.example\"]\nadd = [\"b.example\"]\n"),
            bad("[lists.free_email]\nentries = []\n"),
            bad("[lists.free_email]\nentries = [\"\", \"bo@acme.com\", \"two words\"]\n"),
            bad("[lists.role_email]\nadd = [\"in fo\"]\nremove = [\"@x\"]\n"),
            bad("[lists.free_email]\nfile = \"bad.txt\"\n"),
            bad("[lists.free_email]\nfile = \"empty.txt\"\n"),
            bad("[lists.free_email]\nfile = \"missing.txt\"\n"),
        ]
        .join("\n---\n")
    );
}
