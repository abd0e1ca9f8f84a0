//! The scenario model: what a scenario file says, after validation.
//!
//! Names are the keys between parts: a host names its switch, a link its two switches, a
//! workload its client and router. Units are fixed: bandwidth in Mbit/s, delay in ms, loss in
//! percent, queue in packets, sizes in bytes, times in seconds since the start of the run.

use std::net::Ipv4Addr;

pub use lambdaroute_core::computer_model::Preset;
pub use lambdaroute_core::estimator::{EstimatorKind, Stat};
pub use lambdaroute_core::policy::PolicyKind;

/// A complete scenario: network, roles, workloads, background traffic and control choices.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Length of the run, s.
    pub duration: f64,
    pub seed: u64,
    /// How to draw positions: plain x/y, or longitude/latitude on a map.
    pub coordinates: Coordinates,
    pub control: Control,
    pub switches: Vec<Switch>,
    pub hosts: Vec<Host>,
    pub links: Vec<Link>,
    pub workloads: Vec<Workload>,
    pub background: Vec<Background>,
}

/// The controller's and routers' choices. Policies, estimators and presets are core's types:
/// one vocabulary for the scenario, the command line and the nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Control {
    pub policy: PolicyKind,
    /// The policy's [`PolicyKind::default_estimator`] unless the scenario names one.
    pub estimator: EstimatorKind,
    pub installer: Installer,
    /// Weight of the shortest paths the static flows follow.
    pub routing: Routing,
    /// Fraction of a link's bandwidth (0, 1] above which the monitor reports it congested.
    pub congestion_threshold: f64,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            policy: PolicyKind::RoundRobin,
            estimator: PolicyKind::RoundRobin.default_estimator(),
            installer: Installer::Flat,
            routing: Routing::Hops,
            congestion_threshold: 0.8,
        }
    }
}

/// An enum of scenario keywords: `ALL`, `as_str`, `Display` and `FromStr` (whose error lists
/// the keywords).
macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// Every value, in the order of the documentation.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The keyword used in scenario files.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = UnknownKeyword;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| UnknownKeyword {
                    given: s.to_string(),
                    expected: $name::ALL.iter().map(|v| v.as_str()).collect(),
                })
            }
        }
    };
}

/// A keyword that a scenario enum's `FromStr` does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown keyword `{given}`; expected one of {}", expected.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))]
pub struct UnknownKeyword {
    pub given: String,
    pub expected: Vec<&'static str>,
}

keyword_enum!(
    /// How to read positions.
    Coordinates {
        Plane = "plane",
        /// Positions are `[longitude, latitude]` in degrees.
        Geo = "geo",
    }
);

keyword_enum!(
    /// Objective of the two-tier installer (docs/controller.md).
    Objective { MinMax = "min-max", MinAvg = "min-avg" }
);

keyword_enum!(
    /// Weight of shortest paths: hop count or link delay.
    Routing { Hops = "hops", Delay = "delay" }
);

keyword_enum!(
    /// The role of a host.
    RoleKind {
        Router = "router",
        Computer = "computer",
        Controller = "controller",
        Client = "client",
        TrafficSource = "traffic-source",
        TrafficSink = "traffic-sink",
        Nat = "nat",
    }
);

/// How the controller fills the routers' tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Installer {
    Flat,
    TwoTier { objective: Objective },
}

impl Installer {
    /// Every installer's keyword.
    pub const NAMES: [&'static str; 2] = ["flat", "two-tier"];

    /// The installer's keyword (without its objective).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Installer::Flat => "flat",
            Installer::TwoTier { .. } => "two-tier",
        }
    }
}

impl std::fmt::Display for Installer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OpenFlow switch.
#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    pub name: String,
    /// Where to draw it: x/y, or longitude/latitude (see [`Coordinates`]).
    pub position: Option<[f64; 2]>,
}

/// A host with one interface, attached to one switch.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub name: String,
    pub switch: String,
    pub role: Role,
    /// Fixed address; assigned from 10.0.0.0/8 when absent.
    pub ip: Option<Ipv4Addr>,
    /// Fixed MAC; assigned when absent.
    pub mac: Option<[u8; 6]>,
    /// The access link to its switch.
    pub link: LinkParams,
}

/// What a host does.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    Router,
    Computer(Computer),
    Controller,
    Client,
    TrafficSource,
    TrafficSink,
    /// The gateway that lets programs outside the emulated network reach in.
    Nat,
}

