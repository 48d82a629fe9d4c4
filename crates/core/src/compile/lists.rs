//! Lists (the model format's "Lists"): `[lists.NAME]` tables that replace or adjust the built-in
//! lists the e-mail conditions read, checked entry by entry. A list file is read through the
//! caller's loader (`PredictorLoader::read_list`), since the core reads no files.

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;

use super::compiler::{Compiler, span};
use crate::format::ListDef;
use crate::rules::lists::{ListEntries, ListName, check_entry, parse_list};

type Entries = Spanned<Vec<Spanned<String>>>;

impl Compiler<'_> {
    /// Every `[lists.NAME]` table; the lists they make replace the built-in ones for this model.
    pub(super) fn lists(&mut self, defs: &IndexMap<String, Spanned<ListDef>>) {
        for (key, def) in defs {
            let Some(name) = ListName::from_key(key) else {
                let known: Vec<&str> = ListName::ALL.iter().map(|n| n.key()).collect();
                self.error(format!("there is no list `{key}`: the lists are {}", known.join(", ")), span(def));
                continue;
            };
            if let Some(entries) = self.list_def(name, def) {
                self.lists.push((name, Arc::new(entries)));
            }
        }
    }

    /// The list `name` for this model: its `[lists.NAME]` or the built-in one.
    pub(super) fn list(&self, name: ListName) -> ListEntries {
        self.lists
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| name.built_in().clone(), |(_, entries)| entries.clone())
    }

    fn list_def(&mut self, name: ListName, def: &Spanned<ListDef>) -> Option<HashSet<String>> {
        let d = def.get_ref();
        let key = name.key();
        let replacing = usize::from(d.entries.is_some()) + usize::from(d.file.is_some());
        let adjusting = d.add.is_some() || d.remove.is_some();
        if replacing == 0 && !adjusting {
            self.error(
                format!(
                    "`[lists.{key}]` changes nothing: give `entries = [...]`, `file = \"...\"`, or `add` / `remove`"
                ),
                span(def),
            );
            return None;
        }
        if replacing > 1 || (replacing == 1 && adjusting) {
            self.error(
                format!(
                    "`[lists.{key}]` takes one of `entries` (a list of its own), `file` (a list from a file), or `add` and `remove` (changes to the built-in list)"
                ),
                span(def),
            );
            return None;
        }
        if let Some(entries) = &d.entries {
            let list = self.entries(name, entries, "entries")?;
            if list.is_empty() {
                self.error(
                    format!("`entries` of `[lists.{key}]` is empty, so `{key} = true` would never match"),
                    span(entries),
                );
                return None;
            }
            return Some(list);
        }
        if let Some(file) = &d.file {
            return self.list_file(name, file);
        }
        let mut list: HashSet<String> = name.built_in().as_ref().clone();
        let mut ok = true;
        if let Some(add) = &d.add {
            match self.entries(name, add, "add") {
                Some(added) => list.extend(added),
                None => ok = false,
            }
        }
        if let Some(remove) = &d.remove {
            for written in remove.get_ref() {
                match check_entry(written.get_ref()) {
                    Ok(entry) if !list.remove(&entry) => self.warning(
                        format!("`{entry}` is not in the `{key}` list, so removing it changes nothing"),
                        span(written),
                    ),
                    Ok(_) => {}
                    Err(message) => {
                        self.error(
                            format!("`remove` of `[lists.{key}]`: {message}; an entry is {}", name.entry_kind()),
                            span(written),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok.then_some(list)
    }

    /// `entries` / `add`: each entry checked where it is written.
    fn entries(&mut self, name: ListName, entries: &Entries, what: &str) -> Option<HashSet<String>> {
        let mut list = HashSet::new();
        let mut ok = true;
        for entry in entries.get_ref() {
            match check_entry(entry.get_ref()) {
                Ok(checked) => {
                    list.insert(checked);
                }
                Err(message) => {
                    self.error(
                        format!("`{what}` of `[lists.{}]`: {message}; an entry is {}", name.key(), name.entry_kind()),
                        span(entry),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(list)
    }

    /// `file = "..."`: the caller's loader reads it; each bad line is reported at `file` with the
    /// file's name and line.
    fn list_file(&mut self, name: ListName, file: &Spanned<String>) -> Option<HashSet<String>> {
        let path = file.get_ref();
        let text = match self.predictors.read_list(path) {
            Ok(text) => text,
            Err(message) => {
                self.error(format!("cannot read the list file `{path}`: {message}"), span(file));
                return None;
            }
        };
        let mut list = HashSet::new();
        let mut ok = true;
        for line in parse_list(&text) {
            match line.entry {
                Ok(entry) => {
                    list.insert(entry);
                }
                Err(message) => {
                    self.error(
                        format!("{path}:{}: {message}; an entry is {}", line.number, name.entry_kind()),
                        span(file),
                    );
                    ok = false;
                }
            }
        }
        if ok && list.is_empty() {
            self.error(format!("the list file `{path}` has no entries (one a line, `#` starts a comment)"), span(file));
            return None;
        }
        ok.then_some(list)
    }
}
