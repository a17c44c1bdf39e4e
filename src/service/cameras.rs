//! Live per-camera figures for `GET /v1/cameras` and the dashboard's wall: totals (seeded from
//! the store at start, then counted as frames are stored) and a short window of arrival times
//! for frames/s.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::pipeline::scoring::Verdict;
use crate::service::store::CameraTotals;

/// Frames/s is measured over this window.
const FPS_WINDOW_MS: i64 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct CameraLive {
    pub frames: i64,
    pub defects: i64,
    pub last_ms: Option<i64>,
    pub last_id: Option<i64>,
    pub last_image_id: Option<i64>,
    recent: VecDeque<i64>,
}

impl CameraLive {
    pub fn recent_fps(&self, now_ms: i64) -> f64 {
        let n = self
            .recent
            .iter()
            .filter(|&&t| now_ms - t <= FPS_WINDOW_MS)
            .count();
        n as f64 / (FPS_WINDOW_MS as f64 / 1e3)
    }
}

#[derive(Default)]
pub struct CameraBoard {
    cameras: Mutex<HashMap<String, CameraLive>>,
}

impl CameraBoard {
    pub fn seed(&self, totals: &[CameraTotals]) {
        let mut m = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        for t in totals {
            let e = m.entry(t.camera.clone()).or_default();
            e.frames = t.frames;
            e.defects = t.defects;
            e.last_ms = t.last_ms;
            e.last_id = t.last_id;
        }
    }

    pub fn record(
        &self,
        camera: &str,
        id: i64,
        received_ms: i64,
        verdict: Verdict,
        has_image: bool,
    ) {
        let mut m = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(camera.to_string()).or_default();
        e.frames += 1;
        e.defects += (verdict == Verdict::Defect) as i64;
        e.last_ms = Some(e.last_ms.map_or(received_ms, |t| t.max(received_ms)));
        e.last_id = Some(id);
        if has_image {
            e.last_image_id = Some(id);
        }
        e.recent.push_back(received_ms);
        while e
            .recent
            .front()
            .is_some_and(|&t| received_ms - t > FPS_WINDOW_MS)
        {
            e.recent.pop_front();
        }
    }

    pub fn get(&self, camera: &str) -> CameraLive {
        self.cameras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(camera)
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rate_follow_recorded_frames() {
        let b = CameraBoard::default();
        b.seed(&[CameraTotals {
            camera: "c".into(),
            frames: 10,
            defects: 1,
            last_ms: Some(0),
            last_id: Some(10),
        }]);
        for k in 0..20 {
            b.record(
                "c",
                11 + k,
                100_000 + k * 500,
                if k == 0 {
                    Verdict::Defect
                } else {
                    Verdict::Normal
                },
                k == 3,
            );
        }
        let c = b.get("c");
        assert_eq!(
            (c.frames, c.defects, c.last_id, c.last_image_id),
            (30, 2, Some(30), Some(14))
        );
        // 20 frames at 2/s over 9.5 s, all inside the 10 s window.
        assert!((c.recent_fps(100_000 + 19 * 500) - 2.0).abs() < 1e-9);
        assert_eq!(c.recent_fps(200_000), 0.0);
    }
}
