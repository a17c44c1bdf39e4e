//! Durable results: every answered verdict, inspectors' reviews and the kept images.
//!
//! [`Store`] is what the service needs from storage; [`SqliteStore`] implements it with one
//! embedded SQLite file in WAL mode plus a media folder. A PostgreSQL backend would implement
//! the same trait. Rows are written in one transaction per engine batch *before* the requests
//! are answered, so a verdict a camera has seen is never lost (a `kill -9` after the answer
//! loses nothing; with `synchronous = full` neither does a power cut).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scoring::Verdict;

/// An inspector's decision about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// The defect is real.
    Confirmed,
    /// The model flagged a normal fastener.
    FalseAlarm,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Confirmed => "confirmed",
            ReviewState::FalseAlarm => "false_alarm",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "confirmed" => Some(ReviewState::Confirmed),
            "false_alarm" => Some(ReviewState::FalseAlarm),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub state: ReviewState,
    pub note: String,
    pub reviewer: String,
    pub reviewed_ms: i64,
    /// What the confirmed defect is, how urgent and where (all `None` for a false alarm).
    pub defect: DefectDetails,
    /// Where the repair of a confirmed defect stands (read back; a review never writes it
    /// beyond opening it: [`Store::set_lifecycle`]).
    pub lifecycle: Option<LifecycleEntry>,
}

/// The catalogue of defect types a confirmation records (docs/api.yaml, `DefectType`).
pub const DEFECT_TYPES: &[&str] = &[
    "missing_clip",
    "fractured_clip",
    "deformed_clip",
    "displaced_clip",
    "inverted_clip",
    "missing_bolt",
    "loose_bolt",
    "foreign_object",
    "cracked_sleeper",
    "other",
];

/// Which rail of the track the defect is on, looking in the direction of increasing position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RailSide {
    Left,
    Right,
}

impl RailSide {
    pub fn as_str(self) -> &'static str {
        match self {
            RailSide::Left => "left",
            RailSide::Right => "right",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "left" => Some(RailSide::Left),
            "right" => Some(RailSide::Right),
            _ => None,
        }
    }
}

/// A confirmed defect's classification: type (from [`DEFECT_TYPES`]), severity (from the
/// configured list, `review.severities`), rail side and sleeper number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefectDetails {
    pub defect_type: Option<String>,
    pub severity: Option<String>,
    pub rail_side: Option<RailSide>,
    pub sleeper: Option<i64>,
}

/// Where the repair of a confirmed defect stands: open → repair_ordered → repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    Open,
    RepairOrdered,
    Repaired,
}

impl LifecycleState {
    pub const ALL: [LifecycleState; 3] = [
        LifecycleState::Open,
        LifecycleState::RepairOrdered,
        LifecycleState::Repaired,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Open => "open",
            LifecycleState::RepairOrdered => "repair_ordered",
            LifecycleState::Repaired => "repaired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// The moves a defect's repair may make: an order is placed or cancelled, a defect is
    /// repaired (ordered or on the spot); a repaired defect stays repaired.
    pub fn can_become(self, to: LifecycleState) -> bool {
        use LifecycleState::*;
        matches!(
            (self, to),
            (Open, RepairOrdered)
                | (Open, Repaired)
                | (RepairOrdered, Repaired)
                | (RepairOrdered, Open)
        )
    }
}

/// One lifecycle state of a defect: who set it, when, why.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleEntry {
    pub state: LifecycleState,
    pub by: String,
    pub at_ms: i64,
    pub note: String,
}

/// One row of an inspection's history: a review or a lifecycle change, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEntry {
    Review(Review),
    Lifecycle {
        from: Option<LifecycleState>,
        entry: LifecycleEntry,
    },
}

/// What a lifecycle change found.
#[derive(Debug, Clone, PartialEq)]
pub enum LifecycleOutcome {
    Changed(Box<Inspection>),
    NoInspection,
    /// The inspection is not a confirmed defect.
    NotConfirmed,
    /// The move is not allowed from the current state (which it names).
    Refused(LifecycleState),
}

/// Filters of the confirmed-defect list (`GET /v1/defects`).
#[derive(Debug, Clone, Default)]
pub struct DefectFilter {
    pub camera: Option<String>,
    pub track_id: Option<String>,
    pub min_position_m: Option<f64>,
    pub max_position_m: Option<f64>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Any of these severities (empty: all).
    pub severities: Vec<String>,
    /// Any of these lifecycle states (empty: all).
    pub states: Vec<LifecycleState>,
    pub defect_type: Option<String>,
    pub limit: usize,
}

/// Where a frame came from, as the camera sent it. Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameMeta {
    pub camera: String,
    pub frame_id: Option<String>,
    pub capture_ms: Option<i64>,
    pub received_ms: i64,
    pub track_id: Option<String>,
    pub position_m: Option<f64>,
    pub speed_kmh: Option<f64>,
}

/// One inspected frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// Assigned by the store.
    pub id: i64,
    pub meta: FrameMeta,
    /// Worst crop's scores; `None` when no fastener was found.
    pub r: Option<f64>,
    pub l: Option<f64>,
    pub a: Option<f64>,
    pub a_norm: Option<f64>,
    pub threshold: f64,
    pub verdict: Verdict,
    pub model_name: String,
    pub model_version: String,
    pub provider: String,
    /// The crops as JSON (boxes and their scores).
    pub crops_json: String,
    /// Why the verdict stands without (or beyond) the crops' scores, e.g. `no track found: …`
    /// or `no fastener found in the frame`; `None` for an ordinary frame.
    pub note: Option<String>,
    /// Track mode: slots cut by the frame's edge, as a JSON array of `[x, y, w, h]` (reported,
    /// not scored); `"[]"` when none.
    pub partial_slots_json: String,
    pub has_image: bool,
    pub has_heatmap: bool,
    pub has_reconstruction: bool,
    pub review: Option<Review>,
}

