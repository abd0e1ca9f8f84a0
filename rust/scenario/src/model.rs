//! The scenario model: what a scenario file says, after validation.
//!
//! Names are the keys between parts: a host names its switch, a link its two switches, a
//! workload its client and router. Units are fixed: bandwidth in Mbit/s, delay in ms, loss in
//! percent, queue in packets, sizes in bytes, times in seconds since the start of the run.

use std::net::Ipv4Addr;

pub use lambdaroute_core::computer_model::Preset;
pub use lambdaroute_core::estimator::{EstimatorKind, Stat};
pub use lambdaroute_core::policy::PolicyKind;
pub use lambdaroute_trace::{Group, LambdaRule, SensorFilter, TimeSpec, Timestamp, Window};

/// A complete scenario: network, roles, workloads, background traffic and control choices.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The scenario's name; the file name without its extension when the file gives none.
    pub name: String,
    /// Free text about the scenario; empty by default.
    pub description: String,
    /// Length of the run, s.
    pub duration: f64,
    /// Seed of every random choice of the run.
    pub seed: u64,
    /// How to draw positions: plain x/y, or longitude/latitude on a map.
    pub coordinates: Coordinates,
    /// Policy, estimator, installer, routing and congestion threshold.
    pub control: Control,
    /// The OpenFlow switches, in file order; at least one in a valid scenario.
    pub switches: Vec<Switch>,
    /// The hosts, in file order (the order of their ports and assigned addresses).
    pub hosts: Vec<Host>,
    /// The switch-to-switch links, in file order (the order of the switches' first ports).
    pub links: Vec<Link>,
    /// The calls the clients send.
    pub workloads: Vec<Workload>,
    /// The traffic from traffic sources to traffic sinks that competes with the calls.
    pub background: Vec<Background>,
    /// Computers the testbed runs outside the emulated network, on its own machine, reached
    /// through the NAT gateway (which the scenario must have).
    pub external: Vec<External>,
    /// Changes during the run (a link down, a computer slower, ...), in time order.
    pub events: Vec<Event>,
}

/// The controller's and routers' choices. Policies, estimators and presets are core's types:
/// one vocabulary for the scenario, the command line and the nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Control {
    /// How routers choose a computer for each call; round robin by default.
    pub policy: PolicyKind,
    /// The policy's [`PolicyKind::default_estimator`] unless the scenario names one.
    pub estimator: EstimatorKind,
    /// How the controller fills the routers' tables.
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
    /// The text that matched no keyword.
    pub given: String,
    /// Every keyword of the enum, in the order of the documentation.
    pub expected: Vec<&'static str>,
}

keyword_enum!(
    /// How to read positions.
    Coordinates {
        /// Positions are `[x, y]` on a plane, for drawing only.
        Plane = "plane",
        /// Positions are `[longitude, latitude]` in degrees.
        Geo = "geo",
    }
);

keyword_enum!(
    /// Objective of the two-tier installer (docs/controller.md).
    Objective {
        /// Home router that makes a call's longest path shortest, then its paths shortest on average.
        MinMax = "min-max",
        /// Home router that makes a call's paths shortest on average, then its longest path shortest.
        MinAvg = "min-avg",
    }
);

keyword_enum!(
    /// Weight of shortest paths: hop count or link delay.
    Routing {
        /// Every link weighs one: fewest hops.
        Hops = "hops",
        /// A link weighs its delay: lowest total delay.
        Delay = "delay",
    }
);

keyword_enum!(
    /// The role of a host.
    RoleKind {
        /// A router: dispatches its clients' calls to computers.
        Router = "router",
        /// A computer: runs lambdas.
        Computer = "computer",
        /// The controller: fills the routers' tables.
        Controller = "controller",
        /// A client: sends calls to a router.
        Client = "client",
        /// A traffic source: sends background traffic.
        TrafficSource = "traffic-source",
        /// A traffic sink: receives background traffic.
        TrafficSink = "traffic-sink",
        /// The NAT gateway into the emulated network.
        Nat = "nat",
    }
);

/// How the controller fills the routers' tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Installer {
    /// Every router's table holds every computer's lambdas, final.
    Flat,
    /// Each computer is final on one home router, which the other routers forward its lambdas
    /// to: a call crosses at most two routers, and tables stay small.
    TwoTier {
        /// How the home router of each computer is chosen.
        objective: Objective,
    },
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
    /// Unique among switches and hosts; at most [`crate::MAX_NAME_LEN`] characters.
    pub name: String,
    /// Where to draw it: x/y, or longitude/latitude (see [`Coordinates`]).
    pub position: Option<[f64; 2]>,
}

