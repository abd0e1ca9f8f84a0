//! The simulated e-computer: processor sharing, FIFO queues, dry runs, utilization and loads,
//! configuration checks and presets. Every time is explicit, so each test is deterministic.

use std::path::PathBuf;
use std::time::Duration;

use lambdaroute_core::clock::Time;
use lambdaroute_core::computer_model::{
    ComputerConfig, ComputerModel, Conditions, ConditionsError, ConfigError, ContainerConfig,
    LambdaConfig, LambdaOutput, Load, ModelError, Preset, ProcessorConfig, ProcessorType, TaskId,
};

// ===== helpers =====

fn ms(ms: u64) -> Time {
    Time::from_duration(Duration::from_millis(ms))
}

fn assert_close(actual: Duration, expected: Duration) {
    let diff = actual.abs_diff(expected);
    assert!(
        diff <= Duration::from_micros(1),
        "expected {expected:?}, got {actual:?}"
    );
}

fn lambda(name: &str, op_offset: f64) -> LambdaConfig {
    LambdaConfig {
        name: name.into(),
        op_offset,
        op_coeff: 0.0,
        mem_offset: 0.0,
        mem_coeff: 0.0,
        output: LambdaOutput::Echo,
    }
}

/// One processor `cpu` of `cores` cores at 1e9 ops/s with `memory` bytes; one container `c0`
/// with `workers` workers running `l0`, which costs 1e8 ops (100 ms on one core) and
/// `1 * len(input)` bytes.
fn single(cores: u32, workers: u32, memory: u64) -> ComputerConfig {
    let mut l0 = lambda("l0", 1e8);
    l0.mem_coeff = 1.0;
    ComputerConfig {
        processors: vec![ProcessorConfig {
            name: "cpu".into(),
            kind: ProcessorType::Cpu,
            speed: 1e9,
            cores,
            memory,
        }],
        containers: vec![ContainerConfig {
            name: "c0".into(),
            processor: "cpu".into(),
            lambda: "l0".into(),
            num_workers: workers,
        }],
        lambdas: vec![l0],
    }
}

fn model(config: ComputerConfig) -> ComputerModel {
    ComputerModel::new(config).expect("valid config")
}

/// Runs the model until idle and returns (id, ptime) of each completion in order.
fn run_to_idle(m: &mut ComputerModel) -> Vec<(TaskId, Duration)> {
    let mut out = Vec::new();
    while let Some(t) = m.next_completion() {
        out.extend(m.advance(t).into_iter().map(|c| (c.id, c.ptime)));
    }
    out
}

// ===== processor sharing =====

#[test]
fn a_solo_task_takes_ops_over_speed() {
    let mut m = model(single(1, 4, 1 << 20));
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    assert_eq!(m.next_completion(), Some(ms(100)));
    assert!(m.advance(ms(99)).is_empty());
    let done = m.advance(ms(100));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, a);
    assert_eq!(done[0].lambda, "l0");
    assert_eq!(done[0].finished, ms(100));
    assert_close(done[0].ptime, Duration::from_millis(100));
    assert_eq!(m.next_completion(), None);
}

#[test]
fn two_tasks_on_one_core_each_take_twice_the_solo_time() {
    let mut m = model(single(1, 4, 1 << 20));
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    let b = m.submit("l0", 0, Time::ZERO).unwrap();
    assert_eq!(m.running("cpu"), 2);
    let done = run_to_idle(&mut m);
    let ids: Vec<TaskId> = done.iter().map(|d| d.0).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a) && ids.contains(&b));
    for (_, ptime) in done {
        assert_close(ptime, Duration::from_millis(200));
    }
}

#[test]
fn two_tasks_on_four_cores_run_at_full_speed() {
    let mut m = model(single(4, 4, 1 << 20));
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.submit("l0", 0, Time::ZERO).unwrap();
    let done = run_to_idle(&mut m);
    assert_eq!(done.len(), 2);
    for (_, ptime) in done {
        assert_close(ptime, Duration::from_millis(100));
    }
}

#[test]
fn five_tasks_on_four_cores_progress_at_four_fifths_speed() {
    let mut m = model(single(4, 8, 1 << 20));
    for _ in 0..5 {
        m.submit("l0", 0, Time::ZERO).unwrap();
    }
    let done = run_to_idle(&mut m);
    assert_eq!(done.len(), 5);
    for (_, ptime) in done {
        assert_close(ptime, Duration::from_millis(125));
    }
}

