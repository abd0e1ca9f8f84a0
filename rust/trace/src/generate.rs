//! A seeded generator of `data.csv` in the digest's format, from a node list and a sensor list.
//!
//! The AoT time series cannot be downloaded here, so this makes one that the reader treats
//! exactly like a downloaded digest (same header, timestamps, `NA`s, ascending time):
//!
//! - every node reports within its `start_timestamp`/`end_timestamp`, about every `period`
//!   seconds (25 by default) with a uniform jitter of `jitter` seconds either way, from a random
//!   phase;
//! - its boards: `metsense` and `lightsense` on every node; `chemsense`, `alphasense`,
//!   `plantower` where its description marks them (`[C]`, `[A]`, `[P]`); vision counters
//!   (`image.image_detector.car_total`, `person_total`) every 300 s on a seeded third of the
//!   nodes; the system boards (`nc`, `ep`, `wagman`) and `audio` are not generated;
//! - values follow the day and the year at the node's longitude (solar time): temperature peaks
//!   in the afternoon and in July, humidity the other way round, light follows the daylight,
//!   gases, particles and vision counts follow the traffic (rush hours, quieter weekends,
//!   busier nearer downtown Chicago);
//! - some sensors give only the raw value (the gas concentrations), some only the converted
//!   one (particles, vision counts), the others both; a fraction `missing` of the values is
//!   `NA`;
//! - nodes drop out (a Poisson process of `dropouts_per_day`, 2 to 45 minutes without rows) and
//!   restart with a new phase.
//!
//! Each node draws from its own ChaCha8 stream of `seed`, so the same seed gives the same bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::f64::consts::{PI, TAU};
use std::fmt::Write as _;
use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TraceError};
use crate::nodes::{Node, NodeList, Sensor};
use crate::reader::{DATA_HEADER, MISSING, SensorFilter};
use crate::time::Timestamp;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Time of the first possible row.
    pub start: Timestamp,
    /// Length of the trace, s.
    pub duration: u64,
    /// Seed of every draw.
    pub seed: u64,
    /// Mean seconds between two samples of a node.
    pub period: f64,
    /// Each interval is `period` plus a uniform draw in `[-jitter, jitter]` s.
    pub jitter: f64,
    /// Fraction of values written `NA`.
    pub missing: f64,
    /// Mean dropouts per node per day.
    pub dropouts_per_day: f64,
    /// Seconds between two vision counts of a node with a camera.
    pub vision_period: f64,
    /// Only these subsystems, sensors or parameters; empty: all that are generated.
    pub sensors: Vec<SensorFilter>,
}

impl Default for GenerateOptions {
    /// Two hours from 2018/09/03 00:00:00 UTC (a Monday, most nodes installed), seed 1,
    /// 25 s +- 2 s, 1 % missing values, 2 dropouts per node per day.
    fn default() -> Self {
        GenerateOptions {
            start: Timestamp::parse("2018/09/03 00:00:00").expect("valid"),
            duration: 2 * 3600,
            seed: 1,
            period: 25.0,
            jitter: 2.0,
            missing: 0.01,
            dropouts_per_day: 2.0,
            vision_period: 300.0,
            sensors: Vec::new(),
        }
    }
}

/// What a generation wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerateStats {
    /// Data rows (header excluded).
    pub rows: u64,
    /// Bytes of CSV text (before any compression).
    pub bytes: u64,
    /// Nodes that wrote at least one row.
    pub nodes: u64,
    /// Dropouts (each followed by a restart, unless the trace ends first).
    pub dropouts: u64,
}

/// How a parameter's value is made.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Temperature,
    Humidity,
    Pressure,
    Light,
    Sound,
    Magnetic,
    Acceleration,
    Gas,
    Particles,
    Count,
    Id,
    Other,
}

/// Which of the two values a parameter gives.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Values {
    Both,
    RawOnly,
    HrfOnly,
}

#[derive(Clone, Debug)]
struct Param {
    sensor: Sensor,
    kind: Kind,
    values: Values,
    /// A fixed offset of this sensor (calibration), in its unit.
    offset: f64,
}

fn classify(s: &Sensor) -> (Kind, Values) {
    let p = s.parameter.as_str();
    match (s.subsystem.as_str(), p) {
        (_, "id") => (Kind::Id, Values::Both),
        ("image", _) => (Kind::Count, Values::HrfOnly),
        ("chemsense", "concentration") => (Kind::Gas, Values::RawOnly),
        ("alphasense" | "plantower", _) => (Kind::Particles, Values::HrfOnly),
        (_, "temperature") => (Kind::Temperature, Values::Both),
        (_, "humidity") => (Kind::Humidity, Values::Both),
        (_, "pressure") => (Kind::Pressure, Values::Both),
        (_, p) if p.starts_with("magnetic_field") => (Kind::Magnetic, Values::Both),
        (_, p) if p.starts_with("acceleration") => (Kind::Acceleration, Values::Both),
        (_, p) if p.contains("intensity") && s.unit == "dB" => (Kind::Sound, Values::Both),
        (_, p) if p.contains("intensity") => (Kind::Light, Values::Both),
        _ => (Kind::Other, Values::HrfOnly),
    }
}

