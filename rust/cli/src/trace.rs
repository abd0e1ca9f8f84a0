//! `lambdaroute trace aot ...`: generate, read and schedule Array of Things digests.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use lambdaroute_trace::generate::{GenerateOptions, generate};
use lambdaroute_trace::nodes::{NODES_CSV, SENSORS_CSV, parse_sensors};
use lambdaroute_trace::replay::{NodeSet, Target, replay};
use lambdaroute_trace::schedule::ScheduleWriter;
use lambdaroute_trace::{
    Filter, Group, LambdaRule, NodeList, Payload, Reader, ReplayConfig, SensorFilter, TimeSpec,
    Timestamp, Window,
};

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[command(subcommand)]
    format: Format,
}

#[derive(Subcommand, Debug)]
enum Format {
    /// Array of Things digests (AoT_Chicago.complete: data.csv[.gz], nodes.csv, sensors.csv).
    #[command(subcommand)]
    Aot(Aot),
}

#[derive(Subcommand, Debug)]
enum Aot {
    /// Write a data.csv[.gz] in the digest's format, deterministic by seed, from the node list
    /// and the sensor list.
    Generate(GenerateArgs),
    /// Stream a data.csv[.gz]: check it, filter it, count its rows; print the kept rows with
    /// --rows.
    Read(ReadArgs),
    /// Turn a digest into call schedules: one per `pattern: aot` workload of --scenario, or one
    /// of every (filtered) node to -o.
    Schedule(ScheduleArgs),
}

/// A window bound: `YYYY/MM/DD HH:MM:SS` (UTC) or seconds after the trace's first row.
fn time_spec(text: &str) -> Result<TimeSpec, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() && seconds >= 0.0 {
            Ok(TimeSpec::After(seconds))
        } else {
            Err(format!("{seconds}: expected seconds >= 0"))
        };
    }
    Timestamp::parse(text)
        .map(TimeSpec::At)
        .map_err(|e| e.to_string())
}

fn sensor_filter(text: &str) -> Result<SensorFilter, String> {
    text.parse()
        .map_err(|e: lambdaroute_trace::TraceError| e.to_string())
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Hours of data.
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    /// Time of the first row, UTC `YYYY/MM/DD HH:MM:SS` (a Monday with most nodes installed by
    /// default).
    #[arg(long, default_value = "2018/09/03 00:00:00", value_parser = |s: &str| Timestamp::parse(s).map_err(|e| e.to_string()))]
    start: Timestamp,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Mean seconds between two samples of a node.
    #[arg(long, default_value_t = 25.0)]
    period: f64,
    /// Each interval varies uniformly by this many seconds either way.
    #[arg(long, default_value_t = 2.0)]
    jitter: f64,
    /// Fraction of values written NA.
    #[arg(long, default_value_t = 0.01)]
    missing: f64,
    /// Mean dropouts per node per day (2-45 minutes without rows, then a restart).
    #[arg(long, default_value_t = 2.0)]
    dropouts_per_day: f64,
    /// Only these subsystems, sensors or parameters (comma-separated: metsense,lightsense.tsl250rd).
    #[arg(long, value_delimiter = ',', value_parser = sensor_filter)]
    sensors: Vec<SensorFilter>,
    /// The node list (default: the shipped data/aot/nodes.csv).
    #[arg(long)]
    nodes_csv: Option<PathBuf>,
    /// The sensor list (default: the shipped data/aot/sensors.csv).
    #[arg(long)]
    sensors_csv: Option<PathBuf>,
    /// gzip level when the output ends in .gz (1 fastest, 9 smallest).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=9))]
    level: u32,
    /// Output: data.csv, or data.csv.gz (compressed).
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Args, Debug)]
struct FilterArgs {
    /// Window start: UTC `YYYY/MM/DD HH:MM:SS` or seconds after the first row.
    #[arg(long, value_parser = time_spec)]
    from: Option<TimeSpec>,
    /// Window end (excluded; the reading stops there): a timestamp or seconds after the first row.
    #[arg(long, value_parser = time_spec)]
    to: Option<TimeSpec>,
    /// Only these nodes (node ids or vsns, comma-separated).
    #[arg(long, value_delimiter = ',')]
    nodes: Option<Vec<String>>,
    /// Only these subsystems, sensors or parameters (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = sensor_filter)]
    sensors: Vec<SensorFilter>,
    /// The node list whose ids are known (default: the shipped data/aot/nodes.csv); rows of
    /// other ids are counted and skipped.
    #[arg(long)]
    nodes_csv: Option<PathBuf>,
}

