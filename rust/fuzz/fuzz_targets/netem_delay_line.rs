//! The delay element's packet path: queue specifications as given on the command line, then
//! packets of arbitrary queues arriving at increasing times (as `origin.elapsed()` gives them)
//! and releases at arbitrary times. Every held packet comes out exactly once, never before it
//! is due, in due order; the counters add up.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use lambdaroute_netem::delay_line::{Admission, DelayLine, QueueSpec};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Step {
    /// A packet of `queue` arrives `after_us` after the previous step.
    Packet { queue: u16, after_us: u32 },
    /// The loop wakes `after_us` after the previous step and releases what is due.
    Release { after_us: u32 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    specs: Vec<String>,
    seed: u64,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let specs: Vec<QueueSpec> = input.specs.iter().filter_map(|s| s.parse().ok()).collect();
    for spec in &specs {
        // What parses prints back to the same queue.
        let again: QueueSpec = spec.to_string().parse().expect("a spec's own text parses");
        assert_eq!(again.queue, spec.queue);
    }
    let Ok(mut line) = DelayLine::<u64>::new(&specs, input.seed) else {
        return;
    };
    let mut now = Duration::ZERO;
    let mut next_packet = 0u64;
    let mut held: Vec<(Duration, u64)> = Vec::new();
    let mut out = Vec::new();
    let (mut admitted, mut dropped, mut unknown) = (0u64, 0u64, 0u64);
    for step in input.steps {
        match step {
            Step::Packet { queue, after_us } => {
                now += Duration::from_micros(u64::from(after_us));
                let packet = next_packet;
                next_packet += 1;
                match line.admit(queue, now, packet) {
                    Admission::Held { release } => {
                        assert!(release >= now);
                        held.push((release, packet));
                        admitted += 1;
                    }
                    Admission::Dropped(p) => {
                        assert_eq!(p, packet);
                        dropped += 1;
                    }
                    Admission::Unknown(p) => {
                        assert_eq!(p, packet);
                        unknown += 1;
                    }
                }
            }
            Step::Release { after_us } => {
                now += Duration::from_micros(u64::from(after_us));
                out.clear();
                line.release_due(now, &mut out);
                for packet in &out {
                    let i = held
                        .iter()
                        .position(|(_, p)| p == packet)
                        .expect("a released packet was held, once");
                    let (release, _) = held.remove(i);
                    assert!(release <= now, "released before its due time");
                }
                assert!(
                    held.iter().all(|(release, _)| *release > now),
                    "a due packet stayed"
                );
            }
        }
        assert_eq!(line.len(), held.len());
    }
    out.clear();
    line.drain(&mut out);
    assert_eq!(out.len(), held.len());
    let stats = line.stats();
    assert_eq!(stats.iter().map(|s| s.held).sum::<u64>(), admitted);
    assert_eq!(stats.iter().map(|s| s.dropped).sum::<u64>(), dropped);
    assert_eq!(admitted + dropped + unknown, next_packet);
});