/// Whether a node has a board, from the marks of its description (`[C]`, `[CA]`, `[CP]`, ...).
fn has_board(node: &Node, subsystem: &str) -> bool {
    let marks = node
        .description
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map_or("", |(m, _)| m);
    match subsystem {
        "metsense" | "lightsense" => true,
        "chemsense" => marks.contains('C'),
        "alphasense" => marks.contains('A'),
        "plantower" => marks.contains('P'),
        _ => false,
    }
}

/// Downtown Chicago (State & Madison), where the vision counts are highest.
const DOWNTOWN: (f64, f64) = (41.8820, -87.6278);

struct NodeState<'a> {
    node: &'a Node,
    rng: ChaCha8Rng,
    params: Vec<Param>,
    vision: Vec<Param>,
    /// 1 downtown, towards 0.2 far away.
    busy: f64,
    /// The node's own temperature offset, C.
    warm: f64,
    id: String,
    wrote: bool,
    /// No rows before this time (ms since the start): the node is down.
    offline_until: i64,
}

/// Hours of the solar day at longitude `lon`, 0 to 24.
fn solar_hour(t: Timestamp, lon: f64) -> f64 {
    (t.hour_of_day() + lon / 15.0).rem_euclid(24.0)
}

/// Daylight, 0 at night to 1 at solar noon, with the season's day length at Chicago.
fn daylight(t: Timestamp, lon: f64) -> f64 {
    let h = solar_hour(t, lon);
    let doy = f64::from(t.day_of_year());
    let length = 12.0 + 3.0 * (TAU * (doy - 80.0) / 365.0).sin();
    let rise = 12.0 - length / 2.0;
    if h < rise || h > rise + length {
        0.0
    } else {
        (PI * (h - rise) / length).sin()
    }
}

/// Traffic, about 0.15 at night to 1 at the rush hours; quieter at weekends.
fn traffic(t: Timestamp, lon: f64) -> f64 {
    let h = solar_hour(t, lon);
    let peaks = (-((h - 8.0) / 1.5).powi(2)).exp() + (-((h - 17.5) / 2.0).powi(2)).exp();
    let day = if (7.0..20.0).contains(&h) { 0.35 } else { 0.0 };
    let weekend = if t.weekday() >= 6 { 0.6 } else { 1.0 };
    (0.15 + 0.85 * (peaks + day).min(1.0)) * weekend
}

