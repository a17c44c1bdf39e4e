//! Named people: account names and passwords checked, passwords hashed with argon2id (the
//! crate's default parameters, a fresh salt from the OS RNG each) and verified against the
//! stored PHC string — or against a dummy hash when there is no such account, so an unknown
//! name costs the same time as a wrong password — and failed logins throttled per account name
//! and per client address in a sliding window (`[auth] max_failed_logins_per_*`).
//!
//! The accounts themselves live in the store (`accounts` table); `railscope accounts` manages
//! them and `POST /v1/login {"username", "password"}` turns them into dashboard sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::config::AuthConfig;
use crate::error::{Error, Result};

/// Names that config tokens and the service record themselves under: no account may take them,
/// so `reviewer = "admin"` always means "someone with the admin token".
pub const RESERVED_NAMES: &[&str] = &["inspector", "admin", "camera", "service", "signal"];

/// The roles an account can have.
pub const ROLES: &[&str] = &["inspector", "admin"];

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer passwords are refused rather than hashed (argon2 takes any length, but a megabyte
/// password is a denial of service, not a secret).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// An account name: 2–64 of `a-z 0-9 . _ -`, starting with a letter or digit, not reserved.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !(2..=64).contains(&name.len()) || !ok_chars || !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(format!(
            "account name {name:?}: use 2 to 64 characters of a-z, 0-9, '.', '_' and '-', \
             starting with a letter or digit"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "account name {name:?} is reserved (config tokens are recorded under {})",
            RESERVED_NAMES.join(", ")
        ));
    }
    Ok(())
}

/// A password: at least [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_BYTES`]
/// bytes, no control characters, not only spaces.
pub fn check_password(password: &str) -> std::result::Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password has {chars} characters; use at least {MIN_PASSWORD_CHARS}"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is {} bytes long; use at most {MAX_PASSWORD_BYTES}",
            password.len()
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("the password contains a control character (tab, newline, …)".into());
    }
    if password.trim().is_empty() {
        return Err("the password is only spaces".into());
    }
    Ok(())
}

pub fn check_role(role: &str) -> std::result::Result<(), String> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(format!("role {role:?}: use one of {}", ROLES.join(", ")))
    }
}

/// The argon2id PHC string of `password` with a fresh random salt (slow on purpose: tens of ms).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(format!("hashing the password: {e}")))
}

