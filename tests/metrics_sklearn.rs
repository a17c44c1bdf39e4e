//! Metrics against scikit-learn on the same scores (tests/fixtures/metrics_sklearn.json, computed
//! once with scikit-learn in the project venv).

use railscope::pipeline::metrics;

#[test]
fn auroc_ap_and_threshold_metrics_match_sklearn() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_sklearn.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 3);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let s: Vec<f64> = c["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let y: Vec<bool> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() == 1)
            .collect();
        let close = |a: f64, key: &str| {
            let b = c[key].as_f64().unwrap();
            assert!(
                (a - b).abs() < 1e-12,
                "{name} {key}: rust {a} vs sklearn {b}"
            );
        };
        close(metrics::auroc(&s, &y).unwrap(), "auroc");
        close(
            metrics::average_precision(&s, &y).unwrap(),
            "average_precision",
        );
        let thr = c["threshold"].as_f64().unwrap();
        let r = metrics::at_threshold(&s, &y, thr);
        close(r.precision, "precision");
        close(r.recall, "recall");
        close(r.f1, "f1");
        let m = metrics::confusion(&s, &y, thr);
        let cf = &c["confusion"];
        assert_eq!(
            (m.tp, m.fp, m.tn, m.fn_),
            (
                cf["tp"].as_u64().unwrap() as usize,
                cf["fp"].as_u64().unwrap() as usize,
                cf["tn"].as_u64().unwrap() as usize,
                cf["fn"].as_u64().unwrap() as usize
            ),
            "{name}"
        );
    }
}