impl NodeState<'_> {
    fn noise(&mut self, scale: f64) -> f64 {
        (self.rng.random::<f64>() - 0.5) * 2.0 * scale
    }

    /// The converted value of `p` at `t`.
    fn value(&mut self, p: &Param, t: Timestamp) -> f64 {
        let lon = self.node.lon;
        let doy = f64::from(t.day_of_year());
        let h = solar_hour(t, lon);
        match p.kind {
            Kind::Temperature => {
                let season = 10.0 - 14.0 * (TAU * (doy - 15.0) / 365.0).cos();
                let day = 5.0 * (TAU * (h - 9.0) / 24.0).sin();
                season + day + self.warm + p.offset + self.noise(0.3)
            }
            Kind::Humidity => {
                (65.0 - 18.0 * (TAU * (h - 9.0) / 24.0).sin() + p.offset + self.noise(2.0))
                    .clamp(0.0, 100.0)
            }
            Kind::Pressure => 1013.0 + 6.0 * (TAU * doy / 9.0).sin() + p.offset + self.noise(0.3),
            Kind::Light => {
                let top = p.sensor.max.unwrap_or(100.0);
                let clouds = 0.75 + 0.25 * (TAU * (t.unix() as f64) / 5400.0).sin();
                (top * 0.8 * daylight(t, lon) * clouds + self.noise(top * 0.005)).max(0.0)
            }
            Kind::Sound => 42.0 + 25.0 * traffic(t, lon) * self.busy + self.noise(3.0),
            Kind::Magnetic => p.offset + self.noise(15.0),
            Kind::Acceleration => {
                let g = if p.sensor.parameter.ends_with('z') {
                    1000.0
                } else {
                    0.0
                };
                g + p.offset + self.noise(12.0)
            }
            Kind::Gas => {
                (400.0 + 300.0 * traffic(t, lon) * self.busy + p.offset + self.noise(40.0)).max(0.0)
            }
            Kind::Particles => {
                (4.0 + 14.0 * traffic(t, lon) * self.busy + p.offset.abs() + self.noise(2.0))
                    .max(0.0)
            }
            Kind::Count => {
                let mean = if p.sensor.parameter.starts_with("car") {
                    60.0
                } else {
                    35.0
                };
                let expected = mean * traffic(t, lon) * self.busy;
                (expected * (0.7 + 0.6 * self.rng.random::<f64>())).round()
            }
            Kind::Id | Kind::Other => {
                let (lo, hi) = (p.sensor.min.unwrap_or(0.0), p.sensor.max.unwrap_or(100.0));
                lo + (hi - lo) * (0.5 + 0.1 * (TAU * h / 24.0).sin())
            }
        }
    }

    /// Appends the row of `p` at `t` (whose text is `ts`).
    fn row(&mut self, out: &mut String, ts: &str, p: &Param, t: Timestamp, missing: f64) {
        let hrf = self.value(p, t);
        let decimals = match p.kind {
            Kind::Count | Kind::Gas => 0,
            _ => 2,
        };
        let raw_text = match p.kind {
            Kind::Id => self.id.clone(),
            Kind::Gas => format!("{hrf:.0}"),
            Kind::Light => format!("{:.0}", hrf / p.sensor.max.unwrap_or(100.0) * 32768.0),
            _ => format!("{:.0}", hrf * 100.0),
        };
        let hrf_text = match p.kind {
            Kind::Id => self.id.clone(),
            _ => format!("{hrf:.decimals$}"),
        };
        let raw_missing = p.values == Values::HrfOnly || self.rng.random::<f64>() < missing;
        let hrf_missing = p.values == Values::RawOnly || self.rng.random::<f64>() < missing;
        let _ = writeln!(
            out,
            "{ts},{},{},{},{},{},{}",
            self.node.node_id,
            p.sensor.subsystem,
            p.sensor.sensor,
            p.sensor.parameter,
            if raw_missing { MISSING } else { &raw_text },
            if hrf_missing { MISSING } else { &hrf_text },
        );
    }
}

/// The next event of a node: a sample of its boards, or a vision count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Sample,
    Vision,
}

