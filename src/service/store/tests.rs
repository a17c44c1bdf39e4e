//! The SQLite store against real files in a temporary folder.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::media::io_err;
use super::migrations::MIGRATIONS;
use super::*;
use crate::error::Error;

fn sample(camera: &str, verdict: Verdict, ms: i64) -> Inspection {
    Inspection {
        id: 0,
        meta: FrameMeta {
            camera: camera.into(),
            frame_id: Some("f1".into()),
            capture_ms: Some(ms - 5),
            received_ms: ms,
            track_id: Some("L1".into()),
            position_m: Some(1234.5),
            speed_kmh: Some(80.0),
        },
        r: Some(0.1),
        l: Some(0.2),
        a: Some(0.11),
        a_norm: Some(0.3),
        threshold: 0.127,
        verdict,
        model_name: "m".into(),
        model_version: "1".into(),
        provider: "cpu".into(),
        crops_json: "[]".into(),
        note: None,
        partial_slots_json: "[]".into(),
        has_image: false,
        has_heatmap: false,
        has_reconstruction: false,
        review: None,
    }
}

/// A batch whose second frame's media cannot be written stores nothing and leaves no file
/// of the first behind; a full disk is told apart from other failures.
#[test]
fn a_failed_batch_leaves_no_rows_and_no_orphan_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path(), "normal").unwrap();
    let media = || Media {
        image: Some((b"png-bytes".to_vec(), "png")),
        heatmap_png: Some(b"heat".to_vec()),
        reconstruction_png: Some(b"recon".to_vec()),
    };
    let day2 = 86_400_000 * 2;
    // the second frame's day folder cannot be created: a file is in its way
    std::fs::create_dir_all(s.media.path("")).unwrap();
    std::fs::write(s.media.path("19700103"), b"in the way").unwrap();
    let mut batch = vec![
        (sample("cam-01", Verdict::Defect, 1_000_000), media()),
        (sample("cam-02", Verdict::Defect, day2 + 5), media()),
    ];
    let err = s.insert_batch(&mut batch).unwrap_err();
    assert!(!matches!(err, Error::StorageFull(_)), "{err}");
    assert!(s.list(&InspectionFilter::default()).unwrap().is_empty());
    let day1 = s.media.path("19700101");
    let left: Vec<_> = std::fs::read_dir(&day1)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "orphan media left: {left:?}");
    let full = io_err("writing x".into(), std::io::Error::from_raw_os_error(28));
    assert!(matches!(full, Error::StorageFull(_)), "{full}");
}

#[test]
fn insert_list_review_and_totals_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path(), "normal").unwrap();
    let mut batch = vec![
        (
            sample("cam-01", Verdict::Defect, 1_000_000),
            Media {
                image: Some((b"png-bytes".to_vec(), "png")),
                heatmap_png: Some(b"heat".to_vec()),
                reconstruction_png: Some(b"recon".to_vec()),
            },
        ),
        (
            sample("cam-02", Verdict::Normal, 1_000_100),
            Media::default(),
        ),
    ];
    let ids = s.insert_batch(&mut batch).unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[1] > ids[0]);
    let got = s.get(ids[0]).unwrap().unwrap();
    assert_eq!(got.meta.camera, "cam-01");
    assert!(got.has_image && got.has_heatmap && got.has_reconstruction);
    assert_eq!(
        s.image(ids[0]).unwrap().unwrap(),
        (b"png-bytes".to_vec(), "image/png")
    );
    assert_eq!(s.heatmap(ids[0]).unwrap().unwrap(), b"heat".to_vec());
    assert_eq!(
        s.reconstruction(ids[0]).unwrap().unwrap(),
        b"recon".to_vec()
    );
    assert!(s.image(ids[1]).unwrap().is_none());
    assert!(s.reconstruction(ids[1]).unwrap().is_none());
    assert!(!s.get(ids[1]).unwrap().unwrap().has_reconstruction);

    let queue = InspectionFilter {
        verdict: Some(Verdict::Defect),
        review: Some(ReviewFilter::Unreviewed),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.list(&queue).unwrap().len(), 1);
    let reviewed = s
        .review(
            ids[0],
            &Review {
                state: ReviewState::Confirmed,
                note: "clip snapped".into(),
                reviewer: "inspector".into(),
                reviewed_ms: 1_000_200,
                defect: DefectDetails::default(),
                lifecycle: None,
            },
        )
        .unwrap()
        .unwrap();
    assert_eq!(reviewed.review.unwrap().state, ReviewState::Confirmed);
    assert!(s.list(&queue).unwrap().is_empty());
    assert_eq!(
        s.reviewed_scores("cam-01", "m", "1").unwrap(),
        vec![ReviewedScore {
            id: ids[0],
            a: 0.11,
            state: ReviewState::Confirmed
        }]
    );
    assert!(s.reviewed_scores("cam-01", "m", "2").unwrap().is_empty());
    assert!(s.review(9999, &reviewed_dummy()).unwrap().is_none());

    let totals = s.camera_totals().unwrap();
    assert_eq!(totals.len(), 2);
    assert_eq!((totals[0].frames, totals[0].defects), (1, 1));
    assert_eq!((totals[1].frames, totals[1].defects), (1, 0));

    let pos = s.positions(None, 100.0).unwrap();
    assert_eq!(pos[0].position_m, 1200.0);
    assert_eq!((pos[0].frames, pos[0].defects, pos[0].confirmed), (2, 1, 1));
    let trend = s.trend(Some("cam-01"), 0, 60_000).unwrap();
    assert_eq!(trend.len(), 1);
    s.check_writable().unwrap();
}

