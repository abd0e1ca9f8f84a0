//! `lambdaroute._native`: the scenario crate for Python.
//!
//! This crate is `lambdaroute-py`, a PyO3 extension module built by maturin (`make python`)
//! into the Python package `lambdaroute`, which the Mininet testbed uses to read scenarios,
//! generate the papers' topologies and compute static flows, distance matrices and paths:
//!
//! ```text
//! lambdaroute (rust/cli)          the `lambdaroute` binary: command-line parsing only
//! |-- lambdaroute-node            tokio/tonic roles: router, computer, controller, client
//! |   |-- lambdaroute-core        pure logic: tables, policies, estimators, computer model
//! |   `-- lambdaroute-proto       the gRPC protocol: uiiit.rpc, lambdaroute.rpc
//! `-- lambdaroute-netem           the testbed's NFQUEUE delay element
//!
//! Python package lambdaroute      scenarios, topologies, the Mininet testbed
//! `-- lambdaroute-py              the module lambdaroute._native
//!     `-- lambdaroute-scenario    scenario files, topologies, static flows
//! ```
//!
//! A thin layer: [`PyScenario`] holds a validated scenario and its derived network; accessors
//! return plain lists, tuples and dicts that the Python package (`lambdaroute`) wraps into
//! dataclasses. The module also exposes the generators (`line`, `pods`, `ring_tree`, `grid`,
//! `aot_chicago`, `aot_nodes`, `brite`), each returning a `Scenario`. Every scenario error
//! becomes `lambdaroute.ScenarioError` (a `ValueError`) with the same message. Python users
//! read `lambdaroute.Scenario` and `lambdaroute.topologies` instead; the repository's
//! `docs/scenario.md` documents both.
//!
//! The Array of Things traces (`lambdaroute-trace`) come along: `AotReader` streams a digest,
//! `aot_generate` writes one, `aot_site_members` gives the sites of the merge rule, and a
//! scenario's `aot_sites` and `write_schedules` map its nodes onto clients and write the
//! per-client schedules the testbed hands to `lambdaroute client --pattern aot`; errors
//! become `lambdaroute.TraceError` (a `ValueError`).
//!
//! The vocabulary of policies, estimators, statistics and computer presets is core's
//! (`lambdaroute-core`): [`policies`], [`parse_policy`], [`estimators`], [`parse_estimator`],
//! [`stats`], [`presets`] and [`computer_config`] hand it to Python, which keeps no copy.

use lambdaroute_core::computer_model::MainProcessor;
use lambdaroute_scenario::generators::{self, Placement};
use lambdaroute_scenario::network::{self, Match, Peer};
use lambdaroute_scenario::replay;
use lambdaroute_scenario::yaml::{Node, Pos, Value};
use lambdaroute_scenario::{
    Action, AotPayload, AotReplay, Background, Computer, EstimatorKind, Installer, LinkParams,
    Network, Pattern, PolicyKind, Preset, Role, Scenario, ScenarioError as Error, Size, Speed,
    Stat, TimeSpec, Traffic, mac_to_string,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

pyo3::create_exception!(
    lambdaroute,
    ScenarioError,
    PyValueError,
    "A scenario file or a generator's arguments are wrong; the message says where and what is expected."
);

fn to_py(e: Error) -> PyErr {
    ScenarioError::new_err(e.to_string())
}

/// An error in a scenario given as data: `FIELD: MESSAGE` (there is no text, so no line), with
/// the attributes `field` (e.g. `links[0].bw`) and `message`, so that the caller can say which
/// of its own calls the field came from.
fn field_error(py: Python<'_>, field: &str, message: &str) -> PyErr {
    let err = ScenarioError::new_err(format!("{field}: {message}"));
    let value = err.value(py);
    // Setting attributes on a fresh exception instance cannot fail.
    let _ = value.setattr("field", field);
    let _ = value.setattr("message", message);
    err
}

fn data_error(py: Python<'_>, e: Error) -> PyErr {
    match e {
        Error::Invalid { field, message, .. } => field_error(py, &field, &message),
        other => to_py(other),
    }
}

/// Plain Python data (dict, list, tuple, str, int, float, bool, None) as a YAML tree without
/// positions; `field` is the path of `obj`, for errors.
fn to_node(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Node> {
    let py = obj.py();
    let at = |key: &str| {
        if field.is_empty() {
            key.to_string()
        } else {
            format!("{field}.{key}")
        }
    };
    let value = if obj.is_none() {
        Value::Null
    } else if let Ok(b) = obj.cast::<PyBool>() {
        Value::Bool(b.is_true())
    } else if obj.is_instance_of::<PyInt>() {
        match obj.extract::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => {
                return Err(field_error(
                    py,
                    field,
                    &format!("the integer {obj} is too large"),
                ));
            }
        }
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        Value::Float(f.value())
    } else if let Ok(s) = obj.cast::<PyString>() {
        Value::Str(s.to_str()?.to_string())
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| {
                field_error(
                    py,
                    field,
                    &format!("a mapping key must be a string, found {k}"),
                )
            })?;
            let node = to_node(&v, &at(&key))?;
            entries.push((key, Pos::default(), node));
        }
        Value::Map(entries)
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(to_node(&item?, &format!("{field}[{i}]"))?);
        }
        Value::Seq(items)
    } else if obj.hasattr("__index__")? {
        // Integers of other kinds (numpy's, ...).
        Value::Int(
            obj.call_method0("__index__")?
                .extract::<i64>()
                .map_err(|_| field_error(py, field, &format!("the integer {obj} is too large")))?,
        )
    } else if obj.hasattr("__float__")? {
        Value::Float(obj.call_method0("__float__")?.extract::<f64>()?)
    } else {
        let kind = obj.get_type().name()?;
        return Err(field_error(
            py,
            field,
            &format!(
                "expected a number, a string, a boolean, None, a list or a dict, found {obj:?} (a Python `{kind}`)"
            ),
        ));
    };
    Ok(Node {
        pos: Pos::default(),
        value,
    })
}

