//! The delay line under an injected clock: what it holds, drops and releases, and when.

use std::time::Duration;

use lambdaroute_netem::{Admission, DelayLine, QueueSpec, SpecError};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn spec(queue: u16, delay_ms: u64, loss: f64) -> QueueSpec {
    QueueSpec {
        queue,
        delay: ms(delay_ms),
        loss,
    }
}

#[test]
fn a_packet_is_released_exactly_its_delay_after_arrival() {
    let mut line = DelayLine::new(&[spec(1, 20, 0.0)], 1).unwrap();
    assert_eq!(
        line.admit(1, ms(5), "p"),
        Admission::Held { release: ms(25) }
    );
    assert_eq!(line.next_release(), Some(ms(25)));
    let mut out = Vec::new();
    line.release_due(ms(24), &mut out);
    assert!(out.is_empty(), "released 1 ms early");
    line.release_due(ms(25), &mut out);
    assert_eq!(out, ["p"]);
    assert!(line.is_empty());
    assert_eq!(line.next_release(), None);
}

#[test]
fn a_queue_releases_its_packets_in_arrival_order() {
    let mut line = DelayLine::new(&[spec(1, 10, 0.0)], 1).unwrap();
    for i in 0..100u64 {
        line.admit(1, Duration::from_micros(i * 37), i);
    }
    let mut out = Vec::new();
    // Step the clock unevenly; order must hold whatever the step.
    let mut now = Duration::ZERO;
    while !line.is_empty() {
        now += Duration::from_micros(333);
        line.release_due(now, &mut out);
    }
    assert_eq!(out, (0..100).collect::<Vec<_>>());
}

#[test]
fn queues_of_different_delays_interleave_by_due_time() {
    let mut line = DelayLine::new(&[spec(1, 30, 0.0), spec(2, 5, 0.0)], 1).unwrap();
    line.admit(1, ms(0), "slow-0"); // due 30
    line.admit(2, ms(1), "fast-1"); // due 6
    line.admit(1, ms(2), "slow-2"); // due 32
    line.admit(2, ms(26), "fast-26"); // due 31
    assert_eq!(line.next_release(), Some(ms(6)));
    let mut out = Vec::new();
    line.release_due(ms(31), &mut out);
    assert_eq!(out, ["fast-1", "slow-0", "fast-26"]);
    out.clear();
    line.drain(&mut out);
    assert_eq!(out, ["slow-2"]);
}

#[test]
fn loss_drops_about_its_fraction_and_the_same_seed_drops_the_same_packets() {
    let run = |seed| {
        let mut line = DelayLine::new(&[spec(7, 1, 0.2)], seed).unwrap();
        (0..10_000u32)
            .filter(|&i| matches!(line.admit(7, ms(i.into()), i), Admission::Dropped(_)))
            .collect::<Vec<_>>()
    };
    let a = run(42);
    assert!(
        (1_800..=2_200).contains(&a.len()),
        "dropped {} of 10000 at 20 %",
        a.len()
    );
    assert_eq!(a, run(42), "same seed, same drops");
    assert_ne!(a, run(43), "another seed, other drops");
}

#[test]
fn a_lossless_queue_never_drops_and_counts_what_it_held() {
    let mut line = DelayLine::new(&[spec(1, 0, 0.0), spec(2, 0, 1.0)], 3).unwrap();
    for i in 0..50 {
        assert!(matches!(line.admit(1, ms(i), i), Admission::Held { .. }));
        assert!(matches!(line.admit(2, ms(i), i), Admission::Dropped(_)));
    }
    let stats = line.stats();
    assert_eq!((stats[0].held, stats[0].dropped), (50, 0));
    assert_eq!((stats[1].held, stats[1].dropped), (0, 50));
}

#[test]
fn a_packet_of_an_unknown_queue_is_handed_back() {
    let mut line = DelayLine::new(&[spec(1, 10, 0.0)], 1).unwrap();
    assert_eq!(line.admit(9, ms(0), "x"), Admission::Unknown("x"));
    assert!(line.is_empty());
}

#[test]
fn specs_parse_and_bad_ones_say_what_is_expected() {
    assert_eq!("3:20".parse::<QueueSpec>().unwrap(), spec(3, 20, 0.0));
    let lossy: QueueSpec = "4:0.5:1.5".parse().unwrap();
    assert_eq!(lossy.delay, Duration::from_micros(500));
    assert!((lossy.loss - 0.015).abs() < 1e-12);
    for bad in [
        "3", "3:20:1:2", "x:20", "70000:1", "3:-1", "3:20:101", "3:nan",
    ] {
        let e = bad.parse::<QueueSpec>().unwrap_err().to_string();
        assert!(e.starts_with(&format!("`{bad}`")), "{bad}: {e}");
    }
    assert!(matches!(
        DelayLine::<()>::new(&[spec(1, 1, 0.0), spec(1, 2, 0.0)], 1),
        Err(SpecError::Duplicate { queue: 1 })
    ));
    assert!(matches!(
        DelayLine::<()>::new(&[], 1),
        Err(SpecError::Empty)
    ));
}
