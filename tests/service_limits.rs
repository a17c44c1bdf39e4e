//! Hostile and oversized input against the real service (issue 13): a pixel budget checked
//! from the header, bounded concurrent decodes, degenerate frames and trailing data refused,
//! and request bodies that must arrive within `server.body_timeout_s`. Every load here is
//! bounded in count and time and targets 127.0.0.1 only.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use harness::*;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{key} missing from /proc/{pid}/status"))
            * 1024
    };
    (kb("VmHWM:"), kb("VmRSS:"))
}

fn pid(s: &Service) -> u32 {
    s.child.as_ref().unwrap().id()
}

const MIB: f64 = 1024.0 * 1024.0;

fn png(w: u32, h: u32, color: ExtendedColorType, pixels: &[u8], filter: FilterType) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, filter)
        .write_image(pixels, w, h, color)
        .unwrap();
    out.into_inner()
}

fn gray_png(w: u32, h: u32) -> Vec<u8> {
    let px: Vec<u8> = (0..w as u64 * h as u64).map(|i| (i % 251) as u8).collect();
    png(w, h, ExtendedColorType::L8, &px, FilterType::Sub)
}

/// A `w`×`h` RGB frame of random colour blocks, 2 px wide and 8 rows high: a full-size decode
/// (3 bytes a pixel), and an encoding of ~1/6 of the raw bytes, within the default body limit
/// (pixel noise does not compress: a 6000×6000 frame of it would be 108 MB).
fn noise_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let hash = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    let mut px = vec![0u8; w as usize * h as usize * 3];
    for y in 0..h as u64 {
        for x in 0..w as u64 {
            let block = hash(seed ^ ((y / 8) << 32 | (x / 2)));
            let i = (y * w as u64 + x) as usize * 3;
            px[i..i + 3].copy_from_slice(&block.to_le_bytes()[..3]);
        }
    }
    png(w, h, ExtendedColorType::Rgb8, &px, FilterType::Up)
}

fn code(r: &Resp) -> &str {
    r.json["error"]["code"].as_str().unwrap_or("")
}

fn message(r: &Resp) -> &str {
    r.json["error"]["message"].as_str().unwrap_or("")
}

fn stored_frames(s: &Service) -> u64 {
    get(&s.url("/v1/cameras"), Some(INSPECTOR)).json["cameras"][0]["frames"]
        .as_u64()
        .unwrap()
}

fn metrics(s: &Service) -> String {
    String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap()
}

/// The frame: a real 16384×16384 PNG (~260 KB of zeros, inside max_width/max_height
/// and max_decoded_bytes) took the server from 123 MB to 4.7 GB. Now the header is enough.
#[test]
fn a_frame_over_the_pixel_budget_is_refused_from_its_header() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let side = 16384u32;
    let body = png(
        side,
        side,
        ExtendedColorType::L8,
        &vec![0u8; side as usize * side as usize],
        FilterType::Sub,
    );
    assert!(body.len() < 2 << 20, "{} bytes", body.len());
    let (peak_before, _) = memory(pid(&s));
    let t = Instant::now();
    let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &body, &[]);
    let took = t.elapsed();
    let (peak_after, _) = memory(pid(&s));
    println!(
        "16384×16384 PNG ({} KB): {} in {:.1} ms; server peak RSS {:.0} → {:.0} MiB",
        body.len() / 1024,
        r.status,
        took.as_secs_f64() * 1e3,
        peak_before as f64 / MIB,
        peak_after as f64 / MIB
    );
    assert_eq!((r.status, code(&r)), (413, "image_too_large"), "{}", r.json);
    assert!(
        message(&r).contains("preprocess.max_pixels = 40000000")
            && message(&r).contains("16384×16384"),
        "{}",
        r.json
    );
    assert!(
        peak_after - peak_before < 64 << 20,
        "refused from the header, yet the peak RSS grew by {:.0} MiB",
        (peak_after - peak_before) as f64 / MIB
    );
    // A configured budget is the one applied and named.
    drop(s);
    let s = Service::start(
        &tmp.path().join("store2"),
        &[("RAILSCOPE__PREPROCESS__MAX_PIXELS", "10000")],
    );
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &gray_png(128, 128),
        &[],
    );
    assert_eq!((r.status, code(&r)), (413, "image_too_large"), "{}", r.json);
    assert!(
        message(&r).contains("preprocess.max_pixels = 10000"),
        "{}",
        r.json
    );
    let ok = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &gray_png(64, 64),
        &[],
    );
    assert_eq!(ok.status, 200, "{}", ok.json);
}