#[test]
fn a_late_arrival_slows_the_running_task_down() {
    // l0 needs 100 ms alone on one core. A runs alone for 50 ms, then shares with B:
    // A's remaining 50 ms of work take 100 ms (done at 150), B's last 50 ms run alone.
    let mut m = model(single(1, 4, 1 << 20));
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    let b = m.submit("l0", 0, ms(50)).unwrap();
    let done = m.advance(ms(150));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, a);
    assert_close(done[0].ptime, Duration::from_millis(150));
    let done = m.advance(ms(1000));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, b);
    assert_eq!(done[0].finished, ms(200));
    assert_close(done[0].ptime, Duration::from_millis(150));
}

#[test]
fn containers_on_one_processor_share_its_cores() {
    let mut config = single(1, 4, 1 << 20);
    config.containers.push(ContainerConfig {
        name: "c1".into(),
        processor: "cpu".into(),
        lambda: "l1".into(),
        num_workers: 4,
    });
    config.lambdas.push(lambda("l1", 1e8));
    let mut m = model(config);
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.submit("l1", 0, Time::ZERO).unwrap();
    for (_, ptime) in run_to_idle(&mut m) {
        assert_close(ptime, Duration::from_millis(200));
    }
}

#[test]
fn cost_grows_with_input_size() {
    let mut config = single(1, 1, 1 << 20);
    config.lambdas[0].op_coeff = 1e6; // 1 ms per byte
    let mut m = model(config);
    m.submit("l0", 50, Time::ZERO).unwrap();
    let done = run_to_idle(&mut m);
    assert_close(done[0].1, Duration::from_millis(150));
}

// ===== queues =====

#[test]
fn worker_limit_queues_in_fifo_order() {
    let mut m = model(single(4, 1, 1 << 20));
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    let b = m.submit("l0", 0, Time::ZERO).unwrap();
    let c = m.submit("l0", 0, ms(10)).unwrap();
    assert_eq!(m.running("cpu"), 1);
    assert_eq!(m.in_flight(), 3);
    let mut done = Vec::new();
    while let Some(t) = m.next_completion() {
        done.extend(m.advance(t));
    }
    let order: Vec<TaskId> = done.iter().map(|c| c.id).collect();
    assert_eq!(order, vec![a, b, c]);
    assert_eq!(done[0].finished, ms(100));
    assert_eq!(done[1].started, ms(100));
    assert_eq!(done[1].finished, ms(200));
    assert_eq!(done[2].started, ms(200));
    assert_eq!(done[2].finished, ms(300));
    // ptime counts the queueing: C waited from 10 ms to 200 ms.
    assert_close(done[2].ptime, Duration::from_millis(290));
}

#[test]
fn memory_limit_queues_in_fifo_order() {
    // 1000 bytes of memory, 1 byte per input byte. A (600) runs; B (600) waits for memory;
    // C (300) would fit beside A but waits behind B, in FIFO order.
    let mut m = model(single(4, 4, 1000));
    let a = m.submit("l0", 600, Time::ZERO).unwrap();
    let b = m.submit("l0", 600, Time::ZERO).unwrap();
    let c = m.submit("l0", 300, Time::ZERO).unwrap();
    assert_eq!(m.running("cpu"), 1);
    let first = m.advance(ms(100));
    assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a]);
    assert_eq!(m.running("cpu"), 2);
    let rest = m.advance(ms(1000));
    let mut ids: Vec<TaskId> = rest.iter().map(|c| c.id).collect();
    ids.sort();
    assert_eq!(ids, vec![b, c]);
    for done in rest {
        assert_eq!(done.started, ms(100));
        assert_eq!(done.finished, ms(200));
    }
}

#[test]
fn a_task_bigger_than_the_processor_memory_is_refused() {
    let mut m = model(single(4, 4, 1000));
    let err = m.submit("l0", 1001, Time::ZERO).unwrap_err();
    assert!(matches!(
        err,
        ModelError::TooMuchMemory {
            needed: 1001,
            available: 1000,
            ..
        }
    ));
    let text = err.to_string();
    assert!(text.contains("l0") && text.contains("cpu"), "{text}");
    assert_eq!(m.in_flight(), 0);
}