/// Files kept with an inspection.
#[derive(Debug, Clone, Default)]
pub struct Media {
    /// The frame as posted and its file extension (`png`, `jpg`, …).
    pub image: Option<(Vec<u8>, &'static str)>,
    pub heatmap_png: Option<Vec<u8>>,
    /// The frame with the model's reconstruction of every crop in place (PNG).
    pub reconstruction_png: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewFilter {
    Unreviewed,
    Reviewed,
    State(ReviewState),
}

impl ReviewFilter {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unreviewed" => Some(ReviewFilter::Unreviewed),
            "reviewed" => Some(ReviewFilter::Reviewed),
            other => ReviewState::parse(other).map(ReviewFilter::State),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct InspectionFilter {
    pub camera: Option<String>,
    pub verdict: Option<Verdict>,
    pub review: Option<ReviewFilter>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub track_id: Option<String>,
    pub min_position_m: Option<f64>,
    pub max_position_m: Option<f64>,
    /// Only inspections whose A_norm is at or above this; those without an A_norm are left out.
    pub min_score: Option<f64>,
    /// Newest first; only ids below this (paging).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// Running totals of one camera.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CameraTotals {
    pub camera: String,
    pub frames: i64,
    pub defects: i64,
    pub last_ms: Option<i64>,
    pub last_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub camera: String,
    pub bucket_start_ms: i64,
    pub frames: i64,
    pub defects: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PositionBucket {
    pub track_id: Option<String>,
    pub position_m: f64,
    pub frames: i64,
    pub defects: i64,
    pub confirmed: i64,
}

/// One reviewed frame, as recalibration needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewedScore {
    pub id: i64,
    /// The raw anomaly score A (normalized later with the calibration in force).
    pub a: f64,
    pub state: ReviewState,
}

/// A threshold an admin applied (dashboard or `PUT /v1/cameras/{id}/calibration`) for one
/// camera and one model (name and `model.onnx` SHA-256). It outranks the calibration files
/// until it is cleared (docs/scoring.md, "Which calibration a camera uses").
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedThreshold {
    pub camera: String,
    pub model_name: String,
    pub model_sha256: String,
    /// The bounds in force when it was applied, kept with it.
    pub min: f64,
    pub max: f64,
    pub threshold: f64,
    pub applied_ms: i64,
    /// The role of the token that applied it.
    pub applied_by: String,
    /// The audit entry that recorded it (set by the store).
    pub audit_id: i64,
}

/// One entry of the calibration audit: a change of the threshold, bounds or source a camera
/// is judged with.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationChange {
    /// Assigned by the store.
    pub id: i64,
    pub at_ms: i64,
    pub camera: String,
    /// Who: the role of the authenticated token (`admin`), or `signal` / `service` for a
    /// SIGHUP reload or a start.
    pub actor: String,
    /// `apply`, `clear`, `reload` or `start`.
    pub action: String,
    pub old_threshold: Option<f64>,
    pub new_threshold: f64,
    pub old_source: Option<String>,
    pub new_source: String,
    /// The bounds in force after the change.
    pub min: f64,
    pub max: f64,
    pub model_name: String,
    pub model_version: String,
    pub model_sha256: String,
    /// Why, in words (the admin's reason, or what the service did).
    pub reason: String,
}

/// What a calibration change does to the applied threshold of its camera and model.
#[derive(Debug, Clone, PartialEq)]
pub enum AppliedUpdate {
    /// Nothing (a reload or a start found other files or another model in force).
    Unchanged,
    /// Makes this the applied threshold (replacing any before it).
    Set(AppliedThreshold),
    /// Removes the applied threshold of the change's camera and model.
    Clear,
}

/// What the service needs from storage.
pub trait Store: Send + Sync {
    /// Stores a batch atomically (files first, then one transaction) and returns the ids.
    fn insert_batch(&self, items: &mut [(Inspection, Media)]) -> Result<Vec<i64>>;
    fn get(&self, id: i64) -> Result<Option<Inspection>>;
    /// The first stored frame of `camera` with this frame id received at or after `since_ms`.
    fn find_frame(&self, camera: &str, frame_id: &str, since_ms: i64)
        -> Result<Option<Inspection>>;
    fn list(&self, filter: &InspectionFilter) -> Result<Vec<Inspection>>;
    /// Records a review (kept in the history for recalibration) and returns the inspection.
    fn review(&self, id: i64, review: &Review) -> Result<Option<Inspection>>;
    /// Moves a confirmed defect's repair to `entry.state` (kept in its history).
    fn set_lifecycle(&self, id: i64, entry: &LifecycleEntry) -> Result<LifecycleOutcome>;
    /// Every review and lifecycle change of an inspection, oldest first; `None`: no inspection.
    fn history(&self, id: i64) -> Result<Option<Vec<HistoryEntry>>>;
    /// Confirmed defects by track and position (then id), at most `limit + 1` of them so the
    /// caller can tell the list was cut.
    fn defects(&self, filter: &DefectFilter) -> Result<Vec<Inspection>>;
    /// `(bytes, content type)` of a kept image.
    fn image(&self, id: i64) -> Result<Option<(Vec<u8>, &'static str)>>;
    fn heatmap(&self, id: i64) -> Result<Option<Vec<u8>>>;
    fn reconstruction(&self, id: i64) -> Result<Option<Vec<u8>>>;
    fn camera_totals(&self) -> Result<Vec<CameraTotals>>;
    fn trend(&self, camera: Option<&str>, since_ms: i64, bucket_ms: i64)
        -> Result<Vec<TrendPoint>>;
    fn positions(&self, camera: Option<&str>, bucket_m: f64) -> Result<Vec<PositionBucket>>;
    /// `(A_norm, verdict)` of the latest `limit` frames.
    fn recent_scores(&self, camera: Option<&str>, limit: usize) -> Result<Vec<(f64, Verdict)>>;
    /// Every reviewed, scored frame of a camera judged by one model version (name and
    /// version as stored with the inspection): reviews under other versions are left out.
    fn reviewed_scores(
        &self,
        camera: &str,
        model_name: &str,
        model_version: &str,
    ) -> Result<Vec<ReviewedScore>>;
    /// The threshold applied for `camera` under this model (name and SHA-256), if any.
    fn applied_threshold(
        &self,
        camera: &str,
        model_name: &str,
        model_sha256: &str,
    ) -> Result<Option<AppliedThreshold>>;
    /// Records `change` in the calibration audit and applies `update` to the applied
    /// thresholds, in one transaction; returns the audit entry's id.
    fn record_calibration_change(
        &self,
        change: &CalibrationChange,
        update: &AppliedUpdate,
    ) -> Result<i64>;
    /// Calibration audit entries, newest first (optionally one camera's, older than
    /// `before_id`).
    fn calibration_audit(
        &self,
        camera: Option<&str>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<CalibrationChange>>;
    /// Deletes kept images of normal frames received before `before_ms`; returns how many.
    fn expire_normal_images(&self, before_ms: i64) -> Result<usize>;
    /// A cheap write, for readiness.
    fn check_writable(&self) -> Result<()>;
}

/// Schema versions, applied in order; `PRAGMA user_version` says how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: inspections, review history, per-camera totals.
    "CREATE TABLE inspections (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        frame_id TEXT,
        capture_ms INTEGER,
        received_ms INTEGER NOT NULL,
        track_id TEXT,
        position_m REAL,
        speed_kmh REAL,
        r REAL, l REAL, a REAL, a_norm REAL,
        threshold REAL NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('normal', 'defect')),
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        provider TEXT NOT NULL,
        crops TEXT NOT NULL,
        image_path TEXT,
        heatmap_path TEXT,
        review_state TEXT CHECK (review_state IN ('confirmed', 'false_alarm')),
        review_note TEXT,
        reviewer TEXT,
        reviewed_ms INTEGER
    );
    CREATE INDEX inspections_camera ON inspections (camera, id);
    CREATE INDEX inspections_queue ON inspections (verdict, review_state, id);
    CREATE INDEX inspections_received ON inspections (received_ms);
    CREATE INDEX inspections_position ON inspections (track_id, position_m);
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        inspection_id INTEGER NOT NULL REFERENCES inspections (id),
        state TEXT NOT NULL,
        note TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE camera_totals (
        camera TEXT PRIMARY KEY,
        frames INTEGER NOT NULL,
        defects INTEGER NOT NULL,
        last_ms INTEGER,
        last_id INTEGER
    );
    CREATE TABLE health (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
    // 2: the model's reconstruction kept beside the image and the heatmap.
    "ALTER TABLE inspections ADD COLUMN reconstruction_path TEXT;",
    // 3: why a verdict stands without its crops (no track, no fastener) and the slots cut by
    // the frame's edge; NULL in older rows (read as no note and no partial slots).
    "ALTER TABLE inspections ADD COLUMN note TEXT;
    ALTER TABLE inspections ADD COLUMN partial_slots_json TEXT;",
    // 4: the calibration audit (every threshold change: who, when, camera, old, new, why) and
    // the thresholds applied by admins, which outrank the calibration files until cleared;
    // reviewed frames looked up per camera and model version (recalibration).
    "CREATE TABLE calibration_audit (
        id INTEGER PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        camera TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('apply', 'clear', 'reload', 'start')),
        old_threshold REAL,
        new_threshold REAL NOT NULL,
        old_source TEXT,
        new_source TEXT NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX calibration_audit_camera ON calibration_audit (camera, id);
    CREATE TABLE applied_thresholds (
        camera TEXT NOT NULL,
        model_name TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        min REAL NOT NULL,
        max REAL NOT NULL,
        threshold REAL NOT NULL,
        applied_ms INTEGER NOT NULL,
        applied_by TEXT NOT NULL,
        audit_id INTEGER NOT NULL REFERENCES calibration_audit (id),
        PRIMARY KEY (camera, model_name, model_sha256)
    );
    CREATE INDEX inspections_reviewed ON inspections (camera, model_name, model_version)
        WHERE review_state IS NOT NULL;",
    // 5: a camera's frame looked up by its id (a retried X-Frame-Id is answered from the store).
    "CREATE INDEX inspections_frame_id ON inspections (camera, frame_id, received_ms)
        WHERE frame_id IS NOT NULL;",
    // 6: the defect catalogue on review (type, severity, rail side, sleeper), kept with every
    // review in the history too, and the repair lifecycle of confirmed defects (open →
    // repair_ordered → repaired) with its own history; confirmed defects listed by position.
    // Older confirmed reviews have no type (NULL) and start `open`.
    "ALTER TABLE inspections ADD COLUMN defect_type TEXT;
    ALTER TABLE inspections ADD COLUMN severity TEXT;
    ALTER TABLE inspections ADD COLUMN rail_side TEXT CHECK (rail_side IN ('left', 'right'));
    ALTER TABLE inspections ADD COLUMN sleeper INTEGER;
    ALTER TABLE inspections ADD COLUMN lifecycle_state TEXT
        CHECK (lifecycle_state IN ('open', 'repair_ordered', 'repaired'));
    ALTER TABLE inspections ADD COLUMN lifecycle_by TEXT;
    ALTER TABLE inspections ADD COLUMN lifecycle_ms INTEGER;
    ALTER TABLE inspections ADD COLUMN lifecycle_note TEXT;
    ALTER TABLE reviews ADD COLUMN defect_type TEXT;
    ALTER TABLE reviews ADD COLUMN severity TEXT;
    ALTER TABLE reviews ADD COLUMN rail_side TEXT;
    ALTER TABLE reviews ADD COLUMN sleeper INTEGER;
    CREATE INDEX reviews_inspection ON reviews (inspection_id, id);
    CREATE TABLE defect_lifecycle (
        id INTEGER PRIMARY KEY,
        inspection_id INTEGER NOT NULL REFERENCES inspections (id),
        -- the review it followed, which orders the two histories into one
        after_review_id INTEGER,
        from_state TEXT,
        to_state TEXT NOT NULL CHECK (to_state IN ('open', 'repair_ordered', 'repaired')),
        actor TEXT NOT NULL,
        note TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE INDEX defect_lifecycle_inspection ON defect_lifecycle (inspection_id, id);
    UPDATE inspections SET lifecycle_state = 'open', lifecycle_by = reviewer,
        lifecycle_ms = reviewed_ms, lifecycle_note = ''
        WHERE review_state = 'confirmed';
    INSERT INTO defect_lifecycle (inspection_id, after_review_id, from_state, to_state, actor, note,
        created_ms)
        SELECT id, (SELECT max(r.id) FROM reviews r WHERE r.inspection_id = inspections.id), NULL,
            'open', coalesce(reviewer, ''), '', coalesce(reviewed_ms, 0)
        FROM inspections WHERE review_state = 'confirmed';
    CREATE INDEX inspections_confirmed ON inspections (track_id, position_m)
        WHERE review_state = 'confirmed';",
];

const AUDIT_COLUMNS: &str = "id, created_ms, camera, actor, action, old_threshold, new_threshold, \
    old_source, new_source, min, max, model_name, model_version, model_sha256, reason";

fn row_to_change(r: &rusqlite::Row<'_>) -> rusqlite::Result<CalibrationChange> {
    Ok(CalibrationChange {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        camera: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        old_threshold: r.get(5)?,
        new_threshold: r.get(6)?,
        old_source: r.get(7)?,
        new_source: r.get(8)?,
        min: r.get(9)?,
        max: r.get(10)?,
        model_name: r.get(11)?,
        model_version: r.get(12)?,
        model_sha256: r.get(13)?,
        reason: r.get(14)?,
    })
}

const COLUMNS: &str = "id, camera, frame_id, capture_ms, received_ms, track_id, position_m, speed_kmh, \
    r, l, a, a_norm, threshold, verdict, model_name, model_version, provider, crops, \
    image_path IS NOT NULL, heatmap_path IS NOT NULL, review_state, review_note, reviewer, reviewed_ms, \
    reconstruction_path IS NOT NULL, note, partial_slots_json, defect_type, severity, rail_side, sleeper, \
    lifecycle_state, lifecycle_by, lifecycle_ms, lifecycle_note";

pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Idle read connections (WAL lets readers run beside the writer).
    readers: Mutex<Vec<Connection>>,
    db_path: PathBuf,
    media_dir: PathBuf,
    synchronous: String,
}

/// The conditions of an inspection query, numbered `?1`, `?2`, … in the order their arguments
/// are pushed, joined with AND (shared by the inspection list and the defect list).
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    args: Vec<Box<dyn ToSql>>,
}

