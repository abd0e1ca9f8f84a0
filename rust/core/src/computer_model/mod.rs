//! The simulated e-computer (docs/computer.md): processors shared by containers, each container
//! running one lambda with a bounded number of workers.
//!
//! A task costs `ops = op_offset + op_coeff * len(input)` operations and holds
//! `mem = mem_offset + mem_coeff * len(input)` bytes while it runs. On a processor with `cores`
//! cores of `speed` ops/s, each of the `running` tasks (counted over all its containers)
//! progresses at `min(cores, running) * speed / running` ops/s: processor sharing, as in
//! serverlessonedge's simulated computer. A task first waits, in FIFO order per container, for
//! one of the container's `num_workers` workers; then, in FIFO order per processor, for the
//! processor's memory; then it runs. Its `ptime` is queueing plus service time.
//!
//! The model is pure: no clock and no I/O. Every call takes the current [`Time`], which must
//! not go backwards (earlier times are taken as the model's current time). A driver (the node
//! layer) calls [`ComputerModel::advance`] at [`ComputerModel::next_completion`], and
//! [`ComputerModel::sample_utilization`] every second.
//!
//! Conditions ([`Conditions`], [`ComputerModel::set_conditions`]) change the computer while it
//! runs: a speed factor `f` multiplies every processor's configured speed, and a background load
//! `b` in `[0, 1)` is the fraction of every core taken by work other than lambdas. Each running
//! task then progresses at `min(cores, running) * speed * f * (1 - b) / running` ops/s; tasks
//! keep their remaining ops across a change (the work up to the change is done at the old
//! rate). The defaults, `f = 1` and `b = 0`, leave the configuration as it is.
//!
//! Loads: each sample gives, per processor, `busy / (cores * elapsed)` in 0..=1, where `busy`
//! is the core-seconds spent on tasks since the previous sample plus those taken by the
//! background load (`cores * b` per second; the tasks' cores count for their share `1 - b`),
//! so an idle computer with `b = 0.3` reports a load of 30. A [`Load`] is the load *of
//! a lambda's processor*: `load1` is the last sample, `load10` and `load30` the means of the
//! last 10 and 30 samples (fewer at start, 0 before the first), all x100 and rounded.

mod config;
mod preset;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

pub use config::{
    ComputerConfig, ConfigError, ContainerConfig, LambdaConfig, LambdaOutput, ProcessorConfig,
    ProcessorType,
};
pub use preset::{MainProcessor, Preset, intel_server, raspberry};

use crate::clock::Time;

/// Samples kept per processor for the load averages.
const HISTORY: usize = 30;

/// Identifies a submitted task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

/// A task that has finished.
#[derive(Clone, Debug, PartialEq)]
pub struct Completed {
    /// The task.
    pub id: TaskId,
    /// Its lambda.
    pub lambda: String,
    /// Its input size in bytes.
    pub input_len: usize,
    /// When it was submitted.
    pub submitted: Time,
    /// When it started running (after waiting for a worker and memory).
    pub started: Time,
    /// When it finished.
    pub finished: Time,
    /// Queueing plus service time: `finished - submitted`.
    pub ptime: Duration,
}

/// Load of a processor, 0-100: last utilization sample, mean of the last 10 and of the last 30.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Last sample x100.
    pub load1: u32,
    /// Mean of the last 10 samples x100.
    pub load10: u32,
    /// Mean of the last 30 samples x100.
    pub load30: u32,
}

/// A call the model refuses.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The computer does not run this lambda.
    #[error(
        "unknown lambda '{}'; this computer runs: {known}",
        crate::text::clip(lambda)
    )]
    UnknownLambda {
        /// The lambda asked for.
        lambda: String,
        /// The lambdas this computer runs, comma-separated.
        known: String,
    },
    /// The task needs more memory than its processor has, so it could never run.
    #[error(
        "lambda '{}' with {input_len} bytes of input needs {needed} bytes of memory, but processor '{processor}' has {available}; send a smaller input",
        crate::text::clip(lambda)
    )]
    TooMuchMemory {
        /// The lambda.
        lambda: String,
        /// The input size.
        input_len: usize,
        /// Memory the task needs.
        needed: u64,
        /// The processor.
        processor: String,
        /// Memory of the processor.
        available: u64,
    },
}

