//! The `gibberish` condition: does a name look typed by mashing keys ("asdfgh", "qwqwqw",
//! "xkcdjzq", "Test Test") rather than being a person's name?
//!
//! The method, and why: a name is split into words, and a word is gibberish when
//! - it repeats a unit of one to three letters at least three times ("qwqwqw", "aaaa");
//! - five or more of its letters follow each other along one row of a QWERTY, QWERTZ or AZERTY
//!   keyboard ("asdfg", "poiuy"), or all four of a four-letter word along a QWERTY row ("Zxcv");
//! - it has four or more letters and none of them is a vowel (`w` and `y` count as vowels, for
//!   Welsh "Llwyd"); or
//! - its letters are unlikely as a name: the mean log-probability of each letter given the two
//!   before it, under a character trigram model of real names, is below [`MEAN_LOG_PROBABILITY`].
//!
//! A trigram model was chosen because it is small, needs no dependency, is explainable (the
//! counts are a text file in the repository, `crates/core/data/name_trigrams.txt`, made by
//! `bench/gibberish/run.sh --train` from the first and last names of every locale of the
//! `@faker-js/faker` package, common Welsh names and pinyin syllables, about 40 KB), and
//! because keyboard mashing breaks the letter sequences of every language at once, which a model
//! of sequences sees and a dictionary of names (which can never hold every name) does not. The explicit keyboard and repetition checks
//! catch what a model trained on names might forgive because short names repeat and alternate
//! letters too ("Ana", "Lili").
//!
//! What must never be flagged decides the rest: a word with a letter outside a-z (any other
//! script, CJK, Cyrillic, Greek, Arabic, Hebrew, Thai, Devanagari..., or a Latin letter with a
//! diacritic, "Nguyễn", "Wójcik", "Súilleabháin") is never gibberish, since the model knows
//! only a-z and mashing a keyboard does not type those letters; words of one or two letters
//! ("Ng", "Li", "Oz", "Ek") are never gibberish; three-letter words are tested only for
//! repetition. A name whose every word (titles such as "Mr" aside) is a placeholder ("test",
//! "asdf", "xxx", "dummy", "fake", "unknown", ...) is gibberish too, and so is a text with no
//! letter at all ("12345", "---"): neither is anyone's name.
//!
//! The false-positive rate on real names the model was not trained on and the detection rate on
//! generated gibberish are measured by `bench/gibberish/run.sh` and stated in
//! docs/model-format.md; `tests/it/gibberish.rs` keeps the false-positive rate under its bound.

use std::sync::LazyLock;

/// The trigram model's threshold: a word whose letters have a mean log-probability (natural
/// logarithm, per letter and end of word) below this is gibberish. Chosen with
/// `bench/gibberish/run.sh`: at -3.5, the model flagged 0.17% of held-out real names ("Wright",
/// "Voigt", "Owusu"); at -3.7, 0.07%, while 94% of the generated gibberish still is.
pub const MEAN_LOG_PROBABILITY: f64 = -3.7;

const TRIGRAMS_FILE: &str = include_str!("../../data/name_trigrams.txt");

/// `^` before the word (twice), a-z, `$` after it: 0 is both ends.
const SYMBOLS: usize = 27;

/// Words that stand for no name in a form.
const PLACEHOLDERS: &[&str] = &[
    "test",
    "testing",
    "tester",
    "asdf",
    "qwerty",
    "xxx",
    "xx",
    "x",
    "dummy",
    "fake",
    "sample",
    "example",
    "unknown",
    "none",
    "null",
    "abc",
    "lorem",
    "ipsum",
    "noname",
    "anonymous",
    "user",
    "name",
    "firstname",
    "lastname",
];

