//! Lab time: the lab's own clock, which may run faster than real time so a drill of hours takes minutes.
//!
//! Everything the engine stamps (backup dates, file names, job schedules) uses [`LabTime`]; only waits
//! that a client can feel (fault delays, lock timeouts) use real time.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Lab time: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LabTime(pub i64);

/// Maps real elapsed time onto lab time: `lab = origin + real_elapsed * speed`.
#[derive(Debug)]
pub struct Clock {
    real_origin: Instant,
    lab_origin: LabTime,
    speed: f64,
}

impl Clock {
    pub fn new(origin: LabTime, speed: f64) -> Self {
        Clock {
            real_origin: Instant::now(),
            lab_origin: origin,
            speed,
        }
    }

    pub fn now(&self) -> LabTime {
        let real_ms = self.real_origin.elapsed().as_secs_f64() * 1000.0;
        LabTime(self.lab_origin.0 + (real_ms * self.speed) as i64)
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}
