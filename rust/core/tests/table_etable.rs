//! Behaviour of the e-table: the two tables, errors, removal, congestion marks and the
//! estimators, driven with an explicit clock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lambdaroute_core::clock::Time;
use lambdaroute_core::estimator::{EstimatorKind, Stat};
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_core::table::{ETable, Entry, TableError, TableKind};
use proptest::prelude::*;

use TableKind::{Final, Overall};

const T0: Time = Time::ZERO;

fn secs(s: f64) -> Time {
    Time::from_secs_f64(s)
}

fn ms(v: u64) -> Option<Duration> {
    Some(Duration::from_millis(v))
}

fn table(policy: PolicyKind) -> ETable {
    ETable::new(policy, EstimatorKind::default(), 42)
}

fn ewma_table(alpha: f64) -> ETable {
    ETable::new(PolicyKind::LeastImpedance, EstimatorKind::Ewma { alpha }, 1)
}

fn periodic_table(stat: Stat) -> ETable {
    let kind = EstimatorKind::Periodic {
        period: Duration::from_secs(5),
        stat,
    };
    ETable::new(PolicyKind::LeastImpedance, kind, 1)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// ===== errors and the two tables =====

#[test]
fn select_reports_unknown_lambdas_and_empty_final_tables() {
    let mut t = table(PolicyKind::RandomProportional);
    assert_eq!(
        t.select("f", Overall, T0),
        Err(TableError::UnknownLambda("f".into()))
    );
    t.change("f", "router-2:6473", 1.0, false).unwrap();
    assert_eq!(&*t.select("f", Overall, T0).unwrap(), "router-2:6473");
    assert_eq!(t.select("f", Final, T0), Err(TableError::Empty("f".into())));
    t.remove("f", "router-2:6473");
    assert_eq!(
        t.select("f", Overall, T0),
        Err(TableError::UnknownLambda("f".into()))
    );
    assert!(t.is_empty());
}

#[test]
fn change_rejects_non_positive_and_non_finite_weights_and_empty_names() {
    let mut t = table(PolicyKind::LeastImpedance);
    for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = t.change("f", "c1", w, true).unwrap_err();
        assert!(
            matches!(&err, TableError::InvalidWeight { lambda, destination, .. } if lambda == "f" && destination == "c1"),
            "{err:?}"
        );
        assert!(err.to_string().contains("must be finite and > 0"));
    }
    assert_eq!(t.change("", "c1", 1.0, true), Err(TableError::EmptyName));
    assert_eq!(t.change("f", "", 1.0, true), Err(TableError::EmptyName));
    assert!(t.is_empty());
    // A rejected update leaves an existing entry alone.
    t.change("f", "c1", 2.0, true).unwrap();
    assert!(t.change("f", "c1", f64::NAN, true).is_err());
    assert_eq!(t.weight("f", "c1", Overall), Some(2.0));
}

#[test]
fn final_table_holds_only_final_entries_and_change_moves_them() {
    let mut t = table(PolicyKind::RoundRobin);
    t.change("f", "c1", 1.0, true).unwrap();
    t.change("f", "r2", 1.0, false).unwrap();
    t.change("g", "c1", 1.0, true).unwrap();
    assert_eq!((t.len(Overall), t.len(Final)), (3, 2));
    assert_eq!(t.weight("f", "r2", Final), None);
    for _ in 0..20 {
        assert_eq!(&*t.select("f", Final, T0).unwrap(), "c1");
    }
    t.change("f", "r2", 0.5, true).unwrap();
    t.change("f", "c1", 1.0, false).unwrap();
    assert_eq!((t.len(Overall), t.len(Final)), (3, 2));
    for _ in 0..20 {
        assert_eq!(&*t.select("f", Final, T0).unwrap(), "r2");
    }
    let finals: Vec<(String, String)> = t
        .entries(Final)
        .into_iter()
        .map(|e| (e.lambda, e.destination))
        .collect();
    assert_eq!(
        finals,
        [("f".into(), "r2".into()), ("g".into(), "c1".into())]
    );
}

