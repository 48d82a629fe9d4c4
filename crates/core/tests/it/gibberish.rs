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
    // docs/model-format.md states over 90% (measured on this sample: 93.6%).
    assert!(rate > 0.90, "only {:.2}% of generated gibberish flagged", rate * 100.0);
}

mod properties {
    use leadscore_core::looks_like_gibberish;
    use proptest::prelude::*;

    /// A word of a-z letters with one letter of another script or with a diacritic inside.
    fn word_beyond_a_to_z() -> impl Strategy<Value = String> {
        let other = prop::sample::select(vec!['é', 'ł', 'ş', 'ø', 'ж', 'λ', 'ש', 'ب', 'ก', 'क', '中', 'ㅎ', 'ა', 'ễ']);
        ("[a-z]{0,8}", other, "[a-z]{0,8}").prop_map(|(before, letter, after)| format!("{before}{letter}{after}"))
    }

    proptest! {
        #[test]
        fn any_text_is_judged_without_panicking(text in "\\PC{0,40}") {
            let _ = looks_like_gibberish(&text);
        }

        #[test]
        fn a_name_whose_every_word_has_a_letter_beyond_a_to_z_is_never_gibberish(
            words in prop::collection::vec(word_beyond_a_to_z(), 1..4)
        ) {
            let name = words.join(" ");
            prop_assert!(!looks_like_gibberish(&name), "{name}");
        }

        #[test]
        fn case_does_not_matter(name in "[a-zA-Z]{1,12}( [a-zA-Z]{1,12}){0,2}") {
            prop_assert_eq!(looks_like_gibberish(&name), looks_like_gibberish(&name.to_uppercase()));
            prop_assert_eq!(looks_like_gibberish(&name), looks_like_gibberish(&name.to_lowercase()));
        }
    }
}
