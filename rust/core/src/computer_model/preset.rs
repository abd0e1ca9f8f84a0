//! Ready-made computers, after serverlessonedge's presets (docs/computer.md).
//!
//! - `raspberry`: processor `arm` (cpu, 1e9 ops/s per core, 4 cores, 512 MiB) and processor
//!   `gpu` (gpu, 1e9 ops/s, 1 core, 512 MiB). Lambda `clambda0` runs on `arm` in container
//!   `ccontainer0` with 4 workers (= cores) and costs `1e6 * size + 4e6` ops; lambda `glambda0`
//!   runs on `gpu` in container `gcontainer0` with 1 worker and costs `1e6 * size + 1e6` ops.
//!   Both hold `100 * size` bytes of memory and echo their input. A 0-byte call thus takes
//!   4 ms on the cpu and 1 ms on the gpu when alone. [`raspberry`] makes more lambdas of
//!   each kind (`clambda<i>`, `glambda<i>`), each in its own container.
//! - `intel-server`: processor `xeon` (cpu, 4e9 ops/s per core, 20 cores, 128 GiB) running
//!   `clambda0` (same cost as on the raspberry, so routers can choose between both kinds of
//!   computer) in container `ccontainer0` with 20 workers.
//!
//! The speeds can be scaled with [`ComputerConfig::scale_speed`].

use std::fmt;
use std::str::FromStr;

use super::config::{
    ComputerConfig, ConfigError, ContainerConfig, LambdaConfig, LambdaOutput, ProcessorConfig,
    ProcessorType,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A named, ready-made computer configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    /// A Raspberry Pi: 4-core arm cpu and 1-core gpu; `clambda0` and `glambda0`.
    Raspberry,
    /// A 20-core Xeon server; `clambda0`.
    IntelServer,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 2] = [Preset::Raspberry, Preset::IntelServer];

    /// The preset's name, as on the command line and in scenario files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Preset::Raspberry => "raspberry",
            Preset::IntelServer => "intel-server",
        }
    }

    /// The configuration of this preset (valid by construction).
    pub fn config(self) -> ComputerConfig {
        match self {
            Preset::Raspberry => raspberry(1),
            Preset::IntelServer => intel_server(),
        }
    }

    /// This preset with `lambdas` lambdas of each kind (raspberry only: the intel server runs
    /// `clambda0` alone) and its main (first) processor's speed, cores or memory overridden;
    /// the containers on the main processor get one worker per core. Valid when the overrides
    /// are (speed > 0 and finite, cores >= 1, memory >= 1).
    pub fn config_with(self, lambdas: usize, overrides: MainProcessor) -> ComputerConfig {
        let mut config = match self {
            Preset::Raspberry => raspberry(lambdas),
            Preset::IntelServer => intel_server(),
        };
        let main = &mut config.processors[0];
        main.speed = overrides.speed.unwrap_or(main.speed);
        main.cores = overrides.cores.unwrap_or(main.cores);
        main.memory = overrides.memory.unwrap_or(main.memory);
        let (name, cores) = (main.name.clone(), main.cores);
        for container in config.containers.iter_mut().filter(|c| c.processor == name) {
            container.num_workers = cores;
        }
        config
    }
}

/// Overrides of a preset's main processor ([`Preset::config_with`]); `None` keeps the preset's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MainProcessor {
    /// Operations per second of one core.
    pub speed: Option<f64>,
    /// Number of cores (and of workers of the containers on it).
    pub cores: Option<u32>,
    /// Memory in bytes.
    pub memory: Option<u64>,
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ConfigError::UnknownPreset {
                name: s.to_string(),
                known: Preset::ALL.map(Preset::as_str).join(", "),
            })
    }
}

/// The raspberry preset with `lambdas` lambdas of each kind (`clambda0..`, `glambda0..`),
/// one container each; `lambdas` = 0 is taken as 1.
pub fn raspberry(lambdas: usize) -> ComputerConfig {
    let lambdas = lambdas.max(1);
    let mut config = ComputerConfig {
        processors: vec![
            ProcessorConfig {
                name: "arm".into(),
                kind: ProcessorType::Cpu,
                speed: 1e9,
                cores: 4,
                memory: 512 * MIB,
            },
            ProcessorConfig {
                name: "gpu".into(),
                kind: ProcessorType::Gpu,
                speed: 1e9,
                cores: 1,
                memory: 512 * MIB,
            },
        ],
        containers: Vec::new(),
        lambdas: Vec::new(),
    };
    for i in 0..lambdas {
        for (prefix, processor, workers, op_offset) in [("c", "arm", 4, 4e6), ("g", "gpu", 1, 1e6)]
        {
            let lambda = format!("{prefix}lambda{i}");
            config.containers.push(ContainerConfig {
                name: format!("{prefix}container{i}"),
                processor: processor.into(),
                lambda: lambda.clone(),
                num_workers: workers,
            });
            config.lambdas.push(LambdaConfig {
                name: lambda,
                op_offset,
                op_coeff: 1e6,
                mem_offset: 0.0,
                mem_coeff: 100.0,
                output: LambdaOutput::Echo,
            });
        }
    }
    config
}

/// The intel-server preset: one 20-core Xeon running `clambda0`.
pub fn intel_server() -> ComputerConfig {
    ComputerConfig {
        processors: vec![ProcessorConfig {
            name: "xeon".into(),
            kind: ProcessorType::Cpu,
            speed: 4e9,
            cores: 20,
            memory: 128 * GIB,
        }],
        containers: vec![ContainerConfig {
            name: "ccontainer0".into(),
            processor: "xeon".into(),
            lambda: "clambda0".into(),
            num_workers: 20,
        }],
        lambdas: vec![LambdaConfig {
            name: "clambda0".into(),
            op_offset: 4e6,
            op_coeff: 1e6,
            mem_offset: 0.0,
            mem_coeff: 100.0,
            output: LambdaOutput::Echo,
        }],
    }
}