/// Titles that come before a name and say nothing about it.
const TITLES: &[&str] = &["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "madam", "herr", "frau", "mme", "mlle"];

/// Keyboard rows (QWERTY, AZERTY, QWERTZ) along which mashed letters run.
const KEYBOARD_ROWS: &[&str] =
    &["qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn", "qwertzuiop", "yxcvbnm"];

/// Counts of trigrams, with the bigram and unigram counts summed from them, for interpolated
/// probabilities.
struct TrigramModel {
    trigrams: Vec<u32>,
    /// Per (first, second) symbol: the trigrams starting with them.
    contexts: Vec<u32>,
    /// Per (second, third) symbol.
    bigrams: Vec<u32>,
    /// Per second symbol: the bigrams starting with it.
    bigram_contexts: Vec<u32>,
    unigrams: Vec<u32>,
    total: u32,
}

fn symbol(c: char) -> Option<usize> {
    match c {
        '^' | '$' => Some(0),
        'a'..='z' => Some(c as usize - 'a' as usize + 1),
        _ => None,
    }
}

impl TrigramModel {
    fn parse(text: &str) -> TrigramModel {
        let mut model = TrigramModel {
            trigrams: vec![0; SYMBOLS * SYMBOLS * SYMBOLS],
            contexts: vec![0; SYMBOLS * SYMBOLS],
            bigrams: vec![0; SYMBOLS * SYMBOLS],
            bigram_contexts: vec![0; SYMBOLS],
            unigrams: vec![0; SYMBOLS],
            total: 0,
        };
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            // The file is checked by this module's tests; a line that does not read is skipped.
            let Some((gram, count)) = line.split_once(' ') else { continue };
            let symbols: Vec<usize> = gram.chars().filter_map(symbol).collect();
            let (Ok(count), [a, b, c]) = (count.parse::<u32>(), symbols.as_slice()) else { continue };
            model.trigrams[(a * SYMBOLS + b) * SYMBOLS + c] += count;
            model.contexts[a * SYMBOLS + b] += count;
            model.bigrams[b * SYMBOLS + c] += count;
            model.bigram_contexts[*b] += count;
            model.unigrams[*c] += count;
            model.total += count;
        }
        model
    }

    /// ln P(c | a, b), interpolating trigram, bigram and unigram estimates (the unigram one
    /// add-one smoothed, so that no letter has probability zero). The weights lean on the
    /// trigram, which carries most of a language's spelling, while the bigram keeps a rare but
    /// plausible trigram (an unusual name) from counting as noise.
    fn log_probability(&self, a: usize, b: usize, c: usize) -> f64 {
        let ratio = |n: u32, d: u32| if d == 0 { 0.0 } else { f64::from(n) / f64::from(d) };
        let trigram = ratio(self.trigrams[(a * SYMBOLS + b) * SYMBOLS + c], self.contexts[a * SYMBOLS + b]);
        let bigram = ratio(self.bigrams[b * SYMBOLS + c], self.bigram_contexts[b]);
        let unigram = f64::from(self.unigrams[c] + 1) / f64::from(self.total + SYMBOLS as u32);
        (0.6 * trigram + 0.3 * bigram + 0.1 * unigram).ln()
    }

    /// The mean log-probability of a word's letters and its end, `word` being a-z only.
    fn mean_log_probability(&self, word: &str) -> f64 {
        let symbols: Vec<usize> =
            [0, 0].into_iter().chain(word.chars().filter_map(symbol)).chain(std::iter::once(0)).collect();
        let steps = symbols.windows(3).map(|w| self.log_probability(w[0], w[1], w[2]));
        let n = symbols.len() - 2;
        steps.sum::<f64>() / n as f64
    }
}

static MODEL: LazyLock<TrigramModel> = LazyLock::new(|| TrigramModel::parse(TRIGRAMS_FILE));

/// Why a name is gibberish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not one letter ("12345").
    NoLetters,
    /// Every word is a placeholder ("Mr Test Test").
    Placeholder,
    /// A word repeats a short unit ("qwqwqw").
    Repetition,
    /// A word runs along a keyboard row ("asdfg").
    KeyboardRun,
    /// A word of four letters or more without a vowel ("xkcdjzq").
    NoVowel,
    /// A word's letters are unlikely in a name, by the trigram model.
    Unlikely,
}

/// Whether `name` looks like keyboard mashing or a placeholder rather than a person's name (see
/// the module's documentation for what counts).
pub fn looks_like_gibberish(name: &str) -> bool {
    gibberish_reason(name).is_some()
}

