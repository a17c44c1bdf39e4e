//! Admission of a camera's frame before any work is spent on it.
//!
//! - **Fairness**: each camera may have at most `limit` frames in flight (from admission until
//!   its answer: body, decode, queue, inference, store). A camera that floods is refused with 503
//!   once it holds its share, while the shared decode slots and inspection queue stay open to the
//!   others.
//! - **Idempotency**: a frame id (`X-Frame-Id`) may be in flight once per camera. A retry that
//!   arrives while the first attempt is still being inspected is told so (409 with Retry-After);
//!   once the first is stored, the handler answers retries from the store
//!   (`server.frame_id_window_s`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct InFlight {
    frames: usize,
    frame_ids: HashSet<String>,
}

pub struct Admission {
    limit: usize,
    cameras: Mutex<HashMap<String, InFlight>>,
}

#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// The camera already has `limit` frames in flight.
    CameraBusy { limit: usize },
    /// A frame with this id from this camera is being inspected now.
    FrameInFlight,
}

/// A frame's place in flight; dropping it (answered, refused later, or the client gone) frees it.
pub struct Ticket {
    admission: Arc<Admission>,
    camera: String,
    frame_id: Option<String>,
}

impl Admission {
    /// `limit`: frames in flight per camera (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            cameras: Mutex::new(HashMap::new()),
        })
    }

    /// The per-camera share: `configured`, or when 0 the inspection queue's capacity divided among
    /// the configured cameras (rounded up).
    pub fn share(configured: usize, queue_capacity: usize, cameras: usize) -> usize {
        if configured > 0 {
            configured
        } else {
            queue_capacity.div_ceil(cameras.max(1)).max(1)
        }
    }

    /// A place in flight for one more frame of `camera`, or `CameraBusy` at its share.
    pub fn admit(self: &Arc<Self>, camera: &str) -> Result<Ticket, Refusal> {
        let mut cameras = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cameras.entry(camera.to_string()).or_default();
        if entry.frames >= self.limit {
            return Err(Refusal::CameraBusy { limit: self.limit });
        }
        entry.frames += 1;
        Ok(Ticket {
            admission: self.clone(),
            camera: camera.to_string(),
            frame_id: None,
        })
    }

    /// Frames in flight for a camera.
    #[cfg(test)]
    fn in_flight(&self, camera: &str) -> usize {
        let cameras = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        cameras.get(camera).map_or(0, |c| c.frames)
    }
}

impl Ticket {
    /// Marks the frame's id as in flight (known once the metadata is read), or `FrameInFlight`
    /// when another request of the same camera holds it.
    pub fn claim(&mut self, frame_id: &str) -> Result<(), Refusal> {
        let mut cameras = self
            .admission
            .cameras
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = cameras.entry(self.camera.clone()).or_default();
        if !entry.frame_ids.insert(frame_id.to_string()) {
            return Err(Refusal::FrameInFlight);
        }
        self.frame_id = Some(frame_id.to_string());
        Ok(())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut cameras = self
            .admission
            .cameras
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = cameras.get_mut(&self.camera) {
            entry.frames = entry.frames.saturating_sub(1);
            if let Some(id) = &self.frame_id {
                entry.frame_ids.remove(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_is_held_to_its_share_and_others_are_not() {
        let a = Admission::new(2);
        let t1 = a.admit("cam-01").unwrap();
        let _t2 = a.admit("cam-01").unwrap();
        assert_eq!(
            a.admit("cam-01").err(),
            Some(Refusal::CameraBusy { limit: 2 })
        );
        assert!(a.admit("cam-02").is_ok());
        drop(t1);
        assert_eq!(a.in_flight("cam-01"), 1);
        assert!(a.admit("cam-01").is_ok());
    }

    #[test]
    fn a_frame_id_is_in_flight_once_per_camera() {
        let a = Admission::new(8);
        let mut first = a.admit("cam-01").unwrap();
        first.claim("f-7").unwrap();
        let mut second = a.admit("cam-01").unwrap();
        assert_eq!(second.claim("f-7").err(), Some(Refusal::FrameInFlight));
        assert!(a.admit("cam-02").unwrap().claim("f-7").is_ok()); // ids are per camera
        drop(first);
        assert!(second.claim("f-7").is_ok());
    }

    #[test]
    fn the_share_divides_the_queue_among_the_cameras() {
        assert_eq!(Admission::share(0, 256, 4), 64);
        assert_eq!(Admission::share(0, 10, 4), 3);
        assert_eq!(Admission::share(0, 4, 0), 4);
        assert_eq!(Admission::share(5, 256, 4), 5);
    }
}