impl Where {
    /// A condition with one `?`.
    fn push(&mut self, clause: &str, v: impl ToSql + 'static) {
        self.args.push(Box::new(v));
        self.clauses
            .push(clause.replace('?', &format!("?{}", self.args.len())));
    }

    /// `expr IN (…)` over `values`; nothing when there are none.
    fn any_of<V: ToSql + 'static>(&mut self, expr: &str, values: impl Iterator<Item = V>) {
        let mut marks = Vec::new();
        for v in values {
            self.args.push(Box::new(v));
            marks.push(format!("?{}", self.args.len()));
        }
        if !marks.is_empty() {
            self.clauses
                .push(format!("{expr} IN ({})", marks.join(", ")));
        }
    }

    /// A track and a range of positions along it.
    fn track_range(&mut self, track: &Option<String>, min_m: Option<f64>, max_m: Option<f64>) {
        if let Some(t) = track {
            self.push("track_id = ?", t.clone());
        }
        if let Some(p) = min_m {
            self.push("position_m >= ?", p);
        }
        if let Some(p) = max_m {
            self.push("position_m <= ?", p);
        }
    }

    /// `SELECT … FROM inspections WHERE …` (no WHERE without conditions).
    fn sql(&self) -> String {
        let where_ = if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        };
        format!("SELECT {COLUMNS} FROM inspections{where_}")
    }
}

