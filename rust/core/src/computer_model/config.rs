//! The configuration of a simulated e-computer: its processors, its containers and the cost of
//! its lambdas (docs/computer.md). Loaded from YAML by the binary, built from a preset, or written in
//! code; [`ComputerConfig::validate`] checks it before a [`super::ComputerModel`] runs it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Everything a simulated e-computer needs: processors, containers (one lambda on one
/// processor each) and the cost model of every lambda.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputerConfig {
    /// The processors, each with a unique name.
    pub processors: Vec<ProcessorConfig>,
    /// The containers; each runs one lambda on one processor.
    pub containers: Vec<ContainerConfig>,
    /// The lambdas' cost and output; each must be run by exactly one container.
    pub lambdas: Vec<LambdaConfig>,
}

/// The kind of a processor. Informational: the model treats both alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessorType {
    /// A general-purpose processor.
    Cpu,
    /// A graphics processor.
    Gpu,
}

/// One processor: `cores` cores of `speed` ops/s each, and `memory` bytes shared by the tasks
/// of every container on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// Unique name; utilization is reported under it.
    pub name: String,
    /// cpu or gpu.
    #[serde(rename = "type")]
    pub kind: ProcessorType,
    /// Operations per second of one core (> 0).
    pub speed: f64,
    /// Number of cores (>= 1).
    pub cores: u32,
    /// Memory in bytes (>= 1).
    pub memory: u64,
}

/// A container runs one lambda on one processor, with at most `num_workers` tasks at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerConfig {
    /// Unique name.
    pub name: String,
    /// Name of the processor it runs on.
    pub processor: String,
    /// Name of the lambda it runs.
    pub lambda: String,
    /// Concurrent tasks at most (>= 1); more wait in FIFO order.
    pub num_workers: u32,
}

/// The cost of a lambda, proportional to its input size:
/// `ops = op_offset + op_coeff * len(input)`, `mem = mem_offset + mem_coeff * len(input)` bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaConfig {
    /// Unique name, as clients call it.
    pub name: String,
    /// Operations regardless of the input.
    #[serde(default)]
    pub op_offset: f64,
    /// Operations per input byte.
    #[serde(default)]
    pub op_coeff: f64,
    /// Memory in bytes regardless of the input.
    #[serde(default)]
    pub mem_offset: f64,
    /// Memory bytes per input byte.
    #[serde(default)]
    pub mem_coeff: f64,
    /// What the lambda answers.
    #[serde(default)]
    pub output: LambdaOutput,
}

/// What a lambda answers: its input back (`output: echo`, the default) or a fixed text
/// (`output: {fixed: "text"}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OutputRepr", into = "OutputRepr")]
pub enum LambdaOutput {
    /// The input, unchanged.
    #[default]
    Echo,
    /// Always this text.
    Fixed(String),
}

/// How [`LambdaOutput`] is written: `echo`, or a map `{fixed: TEXT}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum OutputRepr {
    Word(String),
    Fixed {
        #[serde(rename = "fixed")]
        text: String,
    },
}

impl TryFrom<OutputRepr> for LambdaOutput {
    type Error = String;
    fn try_from(repr: OutputRepr) -> Result<Self, Self::Error> {
        match repr {
            OutputRepr::Word(w) if w == "echo" => Ok(LambdaOutput::Echo),
            OutputRepr::Word(w) => Err(format!(
                "output: expected `echo` or `{{fixed: TEXT}}`, got `{w}`"
            )),
            OutputRepr::Fixed { text } => Ok(LambdaOutput::Fixed(text)),
        }
    }
}

impl From<LambdaOutput> for OutputRepr {
    fn from(output: LambdaOutput) -> Self {
        match output {
            LambdaOutput::Echo => OutputRepr::Word("echo".into()),
            LambdaOutput::Fixed(text) => OutputRepr::Fixed { text },
        }
    }
}

