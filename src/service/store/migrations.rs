//! The schema, as numbered migrations: `PRAGMA user_version` says how many ran, each runs once
//! in its own transaction. Append, never edit: a database in the field has run the old ones.

use rusqlite::Connection;

/// Schema versions, applied in order; `PRAGMA user_version` says how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // 7: bulk review (triage): a batch is one review applied to many inspections in one
    // transaction; each item keeps the review state its inspection had before (to undo it)
    // and the review the batch wrote (an inspection reviewed again since is not undone).
    // Reviews name their batch; an undo is a review row too (`undo_of_batch`, its state the
    // one restored, 'unreviewed' for none). The review queue by score.
    "CREATE TABLE review_batches (
        id INTEGER PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        reviewer TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('confirmed', 'false_alarm')),
        note TEXT NOT NULL,
        defect_type TEXT,
        severity TEXT,
        rail_side TEXT,
        sleeper INTEGER,
        selection TEXT NOT NULL,
        undone_ms INTEGER,
        undone_by TEXT
    );
    CREATE TABLE review_batch_items (
        batch_id INTEGER NOT NULL REFERENCES review_batches (id),
        inspection_id INTEGER NOT NULL REFERENCES inspections (id),
        review_id INTEGER NOT NULL REFERENCES reviews (id),
        prev_state TEXT,
        prev_note TEXT,
        prev_reviewer TEXT,
        prev_reviewed_ms INTEGER,
        prev_defect_type TEXT,
        prev_severity TEXT,
        prev_rail_side TEXT,
        prev_sleeper INTEGER,
        undo_result TEXT CHECK (undo_result IN ('restored', 'skipped')),
        PRIMARY KEY (batch_id, inspection_id)
    );
    ALTER TABLE reviews ADD COLUMN batch_id INTEGER REFERENCES review_batches (id);
    ALTER TABLE reviews ADD COLUMN undo_of_batch INTEGER REFERENCES review_batches (id);
    CREATE INDEX inspections_queue_score ON inspections (verdict, review_state, a_norm, id);",
    // 8: named people. Accounts with an argon2id PHC password hash (`disabled_ms` set: no
    // login, no session); dashboard sessions keyed by the SHA-256 of the session id (never the
    // id itself), so a restart logs nobody out.
    "CREATE TABLE accounts (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('inspector', 'admin')),
        password_hash TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        disabled_ms INTEGER
    );
    CREATE TABLE sessions (
        key_sha256 TEXT PRIMARY KEY,
        who TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('inspector', 'admin')),
        started_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX sessions_who ON sessions (who);
    CREATE INDEX sessions_expires ON sessions (expires_ms);",
];

pub(super) fn migrate(c: &mut Connection) -> rusqlite::Result<()> {
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
