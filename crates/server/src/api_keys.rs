//! API keys as the API and the console manage them: a new key (its secret returned once, stored
//! hashed) and a revocation that the key cache forgets at once, so the key's next request is
//! refused on every route. A browser key is bound to origins, checked here for every way of
//! making one (API, console, command line).

use leadscore_store::StoreError;
use leadscore_store::keys::{KeyInfo, NewKey, Scope};

use crate::state::AppState;

/// The most characters of a key's name.
pub const NAME_LIMIT: usize = 100;

/// A key's name as given, trimmed; or why it cannot be one.
pub fn checked_name(name: &str) -> Result<String, String> {
    // Before trimming, which takes the control characters that are also white space (a tab, a
    // line's end, U+0085) off the ends: a name that has one is refused wherever it is, as the
    // API's schema says.
    if name.chars().any(char::is_control) {
        return Err("a key's name is one line of text, without control characters".to_string());
    }
    let name = name.trim();
    if name.chars().count() > NAME_LIMIT {
        return Err(format!("a key's name has at most {NAME_LIMIT} characters; say in a few words what it is for"));
    }
    Ok(name.to_string())
}

/// The most origins one browser key is bound to.
pub const ORIGINS_LIMIT: usize = 20;

/// The origins a key of `scope` is bound to, as given, each checked and written as a browser
/// writes its `Origin` header (lower case, no default port, no path); or why they cannot be.
/// A browser key needs at least one; other keys take none.
pub fn checked_origins(scope: Scope, origins: &[String]) -> Result<Vec<String>, String> {
    if scope != Scope::Browser {
        return match origins.is_empty() {
            true => Ok(Vec::new()),
            false => Err(format!("only a browser key is bound to origins; this is an {scope} key")),
        };
    }
    if origins.is_empty() {
        return Err("a browser key needs the origins allowed to use it, such as `https://www.example.com`".to_string());
    }
    if origins.len() > ORIGINS_LIMIT {
        return Err(format!("a browser key is bound to at most {ORIGINS_LIMIT} origins"));
    }
    let mut checked: Vec<String> = Vec::with_capacity(origins.len());
    for origin in origins {
        let origin = checked_origin(origin)?;
        if !checked.contains(&origin) {
            checked.push(origin);
        }
    }
    Ok(checked)
}

/// One origin: `http` or `https`, a host name or IPv4 address (letters, digits, dots and
/// dashes), and a port unless it is the scheme's default. IPv6 addresses are not taken: no
/// website is served from one by name.
fn checked_origin(origin: &str) -> Result<String, String> {
    let lowered = origin.to_ascii_lowercase();
    let wrong = || {
        format!(
            "`{origin}` is not an origin: write the scheme, host and port as the browser's address bar shows \
             them, without a path (`https://www.example.com`, `http://localhost:8080`)"
        )
    };
    let (scheme, authority) = lowered.split_once("://").ok_or_else(wrong)?;
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return Err(wrong()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with(['.', '-']);
    let port_ok = port.is_none_or(|p| !p.starts_with('0') && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0));
    if !host_ok || !port_ok {
        return Err(wrong());
    }
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// A new key of the workspace with `scope`, named `name` (checked), bound to `origins` (checked
/// by [`checked_origins`]), with its secret (shown once, never again). Browser origins are
/// read again at the next preflight.
pub async fn create(
    state: &AppState,
    workspace_id: i64,
    scope: Scope,
    name: String,
    origins: Vec<String>,
    now: i64,
) -> Result<NewKey, StoreError> {
    let key = state.storage.create_key(workspace_id, scope, name, origins, now).await?;
    state.origins.forget();
    Ok(key)
}

/// Revokes one of the workspace's keys and returns it as revoked (revoking it again keeps the
/// first time); `None` if the workspace has no such key.
pub async fn revoke(state: &AppState, workspace_id: i64, key_id: i64, now: i64) -> Result<Option<KeyInfo>, StoreError> {
    let revoked = state.storage.revoke_key(workspace_id, key_id, now).await?;
    if let Some(key) = &revoked {
        // After the commit, so that a request that reads the key again sees it revoked.
        state.keys.forget(key.id);
        state.origins.forget();
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_name_is_one_short_line() {
        assert_eq!(checked_name("  CRM sync  "), Ok("CRM sync".to_string()));
        assert_eq!(checked_name("Трекер сайта"), Ok("Трекер сайта".to_string()));
        assert!(checked_name(&"x".repeat(NAME_LIMIT + 1)).is_err());
        assert!(checked_name("two\nlines").is_err());
        for at_an_end in ["\u{85}", "CRM sync\n", "\tCRM sync", "CRM sync\r\n"] {
            assert!(checked_name(at_an_end).is_err(), "{at_an_end:?}");
        }
    }

    #[test]
    fn a_browser_key_is_bound_to_origins_as_browsers_spell_them() {
        let origins = |list: &[&str]| list.iter().map(|o| o.to_string()).collect::<Vec<_>>();
        assert_eq!(
            checked_origins(
                Scope::Browser,
                &origins(&[
                    "HTTPS://WWW.Example.com",
                    "http://localhost:8080",
                    "https://example.com:443",
                    "http://127.0.0.1:3000"
                ])
            ),
            Ok(origins(&[
                "https://www.example.com",
                "http://localhost:8080",
                "https://example.com",
                "http://127.0.0.1:3000"
            ]))
        );
        for wrong in [
            "www.example.com",
            "https://www.example.com/",
            "ftp://example.com",
            "https://",
            "https://a b",
            "http://x:0",
            "http://x:99999",
            "http://x:080",
            "http://[::1]:3000",
            " https://x",
            "*",
        ] {
            assert!(checked_origins(Scope::Browser, &origins(&[wrong])).is_err(), "{wrong}");
        }
        assert!(checked_origins(Scope::Browser, &[]).is_err(), "a browser key needs an origin");
        assert!(checked_origins(Scope::Ingest, &origins(&["https://example.com"])).is_err());
        assert_eq!(checked_origins(Scope::Ingest, &[]), Ok(Vec::new()));
    }
}