fn reviewed_dummy() -> Review {
    Review {
        state: ReviewState::FalseAlarm,
        note: String::new(),
        reviewer: "x".into(),
        reviewed_ms: 0,
        defect: DefectDetails::default(),
        lifecycle: None,
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A database written by an older release: the first `version` migrations and one row
/// (`insert`), then opened by this one, which must migrate it to the latest schema.
fn migrated_from(dir: &Path, version: usize, insert: &str) -> SqliteStore {
    {
        let c = Connection::open(dir.join("railscope.db")).unwrap();
        for m in &MIGRATIONS[..version] {
            c.execute_batch(m).unwrap();
        }
        c.execute_batch(&format!("PRAGMA user_version = {version}"))
            .unwrap();
        c.execute(insert, []).unwrap();
    }
    let s = SqliteStore::open(dir, "normal").unwrap();
    let now: usize = s
        .read(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(now, MIGRATIONS.len());
    s
}

#[test]
fn a_version_1_database_gains_the_reconstruction_column() {
    let dir = tempfile::tempdir().unwrap();
    let s = migrated_from(
        dir.path(),
        1,
        "INSERT INTO inspections (camera, received_ms, threshold, verdict, model_name,
         model_version, provider, crops, image_path, heatmap_path)
         VALUES ('a', 1, 0.1, 'defect', 'm', '1', 'cpu', '[]', 'x.png', 'x.heatmap.png')",
    );
    let old = s.get(1).unwrap().unwrap();
    assert!(old.has_image && old.has_heatmap && !old.has_reconstruction);
    assert!(s.reconstruction(1).unwrap().is_none());
    assert_eq!((old.note, old.partial_slots_json.as_str()), (None, "[]"));
}

#[test]
fn a_version_2_database_gains_the_note_and_partial_slots_columns() {
    let dir = tempfile::tempdir().unwrap();
    let s = migrated_from(
        dir.path(),
        2,
        "INSERT INTO inspections (camera, received_ms, threshold, verdict, model_name,
         model_version, provider, crops, image_path, reconstruction_path)
         VALUES ('a', 1, 0.1, 'defect', 'm', '1', 'cpu', '[]', 'x.png', 'x.rec.png')",
    );
    let old = s.get(1).unwrap().unwrap();
    assert!(old.has_image && !old.has_heatmap && old.has_reconstruction);
    assert_eq!((old.note, old.partial_slots_json.as_str()), (None, "[]"));

    // New rows keep both, on every read path.
    let mut flagged = sample("a", Verdict::Defect, 2);
    flagged.r = None;
    flagged.l = None;
    flagged.a = None;
    flagged.a_norm = None;
    flagged.note = Some("no track found: no rail in the frame".into());
    flagged.partial_slots_json = "[[0,10,48,48],[470,10,48,48]]".into();
    let ids = s
        .insert_batch(&mut [
            (flagged.clone(), Media::default()),
            (sample("a", Verdict::Normal, 3), Media::default()),
        ])
        .unwrap();
    let got = s.get(ids[0]).unwrap().unwrap();
    assert_eq!(got.note, flagged.note);
    assert_eq!(got.partial_slots_json, flagged.partial_slots_json);
    let plain = s.get(ids[1]).unwrap().unwrap();
    assert_eq!(
        (plain.note, plain.partial_slots_json.as_str()),
        (None, "[]")
    );
    let listed = s
        .list(&InspectionFilter {
            verdict: Some(Verdict::Defect),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|i| (i.id, i.note.clone(), i.partial_slots_json.clone()))
            .collect::<Vec<_>>(),
        vec![
            (
                ids[0],
                flagged.note.clone(),
                flagged.partial_slots_json.clone()
            ),
            (1, None, "[]".to_string()),
        ]
    );
    let reviewed = s.review(ids[0], &reviewed_dummy()).unwrap().unwrap();
    assert_eq!(reviewed.note, flagged.note);
    drop(s);
    let again = SqliteStore::open(dir.path(), "normal").unwrap();
    assert_eq!(again.get(ids[0]).unwrap().unwrap().note, flagged.note);
}

fn change(camera: &str, action: &str, old: Option<f64>, new: f64) -> CalibrationChange {
    CalibrationChange {
        id: 0,
        at_ms: 1_000,
        camera: camera.into(),
        actor: "admin".into(),
        action: action.into(),
        old_threshold: old,
        new_threshold: new,
        old_source: old.map(|_| "m.json".into()),
        new_source: "applied".into(),
        min: 0.01,
        max: 0.09,
        model_name: "m".into(),
        model_version: "1".into(),
        model_sha256: "abc".into(),
        reason: "best F1 proposal".into(),
    }
}

#[test]
fn a_version_3_database_gains_the_calibration_audit_and_applied_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    // A review made under model version 1 by the older release.
    let s = migrated_from(
        dir.path(),
        3,
        "INSERT INTO inspections (camera, received_ms, a, a_norm, threshold, verdict, model_name,
         model_version, provider, crops, review_state, reviewer, reviewed_ms)
         VALUES ('cam-01', 1, 0.05, 0.5, 0.1, 'defect', 'm', '1', 'cpu', '[]', 'confirmed', 'inspector', 2)",
    );
    assert_eq!(
        s.reviewed_scores("cam-01", "m", "1").unwrap(),
        vec![ReviewedScore {
            id: 1,
            a: 0.05,
            state: ReviewState::Confirmed
        }]
    );
    assert!(s.reviewed_scores("cam-01", "m", "2").unwrap().is_empty());
    assert!(s
        .reviewed_scores("cam-01", "other", "1")
        .unwrap()
        .is_empty());
    assert!(s.calibration_audit(None, None, 10).unwrap().is_empty());
    assert!(s.applied_threshold("cam-01", "m", "abc").unwrap().is_none());

    // Apply: the audit entry and the applied threshold in one transaction.
    let applied = AppliedThreshold {
        camera: "cam-01".into(),
        model_name: "m".into(),
        model_sha256: "abc".into(),
        min: 0.01,
        max: 0.09,
        threshold: 0.143985687,
        applied_ms: 1_000,
        applied_by: "admin".into(),
        audit_id: 0,
    };
    let first = s
        .record_calibration_change(
            &change("cam-01", "apply", Some(0.127), 0.143985687),
            &AppliedUpdate::Set(applied.clone()),
        )
        .unwrap();
    let got = s.applied_threshold("cam-01", "m", "abc").unwrap().unwrap();
    assert_eq!(
        got,
        AppliedThreshold {
            audit_id: first,
            ..applied.clone()
        }
    );
    // Another model (or another model.onnx) has none.
    assert!(s.applied_threshold("cam-01", "m", "def").unwrap().is_none());
    assert!(s.applied_threshold("cam-02", "m", "abc").unwrap().is_none());
    // A second apply replaces it; a reload entry leaves it alone; clear removes it.
    let second = s
        .record_calibration_change(
            &change("cam-01", "apply", Some(0.143985687), 0.2),
            &AppliedUpdate::Set(AppliedThreshold {
                threshold: 0.2,
                ..applied.clone()
            }),
        )
        .unwrap();
    assert!(second > first);
    let reload = s
        .record_calibration_change(
            &change("cam-02", "reload", Some(0.127), 0.15),
            &AppliedUpdate::Unchanged,
        )
        .unwrap();
    let got = s.applied_threshold("cam-01", "m", "abc").unwrap().unwrap();
    assert_eq!((got.threshold, got.audit_id), (0.2, second));
    drop(s);
    // Survives a restart.
    let s = SqliteStore::open(dir.path(), "normal").unwrap();
    assert_eq!(
        s.applied_threshold("cam-01", "m", "abc")
            .unwrap()
            .unwrap()
            .threshold,
        0.2
    );
    let cleared = s
        .record_calibration_change(
            &change("cam-01", "clear", Some(0.2), 0.127),
            &AppliedUpdate::Clear,
        )
        .unwrap();
    assert!(s.applied_threshold("cam-01", "m", "abc").unwrap().is_none());

    // The audit, newest first, per camera and paged.
    let all = s.calibration_audit(None, None, 10).unwrap();
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![cleared, reload, second, first]
    );
    let cam1 = s.calibration_audit(Some("cam-01"), None, 10).unwrap();
    assert_eq!(
        cam1.iter()
            .map(|c| (c.action.as_str(), c.old_threshold, c.new_threshold))
            .collect::<Vec<_>>(),
        vec![
            ("clear", Some(0.2), 0.127),
            ("apply", Some(0.143985687), 0.2),
            ("apply", Some(0.127), 0.143985687),
        ]
    );
    assert_eq!(cam1[2], {
        let mut c = change("cam-01", "apply", Some(0.127), 0.143985687);
        c.id = first;
        c
    });
    let page = s
        .calibration_audit(Some("cam-01"), Some(second), 10)
        .unwrap();
    assert_eq!(page.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first]);
    assert_eq!(s.calibration_audit(None, None, 1).unwrap().len(), 1);
    // An unknown action is refused by the schema.
    assert!(s
        .record_calibration_change(
            &change("cam-01", "guess", None, 0.1),
            &AppliedUpdate::Unchanged
        )
        .is_err());
    assert_eq!(s.calibration_audit(None, None, 10).unwrap().len(), 4);
}

