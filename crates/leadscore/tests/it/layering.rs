//! The workspace's layering, checked from the sources: no import circle between the modules of
//! any crate, and `anyhow` only in the binary (libraries return typed errors).
//!
//! A module "imports" another when its code (tests left out) names it through a `crate::` or
//! `super::` path, or, for a parent, through a child's name. The crate root (`lib.rs`,
//! `main.rs`) only assembles and re-exports, so paths that stop at it are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_crates() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("Cargo.toml").is_file() && path.join("src").is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` and `src/main.rs` are the root, "".
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code without comments and without items marked `#[cfg(test)]` (at the start of a line).
fn code_outside_tests(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim_start() == "#[cfg(test)]" {
            let indent = line.len() - line.trim_start().len();
            let Some(item) = lines.next() else { break };
            if item.trim_end().ends_with('{') {
                // Skip to the brace that closes the item, at the item's own indentation.
                let closing = format!("{}}}", " ".repeat(indent));
                for rest in lines.by_ref() {
                    if rest.trim_end() == closing {
                        break;
                    }
                }
            }
            continue;
        }
        let line = line.split("//").next().unwrap_or("");
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths that follow `prefix` (`crate::`, `super::` or `child::`) in `code`, each as its
/// segments; a group `{a, b::c}` gives one path per member.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut start = 0;
    while let Some(at) = code[start..].find(prefix) {
        let at = start + at;
        start = at + prefix.len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == ':') {
            continue;
        }
        let head: Vec<String> = prefix.trim_end_matches("::").split("::").map(str::to_string).collect();
        collect_path(&code[start..], head, &mut found);
    }
    found
}

fn collect_path(rest: &str, mut segments: Vec<String>, found: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut member = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    collect_path(&member, segments.clone(), found);
                    member.clear();
                    continue;
                }
                _ => {}
            }
            member.push(c);
        }
        collect_path(&member, segments, found);
        return;
    }
    let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
    if name.is_empty() {
        found.push(segments);
        return;
    }
    segments.push(name.clone());
    let after = &rest[name.len()..];
    match after.strip_prefix("::") {
        Some(more) => collect_path(more, segments, found),
        None => found.push(segments),
    }
}

/// Each module's imports of other modules of its crate (the root left out).
fn import_graph(krate: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = krate.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, String> =
        files.iter().map(|file| (module_of(&src, file), std::fs::read_to_string(file).unwrap())).collect();
    let resolve = |segments: &[String]| -> Option<String> {
        (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|candidate| modules.contains_key(candidate))
    };
    let mut graph = BTreeMap::new();
    for (module, text) in &modules {
        let code = code_outside_tests(text);
        let parent: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>();
        let mut targets = BTreeSet::new();
        for path in paths_after(&code, "crate::") {
            targets.extend(resolve(&path[1..]));
        }
        for path in paths_after(&code, "super::") {
            let mut absolute = parent[..parent.len().saturating_sub(1)].to_vec();
            absolute.extend(path[1..].iter().cloned());
            targets.extend(resolve(&absolute));
        }
        let is_child = |child: &&String| {
            !module.is_empty()
                && child
                    .strip_prefix(module.as_str())
                    .and_then(|rest| rest.strip_prefix("::"))
                    .is_some_and(|name| !name.contains("::"))
        };
        let children = modules.keys().filter(is_child);
        for child in children {
            let name = child.rsplit("::").next().unwrap();
            if !paths_after(&code, &format!("{name}::")).is_empty() {
                targets.insert(child.clone());
            }
        }
        targets.remove(module);
        targets.remove("");
        if !module.is_empty() {
            graph.insert(module.clone(), targets);
        }
    }
    graph
}

