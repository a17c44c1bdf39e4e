//! [`SqliteStore`]: the [`Store`] on one embedded SQLite file in WAL mode (one writer, a few
//! pooled readers) and a media folder ([`super::media`]); the schema is [`super::migrations`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql};

use super::media::{content_type, rand_u32, MediaDir};
use super::migrations::migrate;
use super::*;
use crate::error::{Error, Result};
use crate::pipeline::scoring::Verdict;

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
    pub(super) media: MediaDir,
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

    /// ` WHERE …` (empty without conditions).
    fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// `SELECT … FROM inspections WHERE …` (no WHERE without conditions).
    fn sql(&self) -> String {
        format!("SELECT {COLUMNS} FROM inspections{}", self.where_clause())
    }

    /// The conditions of an inspection filter, its paging aside: the one code path of the
    /// list, its total and bulk review.
    fn filter(f: &InspectionFilter) -> Where {
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
        if let Some(m) = f.max_id {
            w.push("id <= ?", m);
        }
        match f.review {
            Some(ReviewFilter::Unreviewed) => w.clauses.push("review_state IS NULL".into()),
            Some(ReviewFilter::Reviewed) => w.clauses.push("review_state IS NOT NULL".into()),
            Some(ReviewFilter::State(s)) => w.push("review_state = ?", s.as_str()),
            None => {}
        }
        w
    }

    /// [`Where::filter`] and the page: `before_id`, the cursor, the order and the limit.
    fn page(f: &InspectionFilter) -> (Where, String) {
        let mut w = Where::filter(f);
        if let Some(b) = f.before_id {
            w.push("id < ?", b);
        }
        match f.after {
            None => {}
            Some(Cursor::Id(id)) => w.push("id < ?", id),
            // NULL scores come last (SQLite sorts NULL below every number, so last when
            // descending), by id.
            Some(Cursor::Score { score: None, id }) => w.push("(a_norm IS NULL AND id < ?)", id),
            Some(Cursor::Score { score: Some(s), id }) => {
                w.args.push(Box::new(s));
                let s_arg = w.args.len();
                w.args.push(Box::new(id));
                let id_arg = w.args.len();
                w.clauses.push(format!(
                    "(a_norm < ?{s_arg} OR (a_norm = ?{s_arg} AND id < ?{id_arg}) OR a_norm IS NULL)"
                ));
            }
        }
        let order = match f.order {
            ListOrder::Newest => "id DESC",
            ListOrder::Score => "a_norm DESC, id DESC",
        };
        (w, format!(" ORDER BY {order} LIMIT {}", f.limit.max(1)))
    }
}

/// An inspection's review columns as they stand, to keep with a bulk action (for its undo).
struct Prior {
    id: i64,
    state: Option<String>,
    note: Option<String>,
    reviewer: Option<String>,
    reviewed_ms: Option<i64>,
    defect_type: Option<String>,
    severity: Option<String>,
    rail_side: Option<String>,
    sleeper: Option<i64>,
}

const PRIOR_COLUMNS: &str = "id, review_state, review_note, reviewer, reviewed_ms, \
    defect_type, severity, rail_side, sleeper";

fn row_to_prior(r: &rusqlite::Row<'_>) -> rusqlite::Result<Prior> {
    Ok(Prior {
        id: r.get(0)?,
        state: r.get(1)?,
        note: r.get(2)?,
        reviewer: r.get(3)?,
        reviewed_ms: r.get(4)?,
        defect_type: r.get(5)?,
        severity: r.get(6)?,
        rail_side: r.get(7)?,
        sleeper: r.get(8)?,
    })
}