#[test]
fn unknown_lambda_error_names_it_and_lists_the_known_ones() {
    let mut m = model(Preset::Raspberry.config());
    let err = m.submit("nope", 10, Time::ZERO).unwrap_err();
    assert_eq!(
        err,
        ModelError::UnknownLambda {
            lambda: "nope".into(),
            known: "clambda0, glambda0".into()
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("'nope'") && text.contains("clambda0, glambda0"),
        "{text}"
    );
    assert!(m.estimate("nope", 1, Time::ZERO).is_err());
    assert!(m.load("nope").is_err());
}

// ===== dry runs =====

#[test]
fn dry_run_matches_the_real_ptime_on_an_idle_computer() {
    let mut m = model(Preset::Raspberry.config());
    for (lambda, size) in [("clambda0", 0), ("clambda0", 123), ("glambda0", 1000)] {
        let now = m.now() + Duration::from_secs(10);
        let estimate = m.estimate(lambda, size, now).unwrap();
        m.submit(lambda, size, now).unwrap();
        let done = run_to_idle(&mut m);
        assert_eq!(done.len(), 1);
        assert_eq!(estimate, done[0].1, "{lambda} with {size} bytes");
    }
}

#[test]
fn dry_run_leaves_the_model_unchanged() {
    let mut m = model(single(1, 1, 1 << 20));
    m.submit("l0", 0, Time::ZERO).unwrap();
    let before = m.next_completion();
    let estimate = m.estimate("l0", 0, ms(20)).unwrap();
    // Waits 80 ms for the worker, then runs 100 ms.
    assert_close(estimate, Duration::from_millis(180));
    assert_eq!(m.next_completion(), before);
    assert_eq!(m.in_flight(), 1);
    assert_eq!(run_to_idle(&mut m).len(), 1);
}

#[test]
fn dry_run_accounts_for_sharing_with_running_tasks() {
    let m = {
        let mut m = model(single(1, 4, 1 << 20));
        m.submit("l0", 0, Time::ZERO).unwrap();
        m
    };
    // Both share the core from 0: the new task finishes at 200 ms.
    assert_close(
        m.estimate("l0", 0, Time::ZERO).unwrap(),
        Duration::from_millis(200),
    );
}

// ===== run-time conditions =====

fn conditions(speed_factor: f64, background: f64) -> Conditions {
    Conditions {
        speed_factor,
        background,
    }
}

#[test]
fn a_task_half_done_when_the_speed_halves_finishes_at_the_computed_time() {
    let mut m = model(single(1, 4, 1 << 20)); // l0: 1e8 ops, 100 ms at 1e9 ops/s
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    // At 50 ms, 5e7 ops are left; at 5e8 ops/s they take 100 ms more.
    m.set_conditions(conditions(0.5, 0.0), ms(50)).unwrap();
    assert_eq!(m.next_completion(), Some(ms(150)));
    assert!(m.advance(ms(149)).is_empty());
    let done = run_to_idle(&mut m);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, a);
    assert_close(done[0].1, Duration::from_millis(150));
}

#[test]
fn shared_tasks_keep_their_remaining_ops_across_a_change() {
    let mut m = model(single(1, 4, 1 << 20));
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.submit("l0", 0, Time::ZERO).unwrap();
    // Sharing one core, each has done 2.5e7 of 1e8 ops at 50 ms; at twice the speed (1e9 ops/s
    // each of 2e9), the 7.5e7 left take 75 ms.
    m.set_conditions(conditions(2.0, 0.0), ms(50)).unwrap();
    let done = run_to_idle(&mut m);
    assert_eq!(done.len(), 2);
    for (_, ptime) in done {
        assert_close(ptime, Duration::from_millis(125));
    }
}

#[test]
fn a_background_load_of_one_half_doubles_the_service_time() {
    let mut m = model(single(1, 4, 1 << 20));
    m.set_conditions(conditions(1.0, 0.5), Time::ZERO).unwrap();
    m.submit("l0", 0, Time::ZERO).unwrap();
    let done = run_to_idle(&mut m);
    assert_close(done[0].1, Duration::from_millis(200));
    // Speed factor and background multiply: 1e9 * 0.5 * (1 - 0.2) = 4e8 ops/s, 250 ms.
    m.set_conditions(conditions(0.5, 0.2), ms(1000)).unwrap();
    m.submit("l0", 0, ms(1000)).unwrap();
    let done = run_to_idle(&mut m);
    assert_close(done[0].1, Duration::from_millis(250));
}