/// A flow entry for Python: `(kind, destination ip, out port, host, ofctl text)`.
type FlowRow = (&'static str, String, u32, String, String);

/// A validated scenario and its network (addresses, ports, paths, flows).
#[pyclass(name = "Scenario", module = "lambdaroute._native", frozen)]
struct PyScenario {
    sc: Scenario,
    net: Network,
}

impl PyScenario {
    fn wrap(sc: Scenario) -> Self {
        let net = sc.network();
        PyScenario { sc, net }
    }

    fn switch(&self, name: &str) -> PyResult<usize> {
        self.sc
            .switch_index(name)
            .ok_or_else(|| ScenarioError::new_err(format!("unknown switch `{name}`")))
    }

    fn host(&self, name: &str) -> PyResult<usize> {
        self.sc
            .host_index(name)
            .ok_or_else(|| ScenarioError::new_err(format!("unknown host `{name}`")))
    }
}

/// A computer as Python sees it: `executor`, `preset`, `lambdas`, `speed`, `cores`, `memory`.
fn computer_dict<'py>(py: Python<'py>, c: &Computer) -> PyResult<Bound<'py, PyDict>> {
    let cd = PyDict::new(py);
    cd.set_item("executor", c.executor.as_str())?;
    cd.set_item("preset", c.preset.as_str())?;
    cd.set_item("lambdas", c.lambdas)?;
    cd.set_item("speed", c.speed)?;
    cd.set_item("cores", c.cores)?;
    cd.set_item("memory", c.memory)?;
    cd.set_item("endpoints", c.endpoints)?;
    Ok(cd)
}

fn link_dict<'py>(py: Python<'py>, p: &LinkParams) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bw", p.bw)?;
    d.set_item("delay", p.delay)?;
    d.set_item("loss", p.loss)?;
    d.set_item("queue", p.queue)?;
    Ok(d)
}

fn start_stop(d: &Bound<'_, PyDict>, start: f64, stop: Option<f64>) -> PyResult<()> {
    d.set_item("start", start)?;
    d.set_item("stop", stop)
}

