//! Cost of one dispatch decision plus its weight update (`ETable::choose` then
//! `ETable::complete_choice` with a latency, the router's per-call path) for each policy, on one lambda with 10, 1,000, 10,000 and 100,000
//! destinations. Initial weights and latency samples are random (seeded); samples come from a
//! pre-generated array so that the measurement holds no random generation of its own.
//! See docs/benchmarks.md for the method and the figures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lambdaroute_core::clock::Time;
use lambdaroute_core::estimator::EstimatorKind;
use lambdaroute_core::policy::PolicyKind;
use lambdaroute_core::table::{ETable, TableKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];
const SAMPLES: usize = 1 << 16;

/// A table with `n` final destinations for lambda "f", weights uniform in [10, 20] ms.
fn table(policy: PolicyKind, n: usize, rng: &mut SmallRng) -> ETable {
    let mut t = ETable::new(policy, EstimatorKind::default(), 1);
    for i in 0..n {
        let destination = format!("10.{}.{}.{}:10000", i >> 16, (i >> 8) & 255, i & 255);
        t.change("f", &destination, rng.random_range(0.010..0.020), true)
            .expect("valid entry");
    }
    t
}

fn select_and_update(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(2024);
    let samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| Duration::from_secs_f64(rng.random_range(0.010..0.020)))
        .collect();
    for policy in PolicyKind::ALL {
        let mut group = c.benchmark_group(format!("select_complete/{policy}"));
        for n in SIZES {
            let mut t = table(policy, n, &mut rng);
            let mut now = Time::ZERO;
            let mut i = 0usize;
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    now = now + Duration::from_micros(100);
                    i = (i + 1) & (SAMPLES - 1);
                    let choice = t
                        .choose(black_box("f"), TableKind::Overall, now)
                        .expect("non-empty");
                    t.complete_choice("f", choice, TableKind::Overall, Some(samples[i]), now);
                    choice
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, select_and_update);
criterion_main!(benches);
