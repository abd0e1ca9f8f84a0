//! The value parser of duration flags: a humantime duration (`500ms`, `2s`, `1m 30s`) or, as
//! before, a plain number of seconds (`0.5`, `20`), which is what scripts and the testbed pass.

use std::time::Duration;

/// Longest duration a flag takes (as a number of seconds); longer is surely a mistake.
const MAX_SECS: f64 = 1e9;

/// Parses a duration flag: humantime (`500ms`, `2s`, `1m`, `1h 30m`) or plain seconds (`0.5`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return if secs.is_finite() && (0.0..MAX_SECS).contains(&secs) {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!(
                "{text} s: expected a number of seconds >= 0 (and below {MAX_SECS:e}), or a duration such as 500ms, 2s, 1m"
            ))
        };
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("{e}: expected a duration such as 500ms, 2s, 1m 30s, or a number of seconds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humantime_and_plain_seconds() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("20"), Ok(Duration::from_secs(20)));
        assert_eq!(parse("0.05"), Ok(Duration::from_millis(50)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse(" 1.5 "), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn wrong_values_say_what_is_expected() {
        for bad in ["-1", "nan", "inf", "1e12", "fast", "2 parsecs", ""] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("expected"), "{bad}: {err}");
        }
    }
}