#[pymethods]
impl PyScenario {
    /// Reads and validates a scenario file.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        py.detach(|| Scenario::load(&path))
            .map(Self::wrap)
            .map_err(to_py)
    }

    /// Parses and validates scenario text; `file_name` names it in error messages.
    #[staticmethod]
    #[pyo3(signature = (text, file_name = "<string>"))]
    fn from_yaml(text: &str, file_name: &str) -> PyResult<Self> {
        Scenario::from_yaml(text, file_name)
            .map(Self::wrap)
            .map_err(to_py)
    }

    /// Validates a scenario given as plain data shaped like a scenario file (dicts, lists,
    /// strings, numbers, booleans, None), with the same checks as files. An error's message is
    /// `FIELD: MESSAGE` (no line: there is no text), with the attributes `field` and `message`.
    #[staticmethod]
    #[pyo3(signature = (data, source = "<data>"))]
    fn from_data(py: Python<'_>, data: &Bound<'_, PyAny>, source: &str) -> PyResult<Self> {
        let root = to_node(data, "")?;
        Scenario::from_tree(&root, source)
            .map(Self::wrap)
            .map_err(|e| data_error(py, e))
    }

    fn to_yaml(&self) -> String {
        self.sc.to_yaml()
    }

    /// Scenarios are equal when they say the same (name included).
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyScenario>()
            .is_ok_and(|o| o.get().sc == self.sc)
    }

    #[getter]
    fn name(&self) -> &str {
        &self.sc.name
    }

    #[getter]
    fn description(&self) -> &str {
        &self.sc.description
    }

    #[getter]
    fn duration(&self) -> f64 {
        self.sc.duration
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.sc.seed
    }

    /// `"plane"` or `"geo"` (positions are `[longitude, latitude]`).
    #[getter]
    fn coordinates(&self) -> &'static str {
        self.sc.coordinates.as_str()
    }

    fn control<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.sc.control;
        let d = PyDict::new(py);
        // Canonical forms, as the router's --policy and --estimator read them.
        d.set_item("policy", c.policy.to_string())?;
        d.set_item("estimator", c.estimator.to_string())?;
        d.set_item("estimator_name", c.estimator.name())?;
        match c.estimator {
            EstimatorKind::Ewma { alpha } => d.set_item("alpha", alpha)?,
            EstimatorKind::Periodic { period, stat } => {
                d.set_item("period", period.as_secs_f64())?;
                d.set_item("stat", stat.as_str())?;
            }
            EstimatorKind::PeakEwma { decay } => d.set_item("decay", decay.as_secs_f64())?,
        }
        d.set_item("installer", c.installer.as_str())?;
        if let Installer::TwoTier { objective } = c.installer {
            d.set_item("objective", objective.as_str())?;
        }
        d.set_item("routing", c.routing.as_str())?;
        d.set_item("congestion_threshold", c.congestion_threshold)?;
        Ok(d)
    }

    fn switches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for (i, s) in self.sc.switches.iter().enumerate() {
            let d = PyDict::new(py);
            d.set_item("name", &s.name)?;
            d.set_item("position", s.position.map(|[x, y]| (x, y)))?;
            let ports = PyList::empty(py);
            for p in &self.net.ports[i] {
                let peer = match p.peer {
                    Peer::Link { switch, .. } => self.sc.switches[switch].name.clone(),
                    Peer::Host { host } => self.sc.hosts[host].name.clone(),
                };
                ports.append((p.number, peer))?;
            }
            d.set_item("ports", ports)?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn hosts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for (i, h) in self.sc.hosts.iter().enumerate() {
            let d = PyDict::new(py);
            d.set_item("name", &h.name)?;
            d.set_item("switch", &h.switch)?;
            d.set_item("role", h.role.kind().as_str())?;
            d.set_item("ip", self.net.ips[i].to_string())?;
            d.set_item("mac", mac_to_string(&self.net.macs[i]))?;
            d.set_item("port", self.net.host_ports[i])?;
            d.set_item("link", link_dict(py, &h.link)?)?;
            if let Role::Computer(c) = &h.role {
                d.set_item("computer", computer_dict(py, c)?)?;
            } else {
                d.set_item("computer", py.None())?;
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// The computers the testbed runs outside the emulated network: `name`, `computer`, `port`.
    fn external<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for e in &self.sc.external {
            let d = PyDict::new(py);
            d.set_item("name", &e.name)?;
            d.set_item("computer", computer_dict(py, &e.computer)?)?;
            d.set_item("port", e.port)?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn links<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for (i, l) in self.sc.links.iter().enumerate() {
            let d = link_dict(py, &l.params)?;
            d.set_item("name", l.name())?;
            d.set_item("a", &l.a)?;
            d.set_item("b", &l.b)?;
            d.set_item("port_a", self.net.link_ports[i].0)?;
            d.set_item("port_b", self.net.link_ports[i].1)?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn workloads<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for w in &self.sc.workloads {
            let d = PyDict::new(py);
            d.set_item("client", &w.client)?;
            d.set_item("router", &w.router)?;
            d.set_item("fallback", w.fallback.clone())?;
            d.set_item("lambda", &w.lambda)?;
            d.set_item("pattern", w.pattern.as_str())?;
            match &w.pattern {
                Pattern::ClosedLoop { threads } => d.set_item("threads", threads)?,
                Pattern::Poisson { rate } => d.set_item("rate", rate)?,
                Pattern::OnOff { on, off, rate } => {
                    d.set_item("rate", rate)?;
                    d.set_item("on", on)?;
                    d.set_item("off", off)?;
                }
                Pattern::Trace { file } => d.set_item("trace", file)?,
                Pattern::Aot(aot) => aot_dict(py, &d, aot)?,
            }
            match w.size {
                Size::Fixed(s) => d.set_item("size", (s, s))?,
                Size::Uniform { min, max } => d.set_item("size", (min, max))?,
            }
            start_stop(&d, w.start, w.stop)?;
            d.set_item("images", w.images.clone())?;
            d.set_item("eyes", w.eyes.clone())?;
            d.set_item("api", w.api.as_str())?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn background<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for Background {
            source,
            sink,
            traffic,
            start,
            stop,
        } in &self.sc.background
        {
            let d = PyDict::new(py);
            d.set_item("source", source)?;
            d.set_item("sink", sink)?;
            match traffic {
                Traffic::Trace { file } => d.set_item("trace", file)?,
                Traffic::Synthetic { rate, on_off } => {
                    d.set_item("rate", rate)?;
                    d.set_item("on_off", on_off)?;
                }
            }
            start_stop(&d, *start, *stop)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The timed events, in time order: dicts with `at`, `kind` and the kind's fields (`host`,
    /// `link`, `factor` or `speed`, `load`, `bw` and/or `delay`).
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for e in &self.sc.events {
            let d = PyDict::new(py);
            d.set_item("at", e.at)?;
            d.set_item("kind", e.action.kind())?;
            match &e.action {
                Action::ComputerSpeed { host, speed } => {
                    d.set_item("host", host)?;
                    match speed {
                        Speed::Factor(f) => d.set_item("factor", f)?,
                        Speed::OpsPerSec(x) => d.set_item("speed", x)?,
                    }
                }
                Action::ComputerLoad { host, load } => {
                    d.set_item("host", host)?;
                    d.set_item("load", load)?;
                }
                Action::ComputerStop { host }
                | Action::ComputerStart { host }
                | Action::ComputerFreeze { host }
                | Action::ComputerThaw { host }
                | Action::RouterRestart { host } => d.set_item("host", host)?,
                Action::LinkDown { link } | Action::LinkUp { link } => d.set_item("link", link)?,
                Action::LinkSet { link, bw, delay } => {
                    d.set_item("link", link)?;
                    if let Some(bw) = bw {
                        d.set_item("bw", bw)?;
                    }
                    if let Some(delay) = delay {
                        d.set_item("delay", delay)?;
                    }
                }
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// The workloads' peak offered load against the computers' capacity: a dict with `text`
    /// (the one-line summary), `calls_per_s`, `work_s`, `capacity_per_s`, `computers`,
    /// `utilization`, `saturated`, `peak_at`, `uncounted` and `lambdas` (per lambda:
    /// `lambda`, `calls_per_s`, `ops`, `work_s`, `capacity_per_s`, `computers`).
    fn offered_load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let load = self.sc.offered_load();
        let d = PyDict::new(py);
        d.set_item("text", load.to_string())?;
        d.set_item("calls_per_s", load.calls_per_s)?;
        d.set_item("work_s", load.work_s)?;
        d.set_item("capacity_per_s", load.capacity_per_s)?;
        d.set_item("computers", load.computers)?;
        d.set_item("utilization", load.utilization)?;
        d.set_item("saturated", load.saturated())?;
        d.set_item("peak_at", load.peak_at)?;
        d.set_item("uncounted", &load.uncounted)?;
        let lambdas = PyList::empty(py);
        for l in &load.lambdas {
            let ld = PyDict::new(py);
            ld.set_item("lambda", &l.lambda)?;
            ld.set_item("calls_per_s", l.calls_per_s)?;
            ld.set_item("ops", l.ops)?;
            ld.set_item("work_s", l.work_s)?;
            ld.set_item("capacity_per_s", l.capacity_per_s)?;
            ld.set_item("computers", l.computers)?;
            lambdas.append(ld)?;
        }
        d.set_item("lambdas", lambdas)?;
        Ok(d)
    }

    /// Static flow entries of a switch: `(kind, destination ip, out port, host, ofctl text)`.
    fn flows(&self, switch: &str) -> PyResult<Vec<FlowRow>> {
        let s = self.switch(switch)?;
        Ok(self
            .net
            .flows(&self.sc, s)
            .into_iter()
            .map(|f| {
                let (kind, ip) = match f.matches {
                    Match::Ip(ip) => ("ip", ip),
                    Match::Arp(ip) => ("arp", ip),
                };
                let text = f.to_ofctl();
                (kind, ip.to_string(), f.out_port, f.host, text)
            })
            .collect())
    }

    /// Names of the switch links a packet from host `a` to host `b` crosses.
    fn path(&self, a: &str, b: &str) -> PyResult<Vec<String>> {
        let (a, b) = (self.host(a)?, self.host(b)?);
        let links = self
            .net
            .path(a, b)
            .ok_or_else(|| ScenarioError::new_err("no path"))?;
        Ok(links.into_iter().map(|l| self.sc.links[l].name()).collect())
    }

    /// `(router, computer, [link names])` for every pair.
    fn router_computer_paths(&self) -> Vec<(String, String, Vec<String>)> {
        self.net.router_computer_paths(&self.sc)
    }

    /// Hop distances among routers and computers: `(names, rows)`.
    fn distance_matrix(&self) -> (Vec<String>, Vec<Vec<u32>>) {
        let m = self.net.distance_matrix(&self.sc);
        (m.hosts, m.hops)
    }

    /// Connected parts of the switch graph, largest first.
    fn components(&self) -> Vec<Vec<String>> {
        network::components(&self.sc)
    }

    /// The Array of Things nodes of each switch that stands at a site of the shipped
    /// `nodes.csv` (the kept node first, then those merged into it): `{switch: [node_id, ...]}`.
    fn aot_sites(&self) -> Vec<(String, Vec<String>)> {
        let list = lambdaroute_trace::NodeList::shipped();
        replay::aot_sites(&self.sc, &list)
            .into_iter()
            .zip(&self.sc.switches)
            .filter_map(|(members, sw)| Some((sw.name.clone(), members?)))
            .collect()
    }

    /// Writes the schedule of every `pattern: aot` workload to `out/<client>-<index>.csv`,
    /// reading each trace once (paths relative to `base`). Returns `{"files": [...], "traces":
    /// [...]}`: per workload its client, path, calls, readings, nodes, first and last due time;
    /// per trace its rows, samples, unknown rows and ids, first and last time, and time 0.
    fn write_schedules<'py>(
        &self,
        py: Python<'py>,
        base: std::path::PathBuf,
        out: std::path::PathBuf,
    ) -> PyResult<Bound<'py, PyDict>> {
        let written = py
            .detach(|| replay::write_schedules(&self.sc, &base, &out))
            .map_err(to_py)?;
        let files = PyList::empty(py);
        for f in &written.files {
            let d = PyDict::new(py);
            d.set_item("workload", f.workload)?;
            d.set_item("client", &f.client)?;
            d.set_item("path", f.path.display().to_string())?;
            d.set_item("calls", f.stats.calls)?;
            d.set_item("readings", f.stats.readings)?;
            d.set_item("nodes", f.stats.nodes)?;
            d.set_item("first", f.stats.span.map(|s| s.0))?;
            d.set_item("last", f.stats.span.map(|s| s.1))?;
            files.append(d)?;
        }
        let traces = PyList::empty(py);
        for t in &written.traces {
            let d = read_stats(py, &t.read)?;
            d.set_item("path", t.path.display().to_string())?;
            d.set_item("origin", t.origin.map(|o| o.to_string()))?;
            traces.append(d)?;
        }
        let d = PyDict::new(py);
        d.set_item("files", files)?;
        d.set_item("traces", traces)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Scenario({:?}: {} switches, {} hosts, {} links)",
            self.sc.name,
            self.sc.switches.len(),
            self.sc.hosts.len(),
            self.sc.links.len()
        )
    }
}

/// An `aot` workload's settings into its dict: trace, window, speedup, group, lambdas,
/// sensors, payload.
fn aot_dict(py: Python<'_>, d: &Bound<'_, PyDict>, aot: &AotReplay) -> PyResult<()> {
    d.set_item("trace", &aot.trace)?;
    let spec = |t: Option<TimeSpec>| -> PyResult<Py<PyAny>> {
        Ok(match t {
            None => py.None(),
            Some(TimeSpec::At(t)) => t.to_string().into_pyobject(py)?.into_any().unbind(),
            Some(TimeSpec::After(s)) => s.into_pyobject(py)?.into_any().unbind(),
        })
    };
    let window = PyDict::new(py);
    window.set_item("start", spec(aot.window.start)?)?;
    window.set_item("stop", spec(aot.window.stop)?)?;
    d.set_item("window", window)?;
    d.set_item("speedup", aot.speedup)?;
    d.set_item("group", aot.group.as_str())?;
    let lambdas = PyDict::new(py);
    for r in &aot.lambdas {
        lambdas.set_item(r.selector.to_string(), &r.lambda)?;
    }
    d.set_item("lambdas", lambdas)?;
    d.set_item(
        "sensors",
        aot.sensors
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )?;
    match aot.payload {
        AotPayload::Size => d.set_item("payload", "size")?,
        AotPayload::Rows => d.set_item("payload", "rows")?,
        AotPayload::PerRow(bytes) => {
            let p = PyDict::new(py);
            p.set_item("per-row", bytes)?;
            d.set_item("payload", p)?;
        }
    }
    Ok(())
}

// ===== Array of Things traces =====

pyo3::create_exception!(
    lambdaroute,
    TraceError,
    PyValueError,
    "An Array of Things trace, node list or schedule is wrong; the message names the file, the line and the field."
);

fn trace_err(e: lambdaroute_trace::TraceError) -> PyErr {
    TraceError::new_err(e.to_string())
}

fn read_stats<'py>(
    py: Python<'py>,
    s: &lambdaroute_trace::ReadStats,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows", s.rows)?;
    d.set_item("samples", s.samples)?;
    d.set_item("unknown_rows", s.unknown_rows)?;
    let unknown = PyDict::new(py);
    for (id, n) in &s.unknown_nodes {
        unknown.set_item(id, n)?;
    }
    d.set_item("unknown_nodes", unknown)?;
    d.set_item("first", s.first.map(|t| t.to_string()))?;
    d.set_item("last", s.last.map(|t| t.to_string()))?;
    d.set_item("stopped_at_window_end", s.stopped_at_window_end)?;
    Ok(d)
}

fn py_time_spec(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<TimeSpec>> {
    let Some(v) = value else {
        return Ok(None);
    };
    if v.is_none() {
        return Ok(None);
    }
    if let Ok(text) = v.extract::<String>() {
        return lambdaroute_trace::Timestamp::parse(&text)
            .map(|t| Some(TimeSpec::At(t)))
            .map_err(|e| TraceError::new_err(format!("{what}: {e}")));
    }
    let seconds: f64 = v.extract().map_err(|_| {
        TraceError::new_err(format!(
            "{what}: expected a UTC timestamp `YYYY/MM/DD HH:MM:SS` or seconds after the first row"
        ))
    })?;
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(TraceError::new_err(format!(
            "{what}: {seconds}: expected seconds >= 0"
        )));
    }
    Ok(Some(TimeSpec::After(seconds)))
}

fn selectors(sensors: Option<Vec<String>>) -> PyResult<Vec<lambdaroute_trace::SensorFilter>> {
    sensors
        .unwrap_or_default()
        .iter()
        .map(|s| s.parse().map_err(trace_err))
        .collect()
}

/// One sample: `(timestamp, unix seconds, node_id, subsystem, sensor, parameter, value_raw,
/// value_hrf, line)`, missing values None.
type SampleRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    u64,
);

/// Streams a digest's `data.csv[.gz]`: an iterator of samples (see `SampleRow`), filtered by
/// window, nodes and sensors; rows of ids the shipped node list does not know are counted in
/// `stats()` and skipped. Errors raise `TraceError` naming file, line and field.
#[pyclass(name = "AotReader", module = "lambdaroute._native")]
struct PyAotReader {
    inner: std::sync::Mutex<lambdaroute_trace::Reader<Box<dyn std::io::Read + Send>>>,
}

#[pymethods]
impl PyAotReader {
    #[new]
    #[pyo3(signature = (path, *, start = None, stop = None, nodes = None, sensors = None))]
    fn new(
        path: std::path::PathBuf,
        start: Option<&Bound<'_, PyAny>>,
        stop: Option<&Bound<'_, PyAny>>,
        nodes: Option<Vec<String>>,
        sensors: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let filter = lambdaroute_trace::Filter {
            window: lambdaroute_trace::Window {
                start: py_time_spec(start, "start")?,
                stop: py_time_spec(stop, "stop")?,
            },
            nodes,
            sensors: selectors(sensors)?,
            span: None,
        };
        let reader = lambdaroute_trace::Reader::open(&path)
            .and_then(|r| r.with_nodes(std::sync::Arc::new(lambdaroute_trace::NodeList::shipped())))
            .and_then(|r| r.with_filter(filter))
            .map_err(trace_err)?;
        Ok(PyAotReader {
            inner: std::sync::Mutex::new(reader),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<SampleRow>> {
        py.detach(|| {
            let mut reader = self
                .inner
                .lock()
                .map_err(|_| TraceError::new_err("the reader failed earlier in another thread"))?;
            Ok(reader.next_sample().map_err(trace_err)?.map(|s| {
                (
                    s.time.to_string(),
                    s.time.unix(),
                    s.node_id.to_owned(),
                    s.subsystem.to_owned(),
                    s.sensor.to_owned(),
                    s.parameter.to_owned(),
                    s.value_raw.map(str::to_owned),
                    s.value_hrf.map(str::to_owned),
                    s.line,
                )
            }))
        })
    }

    /// What has been read so far: rows, samples, unknown rows and ids, first and last time.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let reader = self
            .inner
            .lock()
            .map_err(|_| TraceError::new_err("the reader failed earlier in another thread"))?;
        read_stats(py, reader.stats())
    }
}

/// Writes a generated digest `data.csv` (or `.csv.gz`, gzip) to `path`, deterministic by
/// `seed`, from the shipped node and sensor lists. Returns rows, bytes (of CSV), nodes and
/// dropouts.
#[pyfunction]
#[pyo3(signature = (path, *, hours = 2.0, start = None, seed = 1, sensors = None, level = 6))]
fn aot_generate<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    hours: f64,
    start: Option<String>,
    seed: u64,
    sensors: Option<Vec<String>>,
    level: u32,
) -> PyResult<Bound<'py, PyDict>> {
    use lambdaroute_trace::generate::{GenerateOptions, generate};
    use std::io::Write;
    if !(hours.is_finite() && hours > 0.0) {
        return Err(TraceError::new_err(format!(
            "hours {hours}: expected a number > 0"
        )));
    }
    let mut options = GenerateOptions {
        duration: (hours * 3600.0).round() as u64,
        seed,
        sensors: selectors(sensors)?,
        ..GenerateOptions::default()
    };
    if let Some(start) = start {
        options.start = lambdaroute_trace::Timestamp::parse(&start)
            .map_err(|e| TraceError::new_err(format!("start: {e}")))?;
    }
    let stats = py.detach(|| -> PyResult<_> {
        let nodes = lambdaroute_trace::NodeList::shipped();
        let sensors = lambdaroute_trace::nodes::parse_sensors(
            lambdaroute_trace::nodes::SENSORS_CSV,
            "data/aot/sensors.csv",
        )
        .map_err(trace_err)?;
        let io = |e: std::io::Error| TraceError::new_err(format!("{}: {e}", path.display()));
        let file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
        if path.extension().is_some_and(|e| e == "gz") {
            let mut gz =
                flate2::write::GzEncoder::new(file, flate2::Compression::new(level.clamp(1, 9)));
            let stats = generate(&nodes, &sensors, &options, &mut gz).map_err(trace_err)?;
            gz.finish().map_err(io)?.flush().map_err(io)?;
            Ok(stats)
        } else {
            let mut file = file;
            let stats = generate(&nodes, &sensors, &options, &mut file).map_err(trace_err)?;
            file.flush().map_err(io)?;
            Ok(stats)
        }
    })?;
    let d = PyDict::new(py);
    d.set_item("rows", stats.rows)?;
    d.set_item("bytes", stats.bytes)?;
    d.set_item("nodes", stats.nodes)?;
    d.set_item("dropouts", stats.dropouts)?;
    Ok(d)
}

/// The shipped node list's sites by the 0.010-degree merge rule: `[(kept node_id, vsn, lat,
/// lon, [member node ids])]`, in the order the AoT generator makes their switches.
#[pyfunction]
fn aot_site_members() -> Vec<(String, String, f64, f64, Vec<String>)> {
    let list = lambdaroute_trace::NodeList::shipped();
    lambdaroute_trace::nodes::sites(&list)
        .into_iter()
        .map(|s| {
            let n = &list.nodes[s.node];
            (
                n.node_id.clone(),
                n.vsn.clone(),
                n.lat,
                n.lon,
                s.members
                    .iter()
                    .map(|&m| list.nodes[m].node_id.clone())
                    .collect(),
            )
        })
        .collect()
}

// ===== generators =====

fn params(bw: Option<f64>, delay: f64, loss: f64, queue: Option<u32>) -> PyResult<LinkParams> {
    let ok = bw.is_none_or(|b| b.is_finite() && b > 0.0) && delay.is_finite() && delay >= 0.0;
    if !ok || !(0.0..=100.0).contains(&loss) {
        return Err(ScenarioError::new_err(
            "link parameters: expected bw > 0 Mbit/s (or None), delay >= 0 ms, 0 <= loss <= 100 %",
        ));
    }
    Ok(LinkParams {
        bw,
        delay,
        loss,
        queue,
    })
}

#[allow(clippy::too_many_arguments)]
fn placement(
    routers: Option<Vec<String>>,
    computers: Option<Vec<String>>,
    controller: Option<String>,
    preset: Option<&str>,
    clients_per_router: Option<u32>,
    computers_per_switch: Option<u32>,
    endpoints_per_computer: Option<u32>,
) -> PyResult<Placement> {
    let preset = preset.map(parse_preset).transpose()?;
    Ok(Placement {
        routers,
        computers,
        controller,
        preset,
        clients_per_router,
        computers_per_switch,
        endpoints_per_computer,
    })
}

macro_rules! generator {
    ($(#[$doc:meta])* $name:ident ( $($arg:ident : $ty:ty),* ) $(, $extra:ident : $ety:ty = $edef:expr)* => |$p:ident, $l:ident| $body:expr) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(signature = ($($arg,)* $($extra = $edef,)* *, bw = None, delay = 0.0, loss = 0.0, queue = None,
                            routers = None, computers = None, controller = None, preset = None,
                            clients_per_router = None, computers_per_switch = None,
                    endpoints_per_computer = None))]
        #[allow(clippy::too_many_arguments)]
        fn $name(
            py: Python<'_>,
            $($arg: $ty,)*
            $($extra: $ety,)*
            bw: Option<f64>,
            delay: f64,
            loss: f64,
            queue: Option<u32>,
            routers: Option<Vec<String>>,
            computers: Option<Vec<String>>,
            controller: Option<String>,
            preset: Option<&str>,
            clients_per_router: Option<u32>,
            computers_per_switch: Option<u32>,
            endpoints_per_computer: Option<u32>,
        ) -> PyResult<PyScenario> {
            let $l = params(bw, delay, loss, queue)?;
            let $p = placement(routers, computers, controller, preset, clients_per_router, computers_per_switch, endpoints_per_computer)?;
            let sc = py.detach(|| $body).map_err(to_py)?;
            Ok(PyScenario::wrap(sc))
        }
    };
}

