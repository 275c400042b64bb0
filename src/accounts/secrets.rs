//! Credentials: argon2id password hashes, session tokens and API keys. Only
//! hashes are ever stored; a token or key is shown once, when it is made.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// API keys start with this, which also tells them apart from session tokens.
pub const API_KEY_PREFIX: &str = "devx_";
/// Characters of a key kept in clear to recognise it in lists.
const VISIBLE_PREFIX_LEN: usize = 12;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 1024;

/// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
pub fn argon2_params() -> Params {
    Params::new(19_456, 2, 1, None).expect("valid argon2 parameters")
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params())
}

/// A hash of nothing anyone knows, checked when an account has no hash so
/// that unknown accounts cost the same time as known ones.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("dummy password for timing").unwrap_or_default())
}

/// Why a password is not acceptable, if it is not.
pub fn password_problem(password: &str) -> Option<String> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        Some(format!("must be at least {PASSWORD_MIN_CHARS} characters"))
    } else if password.chars().count() > PASSWORD_MAX_CHARS {
        Some(format!("must be at most {PASSWORD_MAX_CHARS} characters"))
    } else if password.contains('\0') {
        Some("must not contain NUL characters".into())
    } else {
        None
    }
}

/// The PHC string of `password` (CPU-heavy: call from a blocking thread).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Checks `password` against `hash`; with no hash (unknown account or one
/// without a password) it checks against a fixed dummy hash and fails, so that
/// both cases cost the same time and look the same.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let (candidate, real) = match hash {
        Some(h) => (h, true),
        None => (dummy_hash(), false),
    };
    let Ok(parsed) = PasswordHash::new(candidate) else { return false };
    argon2().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

/// Whether `stored` is a bcrypt hash (`$2a$`, `$2b$` or `$2y$`), which
/// imported accounts may carry until their first sign-in.
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p))
}

/// Whether `stored` is a password hash devx can check: bcrypt, or an
/// argon2 PHC string (`$argon2id$`, `$argon2i$`, `$argon2d$`) that parses.
pub fn is_known_hash(stored: &str) -> bool {
    if is_bcrypt(stored) {
        // `$2b$10$` + 22 characters of salt + 31 of hash.
        return stored.len() == 60 && stored.as_bytes()[3] == b'$' && stored[4..6].bytes().all(|b| b.is_ascii_digit());
    }
    stored.starts_with("$argon2")
        && PasswordHash::new(stored).is_ok_and(|h| {
            Algorithm::try_from(h.algorithm).is_ok()
                && Params::try_from(&h).is_ok()
                && h.salt.is_some()
                && h.hash.is_some()
        })
}

/// Whether a verified password's hash should be replaced by a new argon2id
/// one: it is of another kind (bcrypt, argon2i or argon2d).
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with("$argon2id$")
}

/// Checks `password` against a bcrypt hash (verification only: devx never
/// makes bcrypt hashes).
pub fn verify_bcrypt(password: &str, stored: &str) -> bool {
    bcrypt::verify(password, stored).unwrap_or(false)
}

pub type TokenHash = [u8; 32];

pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

fn random_part() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new 256-bit session token and its hash.
pub fn new_session_token() -> (String, TokenHash) {
    let token = random_part();
    let hash = hash_token(&token);
    (token, hash)
}

/// A new API key (`devx_` + 256 random bits), its visible prefix and its hash.
pub fn new_api_key() -> (String, String, TokenHash) {
    let key = format!("{API_KEY_PREFIX}{}", random_part());
    let prefix = key[..VISIBLE_PREFIX_LEN].to_string();
    let hash = hash_token(&key);
    (key, prefix, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_wrong_ones_do_not() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong horse battery", Some(&hash)));
        assert!(!verify_password("dummy password for timing", None), "no account never verifies");
    }

    #[test]
    fn bcrypt_hashes_are_recognised_and_verified() {
        // One hash written with each prefix bcrypt libraries use.
        let hash = bcrypt::hash_with_result("correct horse battery", 4).unwrap();
        for version in [bcrypt::Version::TwoA, bcrypt::Version::TwoB, bcrypt::Version::TwoY] {
            let stored = hash.format_for_version(version);
            assert!(is_bcrypt(&stored) && is_known_hash(&stored) && needs_rehash(&stored), "{stored}");
            assert!(verify_bcrypt("correct horse battery", &stored));
            assert!(!verify_bcrypt("wrong horse battery", &stored));
        }
        let argon = hash_password("x y z w v").unwrap();
        assert!(is_known_hash(&argon) && !needs_rehash(&argon));
        for bad in ["", "plain", "$2b$10$short", "$argon2id$nonsense", "$1$md5$abc"] {
            assert!(!is_known_hash(bad), "{bad}");
        }
    }

    #[test]
    fn password_rules() {
        assert!(password_problem("short").is_some());
        assert!(password_problem(&"x".repeat(1025)).is_some());
        assert!(password_problem("long enough").is_none());
        // Characters, as the OpenAPI document counts them, not bytes.
        assert!(password_problem(&"é".repeat(1024)).is_none());
        assert!(password_problem("ééééééé").is_some());
    }

    #[test]
    fn tokens_are_random_and_keys_are_recognisable() {
        let (a, ha) = new_session_token();
        let (b, _) = new_session_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a), ha);
        let (key, prefix, hash) = new_api_key();
        assert!(key.starts_with("devx_") && key.starts_with(&prefix) && prefix.len() == 12);
        assert_eq!(hash_token(&key), hash);
    }
}