/// A host with one interface, attached to one switch.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    /// Unique among switches and hosts; at most [`crate::MAX_NAME_LEN`] characters.
    pub name: String,
    /// Name of the switch its one interface is attached to.
    pub switch: String,
    /// What it runs in the testbed.
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
    /// Receives calls from clients and dispatches each to a computer.
    Router,
    /// Runs lambdas: a simulated e-computer with its processor.
    Computer(Computer),
    /// Fills the routers' tables and steers calls away from congested links.
    Controller,
    /// Sends calls to a router, as its workloads say.
    Client,
    /// Sends background traffic to a traffic sink.
    TrafficSource,
    /// Receives background traffic from traffic sources.
    TrafficSink,
    /// The gateway that lets programs outside the emulated network reach in.
    Nat,
}

impl Role {
    /// The role's keyword, without a computer's parameters.
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

keyword_enum!(
    /// How a computer runs its calls.
    Executor {
        /// The processor-sharing model of its preset.
        Simulated = "simulated",
        /// Real face and eye detection (`facerec0`, `eyerec0`; `clambda0` at once): the face
        /// function beside the computer.
        Face = "face",
    }
);

/// An e-computer: a simulated one (a preset, with optional overrides of its main processor),
/// or a real one ([`Executor::Face`]), for which the preset and overrides do not apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Computer {
    /// How it runs its calls; simulated by default.
    pub executor: Executor,
    /// The device it simulates; `raspberry` by default.
    pub preset: Preset,
    /// Lambdas of each kind the preset makes (`clambda0..`, `glambda0..`).
    pub lambdas: u32,
    /// Speed of the main processor, ops/s per core; None: the preset's.
    pub speed: Option<f64>,
    /// Cores of the main processor; None: the preset's.
    pub cores: Option<u32>,
    /// Memory of the main processor, bytes; None: the preset's.
    pub memory: Option<u64>,
    /// Computers the host's process serves, on consecutive ports, each announced as its own
    /// computer with these processors (1 to [`MAX_COMPUTER_ENDPOINTS`]).
    pub endpoints: u32,
}

/// Most computer endpoints one host serves (`computer: {endpoints: N}`).
pub const MAX_COMPUTER_ENDPOINTS: u32 = 1024;

/// Most lambdas of each kind of a preset computer (`computer: {lambdas: N}`): each is a
/// container and a lambda of its configuration, which the offered load builds per computer.
pub const MAX_COMPUTER_LAMBDAS: u32 = 1000;

impl Computer {
    /// A computer with the preset's processor and one lambda of each kind.
    pub fn preset(preset: Preset) -> Self {
        Computer {
            executor: Executor::Simulated,
            preset,
            lambdas: 1,
            speed: None,
            cores: None,
            memory: None,
            endpoints: 1,
        }
    }
}

/// A computer outside the emulated network: the testbed runs it on its own machine, listening
/// on the NAT gateway's machine address, and the routers reach it at the gateway's address and
/// `port`.
#[derive(Clone, Debug, PartialEq)]
pub struct External {
    /// Unique among switches, hosts and external computers.
    pub name: String,
    /// What it runs.
    pub computer: Computer,
    /// Its lambda port; its utilization stream listens on `port + 1`.
    pub port: u16,
}

/// Shaping of a link. `bw: None` is unlimited; zero delay, loss and `queue: None` are ideal.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LinkParams {
    /// Bandwidth, Mbit/s; None: unlimited.
    pub bw: Option<f64>,
    /// One-way delay, ms.
    pub delay: f64,
    /// Packet loss, percent (0 to 100).
    pub loss: f64,
    /// Queue length of the shaped ports, packets; None: the testbed's default.
    pub queue: Option<u32>,
}

impl LinkParams {
    /// A link of `bw` Mbit/s and `delay` ms, without loss and with the default queue.
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
    /// Name of the switch at one end (the first in the link's name `a-b`).
    pub a: String,
    /// Name of the switch at the other end; a different switch from `a`.
    pub b: String,
    /// Bandwidth, delay, loss and queue of the link.
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
    /// Every call carries this many bytes.
    Fixed(u64),
    /// Each call's size is drawn uniformly from `min` to `max` bytes, both included.
    Uniform {
        /// Smallest size, bytes.
        min: u64,
        /// Largest size, bytes; at least `min`.
        max: u64,
    },
}

/// How a client sends its calls.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// `threads` calls outstanding at all times.
    ClosedLoop {
        /// Callers, each sending its next call when its last one is answered.
        threads: u32,
    },
    /// Poisson arrivals, `rate` calls/s.
    Poisson {
        /// Mean arrival rate, calls/s.
        rate: f64,
    },
    /// Exponential ON and OFF periods of mean `on`/`off` s; in ON, `rate` calls/s.
    OnOff {
        /// Mean ON period, s.
        on: f64,
        /// Mean OFF period, s.
        off: f64,
        /// Call rate during ON periods, calls/s.
        rate: f64,
    },
    /// Replay of a trace file (`time lambda endpoint size` rows).
    Trace {
        /// Path of the trace file, as written in the scenario.
        file: String,
    },
    /// Replay of an Array of Things digest: the readings of the AoT nodes of the client's site
    /// become its calls (docs/traces.md).
    Aot(AotReplay),
}