generator!(
    /// A line of `n` switches: router at the far edge, computers along the line.
    line(n: usize) => |p, l| generators::line(n, &l, &p)
);
generator!(
    /// `n` rings of `n` switches joined by a middle ring: n(n+1) switches.
    pods(n: usize) => |p, l| generators::pods(n, &l, &p)
);
generator!(
    /// An inner ring with outer trees (spokes).
    ring_tree(ring: usize), fanout: usize = 2, depth: usize = 2 => |p, l| generators::ring_tree(ring, fanout, depth, &l, &p)
);
generator!(
    /// An n x m grid with clients on the external nodes and a NAT gateway.
    grid(n: usize, m: usize) => |p, l| generators::grid(n, m, &l, &p)
);

/// The Array of Things (Chicago) topology from the shipped nodes.csv (or `csv_text`).
#[pyfunction]
#[pyo3(signature = (*, bridge = true, csv_text = None, routers = None, computers = None, controller = None,
                    preset = None, clients_per_router = None, computers_per_switch = None,
                    endpoints_per_computer = None))]
#[allow(clippy::too_many_arguments)]
fn aot_chicago(
    py: Python<'_>,
    bridge: bool,
    csv_text: Option<String>,
    routers: Option<Vec<String>>,
    computers: Option<Vec<String>>,
    controller: Option<String>,
    preset: Option<&str>,
    clients_per_router: Option<u32>,
    computers_per_switch: Option<u32>,
    endpoints_per_computer: Option<u32>,
) -> PyResult<PyScenario> {
    let p = placement(
        routers,
        computers,
        controller,
        preset,
        clients_per_router,
        computers_per_switch,
        endpoints_per_computer,
    )?;
    let text = csv_text.as_deref().unwrap_or(generators::AOT_NODES_CSV);
    let sc = py
        .detach(|| generators::aot_chicago(text, bridge, &p))
        .map_err(to_py)?;
    Ok(PyScenario::wrap(sc))
}