/// A circle in `graph`, as the modules along it, if there is one.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = path.iter().position(|n| n == next).unwrap();
                    let mut circle = path[from..].to_vec();
                    circle.push(next.clone());
                    return Some(circle);
                }
                Mark::New => {
                    if let Some(circle) = visit(next, graph, marks, path) {
                        return Some(circle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New
            && let Some(circle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(circle);
        }
    }
    None
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let crates = workspace_crates();
    assert!(crates.len() >= 6, "the workspace's crates were found: {crates:?}");
    for krate in crates {
        let graph = import_graph(&krate);
        if let Some(circle) = find_circle(&graph) {
            panic!(
                "crates/{}: its modules import each other in a circle: {}. Move what both need into a module \
                 below them, or pass it as a parameter.",
                krate.file_name().unwrap().to_string_lossy(),
                circle.join(" -> ")
            );
        }
    }
}

#[test]
fn the_circle_finder_finds_circles_and_reads_grouped_imports() {
    let code = code_outside_tests(
        "use crate::{state::AppState, routes::{keys, models::Model}};\nuse super::x;\n#[cfg(test)]\nmod tests {\n    use crate::secret;\n}\n",
    );
    let mut paths: Vec<String> = paths_after(&code, "crate::").into_iter().map(|p| p.join("::")).collect();
    paths.sort();
    assert_eq!(paths, ["crate::routes::keys", "crate::routes::models::Model", "crate::state::AppState"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(find_circle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    let mut without = graph.clone();
    without.get_mut("c").unwrap().clear();
    assert_eq!(find_circle(&without), None);
}

#[test]
fn only_the_command_line_uses_anyhow() {
    for krate in workspace_crates() {
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        let binary = krate.ends_with("leadscore");
        if !binary {
            assert!(
                !manifest.lines().any(|line| line.trim_start().starts_with("anyhow")),
                "crates/{}: a library depends on anyhow; return a typed error (thiserror) and let the command \
                 line add context",
                krate.file_name().unwrap().to_string_lossy()
            );
        }
    }
}

/// docs/ARCHITECTURE.md's section on each crate names each of its source files (`name.rs`, or
/// `dir/` for a `dir/mod.rs`), so that the map never leaves a module out.
#[test]
fn the_architecture_code_map_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let map = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for krate in workspace_crates() {
        let name = krate.file_name().unwrap().to_string_lossy().into_owned();
        let heading = format!("### `crates/{name}`");
        let Some(start) = map.find(&heading) else {
            missing.push(format!("a section `{heading}`"));
            continue;
        };
        let section = &map[start + heading.len()..];
        let end = ["\n## ", "\n### "].iter().filter_map(|next| section.find(next)).min().unwrap_or(section.len());
        let section = &section[..end];
        let src = krate.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let relative = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let named = match relative.as_str() {
                "lib.rs" | "main.rs" => continue,
                dir_module if dir_module.ends_with("/mod.rs") => {
                    let dir = dir_module.trim_end_matches("mod.rs");
                    section.contains(&format!("`{dir}")) || section.contains(&format!("/{dir}"))
                }
                _ => {
                    let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
                    section.contains(&format!("`{file_name}")) || section.contains(&format!("/{file_name}"))
                }
            };
            if !named {
                missing.push(format!("crates/{name}/src/{relative}"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md's code map does not name: {}", missing.join(", "));
}

/// Only the store writes SQL: the other crates' code (tests left out) names no SQLite and holds
/// no SQL statement, so that a second database is a change of the store alone. `crates/sql`
/// writes a model as a query for the user's own warehouse (`leadscore sql`), which the service
/// never runs.
#[test]
fn only_the_store_writes_sql() {
    const STATEMENTS: &[&str] =
        &["SELECT ", "INSERT ", "UPDATE ", "DELETE ", "CREATE ", "WITH ", "PRAGMA ", "REPLACE "];
    let mut found = Vec::new();
    for krate in workspace_crates().into_iter().filter(|krate| !krate.ends_with("store") && !krate.ends_with("sql")) {
        let src = krate.join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let code = code_outside_tests(&std::fs::read_to_string(&file).unwrap());
            let place = file.strip_prefix(krate.parent().unwrap()).unwrap().display().to_string();
            if code.contains("rusqlite") {
                found.push(format!("crates/{place} names rusqlite"));
            }
            for (at, _) in code.match_indices('"') {
                let after = code[at + 1..].trim_start();
                if let Some(statement) = STATEMENTS.iter().find(|s| after.starts_with(**s)) {
                    found.push(format!("crates/{place} holds SQL ({})", statement.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "SQL outside the store (give the store a named function instead): {}", found.join("; "));
}

#[test]
fn the_sql_finder_sees_a_statement_in_a_string() {
    let code = code_outside_tests("fn f(c: &C) { c.query(\"\n    SELECT id FROM leads\"); }\n");
    assert!(code.match_indices('"').any(|(at, _)| code[at + 1..].trim_start().starts_with("SELECT ")));
}