/// A `pattern: aot` workload's settings: which trace, which part of it, how fast, and how
/// readings become calls.
#[derive(Clone, Debug, PartialEq)]
pub struct AotReplay {
    /// Path of the digest's `data.csv` or `data.csv.gz`, as written in the scenario (relative
    /// to the scenario file).
    pub trace: String,
    /// The span of trace time replayed; its start is time 0 of the workload.
    pub window: Window,
    /// Trace seconds per run second (60: an hour of data in a minute).
    pub speedup: f64,
    /// What one call carries: a reading, a node's readings at one timestamp, or a subsystem's.
    pub group: Group,
    /// Lambda per subsystem, sensor or parameter (the most specific wins); else the
    /// workload's `lambda`.
    pub lambdas: Vec<LambdaRule>,
    /// Readings replayed; empty: all.
    pub sensors: Vec<SensorFilter>,
    /// The input of each call.
    pub payload: AotPayload,
}

impl AotReplay {
    /// The whole trace at `file` in real time, one call per node per timestamp, sized by the
    /// workload's `size`.
    pub fn new(file: impl Into<String>) -> Self {
        AotReplay {
            trace: file.into(),
            window: Window::default(),
            speedup: 1.0,
            group: Group::Node,
            lambdas: Vec::new(),
            sensors: Vec::new(),
            payload: AotPayload::Size,
        }
    }
}

/// The input of an AoT call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AotPayload {
    /// The workload's `size` (fixed, or drawn per call).
    Size,
    /// The call's rows as `data.csv` text.
    Rows,
    /// This many bytes per reading of the call.
    PerRow(u64),
}

impl Pattern {
    /// Every pattern's keyword.
    pub const NAMES: [&'static str; 5] = ["closed-loop", "poisson", "on-off", "trace", "aot"];

    /// The pattern's keyword (without its parameters).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Pattern::ClosedLoop { .. } => "closed-loop",
            Pattern::Poisson { .. } => "poisson",
            Pattern::OnOff { .. } => "on-off",
            Pattern::Trace { .. } => "trace",
            Pattern::Aot(_) => "aot",
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
    /// Name of the host, a client, that sends the calls.
    pub client: String,
    /// Name of the host, a router, the client sends its calls to.
    pub router: String,
    /// Routers the client fails over to, in order, when `router` cannot be reached (its
    /// process down, its host cut off); the client goes back to `router` once it answers
    /// again. Empty: no failover.
    pub fallback: Vec<String>,
    /// Name of the lambda the calls invoke, e.g. `clambda0`.
    pub lambda: String,
    /// When the calls are sent.
    pub pattern: Pattern,
    /// Payload of each call, bytes.
    pub size: Size,
    /// When the client starts sending, s since the start of the run.
    pub start: f64,
    /// When the client stops sending, s since the start of the run; None: at the end of the run.
    pub stop: Option<f64>,
    /// Images (JPEG or PNG files) sent in turn, one per call, instead of `size` bytes of text.
    pub images: Vec<String>,
    /// With images: after each call, call this lambda once per object found (the eyes of each
    /// face), with the object cropped out.
    pub eyes: Option<String>,
    /// How the client calls: the router's gRPC service, or Apache OpenWhisk's REST API through
    /// a gateway (`lambdaroute gateway`) on the router's host.
    pub api: Api,
}

/// The interface a workload's client calls through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Api {
    /// The router's `EdgeServer` (gRPC), as serverlessonedge's clients.
    #[default]
    Grpc,
    /// OpenWhisk's REST API, served by a gateway on the router's host in front of it.
    OpenWhisk,
}

impl Api {
    /// The name in scenario files: `grpc` or `openwhisk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::OpenWhisk => "openwhisk",
        }
    }
}

/// Traffic that competes with the calls on the links.
#[derive(Clone, Debug, PartialEq)]
pub struct Background {
    /// Name of the host, a traffic source, that sends the traffic.
    pub source: String,
    /// Name of the host, a traffic sink, that receives it.
    pub sink: String,
    /// How much is sent and when.
    pub traffic: Traffic,
    /// When the source starts sending, s since the start of the run.
    pub start: f64,
    /// When the source stops sending, s since the start of the run; None: at the end of the run.
    pub stop: Option<f64>,
}

