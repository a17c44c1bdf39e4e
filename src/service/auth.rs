//! Who is calling ([`Caller`]: who and [`Role`]): a camera (its own key, posts only to itself),
//! an inspector (reads and reviews) or an admin (also reloads and applies calibrations). Programs
//! send their token as `Authorization: Bearer`; the dashboard logs in once (a config token, or
//! a named account's password: [`super::accounts`]) and then carries a session id in the
//! HttpOnly `railscope_session` cookie (so `<img>` and `EventSource` work). The cookie never
//! holds the token; sessions are stored in SQLite under the SHA-256 of their id, so a restart
//! logs nobody out; logging out ends the session, disabling an account ends its sessions, and
//! sessions expire after 12 h. Tokens are compared in constant time and never logged.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

use crate::config::Config;

use super::accounts::{self, LoginThrottle};
use super::http::errors::ApiError;
use super::http::params::blocking;
use super::store::{Store, StoredSession};

pub const COOKIE: &str = "railscope_session";

/// A dashboard session lasts one shift.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Camera(String),
    Inspector,
    Admin,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Camera(_) => "camera",
            Role::Inspector => "inspector",
            Role::Admin => "admin",
        }
    }
    pub fn can_read(&self) -> bool {
        matches!(self, Role::Inspector | Role::Admin)
    }
    /// A person's role by its stored name (`inspector`, `admin`).
    pub fn of_person(name: &str) -> Option<Role> {
        match name {
            "inspector" => Some(Role::Inspector),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling and with what rights. `who` is what reviews, lifecycle changes and
/// calibration changes record: the account name, or for a config token its role's name
/// (`inspector`, `admin`, names no account may take), or a camera's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub who: String,
    pub role: Role,
}

impl Caller {
    fn token(role: Role) -> Self {
        let who = match &role {
            Role::Camera(id) => id.clone(),
            r => r.name().to_string(),
        };
        Caller { who, role }
    }
}

pub struct Auth {
    cameras: Vec<(String, String)>,
    inspectors: Vec<String>,
    admins: Vec<String>,
    /// Accounts and dashboard sessions (SQLite: a restart logs nobody out, and an account
    /// disabled by `railscope accounts disable` loses its sessions at once).
    store: Arc<dyn Store>,
    pub throttle: LoginThrottle,
}

impl Auth {
    pub fn new(c: &Config, store: Arc<dyn Store>) -> Self {
        Self {
            cameras: c
                .cameras
                .iter()
                .map(|cam| (cam.api_key.clone(), cam.id.clone()))
                .collect(),
            inspectors: c.auth.inspector_tokens.clone(),
            admins: c.auth.admin_tokens.clone(),
            store,
            throttle: LoginThrottle::new(&c.auth),
        }
    }

    /// Starts a dashboard session for `caller` (a person); returns its id (256 random bits,
    /// hex). Only the id's SHA-256 is stored.
    pub async fn start_session(&self, caller: &Caller) -> Result<String, ApiError> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| ApiError::internal(format!("session id: {e}")))?;
        let id = hex::encode(bytes);
        let now = chrono::Utc::now().timestamp_millis();
        let session = StoredSession {
            key_sha256: session_key(&id),
            who: caller.who.clone(),
            role: caller.role.name().to_string(),
            started_ms: now,
            expires_ms: now + SESSION_TTL.as_millis() as i64,
        };
        let store = self.store.clone();
        blocking(move || store.insert_session(&session)).await?;
        Ok(id)
    }

    pub async fn end_session(&self, id: &str) -> Result<(), ApiError> {
        let (store, key) = (self.store.clone(), session_key(id));
        blocking(move || store.delete_session(&key)).await
    }

    async fn session_caller(&self, id: &str) -> Result<Option<Caller>, ApiError> {
        // Only what a session id can look like reaches the database.
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let (store, key) = (self.store.clone(), session_key(id));
        let now = chrono::Utc::now().timestamp_millis();
        let found = blocking(move || store.session(&key, now)).await?;
        Ok(found.and_then(|s| Role::of_person(&s.role).map(|role| Caller { who: s.who, role })))
    }

    /// The caller a token stands for. Every candidate is compared, so timing does not tell
    /// which matched.
    pub fn identify(&self, token: &str) -> Option<Caller> {
        let mut found = None;
        for a in &self.admins {
            if ct_eq(a, token) {
                found = Some(Role::Admin);
            }
        }
        for i in &self.inspectors {
            if ct_eq(i, token) && found.is_none() {
                found = Some(Role::Inspector);
            }
        }
        for (key, cam) in &self.cameras {
            if ct_eq(key, token) && found.is_none() {
                found = Some(Role::Camera(cam.clone()));
            }
        }
        found.map(Caller::token)
    }

    /// The account `name` if `password` is its password and it is not disabled. Verified on
    /// the blocking pool; an unknown or disabled name is verified against a dummy hash, so all
    /// three failures take about as long and look the same.
    pub async fn login_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Caller>, ApiError> {
        let store = self.store.clone();
        let (name, password) = (name.to_string(), password.to_string());
        blocking(move || {
            let account = store.account(&name)?.filter(|a| a.disabled_ms.is_none());
            let hash = account.as_ref().map(|a| a.password_hash.as_str());
            let ok = accounts::verify_password(hash, &password);
            Ok(account
                .filter(|_| ok)
                .and_then(|a| Role::of_person(&a.role).map(|role| Caller { who: a.name, role })))
        })
        .await
    }

    /// Who sent `req`: its bearer token, else its session cookie.
    pub async fn caller(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let caller = match bearer_token(req) {
            Some(t) => self.identify(&t),
            None => match session_id(req) {
                Some(id) => self.session_caller(&id).await?,
                None => None,
            },
        };
        caller.ok_or_else(ApiError::unauthorized)
    }

    /// An inspector or an admin.
    pub async fn reader(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let caller = self.caller(req).await?;
        if caller.role.can_read() {
            Ok(caller)
        } else {
            Err(ApiError::forbidden("needs an inspector or admin token"))
        }
    }

    pub async fn admin(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let caller = self.caller(req).await?;
        match caller.role {
            Role::Admin => Ok(caller),
            _ => Err(ApiError::forbidden("needs an admin token or account")),
        }
    }
}