#[test]
fn final_table_follows_weights_while_non_final_entries_come_and_go() {
    for policy in PolicyKind::ALL {
        let mut t = table(policy);
        t.change("f", "c1", 1.0, true).unwrap();
        t.change("f", "c2", 1.0, true).unwrap();
        // A non-final entry arrives (table 1 gets its own policies) and leaves again.
        for round in 0..3 {
            t.change("f", "r1", 0.001, false).unwrap();
            t.complete("f", "c1", Final, ms(5), secs(f64::from(round)));
            t.complete("f", "c2", Final, ms(900), secs(f64::from(round)));
            for _ in 0..20 {
                let d = t.select("f", Final, secs(f64::from(round))).unwrap();
                assert_ne!(&*d, "r1", "{policy}");
            }
            assert!(
                close(t.weight("f", "c1", Final).unwrap(), 0.005),
                "{policy}"
            );
            if round % 2 == 0 {
                t.remove("f", "r1");
            } else {
                t.change("f", "r1", 0.001, true).unwrap();
                assert_eq!(t.len(Final), 3);
                t.remove("f", "r1");
            }
            assert_eq!((t.len(Overall), t.len(Final)), (2, 2), "{policy}");
            if policy == PolicyKind::LeastImpedance {
                assert_eq!(
                    &*t.select("f", Final, secs(f64::from(round))).unwrap(),
                    "c1"
                );
            }
        }
    }
}

#[test]
fn entries_are_ordered_by_lambda_then_installation() {
    let mut t = table(PolicyKind::LeastImpedance);
    t.change("zeta", "c9", 1.0, true).unwrap();
    t.change("alpha", "c3", 2.0, false).unwrap();
    t.change("alpha", "c1", 3.0, true).unwrap();
    t.change("alpha", "c3", 4.0, false).unwrap(); // an update keeps its place
    assert_eq!(
        t.entries(Overall),
        [
            Entry {
                lambda: "alpha".into(),
                destination: "c3".into(),
                weight: 4.0,
                is_final: false,
                marked: false,
                in_flight: 0,
            },
            Entry {
                lambda: "alpha".into(),
                destination: "c1".into(),
                weight: 3.0,
                is_final: true,
                marked: false,
                in_flight: 0,
            },
            Entry {
                lambda: "zeta".into(),
                destination: "c9".into(),
                weight: 1.0,
                is_final: true,
                marked: false,
                in_flight: 0,
            },
        ]
    );
    assert_eq!(t.lambdas(), ["alpha", "zeta"]);
}

#[test]
fn remove_destination_removes_it_from_both_tables_for_every_lambda() {
    let mut t = table(PolicyKind::PowerOfTwo);
    for l in ["f", "g", "h"] {
        t.change(l, "c1", 1.0, true).unwrap();
        t.change(l, "c2", 1.0, true).unwrap();
    }
    t.change("k", "c1", 1.0, false).unwrap();
    assert_eq!(t.remove_destination("c1"), 4);
    assert_eq!(t.remove_destination("c1"), 0);
    assert_eq!((t.len(Overall), t.len(Final)), (3, 3));
    for l in ["f", "g", "h"] {
        for table in [Overall, Final] {
            for _ in 0..20 {
                assert_eq!(&*t.select(l, table, T0).unwrap(), "c2");
            }
        }
    }
    assert_eq!(t.lambdas(), ["f", "g", "h"]);
    assert!(t.entries(Overall).iter().all(|e| e.destination == "c2"));
}

#[test]
fn flush_empties_both_tables() {
    let mut t = table(PolicyKind::RoundRobin);
    t.change("f", "c1", 1.0, true).unwrap();
    t.change("g", "r1", 1.0, false).unwrap();
    t.flush();
    assert!(t.is_empty());
    assert_eq!((t.len(Overall), t.len(Final)), (0, 0));
    assert!(t.lambdas().is_empty());
    assert!(matches!(
        t.select("f", Overall, T0),
        Err(TableError::UnknownLambda(_))
    ));
}