#[test]
fn conditions_apply_to_every_processor_and_core() {
    let mut config = single(4, 8, 1 << 20);
    config.processors.push(ProcessorConfig {
        name: "gpu".into(),
        kind: ProcessorType::Gpu,
        speed: 2e9,
        cores: 1,
        memory: 1 << 20,
    });
    config.containers.push(ContainerConfig {
        name: "c1".into(),
        processor: "gpu".into(),
        lambda: "l1".into(),
        num_workers: 1,
    });
    config.lambdas.push(lambda("l1", 2e8));
    let mut m = model(config);
    m.set_conditions(conditions(0.5, 0.5), Time::ZERO).unwrap();
    // Five tasks on four cores: 4 * 1e9 * 0.25 / 5 = 2e8 ops/s each, 500 ms.
    for _ in 0..5 {
        m.submit("l0", 0, Time::ZERO).unwrap();
    }
    // 2e8 ops at 2e9 * 0.25 = 5e8 ops/s: 400 ms.
    let gpu = m.submit("l1", 0, Time::ZERO).unwrap();
    let done = run_to_idle(&mut m);
    assert_eq!(done[0].0, gpu);
    assert_close(done[0].1, Duration::from_millis(400));
    for (_, ptime) in &done[1..] {
        assert_close(*ptime, Duration::from_millis(500));
    }
}

#[test]
fn tasks_finished_before_a_change_keep_their_old_ptime() {
    let mut m = model(single(1, 4, 1 << 20));
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.set_conditions(conditions(0.1, 0.9 - 1e-9), ms(150))
        .unwrap();
    let done = m.advance(ms(150));
    assert_eq!(done.len(), 1);
    assert_close(done[0].ptime, Duration::from_millis(100));
    assert_eq!(done[0].finished, ms(100));
}

#[test]
fn the_background_load_counts_in_utilization_and_load() {
    let mut m = model(single(1, 4, 1 << 20));
    m.set_conditions(conditions(1.0, 0.3), Time::ZERO).unwrap();
    let u = m.sample_utilization(ms(1000));
    assert!((u["cpu"] - 0.3).abs() < 1e-6, "{u:?}");
    assert_eq!(m.load("l0").unwrap().load1, 30);
    // A task of 1e8 ops at 7e8 ops/s runs 1/7 s on the 0.7 of the core left: busy 0.3 + 0.1.
    m.submit("l0", 0, ms(1000)).unwrap();
    let u = m.sample_utilization(ms(2000));
    assert!((u["cpu"] - 0.4).abs() < 1e-6, "{u:?}");
    assert_eq!(
        m.load("l0").unwrap(),
        Load {
            load1: 40,
            load10: 35,
            load30: 35
        }
    );
    // Four cores, two of them busy: 4 * 0.5 background + 2 * 0.5 tasks = 3 of 4 cores.
    let mut config = single(4, 4, 1 << 20);
    config.lambdas[0].op_offset = 1e9;
    let mut m = model(config);
    m.set_conditions(conditions(1.0, 0.5), Time::ZERO).unwrap();
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.submit("l0", 0, Time::ZERO).unwrap();
    let u = m.sample_utilization(ms(1000));
    assert!((u["cpu"] - 0.75).abs() < 1e-6, "{u:?}");
}

#[test]
fn estimate_reflects_the_conditions() {
    let mut m = model(single(1, 4, 1 << 20));
    assert_close(
        m.estimate("l0", 0, Time::ZERO).unwrap(),
        Duration::from_millis(100),
    );
    m.set_conditions(conditions(0.5, 0.2), Time::ZERO).unwrap();
    assert_close(
        m.estimate("l0", 0, Time::ZERO).unwrap(),
        Duration::from_millis(250),
    );
    // With one task half done at the old speed: 5e7 ops left, both share 4e8 ops/s.
    let mut m = model(single(1, 4, 1 << 20));
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.set_conditions(conditions(1.0, 0.5), ms(50)).unwrap();
    // Shared, both progress at 2.5e8 ops/s: the first finishes after 200 ms (at 250 ms), with
    // the new task 5e7 ops in; its 5e7 left alone at 5e8 ops/s take 100 ms: 300 ms in all.
    assert_close(
        m.estimate("l0", 0, ms(50)).unwrap(),
        Duration::from_millis(300),
    );
    assert_eq!(m.conditions(), conditions(1.0, 0.5));
}