/// A hash no password matches (of 32 random bytes nobody saw), with the same parameters as
/// real ones: what a login for an unknown or disabled name is verified against.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 32];
        // An all-zero secret if the RNG failed would still never be anyone's password check
        // outcome: the result of this verification is always discarded.
        let _ = getrandom_fill(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

fn getrandom_fill(buf: &mut [u8]) -> std::io::Result<()> {
    use argon2::password_hash::rand_core::RngCore;
    OsRng
        .try_fill_bytes(buf)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Computes the dummy hash now (a service calls this at start, so the first unknown name is not
/// slower than the rest).
pub fn prime() {
    let _ = dummy_hash();
}

/// Whether `password` matches `stored` (a PHC string); `None` verifies against the dummy hash
/// and answers `false`, taking about as long. Blocking (tens of ms): call it off the event loop.
pub fn verify_password(stored: Option<&str>, password: &str) -> bool {
    let real = stored.is_some();
    let phc = stored.unwrap_or_else(|| dummy_hash());
    let matched = match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    };
    real && matched
}

/// Failed logins in a sliding window, per account name and per client address. A login asks
/// [`LoginThrottle::attempt`] first, which counts it as failed straight away (so parallel
/// guesses cannot all slip in before the first is verified); a success takes that back and
/// clears the name's failures.
pub struct LoginThrottle {
    per_name: usize,
    per_ip: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Keys of the two counts (one map; a name and an address can never be confused).
fn name_key(name: &str) -> String {
    format!("name:{name}")
}
fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl LoginThrottle {
    pub fn new(c: &AuthConfig) -> Self {
        Self {
            per_name: c.max_failed_logins_per_name as usize,
            per_ip: c.max_failed_logins_per_ip as usize,
            window: Duration::from_secs(c.failed_login_window_s),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt by `name` (none for a token login) from `ip` as failed, unless either
    /// is already at its limit: then `Err` with how long until the oldest failure leaves the
    /// window (and nothing is counted).
    pub fn attempt(&self, name: Option<&str>, ip: &str) -> std::result::Result<(), Duration> {
        let now = Instant::now();
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 10_000 {
            let window = self.window;
            m.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let mut keys = vec![(ip_key(ip), self.per_ip)];
        if let Some(n) = name {
            keys.push((name_key(n), self.per_name));
        }
        let mut wait = Duration::ZERO;
        for (key, limit) in &keys {
            if let Some(q) = m.get_mut(key) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    q.pop_front();
                }
                if q.len() >= *limit {
                    // the failure that must leave the window for one more attempt
                    let oldest = q[q.len() - *limit];
                    wait = wait.max(self.window.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if !wait.is_zero() {
            return Err(wait.max(Duration::from_secs(1)));
        }
        for (key, _) in keys {
            m.entry(key).or_default().push_back(now);
        }
        Ok(())
    }

    /// The attempt succeeded: it is not a failure of `ip`, and `name`'s failures are forgotten.
    pub fn succeeded(&self, name: Option<&str>, ip: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = m.get_mut(&ip_key(ip)) {
            q.pop_back();
            if q.is_empty() {
                m.remove(&ip_key(ip));
            }
        }
        if let Some(n) = name {
            m.remove(&name_key(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for ok in ["alice", "j.doe", "inspector-7", "a_b", "42", "ab"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Alice",
            "al ice",
            "-alice",
            ".x",
            "é.t",
            &"x".repeat(65),
            "a/b",
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains("2 to 64"), "{bad}: {e}");
        }
        for reserved in ["inspector", "admin", "camera", "service", "signal"] {
            assert!(check_name(reserved).unwrap_err().contains("reserved"));
        }
        assert!(check_role("admin").is_ok() && check_role("inspector").is_ok());
        assert!(check_role("camera")
            .unwrap_err()
            .contains("inspector, admin"));
    }

    #[test]
    fn passwords_follow_the_rules() {
        assert!(check_password("correct horse").is_ok());
        assert!(
            check_password("ünïcödé-pw").is_ok(),
            "10 characters, more bytes"
        );
        let short = check_password("short").unwrap_err();
        assert!(
            short.contains("5 characters") && short.contains("at least 10"),
            "{short}"
        );
        assert!(check_password(&"x".repeat(257))
            .unwrap_err()
            .contains("at most 256"));
        assert!(check_password("tab\there-xx")
            .unwrap_err()
            .contains("control"));
        assert!(check_password("            ")
            .unwrap_err()
            .contains("spaces"));
    }

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains("correct horse"));
        assert!(verify_password(Some(&a), "correct horse"));
        assert!(!verify_password(Some(&a), "correct horsE"));
        assert!(!verify_password(None, "correct horse"));
        // An unknown name costs what a real account costs: the dummy hash has the same
        // algorithm and parameters (only salt and output differ).
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(dummy_hash()), params(&a));
        assert_eq!(params(&a), "$argon2id$v=19$m=19456,t=2,p=1");
        assert!(!verify_password(Some("not a phc string"), "x"));
    }

    #[test]
    fn throttle_counts_names_and_addresses_in_a_window() {
        let c = AuthConfig {
            max_failed_logins_per_name: 3,
            max_failed_logins_per_ip: 5,
            failed_login_window_s: 60,
            ..AuthConfig::default()
        };
        let t = LoginThrottle::new(&c);
        for _ in 0..3 {
            assert!(t.attempt(Some("alice"), "10.0.0.1").is_ok());
        }
        let wait = t.attempt(Some("alice"), "10.0.0.1").unwrap_err();
        assert!(wait > Duration::from_secs(58) && wait <= Duration::from_secs(60));
        // another name from the same address: two more before the address is at 5
        assert!(t.attempt(Some("bob"), "10.0.0.1").is_ok());
        // bob's login succeeds: not counted against the address, bob's failures cleared
        t.succeeded(Some("bob"), "10.0.0.1");
        assert!(t.attempt(Some("bob"), "10.0.0.1").is_ok());
        assert!(
            t.attempt(None, "10.0.0.1").is_ok(),
            "a token attempt counts per address"
        );
        assert!(
            t.attempt(Some("carol"), "10.0.0.1").is_err(),
            "address at its limit"
        );
        assert!(
            t.attempt(Some("carol"), "10.0.0.2").is_ok(),
            "carol elsewhere"
        );
        // alice from elsewhere is still refused (per name), until a success clears her
        assert!(t.attempt(Some("alice"), "10.0.0.3").is_err());
        t.succeeded(Some("alice"), "10.0.0.3");
        assert!(t.attempt(Some("alice"), "10.0.0.3").is_ok());
    }
}
