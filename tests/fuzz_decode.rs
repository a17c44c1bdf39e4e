//! Fuzzing the two places hostile bytes enter (issue 13): image decoding and a frame's metadata.
//! proptest drives both with a fixed case budget so CI time is bounded
//! (`RAILSCOPE_FUZZ_CASES` raises it for a longer run; docs/performance.md has that run's
//! figure). A failure prints the smallest input proptest shrank it to.
//!
//! - decode: arbitrary bytes, and each committed fixture format (PNG, JPEG, BMP, TIFF) with bytes
//!   flipped, inserted or cut off — `preprocess::decode` returns an image within the limits or an
//!   error, never panics;
//! - metadata: random header and query values posted with a valid frame to the real service —
//!   every answer is 200 or a 4xx in the JSON error format, never a 5xx, and the service stays up.

mod common;
#[path = "service/harness.rs"]
mod harness;

use harness::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, TestRunner};
use railscope::pipeline::preprocess::{decode, DecodeLimits};

fn cases(default: u32) -> u32 {
    std::env::var("RAILSCOPE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(RunConfig {
        cases: n,
        failure_persistence: None,
        ..RunConfig::default()
    })
}

/// Small limits so a mutated header that claims a huge image is refused, not allocated.
fn limits() -> DecodeLimits {
    DecodeLimits {
        max_width: 4096,
        max_height: 4096,
        max_decoded_bytes: 64 << 20,
        max_pixels: 4 << 20,
        ..DecodeLimits::default()
    }
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let lim = limits();
    if let Ok(m) = decode(bytes, "fuzz", lim) {
        use opencv::prelude::MatTraitConst;
        prop_assert!(m.cols() > 0 && m.rows() > 0);
        prop_assert!(m.cols() as u32 <= lim.max_width && m.rows() as u32 <= lim.max_height);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, x) => {
                let k = i % b.len();
                b[k] ^= x | 1;
            }
            Mutation::Insert(i, v) => {
                let k = i % b.len();
                b.splice(k..k, v.iter().copied());
            }
            Mutation::Truncate(i) => b.truncate(i % b.len()),
        }
    }
    b
}

/// The committed fixture in each format the service accepts.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let png = fixture("test/good/000000.png");
    let img = image::load_from_memory(&png).unwrap();
    let mut out = vec![("png", png)];
    for (name, fmt) in [
        ("jpeg", image::ImageFormat::Jpeg),
        ("bmp", image::ImageFormat::Bmp),
        ("tiff", image::ImageFormat::Tiff),
    ] {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        out.push((name, buf.into_inner()));
    }
    out
}

#[test]
fn decode_never_panics_on_arbitrary_bytes() {
    runner(cases(2000))
        .run(&prop::collection::vec(any::<u8>(), 0..4096), |b| check(&b))
        .unwrap();
}

#[test]
fn decode_never_panics_on_mutated_images_of_every_format() {
    for (name, seed) in seeds() {
        assert!(decode(&seed, name, limits()).is_ok(), "{name} seed decodes");
        runner(cases(1000))
            .run(&prop::collection::vec(mutation(), 1..6), |ms| {
                check(&mutate(seed.clone(), &ms))
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn frame_metadata_never_gets_a_5xx() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let img = fixture("test/good/000001.png");
    let header = "X-Frame-Id|X-Capture-Time|X-Track-Id|X-Track-Position-M|X-Speed-Kmh";
    // printable header values (a header cannot carry control bytes) and raw query values
    let value = prop_oneof![
        "[ -~]{0,40}",
        any::<f64>().prop_map(|v| v.to_string()),
        Just("-1e308".to_string()),
        Just("NaN".to_string()),
        Just("2026-11-30T25:61:00Z".to_string()),
    ];
    let strategy = (
        prop::collection::vec(
            (
                prop::sample::select(header.split('|').collect::<Vec<_>>()),
                value.clone(),
            ),
            0..5,
        ),
        prop::collection::vec(("[a-z_]{1,12}", "[ -~]{0,24}"), 0..4),
    );
    runner(cases(100))
        .run(&strategy, |(headers, query)| {
            let q: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", k, urlencode(v)))
                .collect();
            let url = s.url(&format!("/v1/cameras/cam-01/frames?{}", q.join("&")));
            let mut r = agent()
                .post(&url)
                .set("Content-Type", "image/png")
                .set("Authorization", &format!("Bearer {CAM1_KEY}"));
            for (h, v) in &headers {
                r = r.set(h, v.trim());
            }
            let (status, body) = match r.send_bytes(&img) {
                Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
                Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
                Err(e) => return Err(TestCaseError::fail(format!("transport: {e}"))),
            };
            prop_assert!(status < 500, "{status} {body} for {headers:?} {query:?}");
            if status != 200 {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                prop_assert!(v["error"]["code"].is_string(), "{status} {body}");
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(get(&s.url("/healthz"), None).status, 200);
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