/// Run-time conditions of a computer, on top of its configuration: see the module
/// documentation. In YAML (the computer's `--conditions` file): `speed-factor` and
/// `background`, both optional.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Conditions {
    /// Multiplies every processor's configured speed (finite, > 0); default 1.
    pub speed_factor: f64,
    /// Fraction of every core taken by work other than lambdas, in `[0, 1)`; default 0.
    pub background: f64,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            speed_factor: 1.0,
            background: 0.0,
        }
    }
}

impl Conditions {
    /// Checks both values: see [`ConditionsError`].
    pub fn validate(&self) -> Result<(), ConditionsError> {
        if !(self.speed_factor.is_finite() && self.speed_factor > 0.0) {
            return Err(ConditionsError::BadSpeedFactor(self.speed_factor));
        }
        if !(self.background.is_finite() && (0.0..1.0).contains(&self.background)) {
            return Err(ConditionsError::BadBackground(self.background));
        }
        Ok(())
    }

    /// The share of a core's configured speed left to lambdas: `speed_factor * (1 - background)`.
    pub fn scale(&self) -> f64 {
        self.speed_factor * (1.0 - self.background)
    }
}

/// Conditions the model refuses.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConditionsError {
    /// The speed factor is not a finite number above 0.
    #[error("speed-factor: expected a number greater than 0, got {0}")]
    BadSpeedFactor(f64),
    /// The background load is not in `[0, 1)`.
    #[error(
        "background: expected a fraction of the cores at least 0 and below 1 (e.g. 0.3), got {0}"
    )]
    BadBackground(f64),
}

#[derive(Clone, Debug)]
struct Processor {
    name: String,
    cores: u32,
    speed: f64,
    /// [`Conditions::scale`] of the current conditions.
    scale: f64,
    /// [`Conditions::background`] of the current conditions.
    background: f64,
    memory: u64,
    mem_used: u64,
    /// Running tasks.
    running: Vec<TaskId>,
    /// Tasks holding a worker, waiting for memory, FIFO.
    mem_queue: VecDeque<TaskId>,
    /// Core-seconds spent on tasks since the last sample.
    busy: f64,
    /// Utilization samples, newest last, at most [`HISTORY`].
    history: VecDeque<f32>,
}

#[derive(Clone, Debug)]
struct Container {
    processor: usize,
    num_workers: u32,
    /// Workers taken (by running tasks and by tasks waiting for memory).
    busy_workers: u32,
    /// Tasks waiting for a worker, FIFO.
    queue: VecDeque<TaskId>,
}

#[derive(Clone, Debug)]
struct Lambda {
    config: LambdaConfig,
    container: usize,
}

#[derive(Clone, Debug)]
struct Task {
    lambda: usize,
    input_len: usize,
    submitted: Time,
    started: Option<Time>,
    remaining: f64,
    mem: u64,
}

/// The state of a simulated e-computer: see the module documentation.
#[derive(Clone, Debug)]
pub struct ComputerModel {
    config: ComputerConfig,
    processors: Vec<Processor>,
    containers: Vec<Container>,
    lambdas: Vec<Lambda>,
    by_name: BTreeMap<String, usize>,
    tasks: HashMap<TaskId, Task>,
    next_id: u64,
    now: Time,
    last_sample: Time,
    last_utilization: HashMap<String, f32>,
    conditions: Conditions,
    /// Completed since the last [`ComputerModel::advance`].
    done: Vec<Completed>,
}

// ===== impl ComputerModel =====