/// A configuration that cannot run. Each message names the field and says what is expected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// No processor at all.
    #[error("processors: expected at least one processor, got none")]
    NoProcessors,
    /// No container at all.
    #[error("containers: expected at least one container, got none")]
    NoContainers,
    /// A processor, container or lambda without a name.
    #[error("{section}[#{index}].name: expected a non-empty name")]
    EmptyName {
        /// `processors`, `containers` or `lambdas`.
        section: &'static str,
        /// Position in the list, from 0.
        index: usize,
    },
    /// Two processors with the same name.
    #[error("processors[{0}]: duplicate processor name; expected unique names")]
    DuplicateProcessor(String),
    /// A processor with no core.
    #[error("processors[{0}].cores: expected at least 1 core, got 0")]
    ZeroCores(String),
    /// A processor whose speed is not a positive number.
    #[error(
        "processors[{processor}].speed: expected a finite number > 0 (ops/s per core), got {speed}"
    )]
    BadSpeed {
        /// The processor.
        processor: String,
        /// Its speed.
        speed: f64,
    },
    /// A processor without memory.
    #[error("processors[{0}].memory: expected at least 1 byte, got 0")]
    ZeroMemory(String),
    /// Two containers with the same name.
    #[error("containers[{0}]: duplicate container name; expected unique names")]
    DuplicateContainer(String),
    /// A container on a processor that does not exist.
    #[error(
        "containers[{container}].processor: unknown processor '{processor}'; expected one of: {known}"
    )]
    UnknownProcessor {
        /// The container.
        container: String,
        /// The processor it names.
        processor: String,
        /// The processors defined, comma-separated.
        known: String,
    },
    /// A container running a lambda that is not defined.
    #[error(
        "containers[{container}].lambda: unknown lambda '{lambda}'; expected one defined under `lambdas`: {known}"
    )]
    UnknownLambda {
        /// The container.
        container: String,
        /// The lambda it names.
        lambda: String,
        /// The lambdas defined, comma-separated.
        known: String,
    },
    /// A container with no worker.
    #[error("containers[{0}].num_workers: expected at least 1 worker, got 0")]
    ZeroWorkers(String),
    /// Two lambdas with the same name.
    #[error("lambdas[{0}]: duplicate lambda name; expected lambda names unique per computer")]
    DuplicateLambda(String),
    /// One lambda in two containers.
    #[error(
        "containers[{second}].lambda: lambda '{lambda}' is already run by container '{first}'; expected each lambda in one container (lambda names are unique per computer)"
    )]
    LambdaInTwoContainers {
        /// The lambda.
        lambda: String,
        /// The first container running it.
        first: String,
        /// The second one.
        second: String,
    },
    /// A cost coefficient that is negative or not a number.
    #[error("lambdas[{lambda}].{field}: expected a finite number >= 0, got {value}")]
    BadCost {
        /// The lambda.
        lambda: String,
        /// The field: op_offset, op_coeff, mem_offset or mem_coeff.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A lambda that costs nothing whatever its input.
    #[error("lambdas[{0}]: op_offset and op_coeff are both 0; expected a positive cost")]
    ZeroCost(String),
    /// A lambda defined but run by no container.
    #[error("lambdas[{0}]: no container runs it; expected a container with `lambda: {0}`")]
    UnusedLambda(String),
    /// A preset name that does not exist.
    #[error("unknown preset '{name}'; expected one of: {known}")]
    UnknownPreset {
        /// The name given.
        name: String,
        /// The presets, comma-separated.
        known: String,
    },
    /// A speed factor that is not a positive number.
    #[error("speed factor: expected a finite number > 0, got {0}")]
    BadSpeedFactor(f64),
}

// ===== impl ComputerConfig =====