#[test]
fn invalid_conditions_are_refused_and_change_nothing() {
    let mut m = model(single(1, 4, 1 << 20));
    for (f, b, expected) in [
        (0.0, 0.0, ConditionsError::BadSpeedFactor(0.0)),
        (-1.0, 0.0, ConditionsError::BadSpeedFactor(-1.0)),
        (
            f64::INFINITY,
            0.0,
            ConditionsError::BadSpeedFactor(f64::INFINITY),
        ),
        (1.0, 1.0, ConditionsError::BadBackground(1.0)),
        (1.0, -0.1, ConditionsError::BadBackground(-0.1)),
        (
            1.0,
            f64::INFINITY,
            ConditionsError::BadBackground(f64::INFINITY),
        ),
    ] {
        assert_eq!(m.set_conditions(conditions(f, b), ms(10)), Err(expected));
    }
    let nan = m
        .set_conditions(conditions(f64::NAN, 0.0), ms(10))
        .unwrap_err();
    assert!(matches!(nan, ConditionsError::BadSpeedFactor(f) if f.is_nan()));
    let err = m.set_conditions(conditions(1.0, 1.0), ms(10)).unwrap_err();
    assert!(err.to_string().starts_with("background: "), "{err}");
    assert_eq!(m.conditions(), Conditions::default());
    assert_close(
        m.estimate("l0", 0, ms(10)).unwrap(),
        Duration::from_millis(100),
    );
}

#[test]
fn conditions_parse_from_yaml_with_defaults() {
    let c: Conditions =
        lambdaroute_core::yaml::from_str("speed-factor: 0.5\nbackground: 0.3\n").unwrap();
    assert_eq!(c, conditions(0.5, 0.3));
    let c: Conditions = lambdaroute_core::yaml::from_str("background: 0.3\n").unwrap();
    assert_eq!(c, conditions(1.0, 0.3));
    let c: Conditions = lambdaroute_core::yaml::from_str("{}").unwrap();
    assert_eq!(c, Conditions::default());
    assert!(lambdaroute_core::yaml::from_str::<Conditions>("speed: 2\n").is_err());
}

// ===== utilization and loads =====

#[test]
fn utilization_is_busy_time_over_cores_times_elapsed() {
    let mut config = single(4, 4, 1 << 20);
    config.lambdas[0].op_offset = 1e9; // 1 s on one core
    let mut m = model(config);
    assert_eq!(m.load("l0").unwrap(), Load::default());
    m.submit("l0", 0, Time::ZERO).unwrap();
    m.submit("l0", 0, Time::ZERO).unwrap();
    let u = m.sample_utilization(ms(1000));
    assert_eq!(u.len(), 1);
    assert!((u["cpu"] - 0.5).abs() < 1e-6, "{u:?}");
    assert_eq!(m.advance(ms(1000)).len(), 2);
    assert_eq!(
        m.load("l0").unwrap(),
        Load {
            load1: 50,
            load10: 50,
            load30: 50
        }
    );
    let u = m.sample_utilization(ms(2000));
    assert_eq!(u["cpu"], 0.0);
    assert_eq!(
        m.processor_load("cpu").unwrap(),
        Load {
            load1: 0,
            load10: 25,
            load30: 25
        }
    );
    // A second sample at the same time records nothing.
    assert_eq!(m.sample_utilization(ms(2000))["cpu"], 0.0);
    assert_eq!(m.processor_load("cpu").unwrap().load10, 25);
}

#[test]
fn utilization_counts_partial_busy_periods() {
    let mut m = model(single(1, 4, 1 << 20)); // l0: 100 ms
    m.submit("l0", 0, ms(300)).unwrap();
    let u = m.sample_utilization(ms(1000));
    assert!((u["cpu"] - 0.1).abs() < 1e-6, "{u:?}");
}

