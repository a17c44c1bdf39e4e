//! Named people (issue 12, item 5) against the real binary on 127.0.0.1 and a real SQLite file:
//! accounts created with `railscope accounts` (password on stdin), password login through the
//! HTTP server, reviews recorded under the account's name, sessions that survive a restart,
//! disabled accounts and changed passwords ending sessions, the login throttle (429 even for
//! the right password), and argon2id PHC hashes in the database.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::root;
use harness::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// `railscope accounts ARGS…` on the database in `storage`, with `stdin` fed to it.
fn accounts(storage: &Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_railscope"));
    c.current_dir(root());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RAILSCOPE__") {
            c.env_remove(k);
        }
    }
    let mut child = c
        .arg("accounts")
        .args(args)
        .env("RAILSCOPE__STORAGE__PATH", storage)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn railscope accounts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "railscope accounts failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn refused(out: &Output, says: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal saying {says:?}");
    assert!(err.starts_with("error: ") && err.contains(says), "{err}");
}

/// POST /v1/login with `body`: the response and the `name=value` of its session cookie.
fn login(s: &Service, body: &Value) -> (Resp, Option<String>) {
    let r = post_json(&s.url("/v1/login"), None, body);
    let cookie = r
        .header("set-cookie")
        .map(|c| c.split(';').next().unwrap().to_string());
    (r, cookie)
}

fn with_cookie(method: &str, url: &str, cookie: &str, body: Option<&Value>) -> Resp {
    let r = agent()
        .request(method, url)
        .set("Cookie", cookie)
        .set("Content-Type", "application/json");
    finish(match body {
        Some(b) => r.send_string(&b.to_string()),
        None => r.call(),
    })
}

fn db(storage: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(storage.join("railscope.db")).unwrap()
}

const ALICE_PW: &str = "alice's long password";