impl FilterArgs {
    fn window(&self) -> Window {
        Window {
            start: self.from,
            stop: self.to,
        }
    }

    fn node_list(&self) -> anyhow::Result<NodeList> {
        Ok(match &self.nodes_csv {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                NodeList::parse(&text, &path.display().to_string())?
            }
            None => NodeList::parse(NODES_CSV, "data/aot/nodes.csv")?,
        })
    }
}

#[derive(Args, Debug)]
struct ReadArgs {
    /// data.csv or data.csv.gz.
    trace: PathBuf,
    #[command(flatten)]
    filter: FilterArgs,
    /// Print the kept rows to standard output, as data.csv (header first).
    #[arg(long)]
    rows: bool,
}

#[derive(Args, Debug)]
struct ScheduleArgs {
    /// data.csv or data.csv.gz (not with --scenario: its workloads name their traces).
    trace: Option<PathBuf>,
    /// A scenario: write the schedule of each of its `pattern: aot` workloads to
    /// OUT/<client>-<index>.csv, as the testbed does.
    #[arg(long, requires = "out")]
    scenario: Option<PathBuf>,
    /// Folder of the schedules of --scenario.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Trace seconds per run second.
    #[arg(long, default_value_t = 1.0)]
    speedup: f64,
    /// What one call carries: reading, node (a node's readings at one timestamp) or subsystem.
    #[arg(long, default_value = "node", value_parser = |s: &str| s.parse::<Group>().map_err(|e| e.to_string()))]
    group: Group,
    /// The lambda of readings no --lambdas rule matches.
    #[arg(long, default_value = "clambda0")]
    lambda: String,
    /// Lambda per subsystem, sensor or parameter: chemsense=glambda0,metsense.tsys01=clambda0.
    #[arg(long, value_delimiter = ',', value_parser = lambda_rule)]
    lambdas: Vec<LambdaRule>,
    /// Input of each call: `size:BYTES`, `size:MIN-MAX`, `rows` or `per-row:BYTES`.
    #[arg(long, default_value = "size:1000", value_parser = payload)]
    payload: Payload,
    /// Seed of drawn sizes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Leave out calls due this many run seconds after the start or later.
    #[arg(long)]
    limit: Option<f64>,
    /// The schedule (without --scenario).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn lambda_rule(text: &str) -> Result<LambdaRule, String> {
    let (selector, lambda) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected SELECTOR=LAMBDA, e.g. chemsense=glambda0"))?;
    Ok(LambdaRule {
        selector: sensor_filter(selector)?,
        lambda: lambda.to_owned(),
    })
}

fn payload(text: &str) -> Result<Payload, String> {
    let bad = || format!("`{text}`: expected size:BYTES, size:MIN-MAX, rows or per-row:BYTES");
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    match text.split_once(':') {
        None if text == "rows" => Ok(Payload::Rows),
        Some(("per-row", n)) => Ok(Payload::PerRow(number(n)?)),
        Some(("size", range)) => match range.split_once('-') {
            Some((a, b)) => Ok(Payload::Size {
                min: number(a)?,
                max: number(b)?,
            }),
            None => {
                let n = number(range)?;
                Ok(Payload::Size { min: n, max: n })
            }
        },
        _ => Err(bad()),
    }
}

pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    match args.format {
        Format::Aot(Aot::Generate(a)) => run_generate(a),
        Format::Aot(Aot::Read(a)) => run_read(a),
        Format::Aot(Aot::Schedule(a)) => run_schedule(a),
    }
}

