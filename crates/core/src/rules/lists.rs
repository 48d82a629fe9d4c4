//! The lists behind the e-mail conditions (`free_email`, `disposable_email`, `role_email`): the
//! built-in ones, versioned as text files in `crates/core/lists/` (each says where it comes from,
//! its licence and when it was taken) and compiled into the binary, and the one text format that
//! those files and a model's own list files share.
//!
//! The built-in lists are parsed once, on first use, and shared: a model that does not change a
//! list points at the same set as every other model. Reading them at run time instead would need
//! file access, which the core does not have, and would let a deployment's lists drift from the
//! version that was tested.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

/// A set of lower-cased entries (domains, or local parts for `role_email`).
pub type ListEntries = Arc<HashSet<String>>;

/// The lists a model can use and override with `[lists.NAME]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListName {
    /// Free-mail providers' domains; an address matches on exactly its domain.
    FreeEmail,
    /// Throwaway-address domains; an address matches on its domain or any parent domain.
    DisposableEmail,
    /// Local parts of role addresses (`info`, `sales`, `noreply`...).
    RoleEmail,
}

impl ListName {
    pub const ALL: [ListName; 3] = [ListName::FreeEmail, ListName::DisposableEmail, ListName::RoleEmail];

    /// The name used in model files (`[lists.free_email]`, `free_email = true`).
    pub fn key(self) -> &'static str {
        match self {
            ListName::FreeEmail => "free_email",
            ListName::DisposableEmail => "disposable_email",
            ListName::RoleEmail => "role_email",
        }
    }

    pub fn from_key(key: &str) -> Option<ListName> {
        ListName::ALL.into_iter().find(|name| name.key() == key)
    }

    /// What one entry is, for messages.
    pub(crate) fn entry_kind(self) -> &'static str {
        match self {
            ListName::FreeEmail | ListName::DisposableEmail => "a domain such as `example.com`",
            ListName::RoleEmail => "the part of an address before the `@`, such as `info`",
        }
    }

    /// The built-in list, parsed on first use.
    pub fn built_in(self) -> &'static ListEntries {
        static FREE: LazyLock<ListEntries> = LazyLock::new(|| built_in_set(FREE_EMAIL_FILE));
        static DISPOSABLE: LazyLock<ListEntries> = LazyLock::new(|| built_in_set(DISPOSABLE_EMAIL_FILE));
        static ROLE: LazyLock<ListEntries> = LazyLock::new(|| built_in_set(ROLE_EMAIL_FILE));
        match self {
            ListName::FreeEmail => &FREE,
            ListName::DisposableEmail => &DISPOSABLE,
            ListName::RoleEmail => &ROLE,
        }
    }
}

const FREE_EMAIL_FILE: &str = include_str!("../../lists/free_email.txt");
const DISPOSABLE_EMAIL_FILE: &str = include_str!("../../lists/disposable_email.txt");
const ROLE_EMAIL_FILE: &str = include_str!("../../lists/role_email.txt");

fn built_in_set(text: &str) -> ListEntries {
    // The files are checked by this module's tests, so a bad line here is a bug in a commit, not
    // a user's mistake; it is left out rather than stopping the program.
    Arc::new(parse_list(text).into_iter().filter_map(|line| line.entry.ok()).collect())
}

/// One non-blank, non-comment line of a list's text.
#[derive(Debug, PartialEq)]
pub struct ListLine {
    /// 1-based.
    pub number: usize,
    /// The entry, lower-cased, or why the line is not one.
    pub entry: Result<String, String>,
}

/// Reads a list's text: one entry a line, `#` starts a comment (to the end of the line), blank
/// lines are skipped, entries are trimmed and lower-cased.
pub fn parse_list(text: &str) -> Vec<ListLine> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let content = line.split('#').next().unwrap_or_default().trim();
            (!content.is_empty()).then(|| ListLine { number: index + 1, entry: check_entry(content) })
        })
        .collect()
}

/// An entry as written in a list file or a model's `entries`, `add` or `remove`: lower-cased, or
/// why it cannot be one.
pub fn check_entry(entry: &str) -> Result<String, String> {
    let trimmed = entry.trim();
    if trimmed.is_empty() {
        return Err("an entry cannot be empty".to_string());
    }
    if trimmed.contains('@') {
        return Err(format!("`{trimmed}` contains `@`"));
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(format!("`{trimmed}` contains a space: write one entry per line or per string"));
    }
    Ok(trimmed.to_lowercase())
}

