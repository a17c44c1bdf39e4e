//! Durable results: every answered verdict, inspectors' reviews and the kept images.
//!
//! [`Store`] is what the service needs from storage; [`SqliteStore`] implements it with one
//! embedded SQLite file in WAL mode plus a media folder. A PostgreSQL backend would implement
//! the same trait. Rows are written in one transaction per engine batch *before* the requests
//! are answered, so a verdict a camera has seen is never lost (a `kill -9` after the answer
//! loses nothing; with `synchronous = full` neither does a power cut).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::pipeline::scoring::Verdict;

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
    /// A review written by a bulk action (`POST /v1/review-batches`).
    BatchReview {
        batch_id: i64,
        review: Review,
    },
    /// A bulk action undone: the review state the inspection had before it was restored
    /// (`restored: None`: unreviewed again). `by` and `at_ms` say who undid it and when.
    Undo {
        batch_id: i64,
        by: String,
        at_ms: i64,
        restored: Option<Review>,
    },
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

/// The order of the inspection list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Newest first (id descending).
    #[default]
    Newest,
    /// Highest A_norm first, ties by id descending; inspections without an A_norm last (by id
    /// descending).
    Score,
}

/// Where the next page of a list starts: after this item of its order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cursor {
    /// Newest first: ids below this one.
    Id(i64),
    /// By score: after the item with this A_norm (`None`: no A_norm) and id.
    Score { score: Option<f64>, id: i64 },
}

impl Cursor {
    /// The cursor that continues `order` after `i`.
    pub fn after(order: ListOrder, i: &Inspection) -> Cursor {
        match order {
            ListOrder::Newest => Cursor::Id(i.id),
            ListOrder::Score => Cursor::Score {
                score: i.a_norm,
                id: i.id,
            },
        }
    }
}

/// Which inspections are listed, counted or reviewed in bulk: the conditions
/// ([`InspectionFilter::camera`] … [`InspectionFilter::max_id`]) are one code path for the three,
/// so a list's `total` and the size of a bulk review always agree; `before_id`, `after`,
/// `order` and `limit` only page the list.
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
    /// Only ids at or below this (what a client counted before it asked for a bulk review).
    pub max_id: Option<i64>,
    /// Paging: only ids below this (any order; not counted in the total).
    pub before_id: Option<i64>,
    /// Paging: only items after this one of `order`.
    pub after: Option<Cursor>,
    pub order: ListOrder,
    pub limit: usize,
}

/// What a bulk review applies to.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These inspections (each must exist).
    Ids(Vec<i64>),
    /// Every inspection the filter's conditions match (its paging is ignored).
    Filter(InspectionFilter),
}

/// One review applied to many inspections in one transaction (`POST /v1/review-batches`).
#[derive(Debug, Clone)]
pub struct BulkReview {
    pub selection: Selection,
    /// The review every selected inspection gets (reviewer, time, note, defect details).
    pub review: Review,
    /// Refused (nothing written) unless exactly this many are selected, when given.
    pub expected_count: Option<i64>,
    /// Refused (nothing written) when more than this many are selected.
    pub max: usize,
    /// What was asked for, as JSON (kept with the batch).
    pub selection_json: String,
}

/// How an inspection of a bulk action fared when the action was undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoResult {
    /// Back to the review state it had before the bulk action.
    Restored,
    /// Reviewed again since the bulk action: left as it is.
    Skipped,
}

impl UndoResult {
    pub fn as_str(self) -> &'static str {
        match self {
            UndoResult::Restored => "restored",
            UndoResult::Skipped => "skipped",
        }
    }
}

/// One inspection of a bulk action.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    pub inspection_id: i64,
    pub camera: String,
    /// Its review state before the bulk action (`None`: unreviewed).
    pub previous: Option<ReviewState>,
    /// What undoing the action did to it (`None` while not undone).
    pub undo: Option<UndoResult>,
}

/// A bulk review action: the review it wrote, what it selected, every inspection it reviewed,
/// and whether (by whom, when) it was undone.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewBatch {
    pub id: i64,
    pub review: Review,
    pub selection_json: String,
    pub items: Vec<BatchItem>,
    /// `(by, at_ms)` once undone.
    pub undone: Option<(String, i64)>,
}

/// What a bulk review found.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkOutcome {
    Applied(Box<ReviewBatch>),
    /// Nothing selected.
    Empty,
    /// More than the maximum selected (`matched` of them); nothing written.
    TooMany {
        matched: i64,
    },
    /// Not the `expected_count`; nothing written.
    CountChanged {
        expected: i64,
        matched: i64,
    },
    /// Ids that are no inspection; nothing written.
    Unknown(Vec<i64>),
}

