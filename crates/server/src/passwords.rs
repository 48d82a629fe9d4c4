//! Console passwords: what a password must be, and its Argon2id hash.
//!
//! Argon2id is memory-hard, so a stolen database is slow to attack; its parameters (19 MiB, two
//! passes, one lane: OWASP's recommendation) and its salt are written into the PHC string with
//! the hash, so that they can be raised later and old hashes still verify. A hash takes tens of
//! milliseconds of one core on purpose: the service computes it on the blocking pool, never on
//! the async runtime. API keys are not passwords (256 random bits, a plain SHA-256 in the
//! store).
//!
//! What a password must be follows NIST SP 800-63B: long enough, not too long to hash, any
//! characters (spaces and any script included), no composition rules.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// The fewest characters a password may have.
pub const MIN_CHARACTERS: usize = 10;
/// The most bytes a password may have: hashing longer ones would only cost time.
pub const MAX_BYTES: usize = 1024;

/// Why a password cannot be used, in words for the person who chose it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least {MIN_CHARACTERS} characters (a few words make a good one)")]
    TooShort,
    #[error("the password is too long: use at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("the password is the e-mail address: choose something else")]
    IsTheEmail,
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
}

/// Checks that `password` may be used by the owner of `email`.
pub fn check(password: &str, email: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_CHARACTERS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(PasswordError::IsTheEmail);
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    // Fixed, valid parameters: `Params::new` cannot fail on them.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password`'s Argon2id hash with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` is the one `phc` was made from. A malformed hash verifies nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    // The parameters come from the PHC string itself, so hashes made with other ones verify.
    hasher().verify_password(password.as_bytes(), phc).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_carries_its_parameters() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(hash("correct horse battery").unwrap(), phc, "each hash has its own salt");
    }

    #[test]
    fn hashes_made_with_other_parameters_still_verify() {
        let cheaper = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8 * 1024, 1, 1, None).unwrap());
        let phc = cheaper.hash_password(b"an older password").unwrap().to_string();
        assert!(verify("an older password", &phc));
    }

    #[test]
    fn passwords_are_long_enough_in_any_script_and_not_the_address() {
        assert_eq!(check("short", "a@b.c"), Err(PasswordError::TooShort));
        assert_eq!(check("пароль-для-входа", "a@b.c"), Ok(()));
        assert_eq!(check("長いパスワードです。十文字", "a@b.c"), Ok(()));
        assert_eq!(check("ana@example.com", "Ana@Example.com"), Err(PasswordError::IsTheEmail));
        assert_eq!(check(&"x".repeat(MAX_BYTES + 1), "a@b.c"), Err(PasswordError::TooLong));
    }
}
