//! The `gibberish` condition on real names it was not trained on and on generated gibberish
//! (`tests/data/`, made by bench/gibberish/run.sh --train): the false-positive rate stays under
//! the bound docs/model-format.md states, and the detection rate above its bound.

use leadscore_core::looks_like_gibberish;

fn names(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect()
}

fn flagged_share<'a>(names: &[&'a str]) -> (f64, Vec<&'a str>) {
    let flagged: Vec<&str> = names.iter().copied().filter(|n| looks_like_gibberish(n)).collect();
    (flagged.len() as f64 / names.len() as f64, flagged)
}

#[test]
fn real_names_of_every_locale_are_rarely_flagged() {
    let real = names(include_str!("../data/real_names.txt"));
    assert!(real.len() > 3000, "the sample holds a few thousand names");
    let scripts_other_than_latin =
        real.iter().filter(|n| n.chars().any(|c| c.is_alphabetic() && !c.is_ascii())).count();
    assert!(scripts_other_than_latin > 1000, "the sample spans scripts and diacritics");
    let (rate, flagged) = flagged_share(&real);
    // docs/model-format.md states under 0.5% (measured: 0.05%).
    assert!(rate < 0.005, "{:.2}% of real names flagged: {flagged:?}", rate * 100.0);
    for name in flagged {
        assert!(name.is_ascii(), "a name with a letter outside a-z is never gibberish: {name}");
    }
}

#[test]
fn generated_gibberish_is_mostly_flagged() {
    let made = names(include_str!("../data/gibberish.txt"));
    assert!(made.len() >= 1000);
    let (rate, _) = flagged_share(&made);
    // docs/model-format.md states over 90% (measured: 94%).
    assert!(rate > 0.90, "only {:.2}% of generated gibberish flagged", rate * 100.0);
}