/// The lower-cased part after the last `@` of an address.
pub(crate) fn email_domain(address: &str) -> Option<String> {
    let (_, domain) = address.trim().rsplit_once('@')?;
    Some(domain.to_lowercase())
}

/// The part of an address before the last `@`, lower-cased, without a `+tag`
/// (`Sales+EU@x.com` is `sales`).
pub(crate) fn email_local_part(address: &str) -> Option<String> {
    let (local, _) = address.trim().rsplit_once('@')?;
    let local = local.split_once('+').map_or(local, |(before, _)| before);
    Some(local.to_lowercase())
}

/// Whether `domain` or one of its parent domains is listed (`a.mail.example.com` is found by
/// `example.com`): disposable services hand out addresses on subdomains of their own.
pub(crate) fn domain_or_parent_listed(domain: &str, entries: &HashSet<String>) -> bool {
    let mut rest = domain;
    loop {
        if entries.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if !parent.is_empty() => rest = parent,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_built_in_files_is_an_entry() {
        for (name, text) in [
            (ListName::FreeEmail, FREE_EMAIL_FILE),
            (ListName::DisposableEmail, DISPOSABLE_EMAIL_FILE),
            (ListName::RoleEmail, ROLE_EMAIL_FILE),
        ] {
            let lines = parse_list(text);
            let bad: Vec<_> = lines.iter().filter(|line| line.entry.is_err()).collect();
            assert!(bad.is_empty(), "{}: {bad:?}", name.key());
            assert_eq!(name.built_in().len(), lines.len(), "{}: an entry is listed twice", name.key());
            assert!(text.starts_with("# "), "{} starts with a header saying where it comes from", name.key());
            for word in ["Source:", "Licence:", "Taken:"] {
                assert!(text.contains(word), "{}'s header says `{word}`", name.key());
            }
        }
    }

    #[test]
    fn the_built_in_lists_hold_what_they_should() {
        let free = ListName::FreeEmail.built_in();
        let disposable = ListName::DisposableEmail.built_in();
        let role = ListName::RoleEmail.built_in();
        assert!(free.len() > 4000 && disposable.len() > 5000 && role.len() > 900);
        for domain in ["gmail.com", "yahoo.co.jp", "proton.me", "pm.me", "daum.net", "tutanota.com", "qq.com"] {
            assert!(free.contains(domain), "{domain}");
        }
        for domain in ["mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com"] {
            assert!(disposable.contains(domain), "{domain}");
        }
        assert!(!disposable.contains("gmail.com"));
        for local in [
            "info",
            "sales",
            "noreply",
            "no-reply",
            "admin",
            "support",
            "marketing",
            "webmaster",
            "postmaster",
            "hr",
            "jobs",
            "contact",
        ] {
            assert!(role.contains(local), "{local}");
        }
        // Given names are not role addresses: `alexa@` is usually Alexa.
        assert!(!role.contains("alexa") && !role.contains("dev"));
    }

    #[test]
    fn list_text_has_comments_blank_lines_and_located_mistakes() {
        let lines = parse_list("# header\n\nExample.COM  # trailing note\n  \nbad entry\nx@y.com\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], ListLine { number: 3, entry: Ok("example.com".to_string()) });
        assert_eq!(lines[1].number, 5);
        assert!(lines[1].entry.as_ref().unwrap_err().contains("space"));
        assert_eq!(lines[2].number, 6);
        assert!(lines[2].entry.as_ref().unwrap_err().contains("`@`"));
        assert!(check_entry("  ").is_err());
    }

    #[test]
    fn addresses_split_into_local_part_and_domain() {
        assert_eq!(email_domain(" Bob@Mail.Example.COM ").as_deref(), Some("mail.example.com"));
        assert_eq!(email_local_part("Sales+EU@x.com").as_deref(), Some("sales"));
        assert_eq!(email_local_part("\"a@b\"@x.com").as_deref(), Some("\"a@b\""));
        assert_eq!(email_local_part("no address"), None);
    }

    #[test]
    fn parent_domains_are_found() {
        let entries = HashSet::from(["mailinator.com".to_string()]);
        assert!(domain_or_parent_listed("mailinator.com", &entries));
        assert!(domain_or_parent_listed("a.b.mailinator.com", &entries));
        assert!(!domain_or_parent_listed("notmailinator.com", &entries));
        assert!(!domain_or_parent_listed("mailinator.com.evil.io", &entries));
        assert!(!domain_or_parent_listed("com", &entries));
        assert!(!domain_or_parent_listed("", &entries));
    }
}
