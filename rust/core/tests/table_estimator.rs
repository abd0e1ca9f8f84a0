//! Parsing and printing of estimator specifications, and the estimator arithmetic.

use std::time::Duration;

use lambdaroute_core::clock::Time;
use lambdaroute_core::estimator::{Estimate, EstimatorKind, Stat};

#[test]
fn estimator_defaults_to_ewma_with_alpha_0_95() {
    assert_eq!(
        EstimatorKind::default(),
        EstimatorKind::Ewma { alpha: 0.95 }
    );
    assert_eq!(
        "ewma".parse::<EstimatorKind>().unwrap(),
        EstimatorKind::default()
    );
}

#[test]
fn estimator_parses_every_documented_form() {
    let periodic = |secs: f64, stat| EstimatorKind::Periodic {
        period: Duration::from_secs_f64(secs),
        stat,
    };
    for (text, want) in [
        ("ewma:0.9", EstimatorKind::Ewma { alpha: 0.9 }),
        ("periodic", periodic(5.0, Stat::Min)),
        ("periodic:5:min", periodic(5.0, Stat::Min)),
        ("periodic:2.5:mean", periodic(2.5, Stat::Mean)),
        ("periodic:1:max", periodic(1.0, Stat::Max)),
        ("periodic:3", periodic(3.0, Stat::Min)),
    ] {
        assert_eq!(text.parse::<EstimatorKind>().unwrap(), want, "{text}");
    }
}

#[test]
fn estimator_display_round_trips() {
    for text in [
        "ewma:0.95",
        "ewma:0.5",
        "periodic:5:min",
        "periodic:2.5:mean",
        "periodic:0.1:max",
    ] {
        let kind: EstimatorKind = text.parse().unwrap();
        assert_eq!(kind.to_string(), text);
        assert_eq!(kind.to_string().parse::<EstimatorKind>().unwrap(), kind);
    }
}

#[test]
fn estimator_rejects_bad_specifications_with_the_accepted_forms() {
    for (text, reason) in [
        ("ewma:1.5", "outside [0, 1]"),
        ("ewma:x", "not a number"),
        ("periodic:0:min", "must be > 0"),
        ("periodic:5:median", "unknown statistic 'median'"),
        ("periodic:5:min:1", "too many"),
        ("kalman", "unknown estimator 'kalman'"),
    ] {
        let err = text.parse::<EstimatorKind>().unwrap_err().to_string();
        assert!(err.contains(reason), "{text}: {err}");
        assert!(
            err.contains("periodic:<period in seconds>"),
            "{text}: {err}"
        );
    }
}

#[test]
fn estimate_ewma_restarts_after_five_seconds() {
    let mut e = Estimate::default();
    let t = Time::from_secs_f64;
    assert_eq!(e.ewma(1.0, 0.5, 0.2, t(0.0)), 0.2);
    assert_eq!(e.ewma(0.2, 0.5, 0.4, t(4.999)), 0.5 * 0.2 + 0.5 * 0.4);
    assert_eq!(e.ewma(0.3, 0.5, 0.8, t(9.999)), 0.8);
}

#[test]
fn estimate_period_statistics_and_empty_period() {
    for (stat, want) in [(Stat::Min, 1.0), (Stat::Mean, 2.0), (Stat::Max, 3.0)] {
        let mut e = Estimate::default();
        assert!(e.record(3.0));
        assert!(!e.record(1.0));
        assert!(!e.record(2.0));
        assert_eq!(e.close(9.0, stat), want);
        assert_eq!(e.close(want, stat), want, "an empty period keeps w");
    }
}
