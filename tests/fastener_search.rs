//! Fastener search on the multi-fastener frame fixture: every annotated fastener is found
//! (IoU ≥ 0.5 with tests/fixtures/fasteners/frames/boxes.json) and nothing else is.

mod common;
use common::*;

use opencv::core::Rect;
use railscope::pipeline::fastener_search::{iou, FastenerSearch};
use railscope::pipeline::preprocess::{decode, to_gray, DecodeLimits};

fn ground_truth() -> Vec<(String, Vec<Rect>)> {
    let p = fixtures().join("frames/boxes.json");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap();
    let mut out = Vec::new();
    for (name, boxes) in doc.as_object().unwrap() {
        let rects = boxes
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let v: Vec<i32> = b["box"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap() as i32)
                    .collect();
                Rect::new(v[0], v[1], v[2], v[3])
            })
            .collect();
        out.push((name.clone(), rects));
    }
    assert!(!out.is_empty());
    out
}

#[test]
fn finds_every_fastener_in_the_frame_fixture() {
    // The repo's config, never the developer's RAILSCOPE__* variables.
    let cfg = repo_config().search;
    let search = FastenerSearch::from_dir(&fixtures().join("train/good"), &cfg).unwrap();
    let mut problems = Vec::new();
    let (mut total, mut found_total) = (0, 0);
    for (name, truth) in ground_truth() {
        let bytes = std::fs::read(fixtures().join("frames").join(&name)).unwrap();
        let gray = to_gray(&decode(&bytes, &name, DecodeLimits::default()).unwrap()).unwrap();
        let found = search.find(&gray).unwrap();
        for t in &truth {
            let best = found.iter().map(|d| iou(d.rect(), *t)).fold(0.0, f64::max);
            if best < 0.5 {
                problems.push(format!(
                    "{name}: fastener {t:?} not found (best IoU {best:.2})"
                ));
            }
        }
        for d in &found {
            let best = truth.iter().map(|t| iou(d.rect(), *t)).fold(0.0, f64::max);
            if best < 0.5 {
                problems.push(format!(
                    "{name}: spurious detection {d:?} (best IoU {best:.2})"
                ));
            }
        }
        total += truth.len();
        found_total += found.len();
    }
    eprintln!(
        "{total} fasteners annotated, {found_total} detections, {} problems",
        problems.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn search_mode_inference_scores_every_crop() {
    require_model();
    let (name, truth) = ground_truth().remove(0);
    let frame = fixtures().join("frames").join(&name);
    let d = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.arg("infer")
        .arg("--model")
        .arg(model_dir())
        .arg("--roi")
        .arg("search")
        .arg("--heatmap")
        .arg(d.path())
        .arg(&frame);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let crops = v["crops"].as_array().unwrap();
    assert_eq!(crops.len(), truth.len(), "{v}");
    let worst = crops
        .iter()
        .map(|c| c["A_norm"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(
        v["A_norm"].as_f64().unwrap(),
        worst,
        "frame score must be the worst crop's"
    );
    // Far-row fasteners are mirror images of the training crops: they must be marked and scored
    // flipped, i.e. land in the same score range as the near row (unflipped they scored ~10×).
    let median = |mirrored: bool| {
        let mut v: Vec<f64> = crops
            .iter()
            .filter(|c| c.get("mirrored").is_some() == mirrored)
            .map(|c| c["A_norm"].as_f64().unwrap())
            .collect();
        assert!(
            !v.is_empty(),
            "no {} crops",
            if mirrored { "far-row" } else { "near-row" }
        );
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (far, near) = (median(true), median(false));
    assert!(
        far < 3.0 * near.max(0.05),
        "far-row median A' {far} vs near-row {near}"
    );
    let any_defect = crops.iter().any(|c| c["verdict"] == "defect");
    assert_eq!(v["verdict"] == "defect", any_defect);
    let png = std::path::PathBuf::from(v["heatmap"].as_str().unwrap());
    let heat = image::open(&png).unwrap();
    let original = image::open(&frame).unwrap();
    assert_eq!(
        (heat.width(), heat.height()),
        (original.width(), original.height())
    );
}

/// Beyond the one committed frame: a freshly generated set of frames, half the fasteners
/// defective (missing clips included), must be found almost completely and almost cleanly.
#[test]
fn finds_fasteners_in_generated_frames_with_many_defects() {
    let py = root().join(".venv/bin/python");
    let train_dir = root().join("models/train");
    require_venv(&py, &train_dir, "the generated-frame search test");
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&py)
        .current_dir(&train_dir)
        .args(["-m", "railscope_train.synth", "--out"])
        .arg(tmp.path())
        .args([
            "--seed",
            "57",
            "--train",
            "32",
            "--test-good",
            "0",
            "--test-defect",
            "0",
            "--frames",
            "12",
            "--frame-defect-rate",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let search = FastenerSearch::from_dir(
        &tmp.path().join("train/good"),
        &railscope::config::SearchConfig::default(),
    )
    .unwrap();
    let boxes: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("frames/boxes.json")).unwrap(),
    )
    .unwrap();
    let (mut truth_n, mut hits, mut dets_n, mut spurious, mut defects, mut defect_hits) =
        (0, 0, 0, 0, 0, 0);
    for (name, list) in boxes.as_object().unwrap() {
        let bytes = std::fs::read(tmp.path().join("frames").join(name)).unwrap();
        let gray = to_gray(&decode(&bytes, name, DecodeLimits::default()).unwrap()).unwrap();
        let found = search.find(&gray).unwrap();
        let truth: Vec<(Rect, bool)> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let v: Vec<i32> = b["box"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap() as i32)
                    .collect();
                (Rect::new(v[0], v[1], v[2], v[3]), !b["defect"].is_null())
            })
            .collect();
        for (t, is_defect) in &truth {
            let hit = found.iter().any(|d| iou(d.rect(), *t) >= 0.5);
            truth_n += 1;
            hits += hit as usize;
            defects += *is_defect as usize;
            defect_hits += (hit && *is_defect) as usize;
        }
        dets_n += found.len();
        spurious += found
            .iter()
            .filter(|d| truth.iter().all(|(t, _)| iou(d.rect(), *t) < 0.5))
            .count();
    }
    let recall = hits as f64 / truth_n as f64;
    let precision = 1.0 - spurious as f64 / dets_n.max(1) as f64;
    eprintln!("generated frames: recall {hits}/{truth_n} (defective {defect_hits}/{defects}), {spurious} spurious of {dets_n}");
    assert!(
        defects >= 20,
        "the generated set should hold many defective fasteners ({defects})"
    );
    assert!(recall >= 0.97, "recall {recall:.3}");
    assert!(
        defect_hits as f64 >= 0.95 * defects as f64,
        "defective fasteners found {defect_hits}/{defects}"
    );
    assert!(precision >= 0.95, "precision {precision:.3}");
}

#[test]
fn a_frame_without_fasteners_is_flagged_not_passed() {
    require_model();
    let d = tempfile::tempdir().unwrap();
    let blank = d.path().join("blank.png");
    image::GrayImage::from_pixel(512, 512, image::Luma([120u8]))
        .save(&blank)
        .unwrap();
    let mut c = bin();
    c.arg("infer")
        .arg("--model")
        .arg(model_dir())
        .arg("--roi")
        .arg("search")
        .arg(&blank);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["crops"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["verdict"], "defect", "{v}");
    assert!(v["note"].as_str().unwrap().contains("no fastener"), "{v}");
    assert!(v["A"].is_null());
}
