//! Password hashes in deepstream's stored format (server.md §4.2):
//! `base64(PBKDF2-HMAC-<digest>(password, salt, iterations, keyLength))` immediately followed by
//! the salt. The salt is the base64 text of 16 random bytes and is used *as text* — its ASCII
//! bytes are the PBKDF2 salt — so hashes made by deepstream.io verify here and vice versa.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::services::ServiceError;

/// Longest derived key accepted: a larger one only costs memory and time on every login.
const MAX_KEY_LENGTH: u64 = 1024;

/// Random bytes in a fresh salt (24 base64 characters).
const SALT_BYTES: usize = 16;

/// The HMAC digests PBKDF2 can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Digest {
    /// The names accepted in `options.hash`.
    pub const NAMES: &'static str = "md5, sha1, sha224, sha256, sha384, sha512";

    /// A digest by its OpenSSL-style name, case-insensitively (`md5`, `SHA256`, …).
    pub fn from_name(name: &str) -> Option<Digest> {
        Some(match name.to_ascii_lowercase().as_str() {
            "md5" => Digest::Md5,
            "sha1" => Digest::Sha1,
            "sha224" => Digest::Sha224,
            "sha256" => Digest::Sha256,
            "sha384" => Digest::Sha384,
            "sha512" => Digest::Sha512,
            _ => return None,
        })
    }
}

/// Why hash settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashSettingsError {
    #[error("unknown hash {0:?} (expected one of {names})", names = Digest::NAMES)]
    UnknownDigest(String),
    #[error("hash must be a digest name, got {0}")]
    HashNotAString(String),
    #[error("{key} must be an integer from 1 to {max}, got {found}")]
    OutOfRange {
        /// `iterations` or `keyLength`.
        key: &'static str,
        /// The largest accepted value.
        max: u64,
        /// The configured value, as JSON.
        found: String,
    },
}

/// PBKDF2 settings: turns passwords into stored hashes and checks passwords against them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHasher {
    /// The HMAC digest.
    digest: Digest,
    /// PBKDF2 rounds.
    iterations: u32,
    /// Derived key bytes; fixes where the hash ends and the salt starts in a stored password.
    key_length: usize,
}

impl PasswordHasher {
    pub fn new(digest: Digest, iterations: u32, key_length: usize) -> Self {
        PasswordHasher {
            digest,
            iterations,
            key_length,
        }
    }

    /// The settings in auth `options` (`hash`, `iterations`, `keyLength`). `None` when `hash` is
    /// absent or falsy: passwords are then compared as plain text.
    pub fn from_options(options: &Value) -> Result<Option<PasswordHasher>, HashSettingsError> {
        let digest = match options.get("hash") {
            None | Some(Value::Null | Value::Bool(false)) => return Ok(None),
            Some(Value::String(name)) if name.is_empty() => return Ok(None),
            Some(Value::String(name)) => Digest::from_name(name)
                .ok_or_else(|| HashSettingsError::UnknownDigest(name.clone()))?,
            Some(other) => return Err(HashSettingsError::HashNotAString(other.to_string())),
        };
        let iterations = bounded(options, "iterations", u64::from(u32::MAX))?;
        let key_length = bounded(options, "keyLength", MAX_KEY_LENGTH)?;
        Ok(Some(PasswordHasher::new(
            digest,
            u32::try_from(iterations).unwrap_or(u32::MAX),
            usize::try_from(key_length).unwrap_or(usize::MAX),
        )))
    }

    /// `base64(PBKDF2(password, salt))`, the hash part of a stored password.
    pub fn hash(&self, password: &str, salt: &str) -> String {
        use pbkdf2::pbkdf2_hmac;
        let (password, salt, rounds) = (password.as_bytes(), salt.as_bytes(), self.iterations);
        let mut key = vec![0; self.key_length];
        match self.digest {
            Digest::Md5 => pbkdf2_hmac::<md5::Md5>(password, salt, rounds, &mut key),
            Digest::Sha1 => pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, &mut key),
            Digest::Sha224 => pbkdf2_hmac::<sha2::Sha224>(password, salt, rounds, &mut key),
            Digest::Sha256 => pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, &mut key),
            Digest::Sha384 => pbkdf2_hmac::<sha2::Sha384>(password, salt, rounds, &mut key),
            Digest::Sha512 => pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, &mut key),
        }
        BASE64.encode(key)
    }

    /// A stored password for `password` with a fresh random salt.
    pub fn create(&self, password: &str) -> String {
        let salt = BASE64.encode(rand::random::<[u8; SALT_BYTES]>());
        format!("{}{salt}", self.hash(password, &salt))
    }

    /// Characters of the hash part of a stored password; the salt follows.
    pub fn hash_length(&self) -> usize {
        self.key_length.div_ceil(3) * 4
    }

    /// Whether `password` matches the stored `hash + salt`, compared in constant time.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        let hash_length = self.hash_length();
        let (Some(expected), Some(salt)) = (stored.get(..hash_length), stored.get(hash_length..))
        else {
            return false;
        };
        constant_time_eq(&self.hash(password, salt), expected)
    }
}

