//! The computer's files: the first byte picks the configuration (even) or the conditions
//! file (odd), the rest is its text. A configuration that loads runs a fixed script on the
//! processor-sharing model (calls of every lambda at several sizes, a dry run, new
//! conditions, a cancel, time moving to every completion): errors, never panics or hangs.
#![no_main]

use std::path::Path;
use std::time::Duration;

use lambdaroute_core::Time;
use lambdaroute_core::computer_model::{ComputerModel, Conditions};
use lambdaroute_node::computer::{parse_conditions, parse_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if selector % 2 == 1 {
        if let Ok(conditions) = parse_conditions(Path::new("conditions.yaml"), text) {
            let _ = conditions.scale();
        }
        return;
    }
    let Ok(config) = parse_config(Path::new("computer.yaml"), text) else {
        return;
    };
    let Ok(mut model) = ComputerModel::new(config) else {
        return;
    };
    let lambdas: Vec<String> = model.lambda_names().map(str::to_owned).collect();
    let mut now = Time::from_secs_f64(0.0);
    let mut ids = Vec::new();
    for lambda in lambdas.iter().take(8) {
        for size in [0, 100, 1 << 20] {
            let _ = model.estimate(lambda, size, now);
            if let Ok(id) = model.submit(lambda, size, now) {
                ids.push(id);
            }
        }
        let _ = model.load(lambda);
    }
    now = now + Duration::from_millis(1);
    let _ = model.set_conditions(
        Conditions {
            speed_factor: 0.5,
            background: 0.25,
        },
        now,
    );
    if let Some(id) = ids.first() {
        model.cancel(*id, now);
    }
    let _ = model.sample_utilization(now);
    // Every completion, a bounded number of steps.
    for _ in 0..64 {
        let Some(next) = model.next_completion() else {
            break;
        };
        if next < now {
            panic!("the next completion {next:?} is before now {now:?}");
        }
        now = next;
        let _ = model.advance(now);
    }
    let _ = model.sample_utilization(now);
});