#[test]
fn an_account_logs_in_with_its_password_and_its_reviews_carry_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("store");

    // The CLI: checks names and passwords, takes the password from stdin only.
    let added = ok(&accounts(
        &storage,
        &["add", "alice", "--role", "inspector", "--password-stdin"],
        &format!("{ALICE_PW}\n"),
    ));
    assert_eq!(
        (&added["account"], &added["role"]),
        (&json!("alice"), &json!("inspector"))
    );
    ok(&accounts(
        &storage,
        &["add", "root.ops", "--role", "admin", "--password-stdin"],
        "an admin's password\n",
    ));
    refused(
        &accounts(
            &storage,
            &["add", "bob", "--role", "inspector", "--password-stdin"],
            "short\n",
        ),
        "use at least 10",
    );
    refused(
        &accounts(
            &storage,
            &["add", "admin", "--role", "admin", "--password-stdin"],
            "long enough pw\n",
        ),
        "reserved",
    );
    refused(
        &accounts(
            &storage,
            &["add", "Bob!", "--role", "admin", "--password-stdin"],
            "long enough pw\n",
        ),
        "2 to 64 characters",
    );
    refused(
        &accounts(
            &storage,
            &["add", "alice", "--role", "admin", "--password-stdin"],
            "long enough pw\n",
        ),
        "already exists",
    );
    refused(
        &accounts(&storage, &["disable", "nobody"], ""),
        "no account \"nobody\"",
    );
    let list = accounts(&storage, &["list"], "");
    let listed: Vec<Value> = String::from_utf8_lossy(&ok_bytes(&list))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        (&listed[0]["name"], &listed[0]["disabled"]),
        (&json!("alice"), &Value::Null)
    );
    assert_eq!(
        (&listed[1]["name"], &listed[1]["role"]),
        (&json!("root.ops"), &json!("admin"))
    );

    // Hashes are argon2id PHC strings, salted, never the password.
    {
        let c = db(&storage);
        let mut st = c
            .prepare("SELECT name, password_hash FROM accounts ORDER BY name")
            .unwrap();
        let rows: Vec<(String, String)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 2);
        for (name, hash) in &rows {
            assert!(hash.starts_with("$argon2id$v=19$m="), "{name}: {hash}");
            assert_eq!(hash.split('$').count(), 6, "{hash}");
            assert!(!hash.contains("password"), "{hash}");
        }
    }

    let mut s = Service::start(&storage, &[]);
    // Unknown name and wrong password: the same 401.
    let (wrong, cookie) = login(
        &s,
        &json!({"username": "alice", "password": "not her password"}),
    );
    assert_eq!(wrong.status, 401, "{}", wrong.json);
    assert!(cookie.is_none());
    let (unknown, _) = login(
        &s,
        &json!({"username": "mallory", "password": "not her password"}),
    );
    assert_eq!((unknown.status, &unknown.bytes), (401, &wrong.bytes));
    let (half, _) = login(&s, &json!({"username": "alice"}));
    assert_eq!(half.status, 400, "{}", half.json);

    let (r, cookie) = login(&s, &json!({"username": "Alice ", "password": ALICE_PW}));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json, json!({"role": "inspector", "who": "alice"}));
    let cookie = cookie.expect("a session cookie");
    let me = with_cookie("GET", &s.url("/v1/me"), &cookie, None);
    assert_eq!(me.json, json!({"role": "inspector", "who": "alice"}));
    // A token login still works, and names its role.
    let (t, _) = login(&s, &json!({"token": INSPECTOR}));
    assert_eq!(t.json, json!({"role": "inspector", "who": "inspector"}));
    // Only the SHA-256 of the session id is stored.
    let id = cookie.split_once('=').unwrap().1.to_string();
    {
        let c = db(&storage);
        let (key, who): (String, String) = c
            .query_row(
                "SELECT key_sha256, who FROM sessions WHERE who = 'alice'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(who, "alice");
        assert_eq!(key, hex::encode(Sha256::digest(id.as_bytes())));
        let raw: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sessions WHERE key_sha256 = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(raw, 0);
    }

    // A review made in alice's session records alice.
    let posted = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/missing_clip/000000.png"),
        &[("X-Frame-Id", "acc-1")],
    );
    assert_eq!(posted.status, 200, "{}", posted.json);
    let inspection = posted.json["id"].as_i64().unwrap();
    let review_url = s.url(&format!("/v1/inspections/{inspection}/review"));
    let reviewed = with_cookie(
        "POST",
        &review_url,
        &cookie,
        Some(&json!({"state": "false_alarm", "note": "a shadow"})),
    );
    assert_eq!(reviewed.status, 200, "{}", reviewed.json);
    assert_eq!(reviewed.json["review"]["reviewer"], "alice");
    let stored: (String, String) = db(&storage)
        .query_row(
            "SELECT i.reviewer, r.reviewer FROM inspections i JOIN reviews r ON r.inspection_id = i.id
             WHERE i.id = ?1",
            [inspection],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(stored, ("alice".to_string(), "alice".to_string()));

    // A confirmation, its repair lifecycle, a bulk review and its undo: all under alice.
    let second = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/broken_clip/000000.png"),
        &[("X-Frame-Id", "acc-2")],
    );
    let second = second.json["id"].as_i64().unwrap();
    let confirmed = with_cookie(
        "POST",
        &s.url(&format!("/v1/inspections/{second}/review")),
        &cookie,
        Some(&json!({"state": "confirmed", "type": "fractured_clip", "severity": "plan"})),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.json);
    assert_eq!(confirmed.json["review"]["lifecycle"]["by"], "alice");
    let ordered = with_cookie(
        "POST",
        &s.url(&format!("/v1/inspections/{second}/lifecycle")),
        &cookie,
        Some(&json!({"state": "repair_ordered", "note": "WO-1"})),
    );
    assert_eq!(ordered.status, 200, "{}", ordered.json);
    assert_eq!(ordered.json["review"]["lifecycle"]["by"], "alice");
    let bulk = with_cookie(
        "POST",
        &s.url("/v1/review-batches"),
        &cookie,
        Some(
            &json!({"ids": [inspection], "expected_count": 1, "state": "confirmed",
                     "type": "missing_clip", "severity": "monitor"}),
        ),
    );
    assert_eq!(bulk.status, 200, "{}", bulk.json);
    assert_eq!(bulk.json["reviewer"], "alice");
    let batch = bulk.json["id"].as_i64().unwrap();
    let undo = with_cookie(
        "POST",
        &s.url(&format!("/v1/review-batches/{batch}/undo")),
        &cookie,
        Some(&json!({})),
    );
    assert_eq!(undo.status, 200, "{}", undo.json);
    assert_eq!(undo.json["undone"]["by"], "alice");

    // The session survives a restart of the service on the same data directory.
    s.restart();
    let me = with_cookie("GET", &s.url("/v1/me"), &cookie, None);
    assert_eq!(
        (me.status, &me.json["who"]),
        (200, &json!("alice")),
        "{}",
        me.json
    );
    let history = with_cookie(
        "GET",
        &s.url(&format!("/v1/inspections/{inspection}/history")),
        &cookie,
        None,
    );
    assert_eq!(history.status, 200, "{}", history.json);
    assert!(
        history.bytes.windows(7).any(|w| w == b"\"alice\""),
        "{}",
        history.json
    );

    // An admin account's calibration change is audited under its name.
    let (a, admin_cookie) = login(
        &s,
        &json!({"username": "root.ops", "password": "an admin's password"}),
    );
    assert_eq!(a.json, json!({"role": "admin", "who": "root.ops"}));
    let admin_cookie = admin_cookie.unwrap();
    let applied = with_cookie(
        "PUT",
        &s.url("/v1/cameras/cam-02/calibration"),
        &admin_cookie,
        Some(&json!({"threshold": 0.2, "reason": "named test"})),
    );
    assert_eq!(applied.status, 200, "{}", applied.json);
    let audit = with_cookie(
        "GET",
        &s.url("/v1/calibration/audit?camera=cam-02"),
        &admin_cookie,
        None,
    );
    assert_eq!(
        audit.json["items"][0]["actor"], "root.ops",
        "{}",
        audit.json
    );
    // an inspector account is not an admin
    let denied = with_cookie(
        "PUT",
        &s.url("/v1/cameras/cam-02/calibration"),
        &cookie,
        Some(&json!({"threshold": 0.3})),
    );
    assert_eq!(denied.status, 403);

    // Logging out deletes the row.
    let out = with_cookie("POST", &s.url("/v1/logout"), &admin_cookie, None);
    assert_eq!(out.status, 204);
    assert_eq!(
        with_cookie("GET", &s.url("/v1/me"), &admin_cookie, None).status,
        401
    );
    let admin_rows: i64 = db(&storage)
        .query_row(
            "SELECT COUNT(*) FROM sessions WHERE who = 'root.ops'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(admin_rows, 0);

    // Disabled while the service runs: the session is refused at once, and so is the password.
    let disabled = ok(&accounts(&storage, &["disable", "alice"], ""));
    assert_eq!(disabled["sessions_ended"], true);
    let me = with_cookie("GET", &s.url("/v1/me"), &cookie, None);
    assert_eq!(me.status, 401, "{}", me.json);
    let again = with_cookie(
        "POST",
        &review_url,
        &cookie,
        Some(&json!({"state": "confirmed"})),
    );
    assert_eq!(again.status, 401);
    let (r, c) = login(&s, &json!({"username": "alice", "password": ALICE_PW}));
    assert_eq!((r.status, &r.bytes, c), (401, &wrong.bytes, None));
    let listed = String::from_utf8_lossy(&ok_bytes(&accounts(&storage, &["list"], ""))).to_string();
    assert!(
        listed.lines().next().unwrap().contains("\"disabled\":\"20"),
        "{listed}"
    );
}