fn confirm(ms: i64, defect_type: &str, severity: &str) -> Review {
    Review {
        state: ReviewState::Confirmed,
        note: "on site".into(),
        reviewer: "inspector".into(),
        reviewed_ms: ms,
        defect: DefectDetails {
            defect_type: Some(defect_type.into()),
            severity: Some(severity.into()),
            rail_side: Some(RailSide::Left),
            sleeper: Some(42),
        },
        lifecycle: None,
    }
}

fn lifecycle(state: LifecycleState, ms: i64) -> LifecycleEntry {
    LifecycleEntry {
        state,
        by: "admin".into(),
        at_ms: ms,
        note: format!("{} at {ms}", state.as_str()),
    }
}

#[test]
fn a_version_5_database_gains_the_defect_catalogue_and_the_repair_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    // A defect the older release confirmed (no type) and one it left unreviewed.
    let s = migrated_from(
        dir.path(),
        5,
        "INSERT INTO inspections (camera, received_ms, track_id, position_m, a, a_norm, threshold,
         verdict, model_name, model_version, provider, crops, review_state, review_note, reviewer,
         reviewed_ms) VALUES ('cam-01', 1, 'L1', 900.0, 0.05, 0.5, 0.1, 'defect', 'm', '1', 'cpu',
         '[]', 'confirmed', 'old', 'inspector', 2)",
    );
    let old = s.get(1).unwrap().unwrap().review.unwrap();
    assert_eq!(old.defect, DefectDetails::default());
    let opened = old.lifecycle.expect("an old confirmed defect starts open");
    assert_eq!(
        (opened.state, opened.by.as_str(), opened.at_ms),
        (LifecycleState::Open, "inspector", 2)
    );
    assert_eq!(
        s.history(1).unwrap().unwrap().len(),
        1,
        "its opening is in the history"
    );

    let ids = s
        .insert_batch(&mut [
            (sample("cam-01", Verdict::Defect, 10), Media::default()),
            (sample("cam-02", Verdict::Defect, 20), Media::default()),
        ])
        .unwrap();
    // Reviewed three times: false alarm, then confirmed, then re-classified.
    s.review(ids[0], &reviewed_dummy()).unwrap();
    assert!(s
        .get(ids[0])
        .unwrap()
        .unwrap()
        .review
        .unwrap()
        .lifecycle
        .is_none());
    assert_eq!(
        s.set_lifecycle(ids[0], &lifecycle(LifecycleState::RepairOrdered, 30))
            .unwrap(),
        LifecycleOutcome::NotConfirmed
    );
    s.review(ids[0], &confirm(40, "missing_clip", "immediate"))
        .unwrap();
    let latest = s
        .review(ids[0], &confirm(50, "fractured_clip", "plan"))
        .unwrap()
        .unwrap();
    let r = latest.review.unwrap();
    assert_eq!(r.defect.defect_type.as_deref(), Some("fractured_clip"));
    assert_eq!(
        (r.defect.rail_side, r.defect.sleeper),
        (Some(RailSide::Left), Some(42))
    );
    assert_eq!(
        r.lifecycle.unwrap().at_ms,
        40,
        "a re-confirmation keeps the repair where it stands"
    );

    // The lifecycle: forward moves allowed, a repaired defect stays repaired.
    assert!(matches!(
        s.set_lifecycle(ids[0], &lifecycle(LifecycleState::RepairOrdered, 60))
            .unwrap(),
        LifecycleOutcome::Changed(_)
    ));
    assert_eq!(
        s.set_lifecycle(ids[0], &lifecycle(LifecycleState::RepairOrdered, 61))
            .unwrap(),
        LifecycleOutcome::Refused(LifecycleState::RepairOrdered)
    );
    let LifecycleOutcome::Changed(done) = s
        .set_lifecycle(ids[0], &lifecycle(LifecycleState::Repaired, 70))
        .unwrap()
    else {
        panic!("repair_ordered -> repaired is allowed")
    };
    assert_eq!(
        done.review.unwrap().lifecycle.unwrap(),
        lifecycle(LifecycleState::Repaired, 70)
    );
    assert_eq!(
        s.set_lifecycle(ids[0], &lifecycle(LifecycleState::Open, 80))
            .unwrap(),
        LifecycleOutcome::Refused(LifecycleState::Repaired)
    );
    assert_eq!(
        s.set_lifecycle(999, &lifecycle(LifecycleState::Open, 80))
            .unwrap(),
        LifecycleOutcome::NoInspection
    );
    let h = s.history(ids[0]).unwrap().unwrap();
    let kinds: Vec<String> = h
        .iter()
        .map(|e| match e {
            HistoryEntry::Review(r) => format!(
                "{}:{}",
                r.state.as_str(),
                r.defect.defect_type.as_deref().unwrap_or("-")
            ),
            HistoryEntry::Lifecycle { from, entry } => format!(
                "{}>{}",
                from.map(LifecycleState::as_str).unwrap_or("-"),
                entry.state.as_str()
            ),
            other => panic!("no bulk action here: {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "false_alarm:-",
            "confirmed:missing_clip",
            "->open",
            "confirmed:fractured_clip",
            "open>repair_ordered",
            "repair_ordered>repaired"
        ]
    );
    assert!(s.history(999).unwrap().is_none());

    // The defect list: confirmed only, filtered, ordered by track and position.
    s.review(ids[1], &confirm(90, "loose_bolt", "monitor"))
        .unwrap();
    let all = s
        .defects(&DefectFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![1, ids[0], ids[1]]
    );
    let by = |f: DefectFilter| -> Vec<i64> {
        s.defects(&DefectFilter { limit: 10, ..f })
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect()
    };
    assert_eq!(
        by(DefectFilter {
            severities: vec!["monitor".into(), "plan".into()],
            ..Default::default()
        }),
        vec![ids[0], ids[1]]
    );
    assert_eq!(
        by(DefectFilter {
            states: vec![LifecycleState::Open],
            ..Default::default()
        }),
        vec![1, ids[1]]
    );
    assert_eq!(
        by(DefectFilter {
            min_position_m: Some(1000.0),
            ..Default::default()
        }),
        vec![ids[0], ids[1]]
    );
    assert_eq!(
        by(DefectFilter {
            max_position_m: Some(1000.0),
            ..Default::default()
        }),
        vec![1]
    );
    assert_eq!(
        by(DefectFilter {
            camera: Some("cam-02".into()),
            ..Default::default()
        }),
        vec![ids[1]]
    );
    assert_eq!(
        by(DefectFilter {
            defect_type: Some("loose_bolt".into()),
            ..Default::default()
        }),
        vec![ids[1]]
    );
    // Time: the capture time (sample: received - 5).
    assert_eq!(
        by(DefectFilter {
            since_ms: Some(15),
            ..Default::default()
        }),
        vec![ids[1]]
    );
    assert_eq!(
        by(DefectFilter {
            until_ms: Some(15),
            ..Default::default()
        }),
        vec![1, ids[0]]
    );
    assert_eq!(
        s.defects(&DefectFilter {
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .len(),
        2,
        "limit + 1 tells a cut list"
    );
}

#[test]
fn reopening_keeps_rows_and_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open(dir.path(), "full").unwrap();
        s.insert_batch(&mut [(sample("a", Verdict::Normal, 5), Media::default())])
            .unwrap();
    }
    let s = SqliteStore::open(dir.path(), "full").unwrap();
    let all = s
        .list(&InspectionFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[test]
fn expiring_normal_images_keeps_defects_and_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path(), "normal").unwrap();
    let img = || Media {
        image: Some((b"x".to_vec(), "png")),
        heatmap_png: None,
        reconstruction_png: Some(b"r".to_vec()),
    };
    let ids = s
        .insert_batch(&mut [
            (sample("a", Verdict::Normal, 1_000), img()),
            (sample("a", Verdict::Defect, 1_000), img()),
            (sample("a", Verdict::Normal, 9_000), img()),
        ])
        .unwrap();
    let recon_files = || {
        walk(&dir.path().join("media"))
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".reconstruction.png"))
            .count()
    };
    assert_eq!(recon_files(), 3);
    assert_eq!(s.expire_normal_images(5_000).unwrap(), 1);
    assert!(s.image(ids[0]).unwrap().is_none());
    assert!(s.reconstruction(ids[0]).unwrap().is_none());
    assert!(!s.get(ids[0]).unwrap().unwrap().has_reconstruction);
    assert_eq!(
        recon_files(),
        2,
        "the expired reconstruction's file is deleted"
    );
    assert!(s.reconstruction(ids[1]).unwrap().is_some());
    assert!(s.get(ids[0]).unwrap().is_some());
    assert!(s.image(ids[1]).unwrap().is_some());
    assert!(s.image(ids[2]).unwrap().is_some());
}