/// What background traffic a source sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Traffic {
    /// Replay of a trace file.
    Trace {
        /// Path of the trace file (`time_s,rate_mbps` rows), as written in the scenario.
        file: String,
    },
    /// Constant bit rate, Mbit/s; with `on`/`off` means (s), exponential ON/OFF periods.
    Synthetic {
        /// Sending rate, Mbit/s (during ON periods, if any).
        rate: f64,
        /// Mean ON and mean OFF period, s; None: always on.
        on_off: Option<(f64, f64)>,
    },
}

/// A change during the run, applied by the testbed at `at` s from the start.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it happens, s since the start of the run; 0 <= at < duration.
    pub at: f64,
    /// What happens.
    pub action: Action,
}

/// The new speed of a computer (`computer-speed`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// Every processor's speed, as the scenario gives it, times this factor (> 0).
    Factor(f64),
    /// The main processor's speed, ops/s per core (> 0).
    OpsPerSec(f64),
}

/// What an [`Event`] does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A computer's speed changes.
    ComputerSpeed {
        /// The computer host.
        host: String,
        /// Its new speed.
        speed: Speed,
    },
    /// The background load of a (simulated) computer changes: the fraction of every core
    /// other work takes, leaving the rest to lambdas.
    ComputerLoad {
        /// The computer host.
        host: String,
        /// Fraction of every core taken by other work, `0 <= load < 1`.
        load: f64,
    },
    /// A computer crashes: its process stops.
    ComputerStop {
        /// The computer host.
        host: String,
    },
    /// A stopped computer starts again.
    ComputerStart {
        /// The computer host.
        host: String,
    },
    /// A computer freezes: its process is suspended (SIGSTOP), not killed; its connections
    /// stay open and calls to it wait unanswered.
    ComputerFreeze {
        /// The computer host.
        host: String,
    },
    /// A frozen computer resumes (SIGCONT) and answers the calls it was holding.
    ComputerThaw {
        /// The computer host.
        host: String,
    },
    /// A switch-to-switch link goes down (both ends).
    LinkDown {
        /// The link's name, `a-b` as in [`Link::name`].
        link: String,
    },
    /// A link that went down comes up again.
    LinkUp {
        /// The link's name, `a-b`.
        link: String,
    },
    /// A link's bandwidth and/or delay change.
    LinkSet {
        /// The link's name, `a-b`.
        link: String,
        /// New bandwidth, Mbit/s; None: unchanged.
        bw: Option<f64>,
        /// New one-way delay, ms; None: unchanged.
        delay: Option<f64>,
    },
    /// A router's process stops and starts again (its tables are installed anew).
    RouterRestart {
        /// The router host.
        host: String,
    },
}

impl Action {
    /// Every event kind's keyword, in the order of the documentation.
    pub const KINDS: [&'static str; 10] = [
        "computer-speed",
        "computer-load",
        "computer-stop",
        "computer-start",
        "computer-freeze",
        "computer-thaw",
        "link-down",
        "link-up",
        "link-set",
        "router-restart",
    ];

    /// The event kind's keyword.
    pub const fn kind(&self) -> &'static str {
        match self {
            Action::ComputerSpeed { .. } => "computer-speed",
            Action::ComputerLoad { .. } => "computer-load",
            Action::ComputerStop { .. } => "computer-stop",
            Action::ComputerStart { .. } => "computer-start",
            Action::ComputerFreeze { .. } => "computer-freeze",
            Action::ComputerThaw { .. } => "computer-thaw",
            Action::LinkDown { .. } => "link-down",
            Action::LinkUp { .. } => "link-up",
            Action::LinkSet { .. } => "link-set",
            Action::RouterRestart { .. } => "router-restart",
        }
    }

    /// The host it acts on, for the kinds that act on a host.
    pub fn host(&self) -> Option<&str> {
        match self {
            Action::ComputerSpeed { host, .. }
            | Action::ComputerLoad { host, .. }
            | Action::ComputerStop { host }
            | Action::ComputerStart { host }
            | Action::ComputerFreeze { host }
            | Action::ComputerThaw { host }
            | Action::RouterRestart { host } => Some(host),
            _ => None,
        }
    }

    /// The link it acts on, for the kinds that act on a link.
    pub fn link(&self) -> Option<&str> {
        match self {
            Action::LinkDown { link } | Action::LinkUp { link } | Action::LinkSet { link, .. } => {
                Some(link)
            }
            _ => None,
        }
    }
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
            external: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Position of the named switch in [`Scenario::switches`].
    pub fn switch_index(&self, name: &str) -> Option<usize> {
        self.switches.iter().position(|s| s.name == name)
    }

    /// Position of the named host in [`Scenario::hosts`].
    pub fn host_index(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }

    /// The host with this name.
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
