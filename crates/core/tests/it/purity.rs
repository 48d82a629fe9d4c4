//! The core stays pure: no I/O, no clock, no threads, no environment. Time is a parameter, files
//! and sockets belong to the crates around it. This test keeps it so: the core's dependencies come
//! from an allow-list, and its sources name none of the standard library's ways out.

use std::path::{Path, PathBuf};

/// What the core may depend on: data structures, parsing, serialization, error types.
const ALLOWED_DEPENDENCIES: &[&str] =
    &["indexmap", "regex", "rustc-hash", "serde", "serde_json", "thiserror", "toml", "utoipa"];

/// What the core's sources may not name.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::env",
    "std::process",
    "SystemTime",
    "Instant::now",
    "std::time::Instant",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_core_depends_only_on_allowed_crates() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&manifest).unwrap();
    let dependencies = manifest["dependencies"].as_table().unwrap();
    for name in dependencies.keys() {
        assert!(
            ALLOWED_DEPENDENCIES.contains(&name.as_str()),
            "crates/core depends on `{name}`, which is not on the allow-list of a pure core: put I/O, clocks and \
             threads in the crates around it (or, if `{name}` is pure, add it to the list with a reason)"
        );
    }
}

#[test]
fn the_core_sources_use_no_files_network_threads_environment_or_clock() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 10, "the core's sources were found");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for forbidden in FORBIDDEN {
                assert!(
                    !code.contains(forbidden),
                    "{}:{}: the core names `{forbidden}`: it must stay pure (time is a parameter; I/O is the callers')",
                    file.display(),
                    number + 1
                );
            }
        }
    }
}