/// The key a session is stored under: the SHA-256 of its id (hex), so a copy of the database
/// holds no usable session.
pub fn session_key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn bearer_token(req: &HttpRequest) -> Option<String> {
    let v = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(t.trim().to_string())
}

pub fn session_id(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).map(|c| c.value().to_string())
}

fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for k in 0..a.len().max(b.len()) {
        diff |= a.get(k).copied().unwrap_or(0) ^ b.get(k).copied().unwrap_or(0xff);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CameraConfig;
    use crate::service::store::SqliteStore;

    #[test]
    fn callers_come_from_the_right_lists() {
        let mut c = Config::default();
        c.auth.inspector_tokens = vec!["inspector-1".into()];
        c.auth.admin_tokens = vec!["admin-token".into()];
        c.cameras = vec![CameraConfig {
            id: "cam-01".into(),
            api_key: "key-cam-01".into(),
            ..Default::default()
        }];
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path(), "normal").unwrap());
        let a = Auth::new(&c, store);
        let who = |t: &str| a.identify(t).map(|c| (c.who, c.role));
        assert_eq!(
            who("inspector-1"),
            Some(("inspector".into(), Role::Inspector))
        );
        assert_eq!(who("admin-token"), Some(("admin".into(), Role::Admin)));
        assert_eq!(
            who("key-cam-01"),
            Some(("cam-01".into(), Role::Camera("cam-01".into())))
        );
        assert_eq!(a.identify("key-cam-0"), None);
        assert_eq!(a.identify(""), None);
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("abc", "abcd"));
        assert_eq!(session_key("x").len(), 64);
        assert_ne!(session_key("x"), "x");
    }
}