/// Writes a review of inspection `id` (its columns, a history row naming `batch_id`, and the
/// opening of a confirmed defect's repair) in the caller's transaction; the history row's id,
/// or `None` when there is no such inspection.
fn write_review(
    tx: &rusqlite::Transaction<'_>,
    id: i64,
    review: &Review,
    batch_id: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    let d = &review.defect;
    let side = d.rail_side.map(RailSide::as_str);
    let n = tx.execute(
        "UPDATE inspections SET review_state = ?2, review_note = ?3, reviewer = ?4, reviewed_ms = ?5,
         defect_type = ?6, severity = ?7, rail_side = ?8, sleeper = ?9 WHERE id = ?1",
        params![id, review.state.as_str(), review.note, review.reviewer, review.reviewed_ms,
            d.defect_type, d.severity, side, d.sleeper],
    )?;
    if n == 0 {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO reviews (inspection_id, state, note, reviewer, created_ms, defect_type, severity,
         rail_side, sleeper, batch_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![id, review.state.as_str(), review.note, review.reviewer, review.reviewed_ms,
            d.defect_type, d.severity, side, d.sleeper, batch_id],
    )?;
    let review_id = tx.last_insert_rowid();
    // A confirmed defect's repair starts open (a re-confirmation keeps where it stands).
    if review.state == ReviewState::Confirmed {
        let opened = tx.execute(
            "UPDATE inspections SET lifecycle_state = 'open', lifecycle_by = ?2, lifecycle_ms = ?3,
             lifecycle_note = '' WHERE id = ?1 AND lifecycle_state IS NULL",
            params![id, review.reviewer, review.reviewed_ms],
        )?;
        if opened == 1 {
            tx.execute(
                "INSERT INTO defect_lifecycle (inspection_id, after_review_id, from_state, to_state,
                 actor, note, created_ms) VALUES (?1, ?4, NULL, 'open', ?2, '', ?3)",
                params![id, review.reviewer, review.reviewed_ms, review_id],
            )?;
        }
    }
    Ok(Some(review_id))
}