#[test]
fn load_averages_cover_the_last_10_and_30_samples() {
    // One core busy for the first 25 s, then idle; a sample every second up to 30 s.
    let mut config = single(1, 1, 1 << 20);
    config.lambdas[0].op_offset = 25e9;
    let mut m = model(config);
    m.submit("l0", 0, Time::ZERO).unwrap();
    for s in 1..=30 {
        m.sample_utilization(ms(s * 1000));
    }
    assert_eq!(
        m.load("l0").unwrap(),
        Load {
            load1: 0,
            load10: 50,
            load30: 83
        }
    );
    // 30 more idle samples push every busy one out.
    for s in 31..=60 {
        m.sample_utilization(ms(s * 1000));
    }
    assert_eq!(m.load("l0").unwrap(), Load::default());
}

#[test]
fn load_is_that_of_the_lambdas_processor() {
    let mut m = model(Preset::Raspberry.config());
    // glambda0 with 999 bytes: 1e9 ops, 1 s on the 1-core gpu.
    m.submit("glambda0", 999, Time::ZERO).unwrap();
    let u = m.sample_utilization(ms(1000));
    assert!((u["gpu"] - 1.0).abs() < 1e-6 && u["arm"] == 0.0, "{u:?}");
    assert_eq!(m.load("glambda0").unwrap().load1, 100);
    assert_eq!(m.load("clambda0").unwrap().load1, 0);
}

// ===== configuration =====

fn expect_invalid(config: ComputerConfig, expected: &str) -> ConfigError {
    let err = ComputerModel::new(config).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(expected), "expected {expected:?} in {text:?}");
    err
}

#[test]
fn config_validation_names_the_field_and_what_is_expected() {
    let base = || single(1, 1, 1000);

    let mut c = base();
    c.processors[0].cores = 0;
    expect_invalid(c, "processors[cpu].cores: expected at least 1 core");

    let mut c = base();
    c.processors[0].speed = 0.0;
    expect_invalid(c, "processors[cpu].speed: expected a finite number > 0");

    let mut c = base();
    c.processors[0].speed = f64::NAN;
    expect_invalid(c, "processors[cpu].speed");

    let mut c = base();
    c.processors[0].memory = 0;
    expect_invalid(c, "processors[cpu].memory: expected at least 1 byte");

    let mut c = base();
    c.processors.push(c.processors[0].clone());
    expect_invalid(c, "processors[cpu]: duplicate processor name");

    let mut c = base();
    c.processors.clear();
    expect_invalid(c, "processors: expected at least one processor");

    let mut c = base();
    c.containers.clear();
    expect_invalid(c, "containers: expected at least one container");

    let mut c = base();
    c.containers[0].processor = "tpu".into();
    expect_invalid(
        c,
        "containers[c0].processor: unknown processor 'tpu'; expected one of: cpu",
    );

    let mut c = base();
    c.containers[0].lambda = "l9".into();
    expect_invalid(c, "containers[c0].lambda: unknown lambda 'l9'");

    let mut c = base();
    c.containers[0].num_workers = 0;
    expect_invalid(c, "containers[c0].num_workers: expected at least 1 worker");

    let mut c = base();
    c.lambdas.push(c.lambdas[0].clone());
    expect_invalid(c, "lambdas[l0]: duplicate lambda name");

    let mut c = base();
    let mut second = c.containers[0].clone();
    second.name = "c1".into();
    c.containers.push(second);
    expect_invalid(c, "lambda 'l0' is already run by container 'c0'");

    let mut c = base();
    c.lambdas[0].mem_coeff = -1.0;
    expect_invalid(
        c,
        "lambdas[l0].mem_coeff: expected a finite number >= 0, got -1",
    );

    let mut c = base();
    c.lambdas[0].op_offset = 0.0;
    expect_invalid(c, "lambdas[l0]: op_offset and op_coeff are both 0");

    let mut c = base();
    c.lambdas.push(lambda("orphan", 1.0));
    expect_invalid(c, "lambdas[orphan]: no container runs it");

    let mut c = base();
    c.containers[0].name = String::new();
    expect_invalid(c, "containers[#0].name: expected a non-empty name");
}