#[test]
fn a_version_6_database_gains_bulk_review_with_undo_and_the_queue_by_score() {
    let dir = tempfile::tempdir().unwrap();
    // A defect the older release confirmed, then frames of this one with scores (two tied, one
    // without a score).
    let s = migrated_from(
        dir.path(),
        6,
        "INSERT INTO inspections (camera, received_ms, a, a_norm, threshold, verdict, model_name,
         model_version, provider, crops, review_state, review_note, reviewer, reviewed_ms,
         defect_type, lifecycle_state) VALUES ('cam-01', 1, 0.05, 0.9, 0.1, 'defect', 'm', '1',
         'cpu', '[]', 'confirmed', 'old', 'inspector', 2, 'missing_clip', 'open')",
    );
    let mut items: Vec<(Inspection, Media)> = [Some(0.5), Some(0.7), Some(0.5), None]
        .into_iter()
        .map(|a| {
            let mut i = sample("cam-01", Verdict::Defect, 10);
            i.a_norm = a;
            (i, Media::default())
        })
        .collect();
    let ids = s.insert_batch(&mut items).unwrap(); // 2..=5
    let all = InspectionFilter {
        order: ListOrder::Score,
        limit: 2,
        ..Default::default()
    };
    let (mut order, mut after) = (Vec::new(), None);
    loop {
        let (page, total) = s
            .list_counted(&InspectionFilter {
                after,
                ..all.clone()
            })
            .unwrap();
        assert_eq!(total, 5);
        order.extend(page.iter().map(|i| i.id));
        match page.last() {
            Some(last) if page.len() == 2 => after = Some(Cursor::after(ListOrder::Score, last)),
            _ => break,
        }
    }
    assert_eq!(order, [1, ids[1], ids[2], ids[0], ids[3]]);

    let bulk = |selection, expected_count, max| BulkReview {
        selection,
        review: reviewed_dummy(),
        expected_count,
        max,
        selection_json: "{}".into(),
    };
    let everything = Selection::Filter(InspectionFilter::default());
    assert_eq!(
        s.review_bulk(&bulk(everything.clone(), None, 4)).unwrap(),
        BulkOutcome::TooMany { matched: 5 }
    );
    assert_eq!(
        s.review_bulk(&bulk(everything.clone(), Some(4), 10))
            .unwrap(),
        BulkOutcome::CountChanged {
            expected: 4,
            matched: 5
        }
    );
    assert_eq!(
        s.review_bulk(&bulk(Selection::Ids(vec![1, 99]), None, 10))
            .unwrap(),
        BulkOutcome::Unknown(vec![99])
    );
    assert!(s.history(1).unwrap().unwrap().is_empty(), "nothing written");
    let BulkOutcome::Applied(batch) = s.review_bulk(&bulk(everything, Some(5), 10)).unwrap() else {
        panic!("applied")
    };
    assert_eq!(batch.items.len(), 5);
    let old = batch.items.iter().find(|i| i.inspection_id == 1).unwrap();
    assert_eq!(old.previous, Some(ReviewState::Confirmed));
    assert_eq!(
        s.get(1).unwrap().unwrap().review.unwrap().state,
        ReviewState::FalseAlarm
    );
    // ids[0] is reviewed again since: the undo leaves it.
    s.review(ids[0], &confirm(50, "other", "plan")).unwrap();
    let UndoOutcome::Undone(undone) = s.undo_review_batch(batch.id, "admin", 60).unwrap() else {
        panic!("undone")
    };
    assert_eq!(undone.undone, Some(("admin".into(), 60)));
    let skipped: Vec<i64> = undone
        .items
        .iter()
        .filter(|i| i.undo == Some(UndoResult::Skipped))
        .map(|i| i.inspection_id)
        .collect();
    assert_eq!(skipped, [ids[0]]);
    let back = s.get(1).unwrap().unwrap().review.unwrap();
    assert_eq!(
        (back.state, back.note.as_str(), back.reviewed_ms),
        (ReviewState::Confirmed, "old", 2)
    );
    assert_eq!(back.defect.defect_type.as_deref(), Some("missing_clip"));
    assert!(s.get(ids[1]).unwrap().unwrap().review.is_none());
    assert_eq!(
        s.get(ids[0]).unwrap().unwrap().review.unwrap().state,
        ReviewState::Confirmed
    );
    match s.history(ids[1]).unwrap().unwrap().as_slice() {
        [HistoryEntry::BatchReview { batch_id, .. }, HistoryEntry::Undo {
            batch_id: undone_id,
            by,
            restored: None,
            ..
        }] => {
            assert_eq!(
                (*batch_id, *undone_id, by.as_str()),
                (batch.id, batch.id, "admin")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.undo_review_batch(batch.id, "admin", 70).unwrap(),
        UndoOutcome::AlreadyUndone(_)
    ));
    assert_eq!(
        s.undo_review_batch(999, "admin", 70).unwrap(),
        UndoOutcome::NoBatch
    );
    assert_eq!(s.review_batch(batch.id).unwrap().unwrap(), undone);
}