/// What undoing a bulk review found.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoOutcome {
    Undone(ReviewBatch),
    NoBatch,
    /// Undone before (the batch says by whom and when); nothing written.
    AlreadyUndone(ReviewBatch),
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

/// What one camera did since a time (the start-of-shift summary, `GET /v1/summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CameraSummary {
    pub camera: String,
    /// Frames and defects received since `since`.
    pub frames: i64,
    pub defects: i64,
    /// Unreviewed defects: all of them, and those received since `since`.
    pub unreviewed: i64,
    pub unreviewed_since: i64,
    /// Frames and defects received since the baseline's start (the camera's longer-run rate).
    pub baseline_frames: i64,
    pub baseline_defects: i64,
    /// Confirmed defects received since `since`, by severity (`unspecified` without one).
    pub confirmed_by_severity: Vec<(String, i64)>,
    /// The track sections seen since `since`.
    pub tracks: Vec<TrackSeen>,
}

/// Frames on one track with a position, and the positions' range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackSeen {
    pub track_id: String,
    pub frames: i64,
    pub min_position_m: Option<f64>,
    pub max_position_m: Option<f64>,
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

/// A person who logs in to the dashboard with a name and password (`railscope accounts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: String,
    /// `inspector` or `admin`.
    pub role: String,
    /// argon2id, PHC string format (`$argon2id$v=19$m=…`); never the password.
    pub password_hash: String,
    pub created_ms: i64,
    /// Set: the account can no longer log in and its sessions have ended.
    pub disabled_ms: Option<i64>,
}

/// A dashboard session as stored: keyed by the SHA-256 (hex) of its id, never the id itself.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub key_sha256: String,
    /// The account name, or the role's name for a session begun with a config token.
    pub who: String,
    /// `inspector` or `admin` (for an account, its role as it stands now when read back).
    pub role: String,
    pub started_ms: i64,
    pub expires_ms: i64,
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
    /// One page of [`Store::list`] and the number of inspections the filter matches (its
    /// paging aside), read together so they agree.
    fn list_counted(&self, filter: &InspectionFilter) -> Result<(Vec<Inspection>, i64)>;
    /// Records a review (kept in the history for recalibration) and returns the inspection.
    fn review(&self, id: i64, review: &Review) -> Result<Option<Inspection>>;
    /// Reviews every selected inspection in one transaction, each review kept in the history
    /// with the batch's id, or nothing (the outcome says why).
    fn review_bulk(&self, bulk: &BulkReview) -> Result<BulkOutcome>;
    /// Restores every inspection of a bulk review to the review state it had before (a new
    /// history entry each; inspections reviewed again since are skipped), once.
    fn undo_review_batch(&self, batch_id: i64, by: &str, at_ms: i64) -> Result<UndoOutcome>;
    fn review_batch(&self, batch_id: i64) -> Result<Option<ReviewBatch>>;
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
    /// Per camera (with any frame since `baseline_since_ms` or any unreviewed defect): what
    /// arrived since `since_ms` and since `baseline_since_ms` (arrival time), ordered by camera.
    fn summary(&self, since_ms: i64, baseline_since_ms: i64) -> Result<Vec<CameraSummary>>;
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

    /// Adds an account; `false` (nothing written) when the name is taken.
    fn create_account(&self, account: &Account) -> Result<bool>;
    fn account(&self, name: &str) -> Result<Option<Account>>;
    /// Every account, by name.
    fn accounts(&self) -> Result<Vec<Account>>;
    /// Disables an account and ends its sessions, in one transaction; `false`: no such account
    /// (an account already disabled keeps its first `disabled_ms`).
    fn disable_account(&self, name: &str, at_ms: i64) -> Result<bool>;
    /// Replaces an account's password hash and ends its sessions; `false`: no such account.
    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    /// Stores a new session and deletes the expired ones (as of `session.started_ms`).
    fn insert_session(&self, session: &StoredSession) -> Result<()>;
    /// The session with this key if it has not expired at `now_ms` and, when it belongs to an
    /// account, that account is not disabled (its role as it stands now).
    fn session(&self, key_sha256: &str, now_ms: i64) -> Result<Option<StoredSession>>;
    fn delete_session(&self, key_sha256: &str) -> Result<()>;
    /// Deletes sessions expired at `now_ms`; returns how many.
    fn purge_sessions(&self, now_ms: i64) -> Result<usize>;
}

mod media;
mod migrations;
mod sqlite;
#[cfg(test)]
mod tests;

pub use sqlite::SqliteStore;