impl ComputerModel {
    /// An idle computer at time zero, after validating `config`.
    pub fn new(config: ComputerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let processors: Vec<Processor> = config
            .processors
            .iter()
            .map(|p| Processor {
                name: p.name.clone(),
                cores: p.cores,
                speed: p.speed,
                scale: 1.0,
                background: 0.0,
                memory: p.memory,
                mem_used: 0,
                running: Vec::new(),
                mem_queue: VecDeque::new(),
                busy: 0.0,
                history: VecDeque::with_capacity(HISTORY),
            })
            .collect();
        let containers: Vec<Container> = config
            .containers
            .iter()
            .map(|c| Container {
                processor: processors
                    .iter()
                    .position(|p| p.name == c.processor)
                    .expect("validated: container on a known processor"),
                num_workers: c.num_workers,
                busy_workers: 0,
                queue: VecDeque::new(),
            })
            .collect();
        let lambdas: Vec<Lambda> = config
            .lambdas
            .iter()
            .map(|l| Lambda {
                config: l.clone(),
                container: config
                    .containers
                    .iter()
                    .position(|c| c.lambda == l.name)
                    .expect("validated: every lambda in a container"),
            })
            .collect();
        let by_name = lambdas
            .iter()
            .enumerate()
            .map(|(i, l)| (l.config.name.clone(), i))
            .collect();
        let last_utilization = processors.iter().map(|p| (p.name.clone(), 0.0)).collect();
        Ok(ComputerModel {
            config,
            processors,
            containers,
            lambdas,
            by_name,
            tasks: HashMap::new(),
            next_id: 0,
            now: Time::ZERO,
            last_sample: Time::ZERO,
            last_utilization,
            conditions: Conditions::default(),
            done: Vec::new(),
        })
    }

    /// The current run-time conditions (the defaults until [`ComputerModel::set_conditions`]).
    pub fn conditions(&self) -> Conditions {
        self.conditions
    }

    /// Changes the conditions at `now`: the computer first runs up to `now` under the old ones
    /// (finishing what finishes by then), then every running task keeps its remaining ops and
    /// continues at the new rate. Invalid conditions leave the model unchanged.
    pub fn set_conditions(
        &mut self,
        conditions: Conditions,
        now: Time,
    ) -> Result<(), ConditionsError> {
        conditions.validate()?;
        self.progress_to(now);
        for p in &mut self.processors {
            p.scale = conditions.scale();
            p.background = conditions.background;
        }
        self.conditions = conditions;
        Ok(())
    }

    /// The configuration it runs.
    pub fn config(&self) -> &ComputerConfig {
        &self.config
    }

    /// The lambdas it runs, sorted by name.
    pub fn lambda_names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The lambda called `name`, if it runs it.
    pub fn lambda(&self, name: &str) -> Option<&LambdaConfig> {
        self.by_name.get(name).map(|&i| &self.lambdas[i].config)
    }

    /// The model's current time: the latest time it was given.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Tasks running on `processor` (0 if there is no such processor).
    pub fn running(&self, processor: &str) -> usize {
        self.processor(processor).map_or(0, |p| p.running.len())
    }

    /// Tasks submitted and not finished, running or waiting.
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// Submits a call of `lambda` with `input_len` bytes of input at `now`. It starts at once
    /// if its container has a free worker and its processor enough memory, else it waits.
    pub fn submit(
        &mut self,
        lambda: &str,
        input_len: usize,
        now: Time,
    ) -> Result<TaskId, ModelError> {
        let l = self.lambda_index(lambda)?;
        let config = &self.lambdas[l].config;
        let container = self.lambdas[l].container;
        let processor = &self.processors[self.containers[container].processor];
        let mem = config.mem(input_len);
        if mem > processor.memory {
            return Err(ModelError::TooMuchMemory {
                lambda: lambda.to_string(),
                input_len,
                needed: mem,
                processor: processor.name.clone(),
                available: processor.memory,
            });
        }
        let remaining = config.ops(input_len);
        self.progress_to(now);
        let id = TaskId(self.next_id);
        self.next_id += 1;
        self.tasks.insert(
            id,
            Task {
                lambda: l,
                input_len,
                submitted: self.now,
                started: None,
                remaining,
                mem,
            },
        );
        self.containers[container].queue.push_back(id);
        let p = self.containers[container].processor;
        self.admit(p);
        Ok(id)
    }