/// Why `name` is gibberish, or `None` when it is not.
pub fn gibberish_reason(name: &str) -> Option<Reason> {
    if !name.chars().any(char::is_alphabetic) {
        return (!name.trim().is_empty()).then_some(Reason::NoLetters);
    }
    let words: Vec<String> = split_words(name).map(str::to_lowercase).collect();
    let named: Vec<&String> = words.iter().filter(|w| !TITLES.contains(&w.as_str())).collect();
    if !named.is_empty() && named.iter().all(|w| PLACEHOLDERS.contains(&w.as_str())) {
        return Some(Reason::Placeholder);
    }
    words.iter().find_map(|word| word_reason(word))
}

/// The trigram model's mean log-probability of a lower-case a-z word (what [`MEAN_LOG_PROBABILITY`]
/// is compared with); `None` for other words, which the model does not judge.
pub fn word_log_probability(word: &str) -> Option<f64> {
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase())).then(|| MODEL.mean_log_probability(word))
}

/// A name's words, split at spaces, punctuation and digits. Every other character stays in its
/// word, so that a letter of another script or a combining accent keeps its word out of the
/// a-z tests.
fn split_words(name: &str) -> impl Iterator<Item = &str> {
    name.split(|c: char| {
        c.is_whitespace()
            || c.is_ascii_punctuation()
            || c.is_ascii_digit()
            || matches!(
                c,
                '\u{2018}' | '\u{2019}' | '\u{2010}'..='\u{2015}' | '\u{00B7}' | '\u{3001}' | '\u{30FB}' | '\u{FF0C}'
            )
    })
    .filter(|w| !w.is_empty())
}

/// Why one lower-cased word is gibberish, if it is.
fn word_reason(word: &str) -> Option<Reason> {
    if !word.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let letters = word.as_bytes();
    if letters.len() <= 2 {
        return None;
    }
    if repeats_a_short_unit(letters) {
        return Some(Reason::Repetition);
    }
    if letters.len() == 3 {
        return None;
    }
    // Four letters in a row are a name's often enough ("Azer" on an AZERTY row, "Liberty"), so
    // only a whole four-letter word along a QWERTY row counts, or five letters on any layout.
    if longest_keyboard_run(letters, KEYBOARD_ROWS) >= 5
        || (letters.len() == 4 && longest_keyboard_run(letters, &KEYBOARD_ROWS[..3]) == 4)
    {
        return Some(Reason::KeyboardRun);
    }
    if !letters.iter().any(|c| b"aeiouyw".contains(c)) {
        return Some(Reason::NoVowel);
    }
    (MODEL.mean_log_probability(word) < MEAN_LOG_PROBABILITY).then_some(Reason::Unlikely)
}

/// "qwqwqw", "abcabcabc", "aaa": a unit of one to three letters, three times or more.
fn repeats_a_short_unit(letters: &[u8]) -> bool {
    (1..=3).any(|unit| letters.len() >= 3 * unit && letters.iter().enumerate().all(|(i, c)| *c == letters[i % unit]))
}

/// The most letters in a row that are neighbours on one keyboard row, in either direction.
fn longest_keyboard_run(letters: &[u8], rows: &[&str]) -> usize {
    let neighbours = |a: u8, b: u8| {
        rows.iter().any(|row| {
            row.as_bytes().windows(2).any(|pair| (pair[0] == a && pair[1] == b) || (pair[0] == b && pair[1] == a))
        })
    };
    let mut longest = 1;
    let mut current = 1;
    let mut direction = 0i8;
    for pair in letters.windows(2) {
        let step = keyboard_step(pair[0], pair[1], rows);
        if neighbours(pair[0], pair[1]) && (current == 1 || step == direction) {
            current += 1;
            direction = step;
        } else if neighbours(pair[0], pair[1]) {
            current = 2;
            direction = step;
        } else {
            current = 1;
        }
        longest = longest.max(current);
    }
    longest
}