impl SqliteStore {
    /// The inspections a query selects, with its numbered arguments.
    fn select(&self, sql: &str, args: &[Box<dyn ToSql>]) -> Result<Vec<Inspection>> {
        self.read(|c| {
            let mut st = c.prepare(sql)?;
            let rows = st.query_map(params_from_iter(args.iter()), row_to_inspection)?;
            rows.collect()
        })
    }

    /// [`Store::insert_batch`]'s work: media files first (each listed in `written`), then the
    /// rows in one transaction. Files are named before the rows exist; a crash between the two
    /// leaves an orphan file, never a row pointing at nothing.
    fn insert_batch_writing(
        &self,
        items: &mut [(Inspection, Media)],
        written: &mut Vec<String>,
    ) -> Result<Vec<i64>> {
        let mut paths: Vec<[Option<String>; 3]> = Vec::with_capacity(items.len());
        for (insp, media) in items.iter() {
            let day = chrono::DateTime::from_timestamp_millis(insp.meta.received_ms)
                .unwrap_or_default()
                .format("%Y%m%d");
            let stem = format!(
                "{day}/{}-{}-{:08x}",
                insp.meta.camera,
                insp.meta.received_ms,
                rand_u32()
            );
            let image = match &media.image {
                Some((bytes, ext)) => {
                    let rel = format!("{stem}.{ext}");
                    self.write_media(&rel, bytes)?;
                    written.push(rel.clone());
                    Some(rel)
                }
                None => None,
            };
            let mut png = |bytes: &Option<Vec<u8>>, kind: &str| -> Result<Option<String>> {
                match bytes {
                    Some(bytes) => {
                        let rel = format!("{stem}.{kind}.png");
                        self.write_media(&rel, bytes)?;
                        written.push(rel.clone());
                        Ok(Some(rel))
                    }
                    None => Ok(None),
                }
            };
            let heat = png(&media.heatmap_png, "heatmap")?;
            let recon = png(&media.reconstruction_png, "reconstruction")?;
            paths.push([image, heat, recon]);
        }
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        let mut ids = Vec::with_capacity(items.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO inspections (camera, frame_id, capture_ms, received_ms, track_id, position_m,
                     speed_kmh, r, l, a, a_norm, threshold, verdict, model_name, model_version, provider,
                     crops, image_path, heatmap_path, reconstruction_path, note, partial_slots_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                     ?21, ?22)",
                )
                .map_err(|e| db_err(&self.db_path, e))?;
            let mut totals = tx
                .prepare_cached(
                    "INSERT INTO camera_totals (camera, frames, defects, last_ms, last_id) VALUES (?1, 1, ?2, ?3, ?4)
                     ON CONFLICT (camera) DO UPDATE SET frames = frames + 1, defects = defects + ?2,
                     last_ms = max(coalesce(last_ms, 0), ?3), last_id = ?4",
                )
                .map_err(|e| db_err(&self.db_path, e))?;
            for ((insp, _), [image, heat, recon]) in items.iter_mut().zip(&paths) {
                insert
                    .execute(params![
                        insp.meta.camera,
                        insp.meta.frame_id,
                        insp.meta.capture_ms,
                        insp.meta.received_ms,
                        insp.meta.track_id,
                        insp.meta.position_m,
                        insp.meta.speed_kmh,
                        insp.r,
                        insp.l,
                        insp.a,
                        insp.a_norm,
                        insp.threshold,
                        insp.verdict.as_str(),
                        insp.model_name,
                        insp.model_version,
                        insp.provider,
                        insp.crops_json,
                        image,
                        heat,
                        recon,
                        insp.note,
                        insp.partial_slots_json,
                    ])
                    .map_err(|e| db_err(&self.db_path, e))?;
                let id = tx.last_insert_rowid();
                totals
                    .execute(params![
                        insp.meta.camera,
                        (insp.verdict == Verdict::Defect) as i64,
                        insp.meta.received_ms,
                        id
                    ])
                    .map_err(|e| db_err(&self.db_path, e))?;
                insp.id = id;
                insp.has_image = image.is_some();
                insp.has_heatmap = heat.is_some();
                insp.has_reconstruction = recon.is_some();
                ids.push(id);
            }
        }
        tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        Ok(ids)
    }

    /// Opens (creating when needed) `<dir>/railscope.db` and `<dir>/media/`, and migrates.
    pub fn open(dir: &Path, synchronous: &str) -> Result<Self> {
        std::fs::create_dir_all(dir.join("media"))
            .map_err(|e| Error::io(format!("creating storage folder {}", dir.display()), e))?;
        let db_path = dir.join("railscope.db");
        let store = Self {
            writer: Mutex::new(Connection::open(&db_path).map_err(|e| db_err(&db_path, e))?),
            readers: Mutex::new(Vec::new()),
            media_dir: dir.join("media"),
            synchronous: synchronous.to_string(),
            db_path,
        };
        {
            let mut w = store.lock_writer();
            store.configure(&w)?;
            migrate(&mut w).map_err(|e| db_err(&store.db_path, e))?;
        }
        Ok(store)
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    fn configure(&self, c: &Connection) -> Result<()> {
        c.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            self.synchronous
        ))
        .map_err(|e| db_err(&self.db_path, e))
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on an idle read connection (opening one when none is idle).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.db_path).map_err(|e| db_err(&self.db_path, e))?;
                self.configure(&c)?;
                c
            }
        };
        let out = f(&conn).map_err(|e| db_err(&self.db_path, e));
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
        out
    }

    fn media_path(&self, rel: &str) -> PathBuf {
        self.media_dir.join(rel)
    }

    fn write_media(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let p = self.media_path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| {
            // a partly written file is no use to anyone
            let _ = std::fs::remove_file(&p);
            io_err(format!("writing {}", p.display()), e)
        })
    }

    fn media_of(&self, id: i64, column: &str) -> Result<Option<String>> {
        let sql = format!("SELECT {column} FROM inspections WHERE id = ?1");
        Ok(self
            .read(|c| {
                c.query_row(&sql, [id], |r| r.get::<_, Option<String>>(0))
                    .optional()
            })?
            .flatten())
    }

    fn read_media(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.media_path(rel)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading media {rel}"), e)),
        }
    }
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    let full = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull);
    let msg = format!("database {}: {e}", path.display());
    if full {
        Error::StorageFull(msg)
    } else {
        Error::Other(msg)
    }
}

