//! Lab time: the lab's own clock, which may run faster than real time so a drill of hours takes minutes.
//!
//! Everything the engine stamps (backup dates, file names, job schedules) uses [`LabTime`]; only waits
//! that a client can feel (fault delays, lock timeouts) use real time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Lab time: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LabTime(pub i64);

/// Maps real elapsed time onto lab time: `lab = origin + real_elapsed * speed + jumped`, where
/// `jumped` is how far the lab was moved forward at once (a made backlog, `advance_to`).
#[derive(Debug)]
pub struct Clock {
    real_origin: Instant,
    lab_origin: LabTime,
    speed: f64,
    jumped_ms: AtomicI64,
}

impl Clock {
    pub fn new(origin: LabTime, speed: f64) -> Self {
        Clock {
            real_origin: Instant::now(),
            lab_origin: origin,
            speed,
            jumped_ms: AtomicI64::new(0),
        }
    }

    pub fn now(&self) -> LabTime {
        let real_ms = self.real_origin.elapsed().as_secs_f64() * 1000.0;
        LabTime(
            self.lab_origin.0
                + (real_ms * self.speed) as i64
                + self.jumped_ms.load(Ordering::Relaxed),
        )
    }

    /// Moves lab time forward to `t` at once (never backward: lab time, like msdb's dates, only
    /// grows).
    pub fn advance_to(&self, t: LabTime) {
        let behind = t.0 - self.now().0;
        if behind > 0 {
            self.jumped_ms.fetch_add(behind, Ordering::Relaxed);
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}
