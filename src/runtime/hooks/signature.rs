//! Checking who sent a delivery: GitHub's HMAC-SHA256 signature of the body
//! and GitLab's token, both compared in constant time.
//!
//! HMAC is written here over `sha2` (RFC 2104, unit-tested against RFC 4231):
//! the `hmac` crate in the lockfile is the 0.13 line, built on a newer
//! `digest` than devx's `sha2`, and this is twenty lines.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BLOCK: usize = 64;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Whether `header` (`X-Hub-Signature-256`: `sha256=<hex>`) is the
/// signature of `body` under `token`.
pub fn github_signature_ok(token: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_part) = header.trim().strip_prefix("sha256=") else { return false };
    let Ok(given) = hex::decode(hex_part) else { return false };
    let expected = hmac_sha256(token, body);
    given.len() == expected.len() && bool::from(given.ct_eq(&expected))
}

/// The stored form of a token: its SHA-256 in lowercase hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(crate::accounts::secrets::hash_token(token))
}

/// Whether `given` (`X-Gitlab-Token`) is the token whose hash is `stored`.
pub fn gitlab_token_ok(given: &str, stored: &str) -> bool {
    token_hash(given).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 and 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn github_signatures_and_gitlab_tokens_are_checked() {
        let sig = format!("sha256={}", hex::encode(hmac_sha256(b"tok", b"{}")));
        assert!(github_signature_ok(b"tok", b"{}", &sig));
        assert!(!github_signature_ok(b"tok", b"{ }", &sig), "another body");
        assert!(!github_signature_ok(b"other", b"{}", &sig), "another token");
        assert!(!github_signature_ok(b"tok", b"{}", &sig[7..]), "no sha256= prefix");
        assert!(!github_signature_ok(b"tok", b"{}", "sha256=zz"));
        assert!(!github_signature_ok(b"tok", b"{}", &sig[..20]), "a prefix of the signature");
        assert!(gitlab_token_ok("tok", &token_hash("tok")));
        assert!(!gitlab_token_ok("tok2", &token_hash("tok")));
    }
}