/// Writes a `data.csv` (header and rows, ascending time) to `out`; see the module's
/// documentation. `out` is written in chunks; wrap a file in a `BufWriter` (and a gzip encoder
/// for `data.csv.gz`).
pub fn generate<W: Write>(
    nodes: &NodeList,
    sensors: &[Sensor],
    options: &GenerateOptions,
    mut out: W,
) -> Result<GenerateStats> {
    let o = options;
    let bad = |what: String| Err(TraceError::Setting(what));
    if !(o.period.is_finite() && o.period >= 1.0) {
        return bad(format!("period {}: expected at least 1 s", o.period));
    }
    if !(o.jitter.is_finite() && o.jitter >= 0.0 && o.jitter < o.period) {
        return bad(format!(
            "jitter {}: expected 0 or more and less than the period",
            o.jitter
        ));
    }
    if !(0.0..=1.0).contains(&o.missing) {
        return bad(format!(
            "missing {}: expected a fraction from 0 to 1",
            o.missing
        ));
    }
    if !(o.dropouts_per_day.is_finite() && o.dropouts_per_day >= 0.0) {
        return bad(format!(
            "dropouts per day {}: expected 0 or more",
            o.dropouts_per_day
        ));
    }
    if !(o.vision_period.is_finite() && o.vision_period >= 1.0) {
        return bad(format!(
            "vision period {}: expected at least 1 s",
            o.vision_period
        ));
    }
    let wanted = |s: &Sensor| {
        o.sensors.is_empty()
            || o.sensors
                .iter()
                .any(|f| f.matches(&s.subsystem, &s.sensor, &s.parameter))
    };
    let end = o.start.add_seconds(o.duration as i64);
    let mut states: Vec<NodeState<'_>> = Vec::new();
    // Events by (time in ms since the start, kind, node).
    let mut queue: BinaryHeap<Reverse<(i64, Event, usize)>> = BinaryHeap::new();
    let span_ms = (o.duration as i64) * 1000;
    for (i, node) in nodes.nodes.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        rng.set_stream(i as u64);
        let mut params = Vec::new();
        let mut vision = Vec::new();
        let camera = rng.random::<f64>() < 1.0 / 3.0;
        for s in sensors.iter().filter(|s| wanted(s)) {
            let (kind, values) = classify(s);
            let scale = match kind {
                Kind::Magnetic => 300.0,
                Kind::Acceleration => 20.0,
                Kind::Gas => 80.0,
                Kind::Particles => 3.0,
                Kind::Pressure => 1.5,
                Kind::Humidity => 4.0,
                _ => 0.6,
            };
            let offset = (rng.random::<f64>() - 0.5) * 2.0 * scale;
            let param = Param {
                sensor: s.clone(),
                kind,
                values,
                offset,
            };
            if s.subsystem == "image" {
                if camera {
                    vision.push(param);
                }
            } else if has_board(node, &s.subsystem) {
                params.push(param);
            }
        }
        let from = node.start.map_or(o.start, |s| s.max(o.start));
        let until = node.end.map_or(end, |e| e.min(end));
        let distance = (node.lat - DOWNTOWN.0).hypot(node.lon - DOWNTOWN.1);
        let busy = 0.2 + 0.8 * (-distance / 0.04).exp();
        let warm = (rng.random::<f64>() - 0.5) * 3.0;
        let id = format!("{:08x}", rng.random::<u32>());
        let first = (from.unix() - o.start.unix()) * 1000;
        if from < until && (!params.is_empty() || !vision.is_empty()) {
            if !params.is_empty() {
                let phase = (rng.random::<f64>() * o.period * 1000.0) as i64;
                queue.push(Reverse((first + phase, Event::Sample, i)));
            }
            if !vision.is_empty() {
                let phase = (rng.random::<f64>() * o.vision_period * 1000.0) as i64;
                queue.push(Reverse((first + phase, Event::Vision, i)));
            }
        }
        states.push(NodeState {
            node,
            rng,
            params,
            vision,
            busy,
            warm,
            id,
            wrote: false,
            offline_until: i64::MIN,
        });
    }
    let io = |e: std::io::Error| TraceError::Setting(format!("cannot write the trace: {e}"));
    let mut stats = GenerateStats::default();
    let header = format!("{}\n", DATA_HEADER.join(","));
    out.write_all(header.as_bytes()).map_err(io)?;
    stats.bytes += header.len() as u64;
    let mut buffer = String::with_capacity(1 << 16);
    let mut ts_cache: (i64, String) = (i64::MIN, String::new());
    // Per node: offline until (ms) after a dropout.
    let dropout_p = o.dropouts_per_day * o.period / 86_400.0;
    while let Some(Reverse((at_ms, event, i))) = queue.pop() {
        if at_ms >= span_ms {
            continue;
        }
        let t = o.start.add_seconds(at_ms.div_euclid(1000));
        let state = &mut states[i];
        if state.node.end.is_some_and(|e| t >= e) {
            continue;
        }
        if at_ms < state.offline_until {
            // Down: the camera skips this count too.
            let next = at_ms + (o.vision_period * 1000.0) as i64;
            queue.push(Reverse((next, event, i)));
            continue;
        }
        if ts_cache.0 != t.unix() {
            ts_cache = (t.unix(), t.to_string());
        }
        let params = match event {
            Event::Sample => std::mem::take(&mut state.params),
            Event::Vision => std::mem::take(&mut state.vision),
        };
        let before = buffer.len();
        for p in &params {
            state.row(&mut buffer, &ts_cache.1, p, t, o.missing);
        }
        stats.rows += params.len() as u64;
        state.wrote |= buffer.len() > before;
        let next = match event {
            Event::Sample => {
                state.params = params;
                let gap = o.period + state.noise(o.jitter);
                let mut next = at_ms + (gap * 1000.0) as i64;
                if state.rng.random::<f64>() < dropout_p {
                    // Offline for 2 to 45 minutes, then a restart with a new phase.
                    stats.dropouts += 1;
                    let off = 120.0 + state.rng.random::<f64>() * (45.0 * 60.0 - 120.0);
                    let phase = state.rng.random::<f64>() * o.period;
                    next = at_ms + ((off + phase) * 1000.0) as i64;
                    state.offline_until = next;
                }
                next
            }
            Event::Vision => {
                state.vision = params;
                at_ms + (o.vision_period * 1000.0) as i64
            }
        };
        queue.push(Reverse((next, event, i)));
        if buffer.len() >= 1 << 16 {
            out.write_all(buffer.as_bytes()).map_err(io)?;
            stats.bytes += buffer.len() as u64;
            buffer.clear();
        }
    }
    out.write_all(buffer.as_bytes()).map_err(io)?;
    stats.bytes += buffer.len() as u64;
    out.flush().map_err(io)?;
    stats.nodes = states.iter().filter(|s| s.wrote).count() as u64;
    Ok(stats)
}