/// +1 when `b` is right of `a` on a row holding both, -1 when left, 0 when neither.
fn keyboard_step(a: u8, b: u8, rows: &[&str]) -> i8 {
    for row in rows {
        let (Some(i), Some(j)) = (row.bytes().position(|c| c == a), row.bytes().position(|c| c == b)) else { continue };
        if j == i + 1 {
            return 1;
        }
        if i == j + 1 {
            return -1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigram_file_reads_whole() {
        let lines = TRIGRAMS_FILE.lines().filter(|l| !l.starts_with('#')).count();
        let counted: u32 = TRIGRAMS_FILE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_once(' ').and_then(|(_, n)| n.parse::<u32>().ok()).expect("a count"))
            .sum();
        assert!(lines > 3000, "{lines} trigrams");
        assert_eq!(MODEL.total, counted, "every line was read");
        assert!(TRIGRAMS_FILE.len() < 64 * 1024, "the compiled-in data stays small");
    }

    #[test]
    fn keyboard_mashing_is_gibberish() {
        for name in [
            "asdfgh",
            "qwqwqw",
            "xkcdjzq",
            "Qwerty",
            "zxcvbn",
            "poiuyt",
            "aaaa",
            "Jkjkjk",
            "sdfsdfsdf",
            "Hjkl",
            "Bcdfgh",
        ] {
            assert!(looks_like_gibberish(name), "{name}");
        }
        assert!(looks_like_gibberish("John Asdfgh"), "one mashed word is enough");
    }

    #[test]
    fn placeholders_and_texts_without_letters_are_gibberish() {
        for name in ["Mr Test Test", "test", "TEST TESTER", "Dummy", "12345", "---"] {
            assert!(looks_like_gibberish(name), "{name}");
        }
        assert!(!looks_like_gibberish("Mr"), "a title alone is not a placeholder");
        assert!(!looks_like_gibberish("Anna Test"), "a real word beside a placeholder");
        assert!(!looks_like_gibberish(""));
        assert!(!looks_like_gibberish("   "));
    }

    #[test]
    fn other_scripts_are_never_gibberish() {
        for name in [
            "王秀英",
            "佐藤 健",
            "김민준",
            "Иванов Пётр",
            "Παπαδόπουλος",
            "محمد عبد الله",
            "יוסף כהן",
            "สมชาย ใจดี",
            "देवेंद्र",
            "Ժամկոչյան",
            "გიორგი",
            "ঋতুপর্ণা",
        ] {
            assert!(!looks_like_gibberish(name), "{name}");
        }
    }

    #[test]
    fn latin_names_of_many_countries_are_not_gibberish() {
        for name in [
            "Nguyễn Thị Minh Khai",
            "Nguyen Van Thanh",
            "Grzegorz Brzęczyszczykiewicz",
            "Szczepański",
            "Przybylski",
            "Şükrü Çağlayan",
            "Ó Súilleabháin",
            "O'Sullivan",
            "van der Berg",
            "Llwyd",
            "Gwynfor",
            "Tskhvitava",
            "Mkhitaryan",
            "Dzhugashvili",
            "Ng",
            "Li",
            "Oz",
            "Ek",
            "Xu",
            "Wu",
            "Kim",
            "Ngo",
            "Hsu",
            "Ana",
            "Lili",
            "Liberty",
            "Xiaoyu",
            "Zhiqiang",
            "Cheung",
            "Kvaratskhelia",
            "Chkheidze",
            "Krzysztof",
            "Tshabalala",
            "Hovhannisyan",
            "Oluwaseun",
            "Nnamdi",
            "Tjarda",
            "Siobhan",
            "Schwarzenegger",
            "Strnad",
            "Vlk",
            "Krk",
            "Aoife",
            "Eoghan",
            "Joaquín",
            "Bjørn",
            "Ðorđević",
            "José-María",
        ] {
            assert!(!looks_like_gibberish(name), "{name}");
        }
    }

    #[test]
    fn repeats_and_keyboard_runs() {
        assert!(repeats_a_short_unit(b"ababab"));
        assert!(!repeats_a_short_unit(b"abab"));
        assert!(!repeats_a_short_unit(b"anna"));
        assert_eq!(longest_keyboard_run(b"asdfg", KEYBOARD_ROWS), 5);
        assert_eq!(longest_keyboard_run(b"gfdsa", KEYBOARD_ROWS), 5);
        assert_eq!(longest_keyboard_run(b"liberty", KEYBOARD_ROWS), 4);
        assert_eq!(longest_keyboard_run(b"sdsdsd", KEYBOARD_ROWS), 2, "back and forth is repetition, not a run");
    }

    #[test]
    fn the_model_ranks_names_above_noise() {
        let name = MODEL.mean_log_probability("maria");
        let noise = MODEL.mean_log_probability("zqxjvk");
        assert!(name > MEAN_LOG_PROBABILITY && noise < MEAN_LOG_PROBABILITY, "{name} {noise}");
    }
}