fn read_text(path: &Option<PathBuf>, default: &str) -> anyhow::Result<(String, String)> {
    Ok(match path {
        Some(p) => (
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (default.to_owned(), String::new()),
    })
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn run_generate(a: GenerateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.hours.is_finite() && a.hours > 0.0,
        "--hours {}: expected a number of hours > 0",
        a.hours
    );
    let (nodes_text, nodes_name) = read_text(&a.nodes_csv, NODES_CSV)?;
    let nodes = NodeList::parse(
        &nodes_text,
        if nodes_name.is_empty() {
            "data/aot/nodes.csv"
        } else {
            &nodes_name
        },
    )?;
    let (sensors_text, sensors_name) = read_text(&a.sensors_csv, SENSORS_CSV)?;
    let sensors = parse_sensors(
        &sensors_text,
        if sensors_name.is_empty() {
            "data/aot/sensors.csv"
        } else {
            &sensors_name
        },
    )?;
    let options = GenerateOptions {
        start: a.start,
        duration: (a.hours * 3600.0).round() as u64,
        seed: a.seed,
        period: a.period,
        jitter: a.jitter,
        missing: a.missing,
        dropouts_per_day: a.dropouts_per_day,
        sensors: a.sensors,
        ..GenerateOptions::default()
    };
    let file =
        File::create(&a.output).with_context(|| format!("cannot create {}", a.output.display()))?;
    let sink = BufWriter::with_capacity(1 << 20, file);
    let started = Instant::now();
    let gz = a.output.extension().is_some_and(|e| e == "gz");
    let stats = if gz {
        let mut encoder = flate2::write::GzEncoder::new(sink, flate2::Compression::new(a.level));
        let stats = generate(&nodes, &sensors, &options, &mut encoder)?;
        encoder.finish()?.flush()?;
        stats
    } else {
        let mut sink = sink;
        let stats = generate(&nodes, &sensors, &options, &mut sink)?;
        sink.flush()?;
        stats
    };
    let on_disk = std::fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {}: {} rows from {} nodes, {} dropouts, {:.1} MB of CSV ({:.1} MB on disk) in {:.1} s",
        a.output.display(),
        stats.rows,
        stats.nodes,
        stats.dropouts,
        megabytes(stats.bytes),
        megabytes(on_disk),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_read(a: ReadArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let list = Arc::new(a.filter.node_list()?);
    let mut reader = Reader::open(&a.trace)?
        .with_nodes(list)?
        .with_filter(Filter {
            window: a.filter.window(),
            nodes: a.filter.nodes.clone(),
            sensors: a.filter.sensors.clone(),
            span: None,
        })?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    if a.rows {
        writeln!(out, "{}", lambdaroute_trace::reader::DATA_HEADER.join(","))?;
    }
    let mut line = String::new();
    let mut per_subsystem: std::collections::BTreeMap<String, u64> = Default::default();
    while let Some(sample) = reader.next_sample()? {
        if a.rows {
            line.clear();
            sample.write_csv(&mut line);
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        match per_subsystem.get_mut(sample.subsystem) {
            Some(n) => *n += 1,
            None => {
                per_subsystem.insert(sample.subsystem.to_owned(), 1);
            }
        }
    }
    out.flush()?;
    let s = reader.stats();
    let elapsed = started.elapsed().as_secs_f64();
    let file_bytes = std::fs::metadata(&a.trace).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "{}: {} rows, {} kept, from {} to {}{}",
        a.trace.display(),
        s.rows,
        s.samples,
        s.first.map_or("-".into(), |t| t.to_string()),
        s.last.map_or("-".into(), |t| t.to_string()),
        if s.stopped_at_window_end {
            " (stopped at the window's end)"
        } else {
            ""
        }
    );
    let subsystems: Vec<String> = per_subsystem
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    eprintln!("kept per subsystem: {}", subsystems.join(", "));
    if s.unknown_rows > 0 {
        let ids: Vec<String> = s
            .unknown_nodes
            .iter()
            .take(10)
            .map(|(id, n)| format!("{id} ({n})"))
            .collect();
        eprintln!(
            "unknown node ids (not in the node list; skipped): {} rows of {} ids: {}{}",
            s.unknown_rows,
            s.unknown_nodes.len(),
            ids.join(", "),
            if s.unknown_nodes.len() > 10 {
                ", ..."
            } else {
                ""
            }
        );
    }
    eprintln!(
        "read {:.1} MB of file in {elapsed:.2} s: {:.1} MB/s, {:.0} rows/s",
        megabytes(file_bytes),
        megabytes(file_bytes) / elapsed.max(1e-9),
        s.rows as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

fn run_schedule(a: ScheduleArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if let Some(scenario) = &a.scenario {
        anyhow::ensure!(
            a.trace.is_none(),
            "give a trace or --scenario, not both: the scenario's workloads name their traces"
        );
        let out = a.out.as_deref().context("--scenario needs --out FOLDER")?;
        let sc = lambdaroute_scenario::Scenario::load(scenario)?;
        let base = scenario.parent().unwrap_or(Path::new("."));
        let written = lambdaroute_scenario::replay::write_schedules(&sc, base, out)?;
        anyhow::ensure!(
            !written.files.is_empty(),
            "{}: no `pattern: aot` workload",
            scenario.display()
        );
        for t in &written.traces {
            eprintln!(
                "{}: {} rows read, {} samples for the sites; {} rows of unknown node ids; time 0 = {}",
                t.path.display(),
                t.read.rows,
                t.read.samples,
                t.read.unknown_rows,
                t.origin.map_or("-".into(), |o| o.to_string())
            );
        }
        let calls: u64 = written.files.iter().map(|f| f.stats.calls).sum();
        eprintln!(
            "wrote {} schedules ({calls} calls) to {} in {:.1} s",
            written.files.len(),
            out.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let trace = a
        .trace
        .as_ref()
        .context("give a trace (data.csv[.gz]) or --scenario FILE --out FOLDER")?;
    let output = a.output.as_ref().context("give -o SCHEDULE.csv")?;
    let list = Arc::new(a.filter.node_list()?);
    let reader = Reader::open(trace)?.with_nodes(list)?;
    let target = Target {
        nodes: match &a.filter.nodes {
            Some(nodes) => NodeSet::Only(nodes.clone()),
            None => NodeSet::All,
        },
        config: ReplayConfig {
            speedup: a.speedup,
            group: a.group,
            lambda: a.lambda.clone(),
            lambdas: a.lambdas.clone(),
            sensors: a.filter.sensors.clone(),
            payload: a.payload,
            seed: a.seed,
            limit: a.limit,
        },
    };
    let name = output.display().to_string();
    let file = File::create(output).with_context(|| format!("cannot create {name}"))?;
    let mut writer = ScheduleWriter::new(BufWriter::new(file), &name)?;
    // Node filters by vsn: the reader resolves them, the target needs ids.
    let target = match &target.nodes {
        NodeSet::Only(nodes) => {
            let list = a.filter.node_list()?;
            let ids = nodes
                .iter()
                .map(|n| {
                    list.find(n)
                        .map(|i| list.nodes[i].node_id.clone())
                        .with_context(|| format!("--nodes: `{n}` is neither a node_id nor a vsn"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Target {
                nodes: NodeSet::Only(ids),
                ..target
            }
        }
        NodeSet::All => target,
    };
    let stats = replay(reader, a.filter.window(), &[target], |_, c| writer.write(c))?;
    writer.finish()?;
    let t = &stats.targets[0];
    eprintln!(
        "wrote {name}: {} calls ({} readings, {} nodes) due from {:.3} s to {:.3} s; {} rows read, {} of unknown node ids",
        t.calls,
        t.readings,
        t.nodes,
        t.span.map_or(0.0, |s| s.0),
        t.span.map_or(0.0, |s| s.1),
        stats.read.rows,
        stats.read.unknown_rows
    );
    Ok(())
}
