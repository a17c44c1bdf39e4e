//! Micro-benchmarks of the CPU-side stages that do not need ONNX Runtime: decoding and
//! normalizing a fixture crop, and the score math. `cargo bench --bench pipeline`; the full
//! picture (session per batch size, end to end, memory) is `railscope bench` / `make bench`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use railscope::config::PreprocessConfig;
use railscope::pipeline::package::{InputSection, Photometric};
use railscope::pipeline::preprocess::Preprocessor;
use railscope::pipeline::scoring;

fn time<F: FnMut()>(name: &str, mut f: F) {
    for _ in 0..10 {
        f();
    }
    let budget = Duration::from_millis(500);
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < budget {
        f();
        n += 1;
    }
    println!(
        "{name:<48} {:>10.2} µs/op ({n} ops)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    let input = InputSection {
        name: "image".into(),
        channels: 1,
        height: 64,
        width: 64,
        scale: 255.0,
        mean: vec![0.5],
        std: vec![0.5],
        photometric: Photometric::None,
        spread: None,
        resize: "area".into(),
    };
    let pre = Preprocessor::new(&input, &PreprocessConfig::default()).unwrap();
    let crop = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fasteners/test/good/000000.png"
    );
    let bytes = std::fs::read(crop).expect("fixture crop");
    let mut slot = vec![0f32; 64 * 64];
    time("decode 128×128 PNG → gray Mat", || {
        black_box(pre.frame(black_box(&bytes), "bench").unwrap());
    });
    let frame = pre.frame(&bytes, "bench").unwrap();
    time("resize 128→64 (INTER_AREA) + normalize to CHW", || {
        pre.write_tensor(black_box(&frame), &mut slot).unwrap();
    });
    let x: Vec<f32> = (0..64 * 64)
        .map(|i| (i % 255) as f32 / 127.5 - 1.0)
        .collect();
    let xh: Vec<f32> = x.iter().map(|v| v * 0.9).collect();
    let fr: Vec<f32> = (0..256).map(|i| i as f32 / 256.0).collect();
    let ff: Vec<f32> = fr.iter().map(|v| v + 0.01).collect();
    let shape = [1, 64, 64];
    time("score (R over 1×64×64, L over 256, A)", || {
        black_box(scoring::score(
            black_box(&x),
            &xh,
            &fr,
            &ff,
            0.9,
            &scoring::Pooling::Mean,
            shape,
        ));
    });
    let topk = scoring::Pooling::top_k(2.0, 0.01).unwrap();
    time("score, topk pooling (σ 2, top 1 %)", || {
        black_box(scoring::score(
            black_box(&x),
            &xh,
            &fr,
            &ff,
            0.9,
            &topk,
            shape,
        ));
    });
    let standardize = Preprocessor::new(
        &InputSection {
            photometric: Photometric::Standardize,
            spread: Some(3.0),
            ..input.clone()
        },
        &PreprocessConfig::default(),
    )
    .unwrap();
    time("resize 128→64 + standardize to CHW", || {
        standardize
            .write_tensor(black_box(&frame), &mut slot)
            .unwrap();
    });
}