/// The AoT nodes kept by the merge rule: `(vsn, lat, lon)`.
#[pyfunction]
#[pyo3(signature = (csv_text = None))]
fn aot_nodes(csv_text: Option<String>) -> PyResult<Vec<(String, f64, f64)>> {
    let text = csv_text.as_deref().unwrap_or(generators::AOT_NODES_CSV);
    Ok(generators::aot_nodes(text)
        .map_err(to_py)?
        .into_iter()
        .map(|n| (n.vsn, n.lat, n.lon))
        .collect())
}

/// Imports a BRITE topology from its text.
#[pyfunction]
#[pyo3(signature = (text, file_name = "<brite>", *, routers = None, computers = None, controller = None,
                    preset = None, clients_per_router = None, computers_per_switch = None,
                    endpoints_per_computer = None))]
#[allow(clippy::too_many_arguments)]
fn brite(
    text: &str,
    file_name: &str,
    routers: Option<Vec<String>>,
    computers: Option<Vec<String>>,
    controller: Option<String>,
    preset: Option<&str>,
    clients_per_router: Option<u32>,
    computers_per_switch: Option<u32>,
    endpoints_per_computer: Option<u32>,
) -> PyResult<PyScenario> {
    let p = placement(
        routers,
        computers,
        controller,
        preset,
        clients_per_router,
        computers_per_switch,
        endpoints_per_computer,
    )?;
    generators::brite(text, file_name, &p)
        .map(PyScenario::wrap)
        .map_err(to_py)
}