/// ENOSPC or EDQUOT: the file system (or the user's quota) is full.
fn io_err(context: String, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(28) | Some(122) => Error::StorageFull(format!("{context}: {e}")),
        _ => Error::io(context, e),
    }
}

fn migrate(c: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (k, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = c.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", k + 1))?;
        tx.commit()?;
        tracing::info!(version = k + 1, "database migrated");
    }
    Ok(())
}

fn content_type(ext: &str) -> &'static str {
    match ext {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "bmp" => "image/bmp",
        "tif" => "image/tiff",
        _ => "application/octet-stream",
    }
}

/// The schema's CHECK constraint admits only the two verdicts.
fn stored_verdict(s: &str) -> Verdict {
    Verdict::parse(s).unwrap_or(Verdict::Normal)
}

fn row_to_inspection(r: &rusqlite::Row<'_>) -> rusqlite::Result<Inspection> {
    let verdict: String = r.get(13)?;
    let review_state: Option<String> = r.get(20)?;
    let review = match review_state.as_deref().and_then(ReviewState::parse) {
        Some(state) => Some(Review {
            state,
            note: r.get::<_, Option<String>>(21)?.unwrap_or_default(),
            reviewer: r.get::<_, Option<String>>(22)?.unwrap_or_default(),
            reviewed_ms: r.get::<_, Option<i64>>(23)?.unwrap_or_default(),
            defect: DefectDetails {
                defect_type: r.get(27)?,
                severity: r.get(28)?,
                rail_side: r
                    .get::<_, Option<String>>(29)?
                    .as_deref()
                    .and_then(RailSide::parse),
                sleeper: r.get(30)?,
            },
            lifecycle: match r
                .get::<_, Option<String>>(31)?
                .as_deref()
                .and_then(LifecycleState::parse)
            {
                Some(state) => Some(LifecycleEntry {
                    state,
                    by: r.get::<_, Option<String>>(32)?.unwrap_or_default(),
                    at_ms: r.get::<_, Option<i64>>(33)?.unwrap_or_default(),
                    note: r.get::<_, Option<String>>(34)?.unwrap_or_default(),
                }),
                None => None,
            },
        }),
        None => None,
    };
    Ok(Inspection {
        id: r.get(0)?,
        meta: FrameMeta {
            camera: r.get(1)?,
            frame_id: r.get(2)?,
            capture_ms: r.get(3)?,
            received_ms: r.get(4)?,
            track_id: r.get(5)?,
            position_m: r.get(6)?,
            speed_kmh: r.get(7)?,
        },
        r: r.get(8)?,
        l: r.get(9)?,
        a: r.get(10)?,
        a_norm: r.get(11)?,
        threshold: r.get(12)?,
        verdict: stored_verdict(&verdict),
        model_name: r.get(14)?,
        model_version: r.get(15)?,
        provider: r.get(16)?,
        crops_json: r.get(17)?,
        has_image: r.get(18)?,
        has_heatmap: r.get(19)?,
        has_reconstruction: r.get(24)?,
        note: r.get(25)?,
        partial_slots_json: r
            .get::<_, Option<String>>(26)?
            .unwrap_or_else(|| "[]".into()),
        review,
    })
}

impl Store for SqliteStore {
    fn insert_batch(&self, items: &mut [(Inspection, Media)]) -> Result<Vec<i64>> {
        let mut written = Vec::new();
        let result = self.insert_batch_writing(items, &mut written);
        if result.is_err() {
            // The rows are not there, so neither should their files be (a full disk would
            // otherwise fill up with orphans). Only a crash between files and commit leaves one.
            for rel in written {
                let _ = std::fs::remove_file(self.media_path(&rel));
            }
        }
        result
    }

    fn get(&self, id: i64) -> Result<Option<Inspection>> {
        let sql = format!("SELECT {COLUMNS} FROM inspections WHERE id = ?1");
        self.read(|c| c.query_row(&sql, [id], row_to_inspection).optional())
    }