/// Four large-but-legal frames (6000×6000 RGB, 36 MP, 108 MB decoded each) at once: the peak
/// resident set of the server stays under a loose bound (measured figures: docs/performance.md,
/// "Memory under large frames"). Such frames are judged defects and their heatmap and
/// reconstruction are rendered at full size one after the other, so the answers may take
/// longer than the default request timeout on a small machine.
#[test]
fn large_legal_frames_at_once_stay_within_a_memory_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__BATCHING__REQUEST_TIMEOUT_MS", "120000")],
    );
    let frames: Vec<Vec<u8>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4u64)
            .map(|k| sc.spawn(move || noise_png(6000, 6000, k + 1)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (peak_before, rss_before) = memory(pid(&s));
    let start = Arc::new(Barrier::new(frames.len()));
    let t = Instant::now();
    let results: Vec<(u16, String, f64)> = std::thread::scope(|sc| {
        let hs: Vec<_> = frames
            .iter()
            .map(|f| {
                let (s, start) = (&s, start.clone());
                sc.spawn(move || {
                    start.wait();
                    let t = Instant::now();
                    let r = post_frame(s, "cam-01", Some(CAM1_KEY), "image/png", f, &[]);
                    let json = match r.status {
                        200 => format!("{} {}", r.json["verdict"], r.json["timings_ms"]),
                        _ => r.json.to_string(),
                    };
                    (r.status, json, t.elapsed().as_secs_f64())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t.elapsed().as_secs_f64();
    let (peak, rss) = memory(pid(&s));
    println!(
        "4 × 6000×6000 RGB PNG ({:.1} MiB encoded each) at once: answered in {:.2} s \
         (each {:?} s); server RSS before {:.0} MiB (peak {:.0} MiB), after {:.0} MiB, \
         peak {:.0} MiB",
        frames[0].len() as f64 / MIB,
        wall,
        results
            .iter()
            .map(|r| (r.2 * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        rss_before as f64 / MIB,
        peak_before as f64 / MIB,
        rss as f64 / MIB,
        peak as f64 / MIB
    );
    for (status, json, _) in &results {
        println!("  {status} {json}");
        assert_eq!(*status, 200, "{json}");
    }
    assert!(
        (peak as f64) < 1.5 * 1024.0 * MIB,
        "peak RSS {:.0} MiB for four 36 MP frames",
        peak as f64 / MIB
    );
    assert_eq!(stored_frames(&s), 4);
}

/// More frames than decode slots: those that find no slot within `server.decode_wait_ms` get
/// 503 `queue_full` with Retry-After, the others their verdict, and the service recovers.
#[test]
fn frames_beyond_the_decode_slots_get_503_with_retry_after() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[
            ("RAILSCOPE__SERVER__MAX_CONCURRENT_DECODES", "1"),
            ("RAILSCOPE__SERVER__DECODE_WAIT_MS", "0"),
            ("RAILSCOPE__SERVER__WORKERS", "4"),
        ],
    );
    let frames: Vec<Vec<u8>> = (0..3u64).map(|k| noise_png(3000, 3000, k + 7)).collect();
    let mut answers: Vec<Resp> = Vec::new();
    for _round in 0..3 {
        let start = Arc::new(Barrier::new(frames.len()));
        let round: Vec<Resp> = std::thread::scope(|sc| {
            let hs: Vec<_> = frames
                .iter()
                .map(|f| {
                    let (s, start) = (&s, start.clone());
                    sc.spawn(move || {
                        start.wait();
                        post_frame(s, "cam-01", Some(CAM1_KEY), "image/png", f, &[])
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        answers.extend(round);
        if answers.iter().any(|r| r.status == 503) {
            break;
        }
    }
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 503).collect();
    let ok = answers.iter().filter(|r| r.status == 200).count();
    println!(
        "1 decode slot, 3 frames at once: {ok} verdicts, {} × 503 of {}",
        busy.len(),
        answers.len()
    );
    assert!(!busy.is_empty(), "3 frames at once against 1 decode slot");
    assert_eq!(ok + busy.len(), answers.len(), "only verdicts or 503s");
    for r in &busy {
        assert_eq!(code(r), "queue_full", "{}", r.json);
        assert_eq!(r.retry_after.as_deref(), Some("1"));
        assert!(
            message(r).contains("server.max_concurrent_decodes"),
            "{}",
            r.json
        );
    }
    assert_eq!(stored_frames(&s) as usize, ok, "every verdict stored");
    assert_eq!(
        metric(
            &metrics(&s),
            "railscope_rejected_frames_total{reason=\"queue_full\"}"
        ) as usize,
        busy.len()
    );
    let after = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/good/000000.png"),
        &[],
    );
    assert_eq!(after.status, 200, "the slot is free again");
}

/// Degenerate frames and data appended after an image are refused with 422 and nothing is
/// stored; a narrow but plausible frame still gets its verdict.
#[test]
fn degenerate_frames_and_trailing_data_are_refused_with_422() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let mut one_px_and_junk = gray_png(1, 1);
    one_px_and_junk.extend((0..30_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let mut junk_after = gray_png(64, 64);
    junk_after.extend(std::iter::repeat_n(0xA5u8, 1 << 20));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("1×1", gray_png(1, 1), "preprocess.min_side = 16"),
        ("1×16000", gray_png(1, 16000), "preprocess.min_side = 16"),
        ("15×15", gray_png(15, 15), "preprocess.min_side = 16"),
        (
            "2048×16",
            gray_png(2048, 16),
            "preprocess.max_aspect_ratio = 64:1",
        ),
        (
            "16×2048",
            gray_png(16, 2048),
            "preprocess.max_aspect_ratio = 64:1",
        ),
        (
            "64×64 + 1 MiB appended",
            junk_after,
            "appended after the image",
        ),
        (
            "1×1 + 30 MB appended",
            one_px_and_junk,
            "preprocess.min_side",
        ),
    ];
    for (what, body, says) in &cases {
        let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", body, &[]);
        println!("{what}: {} {}", r.status, r.json);
        assert_eq!(
            (r.status, code(&r)),
            (422, "bad_image"),
            "{what}: {}",
            r.json
        );
        assert!(message(&r).contains(says), "{what}: {}", r.json);
    }
    assert_eq!(stored_frames(&s), 0, "no refused frame is stored");
    assert_eq!(
        metric(
            &metrics(&s),
            "railscope_rejected_frames_total{reason=\"bad_image\"}"
        ) as usize,
        cases.len()
    );
    // Inside the limits: 64:1 exactly, the minimum side, a little metadata-sized tail.
    let mut small_tail = gray_png(64, 64);
    small_tail.extend(std::iter::repeat_n(0u8, 4096));
    for (what, body) in [
        ("1024×16", gray_png(1024, 16)),
        ("16×16", gray_png(16, 16)),
        ("64×64 + 4 KiB", small_tail),
    ] {
        let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &body, &[]);
        assert_eq!(r.status, 200, "{what}: {}", r.json);
        assert!(r.json["verdict"].is_string(), "{what}: {}", r.json);
    }
    assert_eq!(stored_frames(&s), 3);
}

/// One connection that sends `request` ("POST /path") with `headers`, then its body a byte at a
/// time: what it reads back (status line and body) and when the server closed it.
fn trickle(port: u16, request: &str, headers: &str, limit: Duration) -> (String, Option<Duration>) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(
        format!(
            "{request} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\
             Content-Length: 100000\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t = Instant::now();
    let mut last_byte = t - Duration::from_secs(1);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t.elapsed() < limit {
        if last_byte.elapsed() >= Duration::from_secs(1) {
            // After the answer the write may fail: the server has closed its side.
            let _ = conn.write_all(b"\x89");
            last_byte = Instant::now();
        }
        match conn.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into(), Some(t.elapsed())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into(), Some(t.elapsed())),
        }
    }
    (String::from_utf8_lossy(&got).into(), None)
}

/// Bodies trickled at 1 byte/s are answered 408 (JSON) once `server.body_timeout_s` has
/// passed, and their connections closed; the service keeps answering. Frames and the JSON
/// endpoints alike (login, a review, a calibration).
#[test]
fn bodies_trickled_a_byte_a_second_are_answered_408_and_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__SERVER__BODY_TIMEOUT_S", "2")],
    );
    let port = s.port;
    let conns = 8;
    let frame_headers = format!("Authorization: Bearer {CAM1_KEY}\r\nContent-Type: image/png\r\n");
    let json_posts = [
        ("POST /v1/login", String::new()),
        (
            "POST /v1/inspections/1/review",
            format!("Authorization: Bearer {INSPECTOR}\r\n"),
        ),
        (
            "PUT /v1/cameras/cam-01/calibration",
            format!("Authorization: Bearer {ADMIN}\r\n"),
        ),
    ];
    let results: Vec<(String, Option<Duration>)> = std::thread::scope(|sc| {
        let frame_headers = &frame_headers;
        let hs: Vec<_> = (0..conns)
            .map(|_| {
                sc.spawn(move || {
                    trickle(
                        port,
                        "POST /v1/cameras/cam-01/frames",
                        frame_headers,
                        Duration::from_secs(10),
                    )
                })
            })
            .collect();
        let json: Vec<_> = json_posts
            .iter()
            .map(|(request, headers)| {
                let headers = format!("{headers}Content-Type: application/json\r\n");
                sc.spawn(move || trickle(port, request, &headers, Duration::from_secs(10)))
            })
            .collect();
        // Meanwhile a camera sending its frame in one go is served as usual.
        let r = post_frame(
            &s,
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            &fixture("test/good/000001.png"),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.json);
        hs.into_iter()
            .chain(json)
            .map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.len(), conns + json_posts.len());
    for (text, closed) in &results {
        println!(
            "trickled body: closed after {:?}; answer {:?}",
            closed,
            text.lines().next()
        );
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["error"]["code"], "timeout", "{text}");
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("server.body_timeout_s = 2")),
            "{text}"
        );
        let closed = closed.expect("the connection is closed after the 408");
        assert!(
            closed >= Duration::from_millis(1900) && closed < Duration::from_secs(5),
            "closed after {closed:?} (body_timeout_s = 2)"
        );
    }
    assert_eq!(
        metric(
            &metrics(&s),
            "railscope_rejected_frames_total{reason=\"timeout\"}"
        ) as usize,
        conns
    );
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/good/000002.png"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(stored_frames(&s), 2);
}

/// Head-of-line blocking (issue 13 item 2): cam-01 posts a 36 MP frame (judged a defect, so its
/// heatmap and reconstruction are drawn) while cam-02 posts a small frame every 250 ms. The
/// overlays are drawn at most `heatmap.max_side` px (2048) on the longer side, so the store
/// thread, which every camera's verdicts pass through, is not held for seconds: no small frame
/// waits more than 0.6 of the large frame's own answer time (0.77 at full size:
/// `HOL_MAX_SIDE=0` in the environment reruns it so; docs/performance.md has both figures).
#[test]
fn a_large_frame_does_not_hold_up_another_cameras_small_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let max_side = std::env::var("HOL_MAX_SIDE").unwrap_or_else(|_| "2048".into());
    let s = Service::start(
        &tmp.path().join("store"),
        &[
            ("RAILSCOPE__BATCHING__REQUEST_TIMEOUT_MS", "60000"),
            ("RAILSCOPE__HEATMAP__MAX_SIDE", max_side.as_str()),
        ],
    );
    let big = noise_png(6000, 6000, 5);
    let small = fixture("test/good/000003.png");
    let (big_answer, small_ms) = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let t = Instant::now();
            let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &big, &[]);
            (r, t.elapsed().as_secs_f64())
        });
        let mut lat = Vec::new();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(250));
            let t = Instant::now();
            let r = post_frame(
                &s,
                "cam-02",
                Some("demo-key-cam-02"),
                "image/png",
                &small,
                &[],
            );
            assert_eq!(r.status, 200, "{}", r.json);
            lat.push(t.elapsed().as_secs_f64());
        }
        (h.join().unwrap(), lat)
    });
    let (big, big_s) = big_answer;
    let worst = small_ms.iter().cloned().fold(0.0, f64::max);
    println!(
        "36 MP frame answered in {big_s:.2} s ({}); cam-02's 20 small frames: worst {worst:.2} s, \
         each {:?}",
        big.json["timings_ms"],
        small_ms
            .iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    assert_eq!(big.status, 200, "{}", big.json);
    let url = big.json["heatmap_url"]
        .as_str()
        .expect("a defect keeps its heatmap");
    let png = get(&s.url(url), Some(INSPECTOR)).bytes;
    let img = image::load_from_memory(&png).unwrap();
    if max_side == "2048" {
        assert_eq!((img.width(), img.height()), (2048, 2048));
        // A ratio within this run, not a wall-clock bound (this machine's load varies): with
        // overlays at full size the small frame's wait was 0.77 of the large frame's answer
        // time (2.91 of 3.76 s), at 2048 px 0.31 (0.70 of 2.25 s; 0.43 on a loaded machine).
        assert!(
            worst < 0.6 * big_s,
            "a small frame waited {worst:.2} s behind the large one ({big_s:.2} s)"
        );
    }
}