// ===== vocabulary (core's) =====

fn parse_preset(name: &str) -> PyResult<Preset> {
    name.parse()
        .map_err(|e: lambdaroute_core::computer_model::ConfigError| {
            PyValueError::new_err(e.to_string())
        })
}

/// The policies' canonical names (`rp`, `li`, `rr`, `p2c`, `pf`).
#[pyfunction]
fn policies() -> Vec<&'static str> {
    PolicyKind::ALL.map(PolicyKind::as_str).to_vec()
}

/// The canonical name of a policy given by any name core accepts (`round-robin` -> `rr`);
/// ValueError listing the policies for an unknown one.
#[pyfunction]
fn parse_policy(text: &str) -> PyResult<String> {
    text.parse::<PolicyKind>()
        .map(|p| p.to_string())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The estimators' names (`ewma`, `periodic`, `peak-ewma`).
#[pyfunction]
fn estimators() -> Vec<&'static str> {
    EstimatorKind::NAMES.to_vec()
}

/// The canonical text of an estimator (`periodic` -> `periodic:5:min`), as the router's
/// `--estimator` reads it; ValueError saying what is expected for a wrong one.
#[pyfunction]
fn parse_estimator(text: &str) -> PyResult<String> {
    text.parse::<EstimatorKind>()
        .map(|e| e.to_string())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The canonical estimator a router runs with `policy` unless told otherwise.
#[pyfunction]
fn default_estimator(policy: &str) -> PyResult<String> {
    text_policy(policy).map(|p| p.default_estimator().to_string())
}

fn text_policy(text: &str) -> PyResult<PolicyKind> {
    text.parse()
        .map_err(|e: lambdaroute_core::policy::UnknownPolicy| PyValueError::new_err(e.to_string()))
}

/// The periodic estimator's statistics (`min`, `mean`, `max`).
#[pyfunction]
fn stats() -> Vec<&'static str> {
    Stat::ALL.map(Stat::as_str).to_vec()
}

