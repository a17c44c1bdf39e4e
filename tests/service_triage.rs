//! Triage at scale (issue 12, item 4) against the real binary on 127.0.0.1 with the shipped
//! model and a real SQLite file: the review queue sorted by score and paged without gaps or
//! repeats, the score and position filters, a `total` that agrees with the list, bulk review of
//! a filtered set (bounded, in one transaction, kept in the history with the reviewer) and its
//! undo (once; inspections reviewed again since are skipped and named).

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::collections::HashSet;

use harness::*;
use serde_json::{json, Value};

fn post(s: &Service, camera: &str, bytes: &[u8], frame: &str, track: &str, pos: f64) -> Value {
    let key = format!("demo-key-{camera}");
    let pos = pos.to_string();
    let r = post_frame(
        s,
        camera,
        Some(&key),
        "image/png",
        bytes,
        &[
            ("X-Frame-Id", frame),
            ("X-Track-Id", track),
            ("X-Track-Position-M", pos.as_str()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

fn list(s: &Service, query: &str) -> Value {
    let r = get(&s.url(&format!("/v1/inspections?{query}")), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{query}: {}", r.json);
    r.json
}

fn ids(v: &Value) -> Vec<i64> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// Every page of `query` (which names no cursor), following `next_cursor`; checks that each
/// page reports the same total and returns the items and that total.
fn all_pages(s: &Service, query: &str) -> (Vec<Value>, i64) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    for _ in 0..1000 {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={}", c.replace(':', "%3A")),
            None => query.to_string(),
        };
        let page = list(s, &q);
        let t = page["total"].as_i64().expect("total");
        assert_eq!(
            *total.get_or_insert(t),
            t,
            "the total is the same on every page"
        );
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (out, total.unwrap()),
        }
    }
    panic!("paging does not end: {query}");
}

fn score(i: &Value) -> Option<f64> {
    i["A_norm"].as_f64()
}

/// Highest score first, ties by id descending, no score last (by id descending).
fn by_score(a: &Value, b: &Value) -> std::cmp::Ordering {
    let id = |i: &Value| i["id"].as_i64().unwrap();
    match (score(a), score(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x).then(id(b).cmp(&id(a))),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => id(b).cmp(&id(a)),
    }
}

#[test]
fn the_queue_sorts_by_score_pages_without_gaps_and_counts_what_it_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = track_camera_config(tmp.path(), "cam-04");
    let s = Service::start_with_config(&tmp.path().join("store"), Some(&cfg), &[]);
    // Every fixture on cam-01 along two tracks, the first ten again (same image, same score:
    // ties), and two blank frames on cam-04 (defects without a score).
    let fx = reference_frames();
    let mut posted = Vec::new();
    for (k, (bytes, _)) in fx.iter().enumerate() {
        let track = if k % 2 == 0 { "L1" } else { "L2" };
        posted.push(post(
            &s,
            "cam-01",
            bytes,
            &format!("a-{k}"),
            track,
            100.0 * k as f64,
        ));
    }
    for (k, (bytes, _)) in fx.iter().enumerate().take(10) {
        posted.push(post(
            &s,
            "cam-01",
            bytes,
            &format!("b-{k}"),
            "L1",
            100.0 * k as f64 + 50.0,
        ));
    }
    let blank = blank_png();
    for k in 0..2 {
        let r = post(
            &s,
            "cam-04",
            &blank,
            &format!("c-{k}"),
            "L1",
            5000.0 + k as f64,
        );
        assert!(
            r["A_norm"].is_null(),
            "a blank track frame has no score: {r}"
        );
        assert_eq!(r["verdict"], "defect");
        posted.push(r);
    }
    let n = posted.len() as i64;

    // Newest first, as before: before_id paging and the cursor give the same pages.
    let everything = list(&s, "limit=500");
    assert_eq!(everything["total"], json!(n));
    let mut newest: Vec<i64> = posted.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids(&everything), newest);
    let mut by_before_id = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = match before {
            Some(b) => format!("limit=7&before_id={b}"),
            None => "limit=7".into(),
        };
        let page = list(&s, &q);
        assert_eq!(page["total"], json!(n), "paging does not change the total");
        by_before_id.extend(ids(&page));
        match page["next_before_id"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(by_before_id, newest);
    let (cursor_pages, total) = all_pages(&s, "limit=7&sort=newest");
    assert_eq!(total, n);
    assert_eq!(
        cursor_pages
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        newest
    );

    // By score: every inspection once, highest A′ first, ties by id, unscored last, with
    // pages of every size (a page boundary inside a run of ties included).
    let mut want = posted.clone();
    want.sort_by(by_score);
    let want_ids: Vec<i64> = want.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let ties = want
        .windows(2)
        .filter(|w| score(&w[0]).is_some() && score(&w[0]) == score(&w[1]))
        .count();
    assert!(ties > 0, "the same image twice gives the same score");
    for limit in [1, 2, 3, 5, 8, 500] {
        let (items, total) = all_pages(&s, &format!("sort=score&limit={limit}"));
        let got: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        assert_eq!(total, n);
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            got.len(),
            "no repeats (limit {limit})"
        );
        assert_eq!(got, want_ids, "no gaps, score order (limit {limit})");
    }
    let first = list(&s, "sort=score&limit=3");
    assert!(
        first["next_before_id"].is_null(),
        "before_id pages the newest-first order only"
    );
    assert!(first["next_cursor"].as_str().unwrap().contains(':'));

    // The review queue by score: unreviewed defects, highest first, and its total.
    let defects: Vec<&Value> = want.iter().filter(|i| i["verdict"] == "defect").collect();
    let (queue, total) = all_pages(&s, "verdict=defect&review=unreviewed&sort=score&limit=4");
    assert_eq!(total, defects.len() as i64);
    assert_eq!(
        queue
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        defects
            .iter()
            .map(|i| i["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    );

    // min_score: honoured in both orders, unscored left out, total counted the same way.
    // (Between two scores: the JSON parser here may read a score a hair off.)
    let mut scored: Vec<f64> = want.iter().filter_map(score).collect();
    scored.dedup();
    let min = (scored[scored.len() / 3] + scored[scored.len() / 3 + 1]) / 2.0;
    for sort in ["score", "newest"] {
        let (items, total) = all_pages(&s, &format!("min_score={min}&sort={sort}&limit=4"));
        let expected = want
            .iter()
            .filter(|i| score(i).is_some_and(|a| a >= min))
            .count();
        assert_eq!(items.len(), expected, "sort={sort}");
        assert_eq!(total, expected as i64, "sort={sort}");
        assert!(items.iter().all(|i| score(i).is_some_and(|a| a >= min)));
    }

    // Track and position (the dashboard's km filter, in metres): inclusive bounds.
    let in_range = |i: &Value, track: &str, lo: f64, hi: f64| {
        i["track_id"] == track && i["position_m"].as_f64().is_some_and(|p| p >= lo && p <= hi)
    };
    for (query, track, lo, hi) in [
        (
            "track_id=L1&min_position_m=400&max_position_m=1250",
            "L1",
            400.0,
            1250.0,
        ),
        ("track_id=L2&min_position_m=100", "L2", 100.0, f64::INFINITY),
        (
            "track_id=L1&max_position_m=5000",
            "L1",
            f64::NEG_INFINITY,
            5000.0,
        ),
    ] {
        let expected: Vec<i64> = want
            .iter()
            .filter(|i| in_range(i, track, lo, hi))
            .map(|i| i["id"].as_i64().unwrap())
            .collect();
        assert!(!expected.is_empty(), "{query}");
        let (items, total) = all_pages(&s, &format!("{query}&sort=score&limit=3"));
        assert_eq!(total, expected.len() as i64, "{query}");
        assert_eq!(
            items
                .iter()
                .map(|i| i["id"].as_i64().unwrap())
                .collect::<Vec<_>>(),
            expected,
            "{query}"
        );
    }

    // The total is the number the filter matches, whatever the page: combined filters.
    let combined = format!(
        "camera=cam-01&verdict=defect&track_id=L1&min_score={min}&max_id={}",
        newest[5]
    );
    let expected = want
        .iter()
        .filter(|i| {
            i["camera"] == "cam-01"
                && i["verdict"] == "defect"
                && i["track_id"] == "L1"
                && score(i).is_some_and(|a| a >= min)
                && i["id"].as_i64().unwrap() <= newest[5]
        })
        .count() as i64;
    assert_eq!(
        list(&s, &format!("{combined}&limit=1"))["total"],
        json!(expected)
    );
    assert_eq!(
        all_pages(&s, &format!("{combined}&limit=2&sort=score"))
            .0
            .len() as i64,
        expected
    );

    // Clear 400s.
    for (q, says) in [
        ("sort=best", "sort"),
        ("sort=score&cursor=17", "cursor"),
        ("sort=score&cursor=abc%3A1", "cursor"),
        ("cursor=0.5%3A17", "cursor"),
        ("sort=score&cursor=NaN%3A3", "cursor"),
        ("min_position_m=NaN", "min_position_m"),
    ] {
        let r = get(&s.url(&format!("/v1/inspections?{q}")), Some(INSPECTOR));
        assert_eq!(r.status, 400, "{q}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "bad_request");
        assert!(
            r.json["error"]["message"].as_str().unwrap().contains(says),
            "{q}: {}",
            r.json
        );
    }
}

fn review_of(s: &Service, id: i64) -> Value {
    let r = get(&s.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["review"].clone()
}

fn history(s: &Service, id: i64) -> Vec<Value> {
    let r = get(
        &s.url(&format!("/v1/inspections/{id}/history")),
        Some(INSPECTOR),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["items"].as_array().unwrap().clone()
}

fn total(s: &Service, query: &str) -> i64 {
    list(s, &format!("{query}&limit=1"))["total"]
        .as_i64()
        .unwrap()
}

#[test]
fn bulk_review_is_bounded_atomic_kept_in_the_history_and_undone_once() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__REVIEW__MAX_BULK", "10")],
    );
    let batches = s.url("/v1/review-batches");
    // Twelve defects along L1 at 100 m … 1200 m and two normal frames.
    let fx = reference_frames();
    let mut d = Vec::new();
    for (bytes, _) in fx.iter().filter(|f| f.1 == "defect").take(12) {
        let k = d.len() + 1;
        let r = post(
            &s,
            "cam-01",
            bytes,
            &format!("d-{k}"),
            "L1",
            100.0 * k as f64,
        );
        assert_eq!(r["verdict"], "defect", "the fixture list says defect: {r}");
        d.push(r["id"].as_i64().unwrap());
    }
    for (k, (bytes, _)) in fx.iter().filter(|f| f.1 == "normal").take(2).enumerate() {
        post(
            &s,
            "cam-01",
            bytes,
            &format!("n-{k}"),
            "L1",
            150.0 + k as f64,
        );
    }
    // d[0] was confirmed before, one by one, with its type.
    let r = post_json(
        &s.url(&format!("/v1/inspections/{}/review", d[0])),
        Some(ADMIN),
        &json!({"state": "confirmed", "type": "missing_clip", "severity": "plan", "note": "seen on site"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let d0_before = review_of(&s, d[0]);
    assert_eq!(total(&s, "verdict=defect&review=unreviewed"), 11);

    // Refusals write nothing.
    let unchanged = |why: &str| {
        assert_eq!(total(&s, "verdict=defect&review=unreviewed"), 11, "{why}");
        assert_eq!(review_of(&s, d[0]), d0_before, "{why}");
        assert_eq!(history(&s, d[5]), Vec::<Value>::new(), "{why}");
    };
    let every_defect = json!({"verdict": "defect", "track_id": "L1"});
    let r = post_json(
        &batches,
        Some(INSPECTOR),
        &json!({"filter": every_defect, "state": "false_alarm"}),
    );
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "too_many");
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("12") && msg.contains("10"),
        "says how many and the maximum: {msg}"
    );
    unchanged("too many by filter");
    let eleven: Vec<i64> = d[..11].to_vec();
    let r = post_json(
        &batches,
        Some(INSPECTOR),
        &json!({"ids": eleven, "state": "false_alarm"}),
    );
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (422, Some("too_many")),
        "{}",
        r.json
    );
    unchanged("too many by ids");
    let r = post_json(
        &batches,
        Some(INSPECTOR),
        &json!({"ids": [d[5], 999_999], "state": "false_alarm"}),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("999999"));
    unchanged("an unknown id");
    for (body, status, code) in [
        (json!({"state": "false_alarm"}), 400, "bad_request"),
        (
            json!({"ids": [d[5]], "filter": {}, "state": "false_alarm"}),
            400,
            "bad_request",
        ),
        (
            json!({"ids": [], "state": "false_alarm"}),
            400,
            "bad_request",
        ),
        (
            json!({"filter": {"camra": "cam-01"}, "state": "false_alarm"}),
            400,
            "bad_request",
        ),
        (
            json!({"filter": {"verdict": "maybe"}, "state": "false_alarm"}),
            400,
            "bad_request",
        ),
        (json!({"ids": [d[5]], "state": "fixed"}), 400, "bad_request"),
        (
            json!({"ids": [d[5]], "state": "false_alarm", "type": "missing_clip"}),
            400,
            "bad_request",
        ),
        (
            json!({"filter": {"camera": "cam-03"}, "state": "false_alarm"}),
            422,
            "empty_selection",
        ),
        (
            json!({"filter": {"verdict": "defect", "max_position_m": 800}, "expected_count": 9, "state": "false_alarm"}),
            409,
            "count_changed",
        ),
    ] {
        let r = post_json(&batches, Some(INSPECTOR), &body);
        assert_eq!(r.status, status, "{body}: {}", r.json);
        assert_eq!(r.json["error"]["code"], code, "{body}: {}", r.json);
    }
    unchanged("bad requests");
    let r = post_json(
        &batches,
        Some(CAM1_KEY),
        &json!({"ids": [d[5]], "state": "false_alarm"}),
    );
    assert!(
        r.status == 401 || r.status == 403,
        "a camera key does not review: {}",
        r.json
    );
    unchanged("a camera key");

    // The inspector dismisses the defects up to 800 m (d[0] confirmed before, seven unreviewed)
    // after confirming the count: one transaction, one time, every review kept with its batch.
    let filter = json!({"verdict": "defect", "track_id": "L1", "max_position_m": 800});
    let r = post_json(
        &batches,
        Some(INSPECTOR),
        &json!({"filter": filter, "expected_count": 8, "state": "false_alarm", "note": "dirty lens"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let batch = r.json.clone();
    let b1 = batch["id"].as_i64().unwrap();
    assert_eq!(batch["count"], json!(8));
    assert_eq!(batch["reviewer"], "inspector");
    assert_eq!(batch["state"], "false_alarm");
    assert_eq!(batch["selection"]["filter"]["max_position_m"], json!(800.0));
    assert!(batch["undone"].is_null());
    let mut batch_ids: Vec<i64> = batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    batch_ids.sort_unstable();
    assert_eq!(batch_ids, d[..8].to_vec());
    let previous: Vec<(i64, String)> = batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap(),
                i["previous"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(previous.contains(&(d[0], "confirmed".into())));
    assert!(previous.contains(&(d[1], "unreviewed".into())));
    let at = batch["at"].as_str().unwrap().to_string();
    for &id in &d[..8] {
        let rv = review_of(&s, id);
        assert_eq!(rv["state"], "false_alarm", "#{id}");
        assert_eq!(rv["note"], "dirty lens");
        assert_eq!(rv["reviewer"], "inspector");
        assert_eq!(
            rv["reviewed_at"].as_str(),
            Some(at.as_str()),
            "one bulk review, one time"
        );
        let h = history(&s, id);
        let last = h.last().unwrap();
        assert_eq!(last["kind"], "review");
        assert_eq!(last["batch_id"], json!(b1));
        assert_eq!(last["state"], "false_alarm");
        assert_eq!(last["reviewer"], "inspector");
    }
    assert_eq!(
        history(&s, d[0]).len(),
        3,
        "the confirmation, its repair opening, the bulk review"
    );
    for &id in &d[8..] {
        assert!(review_of(&s, id).is_null(), "#{id} is beyond 800 m");
    }
    // Counts agree with the list everywhere.
    assert_eq!(total(&s, "verdict=defect&review=unreviewed"), 4);
    assert_eq!(total(&s, "verdict=defect&review=false_alarm"), 8);
    assert_eq!(
        ids(&list(&s, "verdict=defect&review=unreviewed&limit=500")).len(),
        4
    );
    assert_eq!(
        get(&s.url(&format!("/v1/review-batches/{b1}")), Some(INSPECTOR)).json,
        batch
    );

    // A bulk confirmation by ids opens each defect's repair, like a single one.
    let r = post_json(
        &batches,
        Some(INSPECTOR),
        &json!({"ids": [d[10], d[11]], "state": "confirmed", "type": "fractured_clip", "severity": "immediate"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let b2 = r.json["id"].as_i64().unwrap();
    assert_eq!(r.json["count"], json!(2));
    let rv = review_of(&s, d[11]);
    assert_eq!(
        (rv["type"].as_str(), rv["lifecycle"]["state"].as_str()),
        (Some("fractured_clip"), Some("open"))
    );
    let handed = get(&s.url("/v1/defects"), Some(INSPECTOR));
    assert_eq!(handed.json["count"], json!(2), "{}", handed.json);

    // d[3] is looked at again one by one after the bulk review: the undo leaves it alone.
    let r = post_json(
        &s.url(&format!("/v1/inspections/{}/review", d[3])),
        Some(INSPECTOR),
        &json!({"state": "confirmed", "type": "deformed_clip", "severity": "monitor"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let r = post_json(
        &s.url(&format!("/v1/review-batches/{b1}/undo")),
        Some(ADMIN),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let undone = &r.json["undone"];
    assert_eq!(undone["by"], "admin");
    let mut restored: Vec<i64> = undone["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    restored.sort_unstable();
    let mut expect_restored: Vec<i64> = d[..8].iter().copied().filter(|&i| i != d[3]).collect();
    expect_restored.sort_unstable();
    assert_eq!(restored, expect_restored);
    assert_eq!(undone["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(undone["skipped"][0]["id"], json!(d[3]));
    assert!(undone["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("reviewed again"));
    // d[0] is the confirmed defect it was (type, reviewer, time), the others unreviewed again,
    // d[3] keeps its newer review; the history gained an undo entry each, nothing went away.
    assert_eq!(review_of(&s, d[0]), d0_before);
    for &id in &d[1..8] {
        if id == d[3] {
            assert_eq!(review_of(&s, id)["type"], "deformed_clip");
            let h = history(&s, id);
            let kinds: Vec<&str> = h.iter().map(|e| e["kind"].as_str().unwrap()).collect();
            assert_eq!(
                kinds,
                ["review", "review", "lifecycle"],
                "no undo entry: {h:?}"
            );
            assert!(h[1]["batch_id"].is_null());
        } else {
            assert!(review_of(&s, id).is_null(), "#{id} unreviewed again");
            let h = history(&s, id);
            assert_eq!(h.len(), 2, "{h:?}");
            assert_eq!(
                (h[0]["kind"].as_str(), h[0]["batch_id"].as_i64()),
                (Some("review"), Some(b1))
            );
            assert_eq!(h[1]["kind"], "undo");
            assert_eq!(h[1]["state"], "unreviewed");
            assert_eq!(h[1]["by"], "admin");
            assert_eq!(h[1]["batch_id"], json!(b1));
        }
    }
    let h0 = history(&s, d[0]);
    assert_eq!(h0.len(), 4, "{h0:?}");
    assert_eq!(h0[3]["kind"], "undo");
    assert_eq!(h0[3]["state"], "confirmed");
    assert_eq!(h0[3]["type"], "missing_clip");
    assert_eq!(
        h0[3]["reviewer"], "admin",
        "who decided the restored review"
    );
    assert_eq!(h0[3]["by"], "admin", "who undid");
    assert_eq!(total(&s, "verdict=defect&review=unreviewed"), 8);
    assert_eq!(total(&s, "verdict=defect&review=false_alarm"), 0);

    // Once: a second undo is refused and changes nothing.
    let r = post_json(
        &s.url(&format!("/v1/review-batches/{b1}/undo")),
        Some(INSPECTOR),
        &json!({}),
    );
    assert_eq!(r.status, 409, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "already_undone");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("admin"));
    assert_eq!(total(&s, "verdict=defect&review=unreviewed"), 8);
    assert_eq!(history(&s, d[1]).len(), 2);
    let got = get(&s.url(&format!("/v1/review-batches/{b1}")), Some(INSPECTOR));
    assert_eq!(got.json["undone"]["by"], "admin");
    for (url, status) in [
        (format!("/v1/review-batches/{}/undo", b2 + 100), 404),
        ("/v1/review-batches/abc/undo".to_string(), 400),
    ] {
        let r = post_json(&s.url(&url), Some(INSPECTOR), &json!({}));
        assert_eq!(r.status, status, "{url}: {}", r.json);
    }
    assert_eq!(
        get(&s.url("/v1/review-batches/99999"), Some(INSPECTOR)).status,
        404
    );

    // Undoing the bulk confirmation: both unreviewed again, the handover is empty.
    let r = post_json(
        &s.url(&format!("/v1/review-batches/{b2}/undo")),
        Some(INSPECTOR),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["undone"]["restored"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(&s.url("/v1/defects"), Some(INSPECTOR)).json["count"],
        json!(2),
        "d[0] (restored) and d[3] (confirmed since)"
    );
}