#[test]
fn speed_factor_scales_service_time() {
    let slow = single(1, 1, 1000).with_speed_factor(0.5).unwrap();
    let fast = single(1, 1, 1000).with_speed_factor(4.0).unwrap();
    let slow = model(slow).estimate("l0", 0, Time::ZERO).unwrap();
    let fast = model(fast).estimate("l0", 0, Time::ZERO).unwrap();
    assert_close(slow, Duration::from_millis(200));
    assert_close(fast, Duration::from_millis(25));
    let err = single(1, 1, 1000).with_speed_factor(0.0).unwrap_err();
    assert_eq!(err, ConfigError::BadSpeedFactor(0.0));
}

#[test]
fn outputs_echo_the_input_or_answer_a_fixed_text() {
    assert_eq!(LambdaOutput::Echo.render("abc".into()), "abc");
    assert_eq!(
        LambdaOutput::Fixed("done".into()).render("abc".into()),
        "done"
    );
}

// ===== presets =====

#[test]
fn presets_load_and_validate() {
    for preset in Preset::ALL {
        let parsed: Preset = preset.as_str().parse().unwrap();
        assert_eq!(parsed, preset);
        preset.config().validate().unwrap();
    }
    let err = "laptop".parse::<Preset>().unwrap_err();
    assert!(err.to_string().contains("raspberry, intel-server"), "{err}");
}

#[test]
fn raspberry_lambdas_cost_as_upstream() {
    let m = model(Preset::Raspberry.config());
    let names: Vec<&str> = m.lambda_names().collect();
    assert_eq!(names, vec!["clambda0", "glambda0"]);
    // clambda: 1e6 * size + 4e6 ops on a 1e9 ops/s arm core; glambda: 1e6 * size + 1e6.
    assert_close(
        m.estimate("clambda0", 0, Time::ZERO).unwrap(),
        Duration::from_millis(4),
    );
    assert_close(
        m.estimate("clambda0", 100, Time::ZERO).unwrap(),
        Duration::from_millis(104),
    );
    assert_close(
        m.estimate("glambda0", 100, Time::ZERO).unwrap(),
        Duration::from_millis(101),
    );
    assert_eq!(m.lambda("clambda0").unwrap().mem(10), 1000);
    let many = lambdaroute_core::computer_model::raspberry(3);
    assert_eq!(many.lambdas.len(), 6);
    many.validate().unwrap();
}

#[test]
fn intel_server_runs_clambda0_on_20_fast_cores() {
    let config = Preset::IntelServer.config();
    assert_eq!(config.processors[0].cores, 20);
    assert_eq!(config.processors[0].speed, 4e9);
    let mut m = model(config);
    for _ in 0..20 {
        m.submit("clambda0", 0, Time::ZERO).unwrap();
    }
    // 4e6 ops at 4e9 ops/s: 1 ms each, all 20 in parallel.
    for (_, ptime) in run_to_idle(&mut m) {
        assert_close(ptime, Duration::from_millis(1));
    }
}

// ===== YAML =====

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/computers")
}

#[test]
fn example_configs_load_and_validate() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let config: ComputerConfig = lambdaroute_core::yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            ComputerModel::new(config).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected fast.yaml and slow.yaml");
}

#[test]
fn yaml_outputs_parse_as_echo_or_fixed() {
    let text = std::fs::read_to_string(examples_dir().join("fast.yaml")).unwrap();
    let config: ComputerConfig = lambdaroute_core::yaml::from_str(&text).unwrap();
    assert_eq!(
        config.lambda("clambda0").unwrap().output,
        LambdaOutput::Echo
    );
    assert_eq!(
        config.lambda("glambda0").unwrap().output,
        LambdaOutput::Fixed("done".into())
    );
}

