//! `leadscore users` on a data directory: console accounts made with a password from the
//! environment (never from an argument), one per e-mail address whatever its case, passwords
//! that are too short refused, and clear errors when no password can be read.

use std::path::Path;
use std::process::Stdio;

use crate::common::*;

/// Runs `leadscore users ARGS --data DATA` with `password` in LEADSCORE_PASSWORD (if given) and
/// no terminal: (exit code, stdout, stderr).
fn users(data: &Path, password: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut command = bin();
    command.arg("users").args(args).args(store_args(data)).stdin(Stdio::null()).env_remove("LEADSCORE_PASSWORD");
    if let Some(password) = password {
        command.env("LEADSCORE_PASSWORD", password);
    }
    let output = command.output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

fn create(data: &Path, password: Option<&str>, email: &str, role: &str) -> (i32, String, String) {
    users(data, password, &["create", "--workspace", "acme", "--email", email, "--role", role])
}

#[test]
fn an_admin_is_created_with_a_password_from_the_environment_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = create(dir.path(), Some("correct horse battery"), "Ana.Kowalska@example.pl", "admin");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "created the admin account Ana.Kowalska@example.pl in workspace `acme`\n");
    let (code, _, err) = create(dir.path(), Some("another long password"), "Иван.Петров@example.bg", "viewer");
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = users(dir.path(), None, &["list", "--workspace", "acme"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID  EMAIL"), "{out}");
    assert!(lines[1].contains("Ana.Kowalska@example.pl") && lines[1].contains("admin"), "{out}");
    assert!(lines[2].contains("Иван.Петров@example.bg") && lines[2].contains("viewer"), "{out}");
    assert!(!out.contains("argon2") && !out.contains("horse"), "the list shows no password or hash: {out}");
}

#[test]
fn an_address_has_one_account_and_bad_input_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(create(dir.path(), Some("correct horse battery"), "ana@example.com", "editor").0, 0);

    let (code, _, err) = create(dir.path(), Some("correct horse battery"), "ANA@Example.com", "admin");
    assert_eq!(code, 2);
    assert!(err.contains("already an account for ANA@Example.com"), "{err}");

    let (code, _, err) = create(dir.path(), Some("short"), "bob@example.com", "viewer");
    assert_eq!(code, 2);
    assert!(err.contains("too short: use at least 10 characters"), "{err}");

    let (code, _, err) = create(dir.path(), None, "bob@example.com", "viewer");
    assert_eq!(code, 2);
    assert!(err.contains("no password: set LEADSCORE_PASSWORD"), "{err}");

    let (code, _, err) = create(dir.path(), Some("correct horse battery"), "bob@example.com", "owner");
    assert_ne!(code, 0);
    assert!(err.contains("use viewer, editor or admin"), "{err}");

    let (code, _, err) = create(dir.path(), Some("correct horse battery"), "bob", "viewer");
    assert_eq!(code, 2);
    assert!(err.contains("not an e-mail address"), "{err}");

    let (_, out, _) = users(dir.path(), None, &["list", "--workspace", "acme"]);
    assert_eq!(out.lines().count(), 2, "only the first account exists: {out}");
    let (code, _, err) = users(dir.path(), None, &["list", "--workspace", "globex"]);
    assert_eq!(code, 2);
    assert!(err.contains("no workspace `globex`"), "{err}");
}