/// The start-of-shift summary: counts since a time and since the baseline's start, unreviewed
/// of all time, confirmed by severity and the track sections, per camera.
#[test]
fn the_summary_splits_counts_by_time_and_camera() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path(), "normal").unwrap();
    let at = |camera: &str, verdict: Verdict, ms: i64, track: Option<&str>, pos: Option<f64>| {
        let mut i = sample(camera, verdict, ms);
        i.meta.track_id = track.map(Into::into);
        i.meta.position_m = pos;
        (i, Media::default())
    };
    let mut batch = vec![
        at("cam-01", Verdict::Defect, 1_000, Some("L1"), Some(10.0)), // before the baseline
        at("cam-01", Verdict::Defect, 5_000, Some("L1"), Some(20.0)), // baseline only
        at("cam-01", Verdict::Normal, 5_500, Some("L1"), Some(30.0)),
        at("cam-01", Verdict::Defect, 10_000, Some("L2"), Some(700.0)), // since
        at("cam-01", Verdict::Defect, 11_000, Some("L2"), Some(500.0)),
        at("cam-01", Verdict::Normal, 12_000, None, None),
        at("cam-02", Verdict::Normal, 10_500, Some("L3"), None),
    ];
    let ids = s.insert_batch(&mut batch).unwrap();
    s.review(ids[3], &confirm(13_000, "missing_clip", "immediate"))
        .unwrap();
    s.review(ids[1], &reviewed_dummy()).unwrap();

    let out = s.summary(10_000, 5_000).unwrap();
    assert_eq!(out.len(), 2);
    let c1 = &out[0];
    assert_eq!(c1.camera, "cam-01");
    assert_eq!((c1.frames, c1.defects), (3, 2));
    assert_eq!((c1.baseline_frames, c1.baseline_defects), (5, 3));
    assert_eq!(
        (c1.unreviewed, c1.unreviewed_since),
        (2, 1),
        "ids 0 and 4 unreviewed"
    );
    assert_eq!(c1.confirmed_by_severity, vec![("immediate".to_string(), 1)]);
    assert_eq!(
        c1.tracks,
        vec![TrackSeen {
            track_id: "L2".into(),
            frames: 2,
            min_position_m: Some(500.0),
            max_position_m: Some(700.0),
        }]
    );
    let c2 = &out[1];
    assert_eq!(
        (c2.camera.as_str(), c2.frames, c2.defects),
        ("cam-02", 1, 0)
    );
    assert_eq!(c2.tracks[0].min_position_m, None);
    // A camera with only an old unreviewed defect is still listed.
    let out = s.summary(20_000, 20_000).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].frames, out[0].unreviewed), (0, 2));
}