    fn find_frame(
        &self,
        camera: &str,
        frame_id: &str,
        since_ms: i64,
    ) -> Result<Option<Inspection>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM inspections WHERE camera = ?1 AND frame_id = ?2 AND received_ms >= ?3
             ORDER BY id LIMIT 1"
        );
        self.read(|c| {
            c.query_row(
                &sql,
                rusqlite::params![camera, frame_id, since_ms],
                row_to_inspection,
            )
            .optional()
        })
    }

    fn list(&self, f: &InspectionFilter) -> Result<Vec<Inspection>> {
        let mut w = Where::default();
        if let Some(c) = &f.camera {
            w.push("camera = ?", c.clone());
        }
        if let Some(v) = f.verdict {
            w.push("verdict = ?", v.as_str());
        }
        if let Some(s) = f.since_ms {
            w.push("received_ms >= ?", s);
        }
        if let Some(u) = f.until_ms {
            w.push("received_ms < ?", u);
        }
        w.track_range(&f.track_id, f.min_position_m, f.max_position_m);
        if let Some(m) = f.min_score {
            w.push("a_norm IS NOT NULL AND a_norm >= ?", m);
        }
        if let Some(b) = f.before_id {
            w.push("id < ?", b);
        }
        match f.review {
            Some(ReviewFilter::Unreviewed) => w.clauses.push("review_state IS NULL".into()),
            Some(ReviewFilter::Reviewed) => w.clauses.push("review_state IS NOT NULL".into()),
            Some(ReviewFilter::State(s)) => w.push("review_state = ?", s.as_str()),
            None => {}
        }
        self.select(
            &format!("{} ORDER BY id DESC LIMIT {}", w.sql(), f.limit.max(1)),
            &w.args,
        )
    }

    fn review(&self, id: i64, review: &Review) -> Result<Option<Inspection>> {
        {
            let d = &review.defect;
            let side = d.rail_side.map(RailSide::as_str);
            let mut w = self.lock_writer();
            let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
            let n = tx
                .execute(
                    "UPDATE inspections SET review_state = ?2, review_note = ?3, reviewer = ?4, reviewed_ms = ?5,
                     defect_type = ?6, severity = ?7, rail_side = ?8, sleeper = ?9 WHERE id = ?1",
                    params![id, review.state.as_str(), review.note, review.reviewer, review.reviewed_ms,
                        d.defect_type, d.severity, side, d.sleeper],
                )
                .map_err(|e| db_err(&self.db_path, e))?;
            if n == 0 {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO reviews (inspection_id, state, note, reviewer, created_ms, defect_type, severity,
                 rail_side, sleeper) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![id, review.state.as_str(), review.note, review.reviewer, review.reviewed_ms,
                    d.defect_type, d.severity, side, d.sleeper],
            )
            .map_err(|e| db_err(&self.db_path, e))?;
            let review_id = tx.last_insert_rowid();
            // A confirmed defect's repair starts open (a re-confirmation keeps where it stands).
            if review.state == ReviewState::Confirmed {
                let opened = tx
                    .execute(
                        "UPDATE inspections SET lifecycle_state = 'open', lifecycle_by = ?2, lifecycle_ms = ?3,
                         lifecycle_note = '' WHERE id = ?1 AND lifecycle_state IS NULL",
                        params![id, review.reviewer, review.reviewed_ms],
                    )
                    .map_err(|e| db_err(&self.db_path, e))?;
                if opened == 1 {
                    tx.execute(
                        "INSERT INTO defect_lifecycle (inspection_id, after_review_id, from_state, to_state,
                         actor, note, created_ms) VALUES (?1, ?4, NULL, 'open', ?2, '', ?3)",
                        params![id, review.reviewer, review.reviewed_ms, review_id],
                    )
                    .map_err(|e| db_err(&self.db_path, e))?;
                }
            }
            tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        }
        self.get(id)
    }

    fn set_lifecycle(&self, id: i64, entry: &LifecycleEntry) -> Result<LifecycleOutcome> {
        {
            let mut w = self.lock_writer();
            let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
            let found: Option<(Option<String>, Option<String>)> = tx
                .query_row(
                    "SELECT review_state, lifecycle_state FROM inspections WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| db_err(&self.db_path, e))?;
            let Some((review_state, current)) = found else {
                return Ok(LifecycleOutcome::NoInspection);
            };
            if review_state.as_deref() != Some("confirmed") {
                return Ok(LifecycleOutcome::NotConfirmed);
            }
            let current = current
                .as_deref()
                .and_then(LifecycleState::parse)
                .unwrap_or(LifecycleState::Open);
            if !current.can_become(entry.state) {
                return Ok(LifecycleOutcome::Refused(current));
            }
            tx.execute(
                "UPDATE inspections SET lifecycle_state = ?2, lifecycle_by = ?3, lifecycle_ms = ?4,
                 lifecycle_note = ?5 WHERE id = ?1",
                params![id, entry.state.as_str(), entry.by, entry.at_ms, entry.note],
            )
            .map_err(|e| db_err(&self.db_path, e))?;
            tx.execute(
                "INSERT INTO defect_lifecycle (inspection_id, after_review_id, from_state, to_state, actor,
                 note, created_ms) VALUES (?1, (SELECT max(id) FROM reviews WHERE inspection_id = ?1),
                 ?2, ?3, ?4, ?5, ?6)",
                params![id, current.as_str(), entry.state.as_str(), entry.by, entry.note, entry.at_ms],
            )
            .map_err(|e| db_err(&self.db_path, e))?;
            tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        }
        Ok(match self.get(id)? {
            Some(i) => LifecycleOutcome::Changed(Box::new(i)),
            None => LifecycleOutcome::NoInspection,
        })
    }

    fn history(&self, id: i64) -> Result<Option<Vec<HistoryEntry>>> {
        self.read(|c| {
            let exists: Option<i64> = c
                .query_row("SELECT id FROM inspections WHERE id = ?1", [id], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            // (review id, 0 | 1, row id, entry): each lifecycle change after the review it
            // followed (a confirmation opens the repair), in the order they were written.
            let mut rows: Vec<(i64, u8, i64, HistoryEntry)> = Vec::new();
            let mut st = c.prepare(
                "SELECT id, state, note, reviewer, created_ms, defect_type, severity, rail_side, sleeper
                 FROM reviews WHERE inspection_id = ?1 ORDER BY id",
            )?;
            let reviews = st.query_map([id], |r| {
                let state: String = r.get(1)?;
                let side: Option<String> = r.get(7)?;
                let review = Review {
                    state: ReviewState::Confirmed,
                    note: r.get(2)?,
                    reviewer: r.get(3)?,
                    reviewed_ms: r.get(4)?,
                    defect: DefectDetails {
                        defect_type: r.get(5)?,
                        severity: r.get(6)?,
                        rail_side: side.as_deref().and_then(RailSide::parse),
                        sleeper: r.get(8)?,
                    },
                    lifecycle: None,
                };
                Ok((
                    r.get::<_, i64>(0)?,
                    ReviewState::parse(&state).map(|state| Review { state, ..review }),
                ))
            })?;
            for row in reviews {
                let (rid, review) = row?;
                if let Some(review) = review {
                    rows.push((rid, 0, rid, HistoryEntry::Review(review)));
                }
            }
            let mut st = c.prepare(
                "SELECT id, from_state, to_state, actor, note, created_ms, coalesce(after_review_id, 0)
                 FROM defect_lifecycle WHERE inspection_id = ?1 ORDER BY id",
            )?;
            let changes = st.query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?;
            for row in changes {
                let (lid, from, to, by, note, at_ms, after) = row?;
                if let Some(state) = LifecycleState::parse(&to) {
                    rows.push((
                        after,
                        1,
                        lid,
                        HistoryEntry::Lifecycle {
                            from: from.as_deref().and_then(LifecycleState::parse),
                            entry: LifecycleEntry {
                                state,
                                by,
                                at_ms,
                                note,
                            },
                        },
                    ));
                }
            }
            rows.sort_by_key(|(after, table, rid, _)| (*after, *table, *rid));
            Ok(Some(rows.into_iter().map(|(_, _, _, e)| e).collect()))
        })
    }

    fn defects(&self, f: &DefectFilter) -> Result<Vec<Inspection>> {
        let mut w = Where::default();
        w.clauses.push("review_state = 'confirmed'".into());
        if let Some(c) = &f.camera {
            w.push("camera = ?", c.clone());
        }
        w.track_range(&f.track_id, f.min_position_m, f.max_position_m);
        // The time a frame was taken: the camera's capture time, else when it arrived.
        if let Some(s) = f.since_ms {
            w.push("coalesce(capture_ms, received_ms) >= ?", s);
        }
        if let Some(u) = f.until_ms {
            w.push("coalesce(capture_ms, received_ms) < ?", u);
        }
        if let Some(t) = &f.defect_type {
            w.push("defect_type = ?", t.clone());
        }
        w.any_of("severity", f.severities.iter().cloned());
        w.any_of(
            "coalesce(lifecycle_state, 'open')",
            f.states.iter().map(|s| s.as_str()),
        );
        self.select(
            &format!(
                "{} ORDER BY track_id IS NULL, track_id, position_m IS NULL, position_m, id LIMIT {}",
                w.sql(),
                f.limit.max(1) + 1
            ),
            &w.args,
        )
    }

    fn image(&self, id: i64) -> Result<Option<(Vec<u8>, &'static str)>> {
        let Some(rel) = self.media_of(id, "image_path")? else {
            return Ok(None);
        };
        let ext = rel.rsplit('.').next().unwrap_or("");
        Ok(self.read_media(&rel)?.map(|b| (b, content_type(ext))))
    }

    fn heatmap(&self, id: i64) -> Result<Option<Vec<u8>>> {
        match self.media_of(id, "heatmap_path")? {
            Some(rel) => self.read_media(&rel),
            None => Ok(None),
        }
    }

    fn reconstruction(&self, id: i64) -> Result<Option<Vec<u8>>> {
        match self.media_of(id, "reconstruction_path")? {
            Some(rel) => self.read_media(&rel),
            None => Ok(None),
        }
    }

    fn camera_totals(&self) -> Result<Vec<CameraTotals>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT camera, frames, defects, last_ms, last_id FROM camera_totals ORDER BY camera",
            )?;
            let rows = st.query_map([], |r| {
                Ok(CameraTotals {
                    camera: r.get(0)?,
                    frames: r.get(1)?,
                    defects: r.get(2)?,
                    last_ms: r.get(3)?,
                    last_id: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    fn trend(
        &self,
        camera: Option<&str>,
        since_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<TrendPoint>> {
        let bucket_ms = bucket_ms.max(1000);
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT camera, (received_ms / ?1) * ?1 AS b, count(*), sum(verdict = 'defect')
                 FROM inspections WHERE received_ms >= ?2 AND (?3 IS NULL OR camera = ?3)
                 GROUP BY camera, b ORDER BY camera, b",
            )?;
            let rows = st.query_map(params![bucket_ms, since_ms, camera], |r| {
                Ok(TrendPoint {
                    camera: r.get(0)?,
                    bucket_start_ms: r.get(1)?,
                    frames: r.get(2)?,
                    defects: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    fn positions(&self, camera: Option<&str>, bucket_m: f64) -> Result<Vec<PositionBucket>> {
        let bucket_m = if bucket_m.is_finite() && bucket_m > 0.0 {
            bucket_m
        } else {
            100.0
        };
        self.read(|c| {
            let mut st = c.prepare(
                // floor() without SQLite's optional math functions.
                "SELECT track_id, CAST(position_m / ?1 AS INTEGER)
                          - (position_m < 0 AND position_m / ?1 != CAST(position_m / ?1 AS INTEGER)) AS b, count(*),
                        sum(verdict = 'defect'), sum(review_state = 'confirmed')
                 FROM inspections WHERE position_m IS NOT NULL AND (?2 IS NULL OR camera = ?2)
                 GROUP BY track_id, b ORDER BY track_id, b",
            )?;
            let rows = st.query_map(params![bucket_m, camera], |r| {
                Ok(PositionBucket {
                    track_id: r.get(0)?,
                    position_m: r.get::<_, i64>(1)? as f64 * bucket_m,
                    frames: r.get(2)?,
                    defects: r.get(3)?,
                    confirmed: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                })
            })?;
            rows.collect()
        })
    }

    fn recent_scores(&self, camera: Option<&str>, limit: usize) -> Result<Vec<(f64, Verdict)>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT a_norm, verdict FROM inspections
                 WHERE a_norm IS NOT NULL AND (?1 IS NULL OR camera = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![camera, limit as i64], |r| {
                Ok((r.get(0)?, stored_verdict(&r.get::<_, String>(1)?)))
            })?;
            rows.collect()
        })
    }

    fn reviewed_scores(
        &self,
        camera: &str,
        model_name: &str,
        model_version: &str,
    ) -> Result<Vec<ReviewedScore>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, a, review_state FROM inspections
                 WHERE camera = ?1 AND model_name = ?2 AND model_version = ?3
                   AND a IS NOT NULL AND review_state IS NOT NULL ORDER BY id",
            )?;
            let rows = st.query_map(params![camera, model_name, model_version], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?))
            })?;
            rows.filter_map(|r| match r {
                Ok((id, a, s)) => {
                    ReviewState::parse(&s).map(|state| Ok(ReviewedScore { id, a, state }))
                }
                Err(e) => Some(Err(e)),
            })
            .collect()
        })
    }

    fn applied_threshold(
        &self,
        camera: &str,
        model_name: &str,
        model_sha256: &str,
    ) -> Result<Option<AppliedThreshold>> {
        self.read(|c| {
            c.query_row(
                "SELECT min, max, threshold, applied_ms, applied_by, audit_id FROM applied_thresholds
                 WHERE camera = ?1 AND model_name = ?2 AND model_sha256 = ?3",
                params![camera, model_name, model_sha256],
                |r| {
                    Ok(AppliedThreshold {
                        camera: camera.to_string(),
                        model_name: model_name.to_string(),
                        model_sha256: model_sha256.to_string(),
                        min: r.get(0)?,
                        max: r.get(1)?,
                        threshold: r.get(2)?,
                        applied_ms: r.get(3)?,
                        applied_by: r.get(4)?,
                        audit_id: r.get(5)?,
                    })
                },
            )
            .optional()
        })
    }

    fn record_calibration_change(
        &self,
        change: &CalibrationChange,
        update: &AppliedUpdate,
    ) -> Result<i64> {
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        tx.execute(
            "INSERT INTO calibration_audit (created_ms, camera, actor, action, old_threshold,
             new_threshold, old_source, new_source, min, max, model_name, model_version,
             model_sha256, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                change.at_ms,
                change.camera,
                change.actor,
                change.action,
                change.old_threshold,
                change.new_threshold,
                change.old_source,
                change.new_source,
                change.min,
                change.max,
                change.model_name,
                change.model_version,
                change.model_sha256,
                change.reason,
            ],
        )
        .map_err(|e| db_err(&self.db_path, e))?;
        let audit_id = tx.last_insert_rowid();
        match update {
            AppliedUpdate::Unchanged => {}
            AppliedUpdate::Set(a) => {
                tx.execute(
                    "INSERT INTO applied_thresholds (camera, model_name, model_sha256, min, max,
                     threshold, applied_ms, applied_by, audit_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (camera, model_name, model_sha256) DO UPDATE SET min = ?4, max = ?5,
                     threshold = ?6, applied_ms = ?7, applied_by = ?8, audit_id = ?9",
                    params![
                        a.camera,
                        a.model_name,
                        a.model_sha256,
                        a.min,
                        a.max,
                        a.threshold,
                        a.applied_ms,
                        a.applied_by,
                        audit_id
                    ],
                )
                .map_err(|e| db_err(&self.db_path, e))?;
            }
            AppliedUpdate::Clear => {
                tx.execute(
                    "DELETE FROM applied_thresholds
                     WHERE camera = ?1 AND model_name = ?2 AND model_sha256 = ?3",
                    params![change.camera, change.model_name, change.model_sha256],
                )
                .map_err(|e| db_err(&self.db_path, e))?;
            }
        }
        tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        Ok(audit_id)
    }

    fn calibration_audit(
        &self,
        camera: Option<&str>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<CalibrationChange>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM calibration_audit
             WHERE (?1 IS NULL OR camera = ?1) AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
        );
        self.read(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(
                params![camera, before_id, limit.max(1) as i64],
                row_to_change,
            )?;
            rows.collect()
        })
    }

    fn expire_normal_images(&self, before_ms: i64) -> Result<usize> {
        type Doomed = (i64, [Option<String>; 3]);
        let doomed: Vec<Doomed> = self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, image_path, heatmap_path, reconstruction_path FROM inspections
                 WHERE verdict = 'normal' AND review_state IS NULL AND received_ms < ?1
                   AND (image_path IS NOT NULL OR heatmap_path IS NOT NULL
                        OR reconstruction_path IS NOT NULL) LIMIT 10000",
            )?;
            let rows = st.query_map([before_ms], |r| {
                Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?]))
            })?;
            rows.collect()
        })?;
        if doomed.is_empty() {
            return Ok(0);
        }
        {
            let mut w = self.lock_writer();
            let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
            for (id, _) in &doomed {
                tx.execute(
                    "UPDATE inspections SET image_path = NULL, heatmap_path = NULL,
                     reconstruction_path = NULL WHERE id = ?1",
                    [id],
                )
                .map_err(|e| db_err(&self.db_path, e))?;
            }
            tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        }
        // Rows first, files second: a crash in between leaves files nobody points at.
        for rel in doomed.iter().flat_map(|(_, files)| files).flatten() {
            let _ = std::fs::remove_file(self.media_path(rel));
        }
        Ok(doomed.len())
    }

    fn check_writable(&self) -> Result<()> {
        let w = self.lock_writer();
        w.execute(
            "INSERT INTO health (k, v) VALUES ('ready', ?1) ON CONFLICT (k) DO UPDATE SET v = ?1",
            [chrono::Utc::now().timestamp_millis()],
        )
        .map_err(|e| db_err(&self.db_path, e))?;
        let probe = self.media_dir.join(".write-probe");
        std::fs::write(&probe, b"ok")
            .map_err(|e| Error::io(format!("media folder {}", self.media_dir.display()), e))?;
        Ok(())
    }
}

/// Media file names only need to be unlikely to collide within one millisecond and camera.
fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    n.wrapping_mul(0x9E37_79B9) ^ std::process::id()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        std::fs::create_dir_all(s.media_path("")).unwrap();
        std::fs::write(s.media_path("19700103"), b"in the way").unwrap();
        let mut batch = vec![
            (sample("cam-01", Verdict::Defect, 1_000_000), media()),
            (sample("cam-02", Verdict::Defect, day2 + 5), media()),
        ];
        let err = s.insert_batch(&mut batch).unwrap_err();
        assert!(!matches!(err, Error::StorageFull(_)), "{err}");
        assert!(s.list(&InspectionFilter::default()).unwrap().is_empty());
        let day1 = s.media_path("19700101");
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
}
