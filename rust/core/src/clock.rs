//! Time as the core sees it: an explicit instant passed in by the caller, so that every
//! time-dependent behaviour (estimators, stale timers, the computer model) is deterministic
//! under test. The node layer maps its own clock onto this one.

use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, as the duration since an arbitrary origin chosen by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(Duration);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(Duration::ZERO);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Time(since_origin)
    }

    /// The instant `secs` seconds after the origin.
    pub fn from_secs_f64(secs: f64) -> Self {
        Time(Duration::from_secs_f64(secs))
    }

    /// Duration since the origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// Seconds since the origin.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, rhs: Duration) -> Time {
        Time(self.0 + rhs)
    }
}

impl Sub<Time> for Time {
    type Output = Duration;
    fn sub(self, rhs: Time) -> Duration {
        self.saturating_since(rhs)
    }
}
