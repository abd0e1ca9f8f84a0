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
        (
            "peak-ewma",
            EstimatorKind::PeakEwma {
                decay: Duration::from_secs(10),
            },
        ),
        (
            "peak-ewma:2.5",
            EstimatorKind::PeakEwma {
                decay: Duration::from_secs_f64(2.5),
            },
        ),
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
        "peak-ewma:10",
        "peak-ewma:0.5",
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
        ("peak-ewma:0", "must be > 0"),
        ("peak-ewma:10:1", "too many"),
        ("kalman", "unknown estimator 'kalman'"),
    ] {
        let err = text.parse::<EstimatorKind>().unwrap_err().to_string();
        assert!(err.contains(reason), "{text}: {err}");
        assert!(
            err.contains("periodic[:<period in seconds>") && err.contains("peak-ewma["),
            "{text}: {err}"
        );
    }
}

#[test]
fn estimate_ewma_restarts_after_five_seconds() {
    let t = Time::from_secs_f64;
    let mut last = None;
    let mut step = |w, s, now| Estimate::ewma_step(&mut last, w, 0.5, s, now);
    assert_eq!(step(1.0, 0.2, t(0.0)), 0.2);
    assert_eq!(step(0.2, 0.4, t(4.999)), 0.5 * 0.2 + 0.5 * 0.4);
    assert_eq!(step(0.3, 0.8, t(9.999)), 0.8);
}

#[test]
fn estimate_peak_ewma_jumps_up_at_once_and_decays_toward_lower_samples() {
    let t = Time::from_secs_f64;
    let decay = Duration::from_secs(10);
    let mut last = None;
    assert_eq!(
        Estimate::peak_ewma_step(&mut last, 1.0, decay, 0.1, t(0.0)),
        0.1,
        "the first sample replaces the installed weight"
    );
    assert_eq!(
        Estimate::peak_ewma_step(&mut last, 0.1, decay, 2.0, t(1.0)),
        2.0,
        "a peak is taken at once"
    );
    // A lower sample one time constant later: 2 decays by e^-1 toward 0.1.
    let d = (-1.0f64).exp();
    let w = Estimate::peak_ewma_step(&mut last, 2.0, decay, 0.1, t(11.0));
    assert!((w - (2.0 * d + 0.1 * (1.0 - d))).abs() < 1e-12, "{w}");
    // Right after a sample, a lower one barely moves it.
    let w2 = Estimate::peak_ewma_step(&mut last, w, decay, 0.1, t(11.0));
    assert_eq!(w2, w);
}

#[test]
fn stat_parses_and_prints_its_names() {
    for stat in Stat::ALL {
        assert_eq!(stat.as_str().parse::<Stat>().unwrap(), stat);
        assert_eq!(stat.to_string(), stat.as_str());
    }
    let err = "median".parse::<Stat>().unwrap_err().to_string();
    assert!(err.contains("min, mean, max"), "{err}");
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