/// A verdict that cannot be stored (here: today's media folder cannot be created) is answered
/// 503 `store_unavailable` with Retry-After, counted once as `store_failed` (not also as a bad
/// request or an internal error), and leaves nothing behind; the next frame, once the fault is
/// gone, is stored. A full disk gets 507 `insufficient_storage` the same way (the store's unit
/// test tells ENOSPC apart).
#[test]
fn a_verdict_that_cannot_be_stored_is_503_counted_once_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let s = Service::start(&store, &[]);
    let day = chrono::Utc::now().format("%Y%m%d").to_string();
    let blocker = store.join("media").join(&day);
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let defect = fixture("test/missing_bolt/000000.png");
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &defect,
        &[("X-Frame-Id", "lost-1")],
    );
    assert_eq!(r.status, 503, "{}", r.json);
    assert_eq!(code(&r), "store_unavailable");
    assert!(message(&r).contains("not stored"), "{}", r.json);
    assert_eq!(r.retry_after.as_deref(), Some("5"));
    let m = metrics(&s);
    assert_eq!(
        metric(
            &m,
            "railscope_rejected_frames_total{reason=\"store_failed\"}"
        ),
        1.0
    );
    for other in ["bad_request", "internal"] {
        assert_eq!(
            metric(
                &m,
                &format!("railscope_rejected_frames_total{{reason=\"{other}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(stored_frames(&s), 0);
    std::fs::remove_file(&blocker).unwrap();
    // the id was not stored, so the retry is inspected (not replayed) and kept
    let again = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &defect,
        &[("X-Frame-Id", "lost-1")],
    );
    assert_eq!(again.status, 200, "{}", again.json);
    assert!(again.header("X-Railscope-Replay").is_none());
    assert_eq!(stored_frames(&s), 1);
    let files = std::fs::read_dir(store.join("media").join(&day))
        .unwrap()
        .count();
    assert_eq!(
        files, 3,
        "image, heatmap and reconstruction of the one stored defect"
    );
}