fn session(key: &str, who: &str, role: &str, started_ms: i64) -> StoredSession {
    StoredSession {
        key_sha256: key.into(),
        who: who.into(),
        role: role.into(),
        started_ms,
        expires_ms: started_ms + 1000,
    }
}

#[test]
fn a_version_7_database_gains_accounts_and_stored_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let s = migrated_from(
        dir.path(),
        7,
        "UPDATE inspections SET note = NULL WHERE id = -1",
    );
    let alice = Account {
        name: "alice".into(),
        role: "inspector".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_ms: 10,
        disabled_ms: None,
    };
    assert!(s.create_account(&alice).unwrap());
    assert!(!s.create_account(&alice).unwrap(), "the name is taken");
    let mut bob = alice.clone();
    bob.name = "bob".into();
    bob.role = "admin".into();
    assert!(s.create_account(&bob).unwrap());
    assert_eq!(s.account("alice").unwrap(), Some(alice.clone()));
    assert_eq!(s.account("carol").unwrap(), None);
    let names: Vec<String> = s.accounts().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["alice", "bob"]);

    // sessions: found until they expire, token sessions (no account) too
    s.insert_session(&session("k1", "alice", "inspector", 100))
        .unwrap();
    s.insert_session(&session("k2", "alice", "inspector", 100))
        .unwrap();
    s.insert_session(&session("k3", "admin", "admin", 100))
        .unwrap();
    s.insert_session(&session("k4", "bob", "admin", 100))
        .unwrap();
    assert_eq!(s.session("k1", 500).unwrap().unwrap().who, "alice");
    assert_eq!(s.session("k3", 500).unwrap().unwrap().role, "admin");
    assert_eq!(s.session("k1", 1100).unwrap(), None, "expired");
    assert_eq!(s.session("nope", 500).unwrap(), None);
    s.delete_session("k2").unwrap();
    assert_eq!(s.session("k2", 500).unwrap(), None, "logged out");

    // a new password ends the account's sessions; disabling too, and its sessions stay refused
    assert!(s.set_password("bob", "$argon2id$new").unwrap());
    assert_eq!(s.session("k4", 500).unwrap(), None);
    assert_eq!(
        s.account("bob").unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    s.insert_session(&session("k5", "alice", "inspector", 200))
        .unwrap();
    assert!(s.disable_account("alice", 300).unwrap());
    assert!(s.disable_account("alice", 400).unwrap());
    assert_eq!(s.account("alice").unwrap().unwrap().disabled_ms, Some(300));
    assert_eq!(s.session("k1", 500).unwrap(), None);
    assert_eq!(s.session("k5", 500).unwrap(), None);
    s.insert_session(&session("k6", "alice", "inspector", 500))
        .unwrap();
    assert_eq!(
        s.session("k6", 600).unwrap(),
        None,
        "a disabled account has no session"
    );
    assert!(!s.disable_account("carol", 300).unwrap());
    assert!(!s.set_password("carol", "x").unwrap());

    // expired rows are purged (a new session purges too)
    assert_eq!(
        s.purge_sessions(1100).unwrap(),
        1,
        "k3 (k6 lives until 1500)"
    );
    s.insert_session(&session("k7", "admin", "admin", 2000))
        .unwrap();
    let left: i64 = s
        .read(|c| c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(left, 1, "only k7");
    // only the two roles
    let mut bad = alice.clone();
    bad.name = "eve".into();
    bad.role = "camera".into();
    assert!(s.create_account(&bad).is_err());
}