#[test]
fn yaml_with_an_unknown_field_is_rejected() {
    let yaml = "processors: []\ncontainers: []\nlambdas: []\ncolour: red\n";
    let err = lambdaroute_core::yaml::from_str::<ComputerConfig>(yaml).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn presets_round_trip_through_yaml() {
    for preset in Preset::ALL {
        let yaml = serde_saphyr::to_string(&preset.config()).unwrap();
        let back: ComputerConfig = lambdaroute_core::yaml::from_str(&yaml).unwrap();
        assert_eq!(back, preset.config());
    }
}

#[test]
fn yaml_with_an_unknown_output_says_what_is_expected() {
    let yaml = "name: l\nop_offset: 1\noutput: mirror\n";
    let err = lambdaroute_core::yaml::from_str::<LambdaConfig>(yaml).unwrap_err();
    assert!(
        err.to_string()
            .contains("expected `echo` or `{fixed: TEXT}`"),
        "{err}"
    );
}

#[test]
fn config_with_overrides_the_main_processor_and_counts_lambdas() {
    use lambdaroute_core::computer_model::MainProcessor;
    assert_eq!(
        Preset::Raspberry.config_with(1, MainProcessor::default()),
        Preset::Raspberry.config()
    );
    assert_eq!(
        Preset::IntelServer.config_with(1, MainProcessor::default()),
        Preset::IntelServer.config()
    );
    let overrides = MainProcessor {
        speed: Some(2e9),
        cores: Some(8),
        memory: Some(1 << 30),
    };
    let pi = Preset::Raspberry.config_with(2, overrides);
    pi.validate().unwrap();
    assert_eq!(
        (
            pi.processors[0].speed,
            pi.processors[0].cores,
            pi.processors[0].memory
        ),
        (2e9, 8, 1 << 30)
    );
    assert_eq!(pi.processors[1], Preset::Raspberry.config().processors[1]);
    let workers: Vec<(&str, u32)> = pi
        .containers
        .iter()
        .map(|c| (c.lambda.as_str(), c.num_workers))
        .collect();
    assert_eq!(
        workers,
        [
            ("clambda0", 8),
            ("glambda0", 1),
            ("clambda1", 8),
            ("glambda1", 1)
        ]
    );
    let server = Preset::IntelServer.config_with(3, overrides);
    assert_eq!(server.lambdas.len(), 1);
    assert_eq!(server.containers[0].num_workers, 8);
}

#[test]
fn nested_aliases_are_refused_quickly() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let start = std::time::Instant::now();
    let result = lambdaroute_core::yaml::from_str::<
        std::collections::BTreeMap<String, serde::de::IgnoredAny>,
    >(&text);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("alias replay limit exceeded"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

// ===== cancelled calls =====

#[test]
fn a_cancelled_task_gives_its_share_of_the_core_back() {
    // Two tasks share one core; the first is cancelled at 50 ms, when each has done 25 ms of
    // its 100 ms: the second runs alone from then on and ends at 50 + 75 = 125 ms.
    let mut m = model(single(1, 4, 1 << 20));
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    let b = m.submit("l0", 0, Time::ZERO).unwrap();
    assert!(m.cancel(a, ms(50)));
    assert!(!m.cancel(a, ms(50)), "a task is cancelled once");
    assert_eq!(m.in_flight(), 1);
    let done = run_to_idle(&mut m);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, b);
    assert_close(done[0].1, Duration::from_millis(125));
}

#[test]
fn cancelling_frees_the_worker_and_memory_that_queued_tasks_wait_for() {
    // One worker: b waits for a's worker; a cancelled at 10 ms lets b start then.
    let mut m = model(single(1, 1, 1 << 20));
    let a = m.submit("l0", 0, Time::ZERO).unwrap();
    let b = m.submit("l0", 0, Time::ZERO).unwrap();
    let c = m.submit("l0", 0, Time::ZERO).unwrap();
    // A waiting task cancelled leaves its queue and holds nothing.
    assert!(m.cancel(c, ms(5)));
    assert!(m.cancel(a, ms(10)));
    assert_eq!(m.running("cpu"), 1);
    let done = run_to_idle(&mut m);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, b);
    assert_close(done[0].1, Duration::from_millis(110));
    // Memory: two tasks of 600 bytes on 1,000 bytes; the running one cancelled, the other runs.
    let mut m = model(single(1, 4, 1000));
    let a = m.submit("l0", 600, Time::ZERO).unwrap();
    let b = m.submit("l0", 600, Time::ZERO).unwrap();
    assert_eq!(m.running("cpu"), 1);
    assert!(m.cancel(a, ms(20)));
    assert_eq!(m.running("cpu"), 1);
    let done = run_to_idle(&mut m);
    assert_eq!((done.len(), done[0].0), (1, b));
}