    /// Withdraws task `id` at `now` (its caller went away): running, it stops and frees its
    /// worker, memory and share of the cores; waiting, it leaves its queue. The tasks it made
    /// wait start. Returns whether the task was still there.
    pub fn cancel(&mut self, id: TaskId, now: Time) -> bool {
        self.progress_to(now);
        let Some(task) = self.tasks.remove(&id) else {
            return false;
        };
        let container = self.lambdas[task.lambda].container;
        let p = self.containers[container].processor;
        let queue = &mut self.containers[container].queue;
        if let Some(at) = queue.iter().position(|&q| q == id) {
            // Still waiting for a worker: it holds nothing.
            queue.remove(at);
            return true;
        }
        // It holds a worker, and its memory too once running.
        self.containers[container].busy_workers -= 1;
        let processor = &mut self.processors[p];
        if let Some(at) = processor.running.iter().position(|&r| r == id) {
            processor.running.remove(at);
            processor.mem_used -= task.mem;
        } else if let Some(at) = processor.mem_queue.iter().position(|&m| m == id) {
            processor.mem_queue.remove(at);
        }
        self.admit(p);
        true
    }

    /// When the next running task finishes if nothing else is submitted; `None` when idle.
    pub fn next_completion(&self) -> Option<Time> {
        self.processors
            .iter()
            .filter_map(|p| {
                let rate = p.rate()?;
                let min = p
                    .running
                    .iter()
                    .map(|id| self.tasks[id].remaining)
                    .fold(f64::INFINITY, f64::min);
                Some(self.now + secs_ceil(min.max(0.0) / rate))
            })
            .min()
    }

    /// Runs the computer up to `now` and returns the tasks finished since the last call, in
    /// the order they finished.
    pub fn advance(&mut self, now: Time) -> Vec<Completed> {
        self.progress_to(now);
        std::mem::take(&mut self.done)
    }

    /// Dry run: how long (queueing + service) a call of `lambda` with `input_len` bytes would
    /// take if submitted at `now` and nothing else were submitted after it. Leaves the model
    /// unchanged. On an idle computer it equals the `ptime` of the real call.
    pub fn estimate(
        &self,
        lambda: &str,
        input_len: usize,
        now: Time,
    ) -> Result<Duration, ModelError> {
        let mut dry = self.clone();
        let id = dry.submit(lambda, input_len, now)?;
        loop {
            if let Some(c) = dry.done.iter().find(|c| c.id == id) {
                return Ok(c.ptime);
            }
            let next = dry
                .next_completion()
                .expect("a submitted task is running or waits behind a running one");
            dry.progress_to(next);
        }
    }

    /// Takes a utilization sample at `now`: per processor, the busy core-seconds since the
    /// previous sample divided by `cores * elapsed`, in 0..=1. Feeds the load averages. A
    /// sample at the time of the previous one returns the previous values and records nothing.
    pub fn sample_utilization(&mut self, now: Time) -> HashMap<String, f32> {
        self.progress_to(now);
        let elapsed = (self.now - self.last_sample).as_secs_f64();
        if elapsed <= 0.0 {
            return self.last_utilization.clone();
        }
        for p in &mut self.processors {
            let u = (p.busy / (p.cores as f64 * elapsed)).clamp(0.0, 1.0) as f32;
            p.busy = 0.0;
            if p.history.len() == HISTORY {
                p.history.pop_front();
            }
            p.history.push_back(u);
            self.last_utilization.insert(p.name.clone(), u);
        }
        self.last_sample = self.now;
        self.last_utilization.clone()
    }

    /// The load of the processor that runs `lambda`.
    pub fn load(&self, lambda: &str) -> Result<Load, ModelError> {
        let l = self.lambda_index(lambda)?;
        let p = self.containers[self.lambdas[l].container].processor;
        Ok(self.processors[p].load())
    }

    /// The load of `processor`, if it exists.
    pub fn processor_load(&self, processor: &str) -> Option<Load> {
        self.processor(processor).map(Processor::load)
    }

    fn processor(&self, name: &str) -> Option<&Processor> {
        self.processors.iter().find(|p| p.name == name)
    }

    fn lambda_index(&self, lambda: &str) -> Result<usize, ModelError> {
        self.by_name
            .get(lambda)
            .copied()
            .ok_or_else(|| ModelError::UnknownLambda {
                lambda: lambda.to_string(),
                known: config::join(self.lambda_names()),
            })
    }

    /// Processes every completion up to `t`, then moves the clock to `t`.
    fn progress_to(&mut self, t: Time) {
        let t = t.max(self.now);
        while let Some(next) = self.next_completion().filter(|&next| next <= t) {
            self.progress(next);
            self.finish_done();
        }
        self.progress(t);
    }