/// A bulk action with its items, read in the caller's connection or transaction.
fn read_batch(c: &Connection, batch_id: i64) -> rusqlite::Result<Option<ReviewBatch>> {
    let head = c
        .query_row(
            "SELECT created_ms, reviewer, state, note, defect_type, severity, rail_side, sleeper,
             selection, undone_ms, undone_by FROM review_batches WHERE id = ?1",
            [batch_id],
            |r| {
                let state: String = r.get(2)?;
                let side: Option<String> = r.get(6)?;
                let undone_ms: Option<i64> = r.get(9)?;
                let undone_by: Option<String> = r.get(10)?;
                Ok((
                    Review {
                        state: ReviewState::parse(&state).unwrap_or(ReviewState::FalseAlarm),
                        note: r.get(3)?,
                        reviewer: r.get(1)?,
                        reviewed_ms: r.get(0)?,
                        defect: DefectDetails {
                            defect_type: r.get(4)?,
                            severity: r.get(5)?,
                            rail_side: side.as_deref().and_then(RailSide::parse),
                            sleeper: r.get(7)?,
                        },
                        lifecycle: None,
                    },
                    r.get::<_, String>(8)?,
                    undone_ms.map(|ms| (undone_by.unwrap_or_default(), ms)),
                ))
            },
        )
        .optional()?;
    let Some((review, selection_json, undone)) = head else {
        return Ok(None);
    };
    let mut st = c.prepare(
        "SELECT b.inspection_id, i.camera, b.prev_state, b.undo_result
         FROM review_batch_items b JOIN inspections i ON i.id = b.inspection_id
         WHERE b.batch_id = ?1 ORDER BY b.inspection_id DESC",
    )?;
    let items = st
        .query_map([batch_id], |r| {
            let prev: Option<String> = r.get(2)?;
            let undo: Option<String> = r.get(3)?;
            Ok(BatchItem {
                inspection_id: r.get(0)?,
                camera: r.get(1)?,
                previous: prev.as_deref().and_then(ReviewState::parse),
                undo: match undo.as_deref() {
                    Some("restored") => Some(UndoResult::Restored),
                    Some("skipped") => Some(UndoResult::Skipped),
                    _ => None,
                },
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(ReviewBatch {
        id: batch_id,
        review,
        selection_json,
        items,
        undone,
    }))
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
                    self.media.write(&rel, bytes)?;
                    written.push(rel.clone());
                    Some(rel)
                }
                None => None,
            };
            let mut png = |bytes: &Option<Vec<u8>>, kind: &str| -> Result<Option<String>> {
                match bytes {
                    Some(bytes) => {
                        let rel = format!("{stem}.{kind}.png");
                        self.media.write(&rel, bytes)?;
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
    fn media_of(&self, id: i64, column: &str) -> Result<Option<String>> {
        let sql = format!("SELECT {column} FROM inspections WHERE id = ?1");
        Ok(self
            .read(|c| {
                c.query_row(&sql, [id], |r| r.get::<_, Option<String>>(0))
                    .optional()
            })?
            .flatten())
    }

    pub fn open(dir: &Path, synchronous: &str) -> Result<Self> {
        std::fs::create_dir_all(dir.join("media"))
            .map_err(|e| Error::io(format!("creating storage folder {}", dir.display()), e))?;
        let db_path = dir.join("railscope.db");
        let store = Self {
            writer: Mutex::new(Connection::open(&db_path).map_err(|e| db_err(&db_path, e))?),
            readers: Mutex::new(Vec::new()),
            media: MediaDir::new(dir.join("media")),
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
    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
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

fn row_to_account(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: r.get(0)?,
        role: r.get(1)?,
        password_hash: r.get(2)?,
        created_ms: r.get(3)?,
        disabled_ms: r.get(4)?,
    })
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
                let _ = std::fs::remove_file(self.media.path(&rel));
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
        let (w, tail) = Where::page(f);
        self.select(&format!("{}{tail}", w.sql()), &w.args)
    }

    fn list_counted(&self, f: &InspectionFilter) -> Result<(Vec<Inspection>, i64)> {
        let (page, tail) = Where::page(f);
        let count = Where::filter(f);
        self.read(|c| {
            // One read transaction: the page and the total see the same snapshot (WAL).
            let tx = c.unchecked_transaction()?;
            let items = {
                let mut st = tx.prepare(&format!("{}{tail}", page.sql()))?;
                let rows = st.query_map(params_from_iter(page.args.iter()), row_to_inspection)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let total: i64 = tx.query_row(
                &format!("SELECT count(*) FROM inspections{}", count.where_clause()),
                params_from_iter(count.args.iter()),
                |r| r.get(0),
            )?;
            tx.finish()?;
            Ok((items, total))
        })
    }

    fn review(&self, id: i64, review: &Review) -> Result<Option<Inspection>> {
        {
            let mut w = self.lock_writer();
            let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
            let written =
                write_review(&tx, id, review, None).map_err(|e| db_err(&self.db_path, e))?;
            if written.is_none() {
                return Ok(None);
            }
            tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        }
        self.get(id)
    }

    fn review_bulk(&self, b: &BulkReview) -> Result<BulkOutcome> {
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        let outcome = (|| -> rusqlite::Result<BulkOutcome> {
            // What is selected, read in the transaction that reviews it.
            let priors: Vec<Prior> = match &b.selection {
                Selection::Ids(ids) => {
                    let mut ids = ids.clone();
                    ids.sort_unstable();
                    ids.dedup();
                    if ids.len() > b.max {
                        return Ok(BulkOutcome::TooMany {
                            matched: ids.len() as i64,
                        });
                    }
                    let mut sel = Where::default();
                    sel.any_of("id", ids.iter().copied());
                    let mut st = tx.prepare(&format!(
                        "SELECT {PRIOR_COLUMNS} FROM inspections{} ORDER BY id DESC",
                        sel.where_clause()
                    ))?;
                    let found = st
                        .query_map(params_from_iter(sel.args.iter()), row_to_prior)?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    if found.len() < ids.len() {
                        let known: std::collections::HashSet<i64> =
                            found.iter().map(|p| p.id).collect();
                        return Ok(BulkOutcome::Unknown(
                            ids.into_iter().filter(|i| !known.contains(i)).collect(),
                        ));
                    }
                    found
                }
                Selection::Filter(f) => {
                    let sel = Where::filter(f);
                    let mut st = tx.prepare(&format!(
                        "SELECT {PRIOR_COLUMNS} FROM inspections{} ORDER BY id DESC LIMIT {}",
                        sel.where_clause(),
                        b.max + 1
                    ))?;
                    let found = st
                        .query_map(params_from_iter(sel.args.iter()), row_to_prior)?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    if found.len() > b.max {
                        let matched: i64 = tx.query_row(
                            &format!("SELECT count(*) FROM inspections{}", sel.where_clause()),
                            params_from_iter(sel.args.iter()),
                            |r| r.get(0),
                        )?;
                        return Ok(BulkOutcome::TooMany { matched });
                    }
                    found
                }
            };
            if let Some(expected) = b.expected_count {
                if expected != priors.len() as i64 {
                    return Ok(BulkOutcome::CountChanged {
                        expected,
                        matched: priors.len() as i64,
                    });
                }
            }
            if priors.is_empty() {
                return Ok(BulkOutcome::Empty);
            }
            let r = &b.review;
            let d = &r.defect;
            tx.execute(
                "INSERT INTO review_batches (created_ms, reviewer, state, note, defect_type, severity,
                 rail_side, sleeper, selection) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![r.reviewed_ms, r.reviewer, r.state.as_str(), r.note, d.defect_type,
                    d.severity, d.rail_side.map(RailSide::as_str), d.sleeper, b.selection_json],
            )?;
            let batch_id = tx.last_insert_rowid();
            for p in &priors {
                let review_id = write_review(&tx, p.id, r, Some(batch_id))?.unwrap_or_default();
                tx.execute(
                    "INSERT INTO review_batch_items (batch_id, inspection_id, review_id, prev_state,
                     prev_note, prev_reviewer, prev_reviewed_ms, prev_defect_type, prev_severity,
                     prev_rail_side, prev_sleeper) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![batch_id, p.id, review_id, p.state, p.note, p.reviewer, p.reviewed_ms,
                        p.defect_type, p.severity, p.rail_side, p.sleeper],
                )?;
            }
            let batch = read_batch(&tx, batch_id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok(BulkOutcome::Applied(Box::new(batch)))
        })()
        .map_err(|e| db_err(&self.db_path, e))?;
        if matches!(outcome, BulkOutcome::Applied(_)) {
            tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        }
        Ok(outcome)
    }

    fn undo_review_batch(&self, batch_id: i64, by: &str, at_ms: i64) -> Result<UndoOutcome> {
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        let outcome = (|| -> rusqlite::Result<UndoOutcome> {
            let Some(batch) = read_batch(&tx, batch_id)? else {
                return Ok(UndoOutcome::NoBatch);
            };
            if batch.undone.is_some() {
                return Ok(UndoOutcome::AlreadyUndone(batch));
            }
            type Item = (i64, i64, Option<String>, Option<String>, Option<String>, Option<i64>);
            type Details = (Option<String>, Option<String>, Option<String>, Option<i64>);
            let items: Vec<(Item, Details)> = {
                let mut st = tx.prepare(
                    "SELECT b.inspection_id, b.review_id, b.prev_state, b.prev_note, b.prev_reviewer,
                     b.prev_reviewed_ms, b.prev_defect_type, b.prev_severity, b.prev_rail_side,
                     b.prev_sleeper FROM review_batch_items b WHERE b.batch_id = ?1",
                )?;
                let rows = st.query_map([batch_id], |r| {
                    Ok((
                        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                        (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            for ((id, review_id, state, note, reviewer, reviewed_ms), (dt, sev, side, sleeper)) in
                items
            {
                let latest: Option<i64> = tx.query_row(
                    "SELECT max(id) FROM reviews WHERE inspection_id = ?1",
                    [id],
                    |r| r.get(0),
                )?;
                let result = if latest != Some(review_id) {
                    // Reviewed again since (one by one, or by another bulk action): left alone.
                    UndoResult::Skipped
                } else {
                    tx.execute(
                        "UPDATE inspections SET review_state = ?2, review_note = ?3, reviewer = ?4,
                         reviewed_ms = ?5, defect_type = ?6, severity = ?7, rail_side = ?8, sleeper = ?9
                         WHERE id = ?1",
                        params![id, state, note, reviewer, reviewed_ms, dt, sev, side, sleeper],
                    )?;
                    tx.execute(
                        "INSERT INTO reviews (inspection_id, state, note, reviewer, created_ms, defect_type,
                         severity, rail_side, sleeper, undo_of_batch)
                         VALUES (?1, coalesce(?2, 'unreviewed'), coalesce(?3, ''), ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![id, state, note, by, at_ms, dt, sev, side, sleeper, batch_id],
                    )?;
                    UndoResult::Restored
                };
                tx.execute(
                    "UPDATE review_batch_items SET undo_result = ?3 WHERE batch_id = ?1 AND inspection_id = ?2",
                    params![batch_id, id, result.as_str()],
                )?;
            }
            tx.execute(
                "UPDATE review_batches SET undone_ms = ?2, undone_by = ?3 WHERE id = ?1",
                params![batch_id, at_ms, by],
            )?;
            let batch = read_batch(&tx, batch_id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            Ok(UndoOutcome::Undone(batch))
        })()
        .map_err(|e| db_err(&self.db_path, e))?;
        if matches!(outcome, UndoOutcome::Undone(_)) {
            tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        }
        Ok(outcome)
    }

    fn review_batch(&self, batch_id: i64) -> Result<Option<ReviewBatch>> {
        self.read(|c| read_batch(c, batch_id))
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
            // An undo row restored the review its batch item kept (who decided it, when).
            let mut st = c.prepare(
                "SELECT r.id, r.state, r.note, r.reviewer, r.created_ms, r.defect_type, r.severity,
                 r.rail_side, r.sleeper, r.batch_id, r.undo_of_batch, b.prev_reviewer, b.prev_reviewed_ms
                 FROM reviews r LEFT JOIN review_batch_items b
                   ON b.batch_id = r.undo_of_batch AND b.inspection_id = r.inspection_id
                 WHERE r.inspection_id = ?1 ORDER BY r.id",
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
                let restored = ReviewState::parse(&state);
                let batch_id: Option<i64> = r.get(9)?;
                let entry = match r.get::<_, Option<i64>>(10)? {
                    Some(undone) => Some(HistoryEntry::Undo {
                        batch_id: undone,
                        by: review.reviewer.clone(),
                        at_ms: review.reviewed_ms,
                        restored: match restored {
                            Some(state) => Some(Review {
                                state,
                                reviewer: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                                reviewed_ms: r.get::<_, Option<i64>>(12)?.unwrap_or_default(),
                                ..review
                            }),
                            None => None,
                        },
                    }),
                    None => restored.map(|state| {
                        let review = Review { state, ..review };
                        match batch_id {
                            Some(batch_id) => HistoryEntry::BatchReview { batch_id, review },
                            None => HistoryEntry::Review(review),
                        }
                    }),
                };
                Ok((r.get::<_, i64>(0)?, entry))
            })?;
            for row in reviews {
                let (rid, entry) = row?;
                if let Some(entry) = entry {
                    rows.push((rid, 0, rid, entry));
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
        Ok(self.media.read(&rel)?.map(|b| (b, content_type(ext))))
    }

    fn heatmap(&self, id: i64) -> Result<Option<Vec<u8>>> {
        match self.media_of(id, "heatmap_path")? {
            Some(rel) => self.media.read(&rel),
            None => Ok(None),
        }
    }

    fn reconstruction(&self, id: i64) -> Result<Option<Vec<u8>>> {
        match self.media_of(id, "reconstruction_path")? {
            Some(rel) => self.media.read(&rel),
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

    fn summary(&self, since_ms: i64, baseline_since_ms: i64) -> Result<Vec<CameraSummary>> {
        use std::collections::BTreeMap;
        fn at(out: &mut BTreeMap<String, CameraSummary>, camera: String) -> &mut CameraSummary {
            out.entry(camera.clone()).or_insert_with(|| CameraSummary {
                camera,
                ..Default::default()
            })
        }
        let n = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<i64> {
            Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0))
        };
        self.read(|c| {
            let mut out: BTreeMap<String, CameraSummary> = BTreeMap::new();
            // Counts since the earlier of the two times (the arrival index), split by time.
            let mut w = Where::default();
            w.push("received_ms >= ?", since_ms.min(baseline_since_ms));
            let sql = format!(
                "SELECT camera,
                        sum(received_ms >= {s}), sum(received_ms >= {s} AND verdict = 'defect'),
                        sum(received_ms >= {s} AND verdict = 'defect' AND review_state IS NULL),
                        sum(received_ms >= {b}), sum(received_ms >= {b} AND verdict = 'defect')
                 FROM inspections{} GROUP BY camera",
                w.where_clause(),
                s = since_ms,
                b = baseline_since_ms,
            );
            let mut st = c.prepare(&sql)?;
            let mut rows = st.query(params_from_iter(w.args.iter()))?;
            while let Some(r) = rows.next()? {
                let e = at(&mut out, r.get(0)?);
                e.frames = n(r, 1)?;
                e.defects = n(r, 2)?;
                e.unreviewed_since = n(r, 3)?;
                e.baseline_frames = n(r, 4)?;
                e.baseline_defects = n(r, 5)?;
            }
            // Unreviewed defects of all time (the queue index).
            let mut st = c.prepare(
                "SELECT camera, count(*) FROM inspections
                 WHERE verdict = 'defect' AND review_state IS NULL GROUP BY camera",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                at(&mut out, r.get(0)?).unreviewed = n(r, 1)?;
            }
            let mut w = Where::default();
            w.push("received_ms >= ?", since_ms);
            w.push("review_state = ?", "confirmed");
            let mut st = c.prepare(&format!(
                "SELECT camera, coalesce(severity, 'unspecified') AS sev, count(*)
                 FROM inspections{} GROUP BY camera, sev ORDER BY camera, sev",
                w.where_clause()
            ))?;
            let mut rows = st.query(params_from_iter(w.args.iter()))?;
            while let Some(r) = rows.next()? {
                let sev: String = r.get(1)?;
                let k = n(r, 2)?;
                at(&mut out, r.get(0)?).confirmed_by_severity.push((sev, k));
            }
            let mut w = Where::default();
            w.push("received_ms >= ?", since_ms);
            w.clauses.push("track_id IS NOT NULL".into());
            let mut st = c.prepare(&format!(
                "SELECT camera, track_id, count(*), min(position_m), max(position_m)
                 FROM inspections{} GROUP BY camera, track_id ORDER BY camera, track_id",
                w.where_clause()
            ))?;
            let mut rows = st.query(params_from_iter(w.args.iter()))?;
            while let Some(r) = rows.next()? {
                let seen = TrackSeen {
                    track_id: r.get(1)?,
                    frames: n(r, 2)?,
                    min_position_m: r.get(3)?,
                    max_position_m: r.get(4)?,
                };
                at(&mut out, r.get(0)?).tracks.push(seen);
            }
            Ok(out.into_values().collect())
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
            let _ = std::fs::remove_file(self.media.path(rel));
        }
        Ok(doomed.len())
    }

    fn create_account(&self, a: &Account) -> Result<bool> {
        let w = self.lock_writer();
        let n = w
            .execute(
                "INSERT INTO accounts (name, role, password_hash, created_ms, disabled_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                params![a.name, a.role, a.password_hash, a.created_ms, a.disabled_ms],
            )
            .map_err(|e| db_err(&self.db_path, e))?;
        Ok(n == 1)
    }

    fn account(&self, name: &str) -> Result<Option<Account>> {
        self.read(|c| {
            c.query_row(
                "SELECT name, role, password_hash, created_ms, disabled_ms FROM accounts
                 WHERE name = ?1",
                [name],
                row_to_account,
            )
            .optional()
        })
    }

    fn accounts(&self) -> Result<Vec<Account>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT name, role, password_hash, created_ms, disabled_ms FROM accounts
                 ORDER BY name",
            )?;
            let rows = st.query_map([], row_to_account)?;
            rows.collect()
        })
    }

    fn disable_account(&self, name: &str, at_ms: i64) -> Result<bool> {
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        let n = tx
            .execute(
                "UPDATE accounts SET disabled_ms = COALESCE(disabled_ms, ?2) WHERE name = ?1",
                params![name, at_ms],
            )
            .map_err(|e| db_err(&self.db_path, e))?;
        tx.execute("DELETE FROM sessions WHERE who = ?1", [name])
            .map_err(|e| db_err(&self.db_path, e))?;
        tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        Ok(n == 1)
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        let n = tx
            .execute(
                "UPDATE accounts SET password_hash = ?2 WHERE name = ?1",
                params![name, password_hash],
            )
            .map_err(|e| db_err(&self.db_path, e))?;
        tx.execute("DELETE FROM sessions WHERE who = ?1", [name])
            .map_err(|e| db_err(&self.db_path, e))?;
        tx.commit().map_err(|e| db_err(&self.db_path, e))?;
        Ok(n == 1)
    }

    fn insert_session(&self, s: &StoredSession) -> Result<()> {
        let mut w = self.lock_writer();
        let tx = w.transaction().map_err(|e| db_err(&self.db_path, e))?;
        tx.execute(
            "DELETE FROM sessions WHERE expires_ms <= ?1",
            [s.started_ms],
        )
        .map_err(|e| db_err(&self.db_path, e))?;
        tx.execute(
            "INSERT INTO sessions (key_sha256, who, role, started_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![s.key_sha256, s.who, s.role, s.started_ms, s.expires_ms],
        )
        .map_err(|e| db_err(&self.db_path, e))?;
        tx.commit().map_err(|e| db_err(&self.db_path, e))
    }

    fn session(&self, key_sha256: &str, now_ms: i64) -> Result<Option<StoredSession>> {
        // A session of a config token names its role (a reserved name, never an account).
        self.read(|c| {
            c.query_row(
                "SELECT s.key_sha256, s.who, COALESCE(a.role, s.role), s.started_ms, s.expires_ms
                 FROM sessions s LEFT JOIN accounts a ON a.name = s.who
                 WHERE s.key_sha256 = ?1 AND s.expires_ms > ?2 AND a.disabled_ms IS NULL",
                params![key_sha256, now_ms],
                |r| {
                    Ok(StoredSession {
                        key_sha256: r.get(0)?,
                        who: r.get(1)?,
                        role: r.get(2)?,
                        started_ms: r.get(3)?,
                        expires_ms: r.get(4)?,
                    })
                },
            )
            .optional()
        })
    }

    fn delete_session(&self, key_sha256: &str) -> Result<()> {
        let w = self.lock_writer();
        w.execute("DELETE FROM sessions WHERE key_sha256 = ?1", [key_sha256])
            .map_err(|e| db_err(&self.db_path, e))?;
        Ok(())
    }

    fn purge_sessions(&self, now_ms: i64) -> Result<usize> {
        let w = self.lock_writer();
        w.execute("DELETE FROM sessions WHERE expires_ms <= ?1", [now_ms])
            .map_err(|e| db_err(&self.db_path, e))
    }

    fn check_writable(&self) -> Result<()> {
        let w = self.lock_writer();
        w.execute(
            "INSERT INTO health (k, v) VALUES ('ready', ?1) ON CONFLICT (k) DO UPDATE SET v = ?1",
            [chrono::Utc::now().timestamp_millis()],
        )
        .map_err(|e| db_err(&self.db_path, e))?;
        let probe = self.media.path(".write-probe");
        std::fs::write(&probe, b"ok")
            .map_err(|e| Error::io(format!("media folder {}", self.media.root().display()), e))?;
        Ok(())
    }
}
