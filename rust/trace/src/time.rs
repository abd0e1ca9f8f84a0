//! Timestamps of the AoT digests: UTC, written `YYYY/MM/DD HH:MM:SS`.

use std::fmt;
use std::str::FromStr;

use jiff::civil::DateTime;
use jiff::tz::Offset;

/// A UTC instant with one-second resolution, as the digests' `timestamp` column has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// What a digest's timestamps look like, for error messages.
pub const TIMESTAMP_FORMAT: &str = "UTC `YYYY/MM/DD HH:MM:SS`, e.g. `2018/01/01 00:00:06`";

/// A text that is not a timestamp of [`TIMESTAMP_FORMAT`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a timestamp: {reason}; expected {TIMESTAMP_FORMAT}")]
pub struct TimestampError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Timestamp {
    /// The instant `seconds` after 1970-01-01 00:00:00 UTC.
    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The instant `seconds` later (earlier when negative).
    pub const fn add_seconds(self, seconds: i64) -> Self {
        Timestamp(self.0 + seconds)
    }

    /// Reads `YYYY/MM/DD HH:MM:SS` (exactly that shape; a real calendar date and time).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        Self::parse_bytes(text.as_bytes()).map_err(|reason| TimestampError {
            text: text.to_owned(),
            reason,
        })
    }

    /// [`Timestamp::parse`] on bytes; the error is the reason alone.
    pub(crate) fn parse_bytes(b: &[u8]) -> Result<Self, String> {
        const SHAPE: &[u8; 19] = b"dddd/dd/dd dd:dd:dd";
        if b.len() != SHAPE.len() {
            return Err(format!("{} characters instead of 19", b.len()));
        }
        for (i, (&c, &s)) in b.iter().zip(SHAPE).enumerate() {
            let ok = if s == b'd' {
                c.is_ascii_digit()
            } else {
                c == s
            };
            if !ok {
                let want = if s == b'd' {
                    "a digit".to_string()
                } else {
                    format!("`{}`", s as char)
                };
                return Err(format!("character {} should be {want}", i + 1));
            }
        }
        let num = |from: usize, to: usize| -> i64 {
            b[from..to]
                .iter()
                .fold(0, |n, &c| n * 10 + i64::from(c - b'0'))
        };
        // The shape guarantees the ranges of i16/i8 below.
        let dt = DateTime::new(
            num(0, 4) as i16,
            num(5, 7) as i8,
            num(8, 10) as i8,
            num(11, 13) as i8,
            num(14, 16) as i8,
            num(17, 19) as i8,
            0,
        )
        .map_err(|e| format!("no such date or time ({e})"))?;
        let ts = Offset::UTC
            .to_timestamp(dt)
            .map_err(|e| format!("out of range ({e})"))?;
        Ok(Timestamp(ts.as_second()))
    }

    fn civil(self) -> Option<DateTime> {
        let ts = jiff::Timestamp::from_second(self.0).ok()?;
        Some(Offset::UTC.to_datetime(ts))
    }

    /// Hours since midnight UTC, 0 to 24 (fractional).
    pub fn hour_of_day(self) -> f64 {
        self.0.rem_euclid(86_400) as f64 / 3600.0
    }

    /// Day of the year, 1 to 366.
    pub fn day_of_year(self) -> i32 {
        self.civil()
            .map_or(1, |dt| i32::from(dt.date().day_of_year()))
    }

    /// Day of the week, Monday 1 to Sunday 7.
    pub fn weekday(self) -> i32 {
        // 1970-01-01 was a Thursday (4).
        (self.0.div_euclid(86_400) + 3).rem_euclid(7) as i32 + 1
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY/MM/DD HH:MM:SS`, as the digests write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.civil() {
            Some(dt) => write!(
                f,
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second()
            ),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

/// Where a window starts or stops: a timestamp, or seconds after the trace's first row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeSpec {
    /// At this instant.
    At(Timestamp),
    /// This many seconds (>= 0) after the first row of the trace.
    After(f64),
}

impl TimeSpec {
    /// The instant, given the time of the trace's first row.
    pub fn resolve(self, first: Timestamp) -> Timestamp {
        match self {
            TimeSpec::At(t) => t,
            TimeSpec::After(s) => first.add_seconds(s.ceil() as i64),
        }
    }
}

impl fmt::Display for TimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSpec::At(t) => write!(f, "{t}"),
            TimeSpec::After(s) => write!(f, "{s}"),
        }
    }
}

/// A span of trace time; rows at or after `start` and before `stop` are in it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    /// From here on; None: from the first row.
    pub start: Option<TimeSpec>,
    /// Before here; None: to the last row.
    pub stop: Option<TimeSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_digest_format() {
        let t = Timestamp::parse("2018/01/01 00:00:06").unwrap();
        assert_eq!(t.unix(), 1_514_764_806);
        assert_eq!(t.to_string(), "2018/01/01 00:00:06");
        assert_eq!(
            Timestamp::parse("2020/02/29 23:59:59")
                .unwrap()
                .add_seconds(1)
                .to_string(),
            "2020/03/01 00:00:00"
        );
        assert_eq!(t.weekday(), 1, "2018-01-01 was a Monday");
        assert_eq!(t.day_of_year(), 1);
    }

    #[test]
    fn refuses_other_shapes_and_impossible_dates() {
        for bad in [
            "2018-01-01 00:00:06",
            "2018/1/01 00:00:06",
            "2018/01/01T00:00:06",
            "2018/02/30 00:00:00",
            "2018/01/01 24:00:00",
            "",
        ] {
            let e = Timestamp::parse(bad).unwrap_err();
            assert!(e.to_string().contains("expected UTC"), "{e}");
        }
        assert!(
            Timestamp::parse("2018/02/30 00:00:00")
                .unwrap_err()
                .reason
                .contains("no such date")
        );
    }
}
