//! Admission against the real service (issue 13 items 7 and 8): a camera that floods is refused
//! at its share while the other cameras are answered, and a retried `X-Frame-Id` returns the
//! first stored answer instead of a second row. Loads are bounded and target 127.0.0.1 only.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::Value;

const CAM2_KEY: &str = "demo-key-cam-02";

/// Status, JSON body and Retry-After of one answer.
type Answer = (u16, Value, Option<String>);

fn rows_with_frame_id(s: &Service, camera: &str, frame_id: &str) -> Vec<i64> {
    let list = get(
        &s.url(&format!("/v1/inspections?camera={camera}&limit=200")),
        Some(INSPECTOR),
    );
    assert_eq!(list.status, 200, "{}", list.json);
    list.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items array: {}", list.json))
        .iter()
        .filter(|i| i["frame_id"] == frame_id)
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

/// cam-01 posts 16 frames at once with a share of 2 in flight; cam-02 posts 6 frames meanwhile.
/// cam-02 is answered every time; cam-01's excess is refused with 503 `camera_busy`.
#[test]
fn a_flooding_camera_is_refused_at_its_share_while_the_others_are_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[
            ("RAILSCOPE__BATCHING__MAX_IN_FLIGHT_PER_CAMERA", "2"),
            ("RAILSCOPE__BATCHING__QUEUE_CAPACITY", "8"),
        ],
    );
    let img = fixture("test/good/000000.png");
    let go = Arc::new(Barrier::new(17));
    let (flood, others): (Vec<Answer>, Vec<u16>) = std::thread::scope(|sc| {
        let flooders: Vec<_> = (0..16)
            .map(|_| {
                let (s, img, go) = (&s, &img, go.clone());
                sc.spawn(move || {
                    go.wait();
                    let r = post_frame(s, "cam-01", Some(CAM1_KEY), "image/png", img, &[]);
                    (r.status, r.json, r.retry_after)
                })
            })
            .collect();
        let (s2, img2, go2) = (&s, &img, go.clone());
        let other = sc.spawn(move || {
            go2.wait();
            (0..6)
                .map(|_| post_frame(s2, "cam-02", Some(CAM2_KEY), "image/png", img2, &[]).status)
                .collect::<Vec<u16>>()
        });
        (
            flooders.into_iter().map(|h| h.join().unwrap()).collect(),
            other.join().unwrap(),
        )
    });
    assert_eq!(
        others,
        vec![200; 6],
        "the quiet camera must never be refused"
    );
    let refused: Vec<_> = flood.iter().filter(|r| r.0 == 503).collect();
    assert!(
        !refused.is_empty(),
        "16 frames at once with a share of 2: some must be refused"
    );
    for (_, json, retry) in &refused {
        assert_eq!(json["error"]["code"], "camera_busy", "{json}");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 frames in flight"));
        assert_eq!(retry.as_deref(), Some("1"));
    }
    assert!(flood.iter().all(|r| r.0 == 200 || r.0 == 503), "{flood:?}");
    assert!(flood.iter().any(|r| r.0 == 200));
    let m = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
    assert_eq!(
        metric(
            &m,
            "railscope_rejected_frames_total{reason=\"camera_busy\"}"
        ) as usize,
        refused.len()
    );
    // the share is freed as frames are answered: the flooder is served again
    let again = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &img, &[]);
    assert_eq!(again.status, 200, "{}", again.json);
}

/// The same frame id posted again (sequentially, at once, and after a 504) yields one stored
/// row and the first answer; the same id from another camera is another frame.
#[test]
fn a_retried_frame_id_gets_the_first_stored_answer_not_a_second_row() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let img = fixture("test/good/000001.png");
    let defect = fixture("test/missing_clip/000000.png");
    let id_hdr = |id: &'static str| [("X-Frame-Id", id)];

    let first = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &img,
        &id_hdr("f-1"),
    );
    assert_eq!(first.status, 200, "{}", first.json);
    assert!(first.header("X-Railscope-Replay").is_none());
    // a retry with other bytes still gets the first verdict: the id names the frame
    let retry = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &defect,
        &id_hdr("f-1"),
    );
    assert_eq!(retry.status, 200, "{}", retry.json);
    assert_eq!(retry.header("X-Railscope-Replay"), Some("true"));
    for k in ["id", "verdict", "A", "A_norm", "threshold", "frame_id"] {
        assert_eq!(retry.json[k], first.json[k], "{k}");
    }
    assert_eq!(rows_with_frame_id(&s, "cam-01", "f-1").len(), 1);
    let other = post_frame(
        &s,
        "cam-02",
        Some(CAM2_KEY),
        "image/png",
        &img,
        &id_hdr("f-1"),
    );
    assert_eq!(other.status, 200);
    assert_ne!(other.json["id"], first.json["id"]);
    assert!(other.header("X-Railscope-Replay").is_none());

    // six at once: one is inspected, the others are told it is in flight (409) or replayed
    let go = Arc::new(Barrier::new(6));
    let burst: Vec<Answer> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                let (s, img, go) = (&s, &img, go.clone());
                sc.spawn(move || {
                    go.wait();
                    let r = post_frame(
                        s,
                        "cam-01",
                        Some(CAM1_KEY),
                        "image/png",
                        img,
                        &[("X-Frame-Id", "f-2")],
                    );
                    (r.status, r.json, r.retry_after)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let rows = rows_with_frame_id(&s, "cam-01", "f-2");
    assert_eq!(rows.len(), 1, "{burst:?}");
    for (status, json, retry) in &burst {
        match status {
            200 => assert_eq!(json["id"].as_i64(), Some(rows[0])),
            409 => {
                assert_eq!(json["error"]["code"], "frame_in_flight", "{json}");
                assert_eq!(retry.as_deref(), Some("1"));
            }
            _ => panic!("{status} {json}"),
        }
    }
}

/// A camera that gave up after a 504 and retries does not create a duplicate: the first frame
/// keeps its id in flight until it is stored, and the retry then gets its verdict.
#[test]
fn a_retry_after_a_timeout_is_answered_with_the_frame_stored_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__BATCHING__REQUEST_TIMEOUT_MS", "1")],
    );
    let img = fixture("test/good/000002.png");
    let hdr = [("X-Frame-Id", "late-1")];
    let first = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &img, &hdr);
    assert_eq!(
        first.status, 504,
        "a 1 ms budget cannot be met: {}",
        first.json
    );
    let t = Instant::now();
    let answer = loop {
        let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &img, &hdr);
        match r.status {
            200 => break r,
            409 => assert!(
                t.elapsed() < Duration::from_secs(30),
                "still in flight after 30 s"
            ),
            // the retry itself may time out before the store answers it
            504 => {}
            other => panic!("{other} {}", r.json),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer.header("X-Railscope-Replay"), Some("true"));
    let rows = rows_with_frame_id(&s, "cam-01", "late-1");
    assert_eq!(rows, vec![answer.json["id"].as_i64().unwrap()]);
}