impl Role {
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::Router => RoleKind::Router,
            Role::Computer(_) => RoleKind::Computer,
            Role::Controller => RoleKind::Controller,
            Role::Client => RoleKind::Client,
            Role::TrafficSource => RoleKind::TrafficSource,
            Role::TrafficSink => RoleKind::TrafficSink,
            Role::Nat => RoleKind::Nat,
        }
    }
}

/// A simulated e-computer: a preset, with optional overrides of its main processor.
#[derive(Clone, Debug, PartialEq)]
pub struct Computer {
    pub preset: Preset,
    /// Lambdas of each kind the preset makes (`clambda0..`, `glambda0..`).
    pub lambdas: u32,
    /// ops/s per core.
    pub speed: Option<f64>,
    pub cores: Option<u32>,
    /// bytes.
    pub memory: Option<u64>,
}

impl Computer {
    pub fn preset(preset: Preset) -> Self {
        Computer {
            preset,
            lambdas: 1,
            speed: None,
            cores: None,
            memory: None,
        }
    }
}

/// Shaping of a link. `bw: None` is unlimited; zero delay, loss and `queue: None` are ideal.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LinkParams {
    /// Mbit/s.
    pub bw: Option<f64>,
    /// ms.
    pub delay: f64,
    /// percent.
    pub loss: f64,
    /// packets.
    pub queue: Option<u32>,
}

impl LinkParams {
    pub fn shaped(bw: f64, delay: f64) -> Self {
        LinkParams {
            bw: Some(bw),
            delay,
            ..LinkParams::default()
        }
    }
}

/// A link between two switches.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub a: String,
    pub b: String,
    pub params: LinkParams,
}

impl Link {
    /// The name the monitor and the congestion reports use: `a-b`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.a, self.b)
    }
}

/// Size of each call's payload, bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    Fixed(u64),
    Uniform { min: u64, max: u64 },
}

/// How a client sends its calls.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// `threads` calls outstanding at all times.
    ClosedLoop { threads: u32 },
    /// Poisson arrivals, `rate` calls/s.
    Poisson { rate: f64 },
    /// Exponential ON and OFF periods of mean `on`/`off` s; in ON, `rate` calls/s.
    OnOff { on: f64, off: f64, rate: f64 },
    /// Replay of a trace file (`time lambda endpoint size` rows).
    Trace { file: String },
}

impl Pattern {
    /// Every pattern's keyword.
    pub const NAMES: [&'static str; 4] = ["closed-loop", "poisson", "on-off", "trace"];

    /// The pattern's keyword (without its parameters).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Pattern::ClosedLoop { .. } => "closed-loop",
            Pattern::Poisson { .. } => "poisson",
            Pattern::OnOff { .. } => "on-off",
            Pattern::Trace { .. } => "trace",
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Calls one client sends to one router.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub client: String,
    pub router: String,
    pub lambda: String,
    pub pattern: Pattern,
    pub size: Size,
    pub start: f64,
    /// None: until the end of the run.
    pub stop: Option<f64>,
}

/// Traffic that competes with the calls on the links.
#[derive(Clone, Debug, PartialEq)]
pub struct Background {
    pub source: String,
    pub sink: String,
    pub traffic: Traffic,
    pub start: f64,
    pub stop: Option<f64>,
}

/// What background traffic a source sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Traffic {
    /// Replay of a trace file.
    Trace { file: String },
    /// Constant bit rate, Mbit/s; with `on`/`off` means (s), exponential ON/OFF periods.
    Synthetic {
        rate: f64,
        on_off: Option<(f64, f64)>,
    },
}

impl Scenario {
    /// An empty scenario with default control choices.
    pub fn new(name: impl Into<String>) -> Self {
        Scenario {
            name: name.into(),
            description: String::new(),
            duration: 60.0,
            seed: 1,
            coordinates: Coordinates::Plane,
            control: Control::default(),
            switches: Vec::new(),
            hosts: Vec::new(),
            links: Vec::new(),
            workloads: Vec::new(),
            background: Vec::new(),
        }
    }

    pub fn switch_index(&self, name: &str) -> Option<usize> {
        self.switches.iter().position(|s| s.name == name)
    }

    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Hosts with a role, in file order.
    pub fn hosts_with(&self, kind: RoleKind) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role.kind() == kind)
    }
}

/// MAC address text, `00:00:00:00:00:01`.
pub fn mac_to_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    Some(mac)
}