/// The computer presets' names.
#[pyfunction]
fn presets() -> Vec<&'static str> {
    Preset::ALL.map(Preset::as_str).to_vec()
}

/// The lambdas a computer of `preset` with `lambdas` of each kind runs.
#[pyfunction]
#[pyo3(signature = (preset, lambdas = 1))]
fn preset_lambdas(preset: &str, lambdas: usize) -> PyResult<Vec<String>> {
    let config = parse_preset(preset)?.config_with(lambdas, MainProcessor::default());
    Ok(config.lambdas.into_iter().map(|l| l.name).collect())
}

/// A computer's configuration as YAML (what `lambdaroute computer --config` reads): `preset`
/// with `lambdas` of each kind and its main processor's speed (ops/s per core), cores or memory
/// (bytes) overridden. ValueError for an unknown preset or impossible overrides.
#[pyfunction]
#[pyo3(signature = (preset, lambdas = 1, speed = None, cores = None, memory = None))]
fn computer_config(
    preset: &str,
    lambdas: usize,
    speed: Option<f64>,
    cores: Option<u32>,
    memory: Option<u64>,
) -> PyResult<String> {
    let overrides = MainProcessor {
        speed,
        cores,
        memory,
    };
    let config = parse_preset(preset)?.config_with(lambdas, overrides);
    config
        .validate()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    serde_saphyr::to_string(&config).map_err(|e| PyValueError::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ScenarioError", m.py().get_type::<ScenarioError>())?;
    m.add("TraceError", m.py().get_type::<TraceError>())?;
    m.add_class::<PyScenario>()?;
    m.add_class::<PyAotReader>()?;
    m.add_function(wrap_pyfunction!(aot_generate, m)?)?;
    m.add_function(wrap_pyfunction!(aot_site_members, m)?)?;
    m.add_function(wrap_pyfunction!(line, m)?)?;
    m.add_function(wrap_pyfunction!(pods, m)?)?;
    m.add_function(wrap_pyfunction!(ring_tree, m)?)?;
    m.add_function(wrap_pyfunction!(grid, m)?)?;
    m.add_function(wrap_pyfunction!(aot_chicago, m)?)?;
    m.add_function(wrap_pyfunction!(aot_nodes, m)?)?;
    m.add_function(wrap_pyfunction!(brite, m)?)?;
    m.add_function(wrap_pyfunction!(policies, m)?)?;
    m.add_function(wrap_pyfunction!(parse_policy, m)?)?;
    m.add_function(wrap_pyfunction!(estimators, m)?)?;
    m.add_function(wrap_pyfunction!(parse_estimator, m)?)?;
    m.add_function(wrap_pyfunction!(default_estimator, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(preset_lambdas, m)?)?;
    m.add_function(wrap_pyfunction!(computer_config, m)?)?;
    Ok(())
}