fn ok_bytes(out: &Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

#[test]
fn failed_logins_are_throttled_per_name_and_per_address() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("store");
    for name in ["dora", "emil"] {
        ok(&accounts(
            &storage,
            &["add", name, "--role", "inspector", "--password-stdin"],
            &format!("{name}-password-1\n"),
        ));
    }
    let s = Service::start(
        &storage,
        &[
            ("RAILSCOPE__AUTH__MAX_FAILED_LOGINS_PER_NAME", "3"),
            ("RAILSCOPE__AUTH__MAX_FAILED_LOGINS_PER_IP", "9"),
            ("RAILSCOPE__AUTH__FAILED_LOGIN_WINDOW_S", "600"),
        ],
    );
    let pw = |name: &str, good: bool| json!({"username": name, "password": if good { format!("{name}-password-1") } else { "guess-guess-guess".into() }});
    // A success clears the name's count: 2 failures, a success, 2 more failures, still allowed.
    for _ in 0..2 {
        assert_eq!(login(&s, &pw("dora", false)).0.status, 401);
    }
    assert_eq!(login(&s, &pw("dora", true)).0.status, 200);
    for _ in 0..2 {
        assert_eq!(login(&s, &pw("dora", false)).0.status, 401);
    }
    assert_eq!(login(&s, &pw("dora", true)).0.status, 200);
    // Three failures in a row: the fourth attempt is refused even with the right password.
    for _ in 0..3 {
        assert_eq!(login(&s, &pw("dora", false)).0.status, 401);
    }
    let (r, cookie) = login(&s, &pw("dora", true));
    assert_eq!(r.status, 429, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "too_many_attempts");
    assert!(cookie.is_none());
    let wait: u64 = r
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((590..=600).contains(&wait), "{wait}");
    // The name is throttled, not the address (which has 7 failures of its 9 so far: every
    // failure counts there, successes do not): emil still logs in; one more failure of another
    // name…
    let (e, _) = login(&s, &pw("emil", true));
    assert_eq!(e.status, 200, "{}", e.json);
    assert_eq!(login(&s, &pw("nobody", false)).0.status, 401);
    // … and a bad token make 9: now the address is refused, for every name and for tokens.
    assert_eq!(login(&s, &json!({"token": "not-a-token"})).0.status, 401);
    let (e, _) = login(&s, &pw("emil", true));
    assert_eq!(
        (e.status, &e.json["error"]["code"]),
        (429, &json!("too_many_attempts"))
    );
    assert!(e.retry_after.is_some());
    assert_eq!(login(&s, &json!({"token": INSPECTOR})).0.status, 429);
    // Programs with a bearer token are not affected.
    assert_eq!(get(&s.url("/v1/cameras"), Some(INSPECTOR)).status, 200);
}

