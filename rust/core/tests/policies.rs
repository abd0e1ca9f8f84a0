//! Behaviour of the five dispatch policies, driven directly through the `Policy` trait with an
//! explicit clock.

use std::collections::HashSet;
use std::time::Duration;

use lambdaroute_core::clock::Time;
use lambdaroute_core::policy::{
    Fairness, LeastImpedance, Policy, PolicyKind, PowerOfTwo, ProportionalFairness,
    RandomProportional, RoundRobin, new_policy,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

const T0: Time = Time::ZERO;

fn rng() -> SmallRng {
    SmallRng::seed_from_u64(7)
}

fn secs(s: f64) -> Time {
    Time::from_secs_f64(s)
}

fn counts(p: &mut dyn Policy, n: usize, draws: usize, rng: &mut SmallRng) -> Vec<usize> {
    let mut c = vec![0; n];
    for _ in 0..draws {
        c[p.select(T0, rng).expect("non-empty")] += 1;
    }
    c
}

/// Pearson's chi-square statistic of `observed` against probabilities proportional to 1/w.
fn chi_square(observed: &[usize], weights: &[f64]) -> f64 {
    let total: usize = observed.iter().sum();
    let inv: f64 = weights.iter().map(|w| 1.0 / w).sum();
    observed
        .iter()
        .zip(weights)
        .map(|(&o, w)| {
            let e = total as f64 * (1.0 / w) / inv;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

// ===== PolicyKind =====

#[test]
fn policy_kind_parses_short_and_long_names_and_displays_short_ones() {
    for (names, kind) in [
        (
            ["rp", "random-proportional"],
            PolicyKind::RandomProportional,
        ),
        (["li", "least-impedance"], PolicyKind::LeastImpedance),
        (["rr", "round-robin"], PolicyKind::RoundRobin),
        (["p2c", "power-of-two"], PolicyKind::PowerOfTwo),
        (
            ["pf", "proportional-fairness"],
            PolicyKind::ProportionalFairness(Fairness::DEFAULT),
        ),
    ] {
        for name in names {
            assert_eq!(name.parse::<PolicyKind>().unwrap(), kind);
        }
        assert_eq!(kind.to_string(), names[0]);
        assert_eq!(kind.to_string().parse::<PolicyKind>().unwrap(), kind);
    }
    let err = "fastest".parse::<PolicyKind>().unwrap_err().to_string();
    assert!(err.contains("fastest") && err.contains("p2c") && err.contains("round-robin"));
}

#[test]
fn every_policy_is_empty_until_inserted_and_after_removal() {
    let mut rng = rng();
    for kind in PolicyKind::ALL {
        let mut p = new_policy(kind);
        assert_eq!(p.select(T0, &mut rng), None, "{kind}");
        p.insert(3, 1.0, T0);
        assert_eq!(p.len(), 1);
        assert_eq!(p.select(T0, &mut rng), Some(3), "{kind}");
        p.on_complete(3, Some(Duration::from_millis(5)), T0);
        p.remove(3);
        assert!(p.is_empty());
        assert_eq!(p.select(T0, &mut rng), None, "{kind}");
    }
}

// ===== random proportional =====

#[test]
fn random_proportional_frequencies_follow_inverse_weights() {
    let weights = [1.0, 2.0, 4.0];
    let mut p = RandomProportional::new();
    for (slot, &w) in weights.iter().enumerate() {
        p.insert(slot, w, T0);
    }
    let c = counts(&mut p, 3, 100_000, &mut rng());
    // 2 degrees of freedom: P(chi2 > 13.8) = 0.001.
    assert!(chi_square(&c, &weights) < 13.8, "counts {c:?}");
    // And the shares 4/7, 2/7, 1/7 within 1%.
    for (o, e) in c.iter().zip([4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]) {
        assert!((*o as f64 / 100_000.0 - e).abs() < 0.01, "counts {c:?}");
    }
}

#[test]
fn random_proportional_follows_weight_updates_and_removals() {
    let mut p = RandomProportional::new();
    for slot in 0..5 {
        p.insert(slot, 1.0, T0);
    }
    p.remove(1);
    p.remove(3);
    p.set_weight(0, 0.5, T0);
    p.set_weight(4, 2.0, T0);
    let c = counts(&mut p, 5, 70_000, &mut rng());
    assert_eq!((c[1], c[3]), (0, 0), "removed slots selected: {c:?}");
    let observed = [c[0], c[2], c[4]];
    assert!(
        chi_square(&observed, &[0.5, 1.0, 2.0]) < 13.8,
        "counts {c:?}"
    );
}

#[test]
fn random_proportional_handles_slots_far_apart() {
    let mut p = RandomProportional::new();
    p.insert(1000, 1.0, T0);
    p.insert(2, 1.0, T0);
    let c = counts(&mut p, 1001, 20_000, &mut rng());
    assert_eq!(c[1000] + c[2], 20_000);
    assert!((c[1000] as f64 - 10_000.0).abs() < 500.0, "{}", c[1000]);
}

#[test]
fn random_proportional_frequencies_follow_inverse_weights_across_tree_nodes() {
    // 40 destinations span three 16-wide leaf nodes and two levels of the sum tree.
    let weights: Vec<f64> = (1..=40).map(|i| 0.5 + f64::from(i % 7)).collect();
    let mut p = RandomProportional::new();
    for (slot, &w) in weights.iter().enumerate() {
        p.insert(slot, w, T0);
    }
    // Updates in between: the partial sums must follow them.
    for (slot, &w) in weights.iter().enumerate() {
        p.set_weight(slot, 2.0 * w, T0);
        p.set_weight(slot, w, T0);
    }
    let c = counts(&mut p, 40, 200_000, &mut rng());
    // 39 degrees of freedom: P(chi2 > 72.1) = 0.001.
    assert!(chi_square(&c, &weights) < 72.1, "counts {c:?}");
}

// ===== least impedance =====

#[test]
fn least_impedance_follows_the_minimum_through_weight_updates() {
    let mut p = LeastImpedance::new();
    let mut rng = rng();
    p.insert(0, 3.0, T0);
    p.insert(1, 2.0, T0);
    p.insert(2, 5.0, T0);
    assert_eq!(p.select(T0, &mut rng), Some(1));
    p.set_weight(2, 0.5, T0);
    assert_eq!(p.select(T0, &mut rng), Some(2));
    p.set_weight(2, 9.0, T0);
    assert_eq!(p.select(T0, &mut rng), Some(1));
    p.set_weight(1, 3.5, T0);
    assert_eq!(p.select(T0, &mut rng), Some(0));
}

#[test]
fn least_impedance_follows_the_minimum_through_removal() {
    let mut p = LeastImpedance::new();
    let mut rng = rng();
    for (slot, w) in [(0, 4.0), (1, 1.0), (2, 2.0)] {
        p.insert(slot, w, T0);
    }
    assert_eq!(p.select(T0, &mut rng), Some(1));
    p.remove(1);
    assert_eq!(p.select(T0, &mut rng), Some(2));
    p.remove(2);
    assert_eq!(p.select(T0, &mut rng), Some(0));
}

#[test]
fn least_impedance_ties_go_to_the_first_installed() {
    let mut p = LeastImpedance::new();
    let mut rng = rng();
    // Slot numbers in the opposite order of installation.
    p.insert(5, 1.0, T0);
    p.insert(2, 1.0, T0);
    p.insert(0, 1.0, T0);
    assert_eq!(p.select(T0, &mut rng), Some(5));
    // Moving away and back keeps the installation order.
    p.set_weight(5, 2.0, T0);
    assert_eq!(p.select(T0, &mut rng), Some(2));
    p.set_weight(5, 1.0, T0);
    assert_eq!(p.select(T0, &mut rng), Some(5));
}

// ===== round robin =====

fn round_robin_with(weights: &[f64]) -> RoundRobin {
    let mut p = RoundRobin::new();
    for (slot, &w) in weights.iter().enumerate() {
        p.insert(slot, w, T0);
    }
    p
}

/// Checks every window of `round` consecutive selections against the 1/w shares (+-1).
fn assert_fair_in_every_window(weights: &[f64], round: usize, draws: usize) {
    let mut p = round_robin_with(weights);
    let mut rng = rng();
    let picks: Vec<usize> = (0..draws)
        .map(|_| p.select(T0, &mut rng).unwrap())
        .collect();
    let inv: f64 = weights.iter().map(|w| 1.0 / w).sum();
    for (start, window) in picks.windows(round).enumerate() {
        for (slot, w) in weights.iter().enumerate() {
            let count = window.iter().filter(|&&s| s == slot).count() as f64;
            let share = round as f64 * (1.0 / w) / inv;
            assert!(
                (count - share).abs() <= 1.0 + 1e-9,
                "weights {weights:?}: window at {start} gives slot {slot} {count}, share {share}"
            );
        }
    }
}

#[test]
fn round_robin_is_fair_in_every_window() {
    // One round: every destination gets its 1/w share (4, 2, 1 calls in 7).
    assert_fair_in_every_window(&[1.0, 2.0, 4.0], 7, 7_000);
    assert_fair_in_every_window(&[1.0, 1.0, 1.0], 3, 3_000);
    assert_fair_in_every_window(&[0.02, 0.03], 5, 5_000);
    assert_fair_in_every_window(&[1.0, 2.0, 2.0, 4.0], 9, 9_000);
}

#[test]
fn round_robin_matches_inverse_weight_shares_in_the_long_term() {
    let weights = [1.0, 1.3, 1.7, 1.9, 1.1];
    let mut p = round_robin_with(&weights);
    let c = counts(&mut p, 5, 100_000, &mut rng());
    let inv: f64 = weights.iter().map(|w| 1.0 / w).sum();
    for (slot, w) in weights.iter().enumerate() {
        let share = 100_000.0 * (1.0 / w) / inv;
        assert!(
            (c[slot] as f64 - share).abs() <= 1.5,
            "slot {slot}: {} vs {share}",
            c[slot]
        );
    }
}

proptest! {
    /// Short-term fairness for any weights: the service n_i * w_i of two active destinations
    /// never differs by more than one call's worth (w_i) after any number of selections.
    #[test]
    fn round_robin_service_lag_is_at_most_one_call(
        weights in prop::collection::vec(1.0f64..2.0, 2..8),
        draws in 1usize..400,
    ) {
        let mut p = round_robin_with(&weights);
        let mut rng = rng();
        let mut n = vec![0usize; weights.len()];
        for _ in 0..draws {
            n[p.select(T0, &mut rng).unwrap()] += 1;
            for i in 0..weights.len() {
                for j in 0..weights.len() {
                    let lag = n[i] as f64 * weights[i] - n[j] as f64 * weights[j];
                    prop_assert!(lag <= weights[i] + 1e-9, "n {:?} weights {:?}", n, weights);
                }
            }
        }
    }
}

#[test]
fn round_robin_new_destination_starts_at_the_minimum_deficit() {
    let mut p = round_robin_with(&[1.0, 1.0]);
    let mut rng = rng();
    for _ in 0..1_000 {
        p.select(T0, &mut rng);
    }
    p.insert(2, 1.0, T0);
    // No burst to catch up on 1,000 missed turns: an equal share from the start.
    let picks: Vec<usize> = (0..30).map(|_| p.select(T0, &mut rng).unwrap()).collect();
    for window in picks.windows(3) {
        let distinct: HashSet<_> = window.iter().collect();
        assert_eq!(distinct.len(), 3, "picks {picks:?}");
    }
}

/// Drives a round robin over a fast destination (slot 0, w = 1) and a slow one (slot 1, w = 5)
/// with `now` advancing 10 ms per call, answering every probe of slot 1 with `probe_weight(k)`
/// for its k-th probe; returns the times at which slot 1 was selected.
fn probe_times(until: f64, probe_weight: impl Fn(usize) -> f64) -> (RoundRobin, Vec<f64>) {
    let mut p = round_robin_with(&[1.0, 5.0]);
    let mut rng = rng();
    let mut times = Vec::new();
    let mut t = 0.0;
    while t < until {
        let now = secs(t);
        let slot = p.select(now, &mut rng).unwrap();
        // A call's latency is its destination's weight (the estimator's last word on it).
        let mut latency = 1.0;
        if slot == 1 {
            times.push(t);
            latency = probe_weight(times.len());
            p.set_weight(1, latency, now);
        }
        p.on_complete(slot, Some(Duration::from_secs_f64(latency)), now);
        t += 0.01;
    }
    (p, times)
}

#[test]
fn round_robin_probes_an_excluded_destination_with_a_doubling_stale_timer() {
    let (p, times) = probe_times(130.0, |_| 5.0);
    // Selected once as a new destination, then excluded (5 > 2 x 1) and probed after
    // 1, 2, 4, 8, 16 s, then every 30 s.
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let expected = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0];
    assert!(gaps.len() >= expected.len(), "times {times:?}");
    // The first gap also holds the fast destination's turns before slot 1 reached the front
    // of the active set and was evicted (deficit 5 = six 10 ms calls).
    assert!((gaps[0] - 1.06).abs() < 0.005, "gaps {gaps:?}");
    for (gap, want) in gaps.iter().zip(expected).skip(1) {
        assert!((gap - want).abs() < 0.005, "gaps {gaps:?}");
    }
    assert!(!p.is_active(1));
}

#[test]
fn round_robin_good_probe_resets_the_stale_timer_and_rejoins() {
    // Probes 1-3 bad, probe 4 good (1.5 <= 2 x 1): back in the active set, selected in
    // proportion; then bad again (w = 5): excluded again and probed after 1 s.
    let mut p = round_robin_with(&[1.0, 5.0]);
    let mut rng = rng();
    let mut t = 0.0;
    let mut probes = 0;
    let mut rejoined_at = None;
    let mut picks_after_rejoin = Vec::new();
    while t < 40.0 {
        let now = secs(t);
        let slot = p.select(now, &mut rng).unwrap();
        if slot == 1 && rejoined_at.is_none() {
            probes += 1;
            let w = if probes == 5 { 1.5 } else { 5.0 };
            p.set_weight(1, w, now);
            p.on_complete(1, Some(Duration::from_secs_f64(w)), now);
            if probes == 5 {
                assert!(p.is_active(1));
                rejoined_at = Some(t);
            }
        } else if rejoined_at.is_some() && picks_after_rejoin.len() < 500 {
            picks_after_rejoin.push(slot);
            p.on_complete(slot, Some(Duration::from_millis(10)), now);
        } else {
            p.on_complete(slot, Some(Duration::from_millis(10)), now);
        }
        if picks_after_rejoin.len() == 500 {
            break;
        }
        t += 0.01;
    }
    // 1/1.5 : 1/1 = 2 : 3 -> 200 of 500.
    let ones = picks_after_rejoin.iter().filter(|&&s| s == 1).count();
    assert!((ones as i64 - 200).abs() <= 1, "slot 1 got {ones} of 500");

    // Slow again: evicted when it reaches the front, stale timer back at 1 s.
    let now = secs(t);
    p.set_weight(1, 5.0, now);
    let mut evicted_at = None;
    for k in 0..10 {
        let now = secs(t + 0.001 * f64::from(k));
        p.select(now, &mut rng);
        if let Some(expiry) = p.stale_timer(1) {
            evicted_at = Some((now, expiry));
            break;
        }
    }
    let (at, expiry) = evicted_at.expect("slot 1 evicted");
    assert_eq!(expiry - at, Duration::from_secs(1));
}

#[test]
fn round_robin_readmits_excluded_destinations_when_the_minimum_grows() {
    let mut p = round_robin_with(&[1.0, 3.0]);
    let mut rng = rng();
    for _ in 0..10 {
        p.select(T0, &mut rng);
    }
    assert!(!p.is_active(1));
    // The fast one slows down to 2: 3 <= 2 x 2, slot 1 is back without waiting for a probe.
    p.set_weight(0, 2.0, T0);
    assert!(p.is_active(1));
    let c = counts(&mut p, 2, 500, &mut rng);
    assert!((c[1] as i64 - 200).abs() <= 1, "counts {c:?}");
}

#[test]
fn round_robin_always_selects_when_not_empty() {
    let mut p = round_robin_with(&[1.0, 10.0]);
    let mut rng = rng();
    for _ in 0..5 {
        p.select(T0, &mut rng);
    }
    // The only fast destination goes away while the slow one waits for its timer.
    p.remove(0);
    assert_eq!(p.select(T0, &mut rng), Some(1));
}

// ===== power of two choices =====

#[test]
fn p2c_prefers_the_lower_cost() {
    let mut p = PowerOfTwo::new();
    let mut rng = rng();
    p.insert(0, 3.0, T0);
    p.insert(1, 1.0, T0);
    for _ in 0..1_000 {
        let slot = p.select(T0, &mut rng).unwrap();
        assert_eq!(slot, 1);
        p.on_complete(slot, Some(Duration::from_secs(1)), T0);
    }
    // Among three, the worst one is never picked: it loses every pair it is drawn in.
    p.insert(2, 2.0, T0);
    for _ in 0..1_000 {
        let slot = p.select(T0, &mut rng).unwrap();
        assert_ne!(slot, 0);
        p.on_complete(slot, None, T0);
    }
}

#[test]
fn p2c_spreads_by_in_flight() {
    let mut p = PowerOfTwo::new();
    let mut rng = rng();
    p.insert(0, 1.0, T0);
    p.insert(1, 2.0, T0);
    // Nothing completes: costs 1 x (a + 1) vs 2 x (b + 1) balance at a + 1 = 2 (b + 1).
    for _ in 0..30 {
        p.select(T0, &mut rng);
    }
    assert_eq!(p.in_flight(0), Some(20));
    assert_eq!(p.in_flight(1), Some(10));
    for _ in 0..10 {
        p.on_complete(0, None, T0);
    }
    assert_eq!(p.in_flight(0), Some(10));
    assert_eq!(p.select(T0, &mut rng), Some(0));
}

#[test]
fn p2c_cost_is_the_tables_weight_times_in_flight_plus_one() {
    let mut p = PowerOfTwo::new();
    let mut rng = rng();
    p.insert(0, 0.1, T0);
    p.select(T0, &mut rng);
    assert_eq!(p.cost(0, T0), Some(0.2), "0.1 s x (1 in flight + 1)");
    // The latency reaches the policy only through the table's estimator (`set_weight`):
    // completing a call changes the in-flight count, never the weight.
    p.on_complete(0, Some(Duration::from_secs(2)), T0);
    assert_eq!(p.cost(0, T0), Some(0.1));
    p.set_weight(0, 2.0, T0);
    assert_eq!(p.cost(0, T0), Some(2.0));
    p.set_weight(0, 0.5, T0);
    assert_eq!(
        p.cost(0, T0),
        Some(0.5),
        "every weight counts, also after samples"
    );
}

#[test]
fn p2c_reads_a_weight_decayed_toward_zero_while_no_new_one_arrives() {
    let mut p = PowerOfTwo::new();
    p.insert(0, 2.0, T0);
    let d = (-1.0f64).exp();
    assert!((p.cost(0, secs(10.0)).unwrap() - 2.0 * d).abs() < 1e-12);
    p.set_weight(0, 2.0, secs(10.0));
    assert_eq!(
        p.cost(0, secs(10.0)),
        Some(2.0),
        "a new weight restarts the decay"
    );
}

#[test]
fn p2c_retries_a_destination_that_was_slow_once_after_it_idled() {
    // Slot 1 is 20x slower than slot 0 by its last weight: p2c avoids it while slot 0 is
    // idle; after a minute without news its cost has decayed below slot 0's fresh one.
    let mut p = PowerOfTwo::new();
    let mut rng = rng();
    p.insert(0, 0.1, T0);
    p.insert(1, 2.0, T0);
    for _ in 0..20 {
        let s = p.select(T0, &mut rng).unwrap();
        assert_eq!(s, 0);
        p.on_complete(s, Some(Duration::from_millis(100)), T0);
    }
    let later = secs(60.0);
    p.set_weight(0, 0.1, later);
    assert_eq!(p.select(later, &mut rng), Some(1));
}

// ===== proportional fairness =====

fn pf(alpha: f64, beta: f64) -> ProportionalFairness {
    ProportionalFairness::new(Fairness::new(alpha, beta).unwrap())
}

#[test]
fn pf_parses_its_exponents_and_prints_them_when_not_the_default() {
    let kind: PolicyKind = "pf:0.5:2".parse().unwrap();
    assert_eq!(
        kind,
        PolicyKind::ProportionalFairness(Fairness::new(0.5, 2.0).unwrap())
    );
    assert_eq!(kind.to_string(), "pf:0.5:2");
    assert_eq!(kind.to_string().parse::<PolicyKind>().unwrap(), kind);
    assert_eq!(
        "proportional-fairness:1:1"
            .parse::<PolicyKind>()
            .unwrap()
            .to_string(),
        "pf"
    );
    for bad in ["pf:1", "pf:a:1", "pf:-1:1", "pf:1:1:1", "rr:1:1"] {
        assert!(bad.parse::<PolicyKind>().is_err(), "{bad}");
    }
}

#[test]
fn pf_priority_is_upstreams_quotient() {
    // (1/w)^alpha / (served / (now - stamp))^beta, served 1 and stamp = installation at first.
    let mut p = pf(2.0, 0.5);
    p.insert(4, 0.1, secs(1.0));
    let got = p.priority(4, secs(5.0)).unwrap();
    let want = (1.0f64 / 0.1).powf(2.0) / (1.0f64 / 4.0).powf(0.5);
    assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
    // A success counts one more served call and restarts the time from now.
    p.on_complete(4, Some(Duration::from_millis(100)), secs(6.0));
    assert_eq!(p.served(4), Some(2));
    let got = p.priority(4, secs(8.0)).unwrap();
    let want = 100.0 / (2.0f64 / 2.0).powf(0.5);
    assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
    // A failure changes nothing.
    p.on_complete(4, None, secs(7.0));
    assert_eq!(p.served(4), Some(2));
    // Just served: infinite rate, priority zero.
    assert_eq!(p.priority(4, secs(6.0)), Some(0.0));
}

#[test]
fn pf_with_alpha_1_beta_0_is_least_impedance() {
    let mut p = pf(1.0, 0.0);
    let mut rng = rng();
    p.insert(0, 3.0, T0);
    p.insert(1, 1.0, T0);
    p.insert(2, 2.0, T0);
    for i in 1..100 {
        let now = secs(f64::from(i) * 0.01);
        let slot = p.select(now, &mut rng).unwrap();
        assert_eq!(slot, 1);
        p.on_complete(slot, Some(Duration::from_millis(10)), now);
    }
}

#[test]
fn pf_with_alpha_0_beta_1_takes_turns() {
    // Equal weights, one call at a time, 10 ms each: the destination that waited longest
    // since its last success (relative to its count) goes next, as round robin would.
    let mut p = pf(0.0, 1.0);
    let mut rng = rng();
    for slot in 0..3 {
        p.insert(slot, 1.0, T0);
    }
    let mut count = [0usize; 3];
    for i in 1..=300 {
        let now = secs(f64::from(i) * 0.01);
        let slot = p.select(now, &mut rng).unwrap();
        count[slot] += 1;
        p.on_complete(slot, Some(Duration::from_millis(10)), now);
    }
    assert!(count.iter().all(|&c| c == 100), "{count:?}");
}

#[test]
fn pf_gives_a_faster_destination_more_calls_but_not_all() {
    let mut p = pf(1.0, 1.0);
    let mut rng = rng();
    p.insert(0, 0.010, T0);
    p.insert(1, 0.030, T0);
    let mut count = [0usize; 2];
    for i in 1..=1_000 {
        let now = secs(f64::from(i) * 0.005);
        let slot = p.select(now, &mut rng).unwrap();
        count[slot] += 1;
        p.on_complete(slot, Some(Duration::from_millis(10)), now);
    }
    // 3x faster by weight, yet the one just served yields: 600 against 400 here.
    assert!(count[0] > count[1] && count[1] > 0, "{count:?}");
}

#[test]
fn pf_ties_and_zero_priorities_go_to_the_first_installed() {
    let mut p = pf(1.0, 1.0);
    let mut rng = rng();
    p.insert(5, 1.0, T0);
    p.insert(2, 1.0, T0);
    // Every priority is zero at the installation instant.
    assert_eq!(p.select(T0, &mut rng), Some(5));
    // Equal priorities later: still the first installed.
    assert_eq!(p.select(secs(1.0), &mut rng), Some(5));
    p.remove(5);
    assert_eq!(p.select(secs(1.0), &mut rng), Some(2));
    p.insert(5, 1.0, T0);
    assert_eq!(p.select(secs(1.0), &mut rng), Some(2));
}

// ===== all policies =====

proptest! {
    /// Random inserts, removals, weight updates, selections and completions: a policy only
    /// ever selects a present slot, and selects one whenever it holds any.
    #[test]
    fn every_policy_selects_only_present_slots(
        kind in prop::sample::select(PolicyKind::ALL.to_vec()),
        ops in prop::collection::vec((0u8..5, 0usize..12, 0.001f64..10.0, 0.0f64..50.0), 1..200),
    ) {
        let mut p = new_policy(kind);
        let mut present = HashSet::new();
        let mut rng = rng();
        let mut t = 0.0f64;
        for (op, slot, w, dt) in ops {
            t += dt;
            let now = secs(t);
            match op {
                0 | 1 => if present.insert(slot) { p.insert(slot, w, now) },
                2 => { present.remove(&slot); p.remove(slot) },
                3 => p.set_weight(slot, w, now),
                _ => {
                    let got = p.select(now, &mut rng);
                    match got {
                        None => prop_assert!(present.is_empty()),
                        Some(s) => {
                            prop_assert!(present.contains(&s), "{} selected absent slot {}", kind, s);
                            let latency = (slot % 3 != 0).then(|| Duration::from_secs_f64(w));
                            if latency.is_some() { p.set_weight(s, w, now) }
                            p.on_complete(s, latency, now);
                        }
                    }
                }
            }
            prop_assert_eq!(p.len(), present.len());
        }
    }
}

#[test]
fn round_robin_judges_a_probe_by_its_latency_not_by_the_weight_it_left_with() {
    // Slot 1 left the active set at w = 5; its weight is not updated by the probe (as with the
    // periodic estimator until its period closes), but the probe answered in 1.5 <= 2 x 1.
    let (mut p, times) = probe_times(1.5, |_| 5.0);
    assert_eq!(
        times.len(),
        2,
        "the first call, then the probe after 1 s: {times:?}"
    );
    let mut rng = rng();
    let mut probed = false;
    for k in 0..200 {
        let now = secs(2.0 + 0.01 * f64::from(k));
        if p.select(now, &mut rng) == Some(1) {
            assert!(p.is_probing(1));
            p.on_complete(1, Some(Duration::from_secs_f64(1.5)), now);
            probed = true;
            break;
        }
        p.on_complete(0, Some(Duration::from_secs(1)), now);
    }
    assert!(probed && p.is_active(1) && p.stale_timer(1).is_none());
}