    /// Moves the clock to `t` (no completion may lie before it), consuming running tasks' ops.
    fn progress(&mut self, t: Time) {
        let dt = (t - self.now).as_secs_f64();
        self.now = t.max(self.now);
        if dt <= 0.0 {
            return;
        }
        for p in &mut self.processors {
            p.busy += p.cores as f64 * p.background * dt;
            let Some(rate) = p.rate() else { continue };
            p.busy += p.active_cores() * (1.0 - p.background) * dt;
            for id in &p.running {
                let task = self.tasks.get_mut(id).expect("running task exists");
                task.remaining -= rate * dt;
            }
        }
    }

    /// Completes the running tasks with no work left (within one nanosecond of work), frees
    /// their workers and memory and starts waiting tasks.
    fn finish_done(&mut self) {
        for p in 0..self.processors.len() {
            let Some(rate) = self.processors[p].rate() else {
                continue;
            };
            let tolerance = rate * 1e-9;
            let tasks = &self.tasks;
            let (finished, running): (Vec<TaskId>, Vec<TaskId>) = self.processors[p]
                .running
                .iter()
                .partition(|id| tasks[id].remaining <= tolerance);
            if finished.is_empty() {
                continue;
            }
            self.processors[p].running = running;
            for id in finished {
                let task = self.tasks.remove(&id).expect("finished task exists");
                let lambda = &self.lambdas[task.lambda];
                debug_assert!(self.processors[p].mem_used >= task.mem);
                debug_assert!(self.containers[lambda.container].busy_workers > 0);
                self.processors[p].mem_used -= task.mem;
                self.containers[lambda.container].busy_workers -= 1;
                let started = task.started.expect("running task has started");
                self.done.push(Completed {
                    id,
                    lambda: lambda.config.name.clone(),
                    input_len: task.input_len,
                    submitted: task.submitted,
                    started,
                    finished: self.now,
                    ptime: self.now - task.submitted,
                });
            }
            self.admit(p);
        }
    }

    /// Gives free workers to waiting tasks of the containers on processor `p` (FIFO per
    /// container; simultaneous grants in submission order), then starts the tasks waiting for
    /// memory in FIFO order while they fit.
    fn admit(&mut self, p: usize) {
        let mut granted = Vec::new();
        for c in self.containers.iter_mut().filter(|c| c.processor == p) {
            while c.busy_workers < c.num_workers {
                let Some(id) = c.queue.pop_front() else { break };
                c.busy_workers += 1;
                granted.push(id);
            }
        }
        granted.sort();
        let processor = &mut self.processors[p];
        processor.mem_queue.extend(granted);
        while let Some(&id) = processor.mem_queue.front() {
            let task = self.tasks.get_mut(&id).expect("waiting task exists");
            if processor.mem_used + task.mem > processor.memory {
                break;
            }
            processor.mem_queue.pop_front();
            processor.mem_used += task.mem;
            task.started = Some(self.now);
            processor.running.push(id);
        }
        debug_assert!(processor.mem_used <= processor.memory);
    }
}

// ===== impl Processor =====

impl Processor {
    /// Cores in use: `min(cores, running)`.
    fn active_cores(&self) -> f64 {
        self.running.len().min(self.cores as usize) as f64
    }

    /// Ops/s of each running task under the current conditions, `None` when idle.
    fn rate(&self) -> Option<f64> {
        let n = self.running.len();
        (n > 0).then(|| self.active_cores() * self.speed * self.scale / n as f64)
    }

    fn load(&self) -> Load {
        let mean = |k: usize| {
            let k = k.min(self.history.len());
            if k == 0 {
                return 0;
            }
            let sum: f64 = self.history.iter().rev().take(k).map(|&u| u as f64).sum();
            percent(sum / k as f64)
        };
        Load {
            load1: mean(1),
            load10: mean(10),
            load30: mean(30),
        }
    }
}

fn percent(u: f64) -> u32 {
    (u * 100.0).round().clamp(0.0, 100.0) as u32
}

/// `secs` as a duration, rounded up to the nanosecond.
fn secs_ceil(secs: f64) -> Duration {
    Duration::from_nanos((secs * 1e9).ceil() as u64)
}