#[test]
fn a_new_password_ends_the_sessions_of_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("store");
    ok(&accounts(
        &storage,
        &["add", "fritz", "--role", "admin", "--password-stdin"],
        "first password!\n",
    ));
    let s = Service::start(&storage, &[]);
    let (r, cookie) = login(
        &s,
        &json!({"username": "fritz", "password": "first password!"}),
    );
    assert_eq!(r.status, 200);
    let cookie = cookie.unwrap();
    // Reload by an admin account: allowed, and it names the account as its actor.
    let reload = with_cookie("POST", &s.url("/admin/reload"), &cookie, None);
    assert_eq!(reload.status, 200, "{}", reload.json);
    refused(
        &accounts(
            &storage,
            &["password", "fritz", "--password-stdin"],
            "too short\n",
        ),
        "at least 10",
    );
    ok(&accounts(
        &storage,
        &["password", "fritz", "--password-stdin"],
        "second password\r\n",
    ));
    assert_eq!(
        with_cookie("GET", &s.url("/v1/me"), &cookie, None).status,
        401
    );
    assert_eq!(
        login(
            &s,
            &json!({"username": "fritz", "password": "first password!"})
        )
        .0
        .status,
        401
    );
    let (r, _) = login(
        &s,
        &json!({"username": "fritz", "password": "second password"}),
    );
    assert_eq!(r.json, json!({"role": "admin", "who": "fritz"}));
}
