//! Who is calling: a camera (its own key, posts only to itself), an inspector (reads and
//! reviews) or an admin (also reloads and applies calibrations). Programs send their token as
//! `Authorization: Bearer`; the dashboard logs in once and then carries a session id in the
//! HttpOnly `railscope_session` cookie (so `<img>` and `EventSource` work). The cookie never
//! holds the token, logging out ends the session, and sessions expire. Tokens are compared in
//! constant time and never logged.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;

use crate::config::Config;

use super::http::errors::ApiError;

pub const COOKIE: &str = "railscope_session";

/// A dashboard session lasts one shift.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

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
}

pub struct Auth {
    cameras: Vec<(String, String)>,
    inspectors: Vec<String>,
    admins: Vec<String>,
    /// Session id → role and start, for logged-in dashboards. In memory: a restart logs
    /// everyone out, which the dashboard answers with its login panel.
    sessions: Mutex<HashMap<String, (Role, Instant)>>,
}

impl Auth {
    pub fn from_config(c: &Config) -> Self {
        Self {
            cameras: c
                .cameras
                .iter()
                .map(|cam| (cam.api_key.clone(), cam.id.clone()))
                .collect(),
            inspectors: c.auth.inspector_tokens.clone(),
            admins: c.auth.admin_tokens.clone(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a dashboard session for `role`; returns its id (256 random bits, hex).
    pub fn start_session(&self, role: Role) -> std::io::Result<String> {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        let id = hex::encode(bytes);
        let mut m = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, (_, started)| started.elapsed() < SESSION_TTL);
        m.insert(id.clone(), (role, Instant::now()));
        Ok(id)
    }

    pub fn end_session(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    fn session_role(&self, id: &str) -> Option<Role> {
        let m = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id)
            .filter(|(_, started)| started.elapsed() < SESSION_TTL)
            .map(|(role, _)| role.clone())
    }

    /// The role of a token. Every candidate is compared, so timing does not tell which matched.
    pub fn identify(&self, token: &str) -> Option<Role> {
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
        found
    }

    pub fn role_of(&self, req: &HttpRequest) -> Result<Role, ApiError> {
        let role = match bearer_token(req) {
            Some(t) => self.identify(&t),
            None => session_id(req).and_then(|id| self.session_role(&id)),
        };
        role.ok_or_else(ApiError::unauthorized)
    }

    pub fn reader(&self, req: &HttpRequest) -> Result<Role, ApiError> {
        let role = self.role_of(req)?;
        if role.can_read() {
            Ok(role)
        } else {
            Err(ApiError::forbidden("needs an inspector or admin token"))
        }
    }

    pub fn admin(&self, req: &HttpRequest) -> Result<Role, ApiError> {
        match self.role_of(req)? {
            Role::Admin => Ok(Role::Admin),
            _ => Err(ApiError::forbidden("needs an admin token")),
        }
    }
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

    #[test]
    fn roles_come_from_the_right_lists() {
        let mut c = Config::default();
        c.auth.inspector_tokens = vec!["inspector-1".into()];
        c.auth.admin_tokens = vec!["admin-token".into()];
        c.cameras = vec![CameraConfig {
            id: "cam-01".into(),
            api_key: "key-cam-01".into(),
            ..Default::default()
        }];
        let a = Auth::from_config(&c);
        assert_eq!(a.identify("inspector-1"), Some(Role::Inspector));
        assert_eq!(a.identify("admin-token"), Some(Role::Admin));
        assert_eq!(
            a.identify("key-cam-01"),
            Some(Role::Camera("cam-01".into()))
        );
        assert_eq!(a.identify("key-cam-0"), None);
        assert_eq!(a.identify(""), None);
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("abc", "abcd"));

        let id = a.start_session(Role::Inspector).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, a.start_session(Role::Inspector).unwrap());
        assert_eq!(a.session_role(&id), Some(Role::Inspector));
        a.end_session(&id);
        assert_eq!(a.session_role(&id), None);
    }
}