/// Equality whose duration does not depend on where the texts differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Runs PBKDF2 work on the blocking pool: at realistic iteration counts it takes milliseconds,
/// which must not stall the connection tasks sharing a runtime worker.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| format!("password hashing failed: {error}"))
}

/// A required integer option in `1..=max`.
fn bounded(options: &Value, key: &'static str, max: u64) -> Result<u64, HashSettingsError> {
    let value = options.get(key);
    value
        .and_then(Value::as_u64)
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| HashSettingsError::OutOfRange {
            key,
            max,
            found: value.map_or_else(|| "nothing".to_owned(), Value::to_string),
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// server.md §4.2 test vector (also userA in conf/users.yml).
    const VECTOR_SALT: &str = "GS4SbTQYmoaGwjm2shEobg==";
    const VECTOR_HASH: &str = "rCOSZxJrgze2AZdVQh12c6ErDMOG0M+Rx5Yu7S5d91c=";

    fn md5_100_32() -> PasswordHasher {
        PasswordHasher::new(Digest::Md5, 100, 32)
    }

    #[test]
    fn spec_test_vector() {
        assert_eq!(md5_100_32().hash("password", VECTOR_SALT), VECTOR_HASH);
    }

    #[test]
    fn verifies_the_test_vector_as_stored() {
        let stored = format!("{VECTOR_HASH}{VECTOR_SALT}");
        assert!(md5_100_32().verify("password", &stored));
        assert!(!md5_100_32().verify("Password", &stored));
    }

    #[test]
    fn created_hashes_have_the_documented_shape_and_verify() {
        for (digest, key_length) in [
            (Digest::Sha1, 20),
            (Digest::Sha224, 28),
            (Digest::Sha256, 32),
            (Digest::Sha384, 48),
            (Digest::Sha512, 64),
            (Digest::Md5, 1),
        ] {
            let hasher = PasswordHasher::new(digest, 3, key_length);
            let stored = hasher.create("s3cret");
            assert_eq!(stored.len(), key_length.div_ceil(3) * 4 + 24, "{digest:?}");
            assert!(hasher.verify("s3cret", &stored), "{digest:?}");
            assert!(!hasher.verify("s3cret!", &stored), "{digest:?}");
        }
    }

    #[test]
    fn fresh_salts_differ() {
        let hasher = md5_100_32();
        assert_ne!(hasher.create("password"), hasher.create("password"));
    }

    #[test]
    fn short_or_garbled_stored_passwords_never_match() {
        let hasher = md5_100_32();
        assert!(!hasher.verify("password", ""));
        assert!(!hasher.verify("password", &VECTOR_HASH[..40]));
        // The hash/salt boundary inside a multi-byte character.
        assert!(!hasher.verify("password", &format!("a{}", "é".repeat(40))));
    }

    #[test]
    fn settings_from_options() {
        assert_eq!(PasswordHasher::from_options(&json!({})), Ok(None));
        assert_eq!(PasswordHasher::from_options(&json!({"hash": ""})), Ok(None));
        assert_eq!(
            PasswordHasher::from_options(
                &json!({"hash": "SHA256", "iterations": 10, "keyLength": 16})
            ),
            Ok(Some(PasswordHasher::new(Digest::Sha256, 10, 16)))
        );
        assert_eq!(
            PasswordHasher::from_options(
                &json!({"hash": "whirlpool", "iterations": 10, "keyLength": 16})
            ),
            Err(HashSettingsError::UnknownDigest("whirlpool".into()))
        );
        assert!(matches!(
            PasswordHasher::from_options(&json!({"hash": "md5", "keyLength": 16})),
            Err(HashSettingsError::OutOfRange {
                key: "iterations",
                ..
            })
        ));
        assert!(matches!(
            PasswordHasher::from_options(
                &json!({"hash": "md5", "iterations": 1, "keyLength": 4096})
            ),
            Err(HashSettingsError::OutOfRange {
                key: "keyLength",
                ..
            })
        ));
    }
}