impl ComputerConfig {
    /// Checks that the configuration can run: names unique and non-empty, processors with
    /// cores, speed and memory, containers on known processors running defined lambdas with at
    /// least one worker, every lambda in exactly one container, costs finite and non-negative.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.processors.is_empty() {
            return Err(ConfigError::NoProcessors);
        }
        if self.containers.is_empty() {
            return Err(ConfigError::NoContainers);
        }
        let mut processors = HashSet::new();
        for (index, p) in self.processors.iter().enumerate() {
            if p.name.is_empty() {
                return Err(ConfigError::EmptyName {
                    section: "processors",
                    index,
                });
            }
            if !processors.insert(p.name.as_str()) {
                return Err(ConfigError::DuplicateProcessor(p.name.clone()));
            }
            if p.cores == 0 {
                return Err(ConfigError::ZeroCores(p.name.clone()));
            }
            if !(p.speed.is_finite() && p.speed > 0.0) {
                return Err(ConfigError::BadSpeed {
                    processor: p.name.clone(),
                    speed: p.speed,
                });
            }
            if p.memory == 0 {
                return Err(ConfigError::ZeroMemory(p.name.clone()));
            }
        }
        let mut lambdas = HashSet::new();
        for (index, l) in self.lambdas.iter().enumerate() {
            if l.name.is_empty() {
                return Err(ConfigError::EmptyName {
                    section: "lambdas",
                    index,
                });
            }
            if !lambdas.insert(l.name.as_str()) {
                return Err(ConfigError::DuplicateLambda(l.name.clone()));
            }
            for (field, value) in [
                ("op_offset", l.op_offset),
                ("op_coeff", l.op_coeff),
                ("mem_offset", l.mem_offset),
                ("mem_coeff", l.mem_coeff),
            ] {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(ConfigError::BadCost {
                        lambda: l.name.clone(),
                        field,
                        value,
                    });
                }
            }
            if l.op_offset == 0.0 && l.op_coeff == 0.0 {
                return Err(ConfigError::ZeroCost(l.name.clone()));
            }
        }
        let mut containers = HashSet::new();
        let mut runner: HashMap<&str, &str> = HashMap::new();
        for (index, c) in self.containers.iter().enumerate() {
            if c.name.is_empty() {
                return Err(ConfigError::EmptyName {
                    section: "containers",
                    index,
                });
            }
            if !containers.insert(c.name.as_str()) {
                return Err(ConfigError::DuplicateContainer(c.name.clone()));
            }
            if !processors.contains(c.processor.as_str()) {
                return Err(ConfigError::UnknownProcessor {
                    container: c.name.clone(),
                    processor: c.processor.clone(),
                    known: join(self.processors.iter().map(|p| p.name.as_str())),
                });
            }
            if !lambdas.contains(c.lambda.as_str()) {
                return Err(ConfigError::UnknownLambda {
                    container: c.name.clone(),
                    lambda: c.lambda.clone(),
                    known: join(self.lambdas.iter().map(|l| l.name.as_str())),
                });
            }
            if c.num_workers == 0 {
                return Err(ConfigError::ZeroWorkers(c.name.clone()));
            }
            if let Some(first) = runner.insert(c.lambda.as_str(), c.name.as_str()) {
                return Err(ConfigError::LambdaInTwoContainers {
                    lambda: c.lambda.clone(),
                    first: first.to_string(),
                    second: c.name.clone(),
                });
            }
        }
        if let Some(l) = self
            .lambdas
            .iter()
            .find(|l| !runner.contains_key(l.name.as_str()))
        {
            return Err(ConfigError::UnusedLambda(l.name.clone()));
        }
        Ok(())
    }

    /// Multiplies the speed of every processor by `factor` (> 0): 2.0 makes every task twice
    /// as fast. Used to make fast and slow computers from one preset.
    pub fn scale_speed(&mut self, factor: f64) -> Result<(), ConfigError> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(ConfigError::BadSpeedFactor(factor));
        }
        for p in &mut self.processors {
            p.speed *= factor;
        }
        Ok(())
    }

    /// The same configuration with every processor's speed multiplied by `factor` (> 0).
    pub fn with_speed_factor(mut self, factor: f64) -> Result<Self, ConfigError> {
        self.scale_speed(factor)?;
        Ok(self)
    }

    /// The lambda called `name`, if defined.
    pub fn lambda(&self, name: &str) -> Option<&LambdaConfig> {
        self.lambdas.iter().find(|l| l.name == name)
    }
}

// ===== impl LambdaConfig =====

impl LambdaConfig {
    /// Operations a call with `input_len` bytes of input costs.
    pub fn ops(&self, input_len: usize) -> f64 {
        self.op_offset + self.op_coeff * input_len as f64
    }

    /// Memory in bytes a call with `input_len` bytes of input holds while it runs (rounded up).
    pub fn mem(&self, input_len: usize) -> u64 {
        (self.mem_offset + self.mem_coeff * input_len as f64).ceil() as u64
    }
}

// ===== impl LambdaOutput =====

impl LambdaOutput {
    /// The answer to `input` (an echo returns it as it is, without a copy).
    pub fn render(&self, input: String) -> String {
        match self {
            LambdaOutput::Echo => input,
            LambdaOutput::Fixed(text) => text.clone(),
        }
    }
}

pub(crate) fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}