#[test]
fn select_is_reproducible_for_a_seed() {
    let run = |seed| {
        let mut t = ETable::new(
            PolicyKind::RandomProportional,
            EstimatorKind::default(),
            seed,
        );
        for d in 0..10 {
            t.change("f", &format!("c{d}"), 1.0 + d as f64, true)
                .unwrap();
        }
        (0..100)
            .map(|_| t.select("f", Overall, T0).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

// ===== congestion marks =====

#[test]
fn marked_destination_is_never_selected_while_an_unmarked_one_exists() {
    for policy in PolicyKind::ALL {
        let mut t = table(policy);
        // The marked destination is by far the fastest: without the mark it would win.
        t.change("f", "fast", 0.001, true).unwrap();
        t.change("f", "slow", 1.0, true).unwrap();
        t.change("g", "fast", 0.001, false).unwrap();
        assert_eq!(t.set_marked("fast", true), 2);
        assert_eq!(t.set_marked("fast", true), 0);
        for i in 0..200 {
            let now = secs(f64::from(i) * 0.1);
            for table in [Overall, Final] {
                let d = t.select("f", table, now).unwrap();
                assert_eq!(&*d, "slow", "{policy}");
                t.complete("f", &d, table, ms(900), now);
            }
        }
        assert!(
            t.entries(Overall)
                .iter()
                .any(|e| e.destination == "fast" && e.marked)
        );
    }
}

#[test]
fn marked_destination_is_used_as_a_last_resort() {
    let mut t = table(PolicyKind::LeastImpedance);
    t.change("f", "c1", 1.0, true).unwrap();
    t.change("f", "c2", 2.0, true).unwrap();
    t.set_marked("c1", true);
    t.set_marked("c2", true);
    assert_eq!(&*t.select("f", Final, T0).unwrap(), "c1");
    // An unmarked destination installed later takes over at once.
    t.change("f", "c3", 5.0, true).unwrap();
    assert_eq!(&*t.select("f", Final, T0).unwrap(), "c3");
    t.remove("f", "c3");
    assert_eq!(&*t.select("f", Final, T0).unwrap(), "c1");
}

#[test]
fn unmarked_destination_comes_back_at_its_installed_weight() {
    let mut t = table(PolicyKind::LeastImpedance);
    t.change("f", "c1", 0.2, true).unwrap();
    t.change("f", "c2", 0.5, true).unwrap();
    // c1 measured slow, then marked, then used as last resort and measured slower still.
    t.complete("f", "c1", Overall, ms(3_000), T0);
    t.set_marked("c1", true);
    t.set_marked("c2", true);
    t.complete("f", "c1", Overall, ms(4_000), secs(1.0));
    assert!(t.weight("f", "c1", Overall).unwrap() > 3.0);
    assert_eq!(t.set_marked("c1", false), 1);
    assert_eq!(t.weight("f", "c1", Overall), Some(0.2));
    assert_eq!(t.weight("f", "c1", Final), Some(0.2));
    assert_eq!(&*t.select("f", Final, secs(2.0)).unwrap(), "c1");
    // The estimator restarts too: the next sample replaces the weight.
    t.complete("f", "c1", Final, ms(100), secs(2.0));
    assert!(close(t.weight("f", "c1", Final).unwrap(), 0.1));
}

#[test]
fn entries_installed_for_a_marked_destination_start_marked() {
    let mut t = table(PolicyKind::RoundRobin);
    assert_eq!(t.set_marked("c1", true), 0);
    assert!(t.is_marked("c1"));
    t.change("f", "c1", 0.1, true).unwrap();
    t.change("f", "c2", 1.0, true).unwrap();
    for _ in 0..20 {
        assert_eq!(&*t.select("f", Overall, T0).unwrap(), "c2");
    }
    assert_eq!(t.set_marked("c1", false), 1);
    assert!(!t.is_marked("c1"));
}

// ===== estimators through the table =====

#[test]
fn ewma_takes_the_first_sample_then_smooths() {
    let mut t = ewma_table(0.9);
    t.change("f", "c1", 1.0, true).unwrap();
    t.complete("f", "c1", Overall, ms(200), secs(0.0));
    assert!(close(t.weight("f", "c1", Overall).unwrap(), 0.2));
    t.complete("f", "c1", Overall, ms(400), secs(1.0));
    let w = 0.9 * 0.2 + 0.1 * 0.4;
    assert!(close(t.weight("f", "c1", Overall).unwrap(), w));
    // Updated in both tables, whichever table the call came from.
    assert!(close(t.weight("f", "c1", Final).unwrap(), w));
}

#[test]
fn ewma_restarts_from_the_sample_after_five_seconds_without_samples() {
    let mut t = ewma_table(0.95);
    t.change("f", "c1", 1.0, true).unwrap();
    t.complete("f", "c1", Overall, ms(100), secs(0.0));
    t.complete("f", "c1", Overall, ms(300), secs(4.9));
    assert!(close(
        t.weight("f", "c1", Overall).unwrap(),
        0.95 * 0.1 + 0.05 * 0.3
    ));
    t.complete("f", "c1", Overall, ms(700), secs(9.9));
    assert!(close(t.weight("f", "c1", Overall).unwrap(), 0.7));
}

#[test]
fn failures_do_not_feed_the_estimator() {
    let mut t = ewma_table(0.5);
    t.change("f", "c1", 1.0, true).unwrap();
    t.complete("f", "c1", Overall, None, T0);
    assert_eq!(t.weight("f", "c1", Overall), Some(1.0));
}

#[test]
fn zero_latency_keeps_the_weight_positive() {
    let mut t = ewma_table(0.5);
    t.change("f", "c1", 1.0, true).unwrap();
    t.complete("f", "c1", Overall, Some(Duration::ZERO), T0);
    let w = t.weight("f", "c1", Overall).unwrap();
    assert!(w > 0.0 && w <= 1e-6, "{w}");
}

#[test]
fn periodic_sets_min_mean_or_max_of_the_period_and_keeps_w_where_none() {
    for (stat, want) in [(Stat::Min, 0.1), (Stat::Mean, 0.2), (Stat::Max, 0.4)] {
        let mut t = periodic_table(stat);
        t.change("f", "c1", 1.0, true).unwrap();
        t.change("f", "c2", 2.0, true).unwrap();
        for (at, v) in [(0.5, 100), (1.0, 400), (4.0, 100)] {
            t.complete("f", "c1", Overall, ms(v), secs(at));
        }
        // Nothing changes before the period ends.
        t.tick(secs(4.99));
        assert_eq!(t.weight("f", "c1", Overall), Some(1.0));
        t.tick(secs(5.0));
        assert!(close(t.weight("f", "c1", Final).unwrap(), want), "{stat:?}");
        // No samples for c2: it keeps its weight.
        assert_eq!(t.weight("f", "c2", Overall), Some(2.0));
        // The next period has no samples for c1 either: it keeps its new weight.
        t.tick(secs(10.0));
        assert!(close(t.weight("f", "c1", Overall).unwrap(), want));
    }
}

#[test]
fn periodic_samples_land_in_their_own_period_without_explicit_ticks() {
    let mut t = periodic_table(Stat::Max);
    t.change("f", "c1", 1.0, true).unwrap();
    t.complete("f", "c1", Overall, ms(900), secs(1.0));
    // A sample in the next period closes the first one before it is recorded.
    t.complete("f", "c1", Overall, ms(50), secs(6.0));
    assert!(close(t.weight("f", "c1", Overall).unwrap(), 0.9));
    t.tick(secs(10.0));
    assert!(close(t.weight("f", "c1", Overall).unwrap(), 0.05));
}

#[test]
fn periodic_ignores_samples_of_removed_entries() {
    let mut t = periodic_table(Stat::Min);
    t.change("f", "c1", 1.0, true).unwrap();
    t.complete("f", "c1", Overall, ms(100), secs(1.0));
    t.remove("f", "c1");
    t.change("f", "c1", 3.0, true).unwrap();
    t.tick(secs(5.0));
    assert_eq!(t.weight("f", "c1", Overall), Some(3.0));
}

#[test]
fn least_impedance_table_moves_to_the_faster_destination_as_latencies_arrive() {
    let mut t = ewma_table(0.5);
    t.change("f", "c1", 1.0, true).unwrap();
    t.change("f", "c2", 1.0, true).unwrap();
    assert_eq!(&*t.select("f", Overall, T0).unwrap(), "c1");
    t.complete("f", "c1", Overall, ms(800), T0);
    t.complete("f", "c2", Overall, ms(300), T0);
    assert_eq!(&*t.select("f", Overall, T0).unwrap(), "c2");
}

// ===== probing unmeasured entries =====

/// Answers every call to `dest` with its latency in `latencies` (ms).
fn answer(t: &mut ETable, dest: &str, table: TableKind, latencies: &[(&str, u64)], now: Time) {
    let ms_ = latencies.iter().find(|(d, _)| *d == dest).expect("known").1;
    t.complete("f", dest, table, ms(ms_), now);
}

#[test]
fn least_impedance_tries_every_new_entry_once_then_follows_the_minimum() {
    let mut t = table(PolicyKind::LeastImpedance);
    // Both at the controller's placeholder; "slow" installed first, so it wins the tie.
    t.change("f", "slow", 1.0, true).unwrap();
    t.change("f", "fast", 1.0, true).unwrap();
    let latencies = [("slow", 15), ("fast", 8)];
    let mut first = Vec::new();
    for _ in 0..2 {
        let d = t.select("f", Overall, T0).unwrap();
        answer(&mut t, &d, Overall, &latencies, T0);
        first.push(d.to_string());
    }
    // Without the probe, "fast" (still at 1.0 s) would never beat "slow" at 0.015 s.
    assert_eq!(first, ["slow", "fast"]);
    for i in 0..20 {
        let now = secs(f64::from(i) * 0.01);
        let d = t.select("f", Overall, now).unwrap();
        assert_eq!(&*d, "fast");
        answer(&mut t, &d, Overall, &latencies, now);
    }
}

#[test]
fn random_proportional_probes_unmeasured_entries_first() {
    let mut t = table(PolicyKind::RandomProportional);
    t.change("f", "c0", 1.0, true).unwrap();
    let d = t.select("f", Overall, T0).unwrap();
    t.complete("f", &d, Overall, ms(1), T0);
    // c0 now weighs 0.001 s, the new ones 1.0 s: P = 1/1001 each without the probe.
    for i in 1..10 {
        t.change("f", &format!("c{i}"), 1.0, true).unwrap();
    }
    let probed: Vec<String> = (0..9)
        .map(|_| {
            let d = t.select("f", Overall, T0).unwrap();
            t.complete("f", &d, Overall, ms(2), T0);
            d.to_string()
        })
        .collect();
    let want: Vec<String> = (1..10).map(|i| format!("c{i}")).collect();
    assert_eq!(probed, want);
    // A change of a measured entry does not probe it again; a re-added entry is new again.
    t.change("f", "c3", 5.0, true).unwrap();
    t.remove("f", "c5");
    t.change("f", "c5", 1.0, true).unwrap();
    assert_eq!(&*t.select("f", Overall, T0).unwrap(), "c5");
}

/// Round robin over "fast" (20 ms) and "slow" (30 ms) with the EWMA at alpha 0.95, where the
/// first call to "slow" paid for a cold path (100 ms, more than twice "fast"): one call in
/// flight at a time from `t = 0` until `until` s; returns (time, destination) of every call.
fn round_robin_after_a_slow_start(until: f64) -> Vec<(f64, String)> {
    let mut t = ETable::new(
        PolicyKind::RoundRobin,
        EstimatorKind::Ewma { alpha: 0.95 },
        1,
    );
    t.change("f", "fast", 1.0, true).unwrap();
    t.change("f", "slow", 1.0, true).unwrap();
    let (mut now, mut calls, mut slow_started) = (0.0, Vec::new(), false);
    while now < until {
        let d = t.select("f", Overall, secs(now)).unwrap();
        let latency = match &*d {
            "fast" => 20,
            _ if !slow_started => 100,
            _ => 30,
        };
        slow_started |= &*d == "slow";
        now += latency as f64 / 1000.0;
        t.complete("f", &d, Overall, ms(latency), secs(now));
        calls.push((now, d.to_string()));
    }
    calls
}

#[test]
fn round_robin_readmits_a_slow_starter_at_its_first_good_probe() {
    let calls = round_robin_after_a_slow_start(4.0);
    let slow: Vec<f64> = calls
        .iter()
        .filter(|(_, d)| d == "slow")
        .map(|(t, _)| *t)
        .collect();
    // Excluded after its 100 ms start (0.1 > 2 x 0.02), probed once its 1 s stale timer expired:
    // the probe's 30 ms is good, and it restarts the estimate instead of moving the 100 ms
    // weight 5 % of the way (which would keep it out until a probe 8 s later).
    let probe = slow.windows(2).find(|w| w[1] - w[0] >= 1.0).map(|w| w[1]);
    let probe = probe.unwrap_or_else(|| panic!("no probe after an idle second: slow at {slow:?}"));
    assert!(probe < 1.5, "slow at {slow:?}");
    // From then on the split follows 1/latency: 1/30 : 1/20 -> 40 % to "slow".
    let after: Vec<&String> = calls
        .iter()
        .filter(|(t, _)| *t > probe)
        .map(|(_, d)| d)
        .collect();
    let share = after.iter().filter(|d| d.as_str() == "slow").count() as f64 / after.len() as f64;
    assert!(
        (share - 0.4).abs() < 0.02,
        "slow's share after the probe {share:.3} of {}",
        after.len()
    );
}

#[test]
fn probe_is_tried_once_even_when_it_fails() {
    let mut t = table(PolicyKind::LeastImpedance);
    t.change("f", "c1", 0.5, true).unwrap();
    t.change("f", "c2", 1.0, true).unwrap();
    let d = t.select("f", Final, T0).unwrap();
    t.complete("f", &d, Final, ms(10), T0);
    assert_eq!(&*t.select("f", Final, T0).unwrap(), "c2");
    t.complete("f", "c2", Final, None, T0);
    // Probed once (failed, so unmeasured): the policy decides from now on, in both tables.
    for table in [Overall, Final] {
        assert_eq!(&*t.select("f", table, T0).unwrap(), "c1");
    }
}

#[test]
fn marked_entries_are_not_probed_while_unmarked_ones_exist() {
    for policy in PolicyKind::ALL {
        let mut t = table(policy);
        t.set_marked("m", true);
        t.change("f", "u1", 1.0, true).unwrap();
        t.change("f", "m", 1.0, true).unwrap();
        t.change("f", "u2", 1.0, true).unwrap();
        let mut seen = Vec::new();
        for i in 0..50 {
            let now = secs(f64::from(i) * 0.01);
            let d = t.select("f", Overall, now).unwrap();
            assert_ne!(&*d, "m", "{policy}");
            t.complete("f", &d, Overall, ms(10), now);
            seen.push(d.to_string());
        }
        assert_eq!(seen[..2], ["u1", "u2"], "{policy}");
        // Unmarked, it is back at its placeholder weight and gets its probe at once.
        t.set_marked("m", false);
        assert_eq!(
            &*t.select("f", Overall, secs(1.0)).unwrap(),
            "m",
            "{policy}"
        );
    }
}

// ===== random operation sequences =====

#[derive(Clone, Debug)]
enum Op {
    Change(u8, u8, f64, bool),
    Remove(u8, u8),
    RemoveDestination(u8),
    Select(u8, bool, u64, bool),
    Mark(u8, bool),
    Tick,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0u8..6, 0.001f64..5.0, any::<bool>()).prop_map(|(l, d, w, f)| Op::Change(l, d, w, f)),
        1 => (0u8..3, 0u8..6).prop_map(|(l, d)| Op::Remove(l, d)),
        1 => (0u8..6).prop_map(Op::RemoveDestination),
        8 => (0u8..4, any::<bool>(), 0u64..3_000, any::<bool>()).prop_map(|(l, f, v, ok)| Op::Select(l, f, v, ok)),
        2 => (0u8..6, any::<bool>()).prop_map(|(d, m)| Op::Mark(d, m)),
        1 => Just(Op::Tick),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    /// Random sequences of change/remove/select/complete/set_marked never panic, keep the
    /// counts right, and select only returns destinations present for that lambda (unmarked
    /// ones whenever one exists).
    #[test]
    fn random_operations_keep_the_table_consistent(
        policy in prop::sample::select(PolicyKind::ALL.to_vec()),
        periodic in any::<bool>(),
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let estimator = if periodic {
            EstimatorKind::Periodic { period: Duration::from_secs(2), stat: Stat::Mean }
        } else {
            EstimatorKind::default()
        };
        let mut t = ETable::new(policy, estimator, 9);
        // Model: lambda -> destination -> final.
        let mut model: HashMap<String, HashMap<String, bool>> = HashMap::new();
        let mut marked: HashSet<String> = HashSet::new();
        let mut now = T0;
        for op in ops {
            now = now + Duration::from_millis(300);
            match op {
                Op::Change(l, d, w, f) => {
                    t.change(&format!("l{l}"), &format!("d{d}"), w, f).unwrap();
                    model.entry(format!("l{l}")).or_default().insert(format!("d{d}"), f);
                }
                Op::Remove(l, d) => {
                    let had = model.get_mut(&format!("l{l}")).and_then(|m| m.remove(&format!("d{d}"))).is_some();
                    prop_assert_eq!(t.remove(&format!("l{l}"), &format!("d{d}")), had);
                }
                Op::RemoveDestination(d) => {
                    let n = model.values_mut().filter_map(|m| m.remove(&format!("d{d}"))).count();
                    prop_assert_eq!(t.remove_destination(&format!("d{d}")), n);
                }
                Op::Select(l, f, v, ok) => {
                    let lambda = format!("l{l}");
                    let table = if f { Final } else { Overall };
                    let here: Vec<&String> = model.get(&lambda).map(|m| {
                        m.iter().filter(|&(_, &fin)| !f || fin).map(|(d, _)| d).collect()
                    }).unwrap_or_default();
                    match t.select(&lambda, table, now) {
                        Ok(d) => {
                            prop_assert!(here.iter().any(|h| h.as_str() == &*d), "{} not in {:?}", d, here);
                            let unmarked_exists = here.iter().any(|h| !marked.contains(*h));
                            prop_assert!(!unmarked_exists || !marked.contains(&*d), "marked {} selected", d);
                            let latency = ok.then(|| Duration::from_millis(v));
                            t.complete(&lambda, &d, table, latency, now);
                            let w = t.weight(&lambda, &d, table).unwrap();
                            prop_assert!(w.is_finite() && w > 0.0);
                        }
                        Err(TableError::UnknownLambda(_)) => {
                            prop_assert!(model.get(&lambda).is_none_or(|m| m.is_empty()));
                        }
                        Err(TableError::Empty(_)) => prop_assert!(here.is_empty()),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Mark(d, m) => {
                    let dest = format!("d{d}");
                    let was = marked.contains(&dest);
                    let n = model.values().filter(|e| e.contains_key(&dest)).count();
                    let changed = t.set_marked(&dest, m);
                    prop_assert_eq!(changed, if was == m { 0 } else { n });
                    if m { marked.insert(dest); } else { marked.remove(&dest); }
                }
                Op::Tick => t.tick(now),
                Op::Flush => {
                    t.flush();
                    model.clear();
                }
            }
            model.retain(|_, m| !m.is_empty());
            let overall: usize = model.values().map(HashMap::len).sum();
            let finals: usize = model.values().flat_map(|m| m.values()).filter(|&&f| f).count();
            prop_assert_eq!(t.len(Overall), overall);
            prop_assert_eq!(t.len(Final), finals);
            prop_assert_eq!(t.entries(Overall).len(), overall);
            let mut lambdas: Vec<String> = model.keys().cloned().collect();
            lambdas.sort();
            prop_assert_eq!(t.lambdas(), lambdas);
        }
    }
}

// ===== choices: the router's per-call handles =====

#[test]
fn a_choice_names_its_destination_and_completes_it() {
    let mut t = ewma_table(0.0);
    t.change("f", "c1", 1.0, true).unwrap();
    let choice = t.choose("f", Overall, T0).unwrap();
    assert_eq!(t.destination_of("f", choice).map(|d| &**d), Some("c1"));
    t.complete_choice("f", choice, Overall, ms(250), T0);
    assert!(close(t.weight("f", "c1", Overall).unwrap(), 0.25));
}

#[test]
fn a_choice_of_a_removed_entry_does_not_touch_the_entry_reusing_its_slot() {
    let mut t = ewma_table(0.0);
    t.change("f", "c1", 1.0, true).unwrap();
    t.change("f", "keep", 1.0, true).unwrap();
    let stale = t.choose("f", Overall, T0).unwrap();
    assert_eq!(t.destination_of("f", stale).map(|d| &**d), Some("c1"));
    assert!(t.remove("f", "c1"));
    // c2 takes the freed slot of c1.
    t.change("f", "c2", 1.0, true).unwrap();
    assert_eq!(t.destination_of("f", stale), None);
    t.complete_choice("f", stale, Overall, ms(10), T0);
    assert!(close(t.weight("f", "c2", Overall).unwrap(), 1.0));
}

/// The destination p2c picks for `f` after c1 answered in 1.0 s then 0.2 s, c2 in 0.7 s twice,
/// one second apart, with the table running `estimator`.
fn p2c_pick_after_the_same_latencies(estimator: EstimatorKind) -> (String, f64, f64) {
    let mut t = ETable::new(PolicyKind::PowerOfTwo, estimator, 1);
    t.change("f", "c1", 1.0, true).unwrap();
    t.change("f", "c2", 1.0, true).unwrap();
    for (at, c1, c2) in [(0.0, 1_000, 700), (1.0, 200, 700)] {
        for (d, latency) in [("c1", c1), ("c2", c2)] {
            t.complete("f", d, Overall, ms(latency), secs(at));
        }
    }
    let w = |d| t.weight("f", d, Overall).unwrap();
    let (w1, w2) = (w("c1"), w("c2"));
    (
        t.select("f", Overall, secs(1.0)).unwrap().to_string(),
        w1,
        w2,
    )
}

#[test]
fn power_of_two_choices_ranks_by_the_tables_estimator() {
    // EWMA alpha 0.5: c1 = 0.5 x 1.0 + 0.5 x 0.2 = 0.6 beats c2's 0.7.
    let (pick, w1, w2) = p2c_pick_after_the_same_latencies(EstimatorKind::Ewma { alpha: 0.5 });
    assert!(close(w1, 0.6) && close(w2, 0.7), "{w1} {w2}");
    assert_eq!(pick, "c1");
    // Peak EWMA (10 s): c1 keeps most of its 1.0 s peak one second later, so c2 wins.
    let (pick, w1, w2) =
        p2c_pick_after_the_same_latencies(PolicyKind::PowerOfTwo.default_estimator());
    let d = (-0.1f64).exp();
    assert!(
        close(w1, d + 0.2 * (1.0 - d)) && close(w2, 0.7),
        "{w1} {w2}"
    );
    assert_eq!(pick, "c2");
}

#[test]
fn every_policy_counts_the_calls_in_flight_per_entry() {
    for kind in PolicyKind::ALL {
        let mut t = table(kind);
        t.change("f", "c1", 1.0, true).unwrap();
        let a = t.choose("f", Overall, T0).unwrap();
        let b = t.choose("f", Final, T0).unwrap();
        let in_flight = |t: &ETable| t.entries(Overall)[0].in_flight;
        assert_eq!(in_flight(&t), 2, "{kind}");
        t.complete_choice("f", a, Overall, ms(5), T0);
        assert_eq!(in_flight(&t), 1, "{kind}");
        t.complete_choice("f", b, Final, None, T0);
        assert_eq!(in_flight(&t), 0, "{kind}");
        // A choice whose entry was removed and installed again is not the new entry's call.
        let c = t.choose("f", Overall, T0).unwrap();
        t.remove("f", "c1");
        t.change("f", "c1", 1.0, true).unwrap();
        t.complete_choice("f", c, Overall, ms(5), T0);
        let d = t.choose("f", Overall, T0).unwrap();
        assert_eq!(in_flight(&t), 1, "{kind}");
        t.complete_choice("f", d, Overall, ms(5), T0);
        assert_eq!(in_flight(&t), 0, "{kind}");
    }
}
