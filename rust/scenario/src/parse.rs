//! Reading a scenario file: the located YAML tree to the [`Scenario`] model, with every check.
//!
//! Each error names the file, the line and column of the offending key or value, the field path
//! (`links[3].bw`) and what is expected. Checks: unknown keys, wrong types, missing fields,
//! duplicate names, dangling references (a host on an unknown switch, a workload from a host that
//! is not a client), impossible values (negative bandwidth, loss over 100 %, stop before start),
//! and a network whose switches are not all connected.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Result, ScenarioError};
use crate::model::*;
use crate::yaml::{self, Node, Pos, Value};

/// Longest host or switch name: Mininet names interfaces `<name>-eth<N>`, at most 15 characters.
pub const MAX_NAME_LEN: usize = 10;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "duration",
    "seed",
    "coordinates",
    "control",
    "switches",
    "hosts",
    "links",
    "workloads",
    "background",
    "external",
    "events",
];
const CONTROL_KEYS: &[&str] = &[
    "policy",
    "estimator",
    "alpha",
    "period",
    "stat",
    "decay",
    "installer",
    "objective",
    "routing",
    "congestion-threshold",
];
const SWITCH_KEYS: &[&str] = &["name", "position"];
const HOST_KEYS: &[&str] = &["name", "switch", "role", "computer", "ip", "mac", "link"];
const COMPUTER_KEYS: &[&str] = &[
    "executor",
    "preset",
    "lambdas",
    "speed",
    "cores",
    "memory",
    "endpoints",
];
const EXTERNAL_KEYS: &[&str] = &["name", "computer", "port"];
/// The first lambda port of external computers without a `port`: the i-th gets this + 2i.
pub const EXTERNAL_FIRST_PORT: u16 = 10100;
const LINK_PARAM_KEYS: &[&str] = &["bw", "delay", "loss", "queue"];
const LINK_KEYS: &[&str] = &["a", "b", "bw", "delay", "loss", "queue"];
const WORKLOAD_KEYS: &[&str] = &[
    "client", "router", "fallback", "lambda", "pattern", "threads", "rate", "on", "off", "trace",
    "window", "speedup", "group", "lambdas", "sensors", "payload", "size", "start", "stop",
    "images", "eyes", "api",
];
const EVENT_KEYS: &[&str] = &[
    "at", "kind", "host", "link", "factor", "speed", "load", "bw", "delay",
];
/// The keys of the `aot` pattern only.
const AOT_KEYS: &[&str] = &[
    "window", "speedup", "group", "lambdas", "sensors", "payload",
];
const WINDOW_KEYS: &[&str] = &["start", "stop"];
const SIZE_KEYS: &[&str] = &["min", "max"];
const BACKGROUND_KEYS: &[&str] = &[
    "source", "sink", "trace", "rate", "on", "off", "start", "stop",
];

/// Parses and validates scenario text; `file` names it in error messages.
pub fn from_yaml(text: &str, file: &str) -> Result<Scenario> {
    let root = yaml::parse(text).map_err(|e| ScenarioError::Invalid {
        file: file.to_string(),
        line: e.pos.line,
        column: e.pos.column,
        field: "(syntax)".into(),
        message: e.message,
    })?;
    Reader::new(file).scenario(&root)
}

/// A file a scenario names (a trace, an AoT digest, an image), where it names it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FileRef {
    /// The path as written.
    pub path: String,
    /// Where it is written.
    pub pos: Pos,
    /// The field, e.g. `workloads[0].trace`.
    pub field: String,
}

/// [`from_yaml`], and the files the scenario names, for a reader that knows where they are.
pub(crate) fn from_yaml_with_files(text: &str, file: &str) -> Result<(Scenario, Vec<FileRef>)> {
    let root = yaml::parse(text).map_err(|e| ScenarioError::Invalid {
        file: file.to_string(),
        line: e.pos.line,
        column: e.pos.column,
        field: "(syntax)".into(),
        message: e.message,
    })?;
    let reader = Reader::new(file);
    let scenario = reader.scenario(&root)?;
    Ok((scenario, reader.files.into_inner()))
}

/// Validates a scenario given as a tree rather than as text (a program's data, e.g. the Python
/// builder's): exactly the checks of [`from_yaml`]; positions in errors are the tree's own.
pub fn from_tree(root: &Node, source: &str) -> Result<Scenario> {
    Reader::new(source).scenario(root)
}

struct Reader<'f> {
    file: &'f str,
    /// The files named so far.
    files: std::cell::RefCell<Vec<FileRef>>,
}

/// A mapping being read, with its field path.
struct Obj<'a> {
    node: &'a Node,
    path: String,
    entries: &'a [(String, Pos, Node)],
}

impl Obj<'_> {
    fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, n)| n)
    }

    fn key_pos(&self, key: &str) -> Pos {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map_or(self.node.pos, |(_, p, _)| *p)
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

/// A lambda rule's key as a selector, or the error at its position.
fn text_selector(reader: &Reader<'_>, pos: Pos, key: &str, field: &str) -> Result<SensorFilter> {
    key.parse()
        .map_err(|e: lambdaroute_trace::TraceError| reader.err(pos, field, e.to_string()))
}

/// ` at line N` where the position is known (a tree built by a program has none: line 0).
fn at_line(pos: Pos) -> String {
    if pos.line > 0 {
        format!(" at line {}", pos.line)
    } else {
        String::new()
    }
}

fn describe_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The keywords of a list of values, e.g. `Preset::ALL`.
fn keywords<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|&v| as_str(v)).collect()
}

/// Longest period or time constant an estimator takes, s (as core reads them).
const MAX_ESTIMATOR_SECS: f64 = 1e9;

fn name_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return "there are none".into();
    }
    let shown: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > 8 {
        format!(" and {} more", names.len() - 8)
    } else {
        String::new()
    };
    format!("known: {}{more}", shown.join(", "))
}

impl<'f> Reader<'f> {
    fn new(file: &'f str) -> Self {
        Reader {
            file,
            files: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn err(&self, pos: Pos, field: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn expected(&self, node: &Node, field: &str, what: &str) -> ScenarioError {
        self.err(
            node.pos,
            field,
            format!("expected {what}, found {}", node.value.describe()),
        )
    }

    fn obj<'a>(&self, node: &'a Node, path: &str, what: &str, allowed: &[&str]) -> Result<Obj<'a>> {
        let Value::Map(entries) = &node.value else {
            let field = if path.is_empty() { "(document)" } else { path };
            return Err(self.expected(node, field, what));
        };
        let obj = Obj {
            node,
            path: path.to_string(),
            entries,
        };
        for (key, pos, _) in entries {
            if !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    *pos,
                    &obj.field(key),
                    format!(
                        "unknown key `{key}`; expected one of {}",
                        describe_list(allowed)
                    ),
                ));
            }
        }
        Ok(obj)
    }

    fn require<'a>(&self, obj: &Obj<'a>, key: &str, what: &str) -> Result<&'a Node> {
        obj.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, _, n)| n)
            .ok_or_else(|| {
                self.err(
                    obj.node.pos,
                    &obj.field(key),
                    format!("missing; expected {what}"),
                )
            })
    }

    fn seq<'a>(&self, node: Option<&'a Node>, field: &str, what: &str) -> Result<&'a [Node]> {
        match node {
            None => Ok(&[]),
            Some(Node {
                value: Value::Null, ..
            }) => Ok(&[]),
            Some(Node {
                value: Value::Seq(items),
                ..
            }) => Ok(items),
            Some(other) => Err(self.expected(other, field, &format!("a list of {what}"))),
        }
    }

    /// A path to a file: a string, remembered with its place in [`Reader::files`].
    fn path(&self, node: &Node, field: &str, what: &str) -> Result<String> {
        let path = self.string(node, field, what)?;
        self.files.borrow_mut().push(FileRef {
            path: path.clone(),
            pos: node.pos,
            field: field.to_string(),
        });
        Ok(path)
    }

    fn string(&self, node: &Node, field: &str, what: &str) -> Result<String> {
        match &node.value {
            Value::Str(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(self.expected(node, field, what)),
        }
    }

    fn name(&self, node: &Node, field: &str) -> Result<String> {
        let what = "a name of letters, digits, `_`, `-` or `.`, starting with a letter";
        let name = self.string(node, field, what)?;
        let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(self.expected(node, field, what));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(self.err(
                node.pos,
                field,
                format!(
                    "name `{name}` is {} characters long; at most {MAX_NAME_LEN} fit in Mininet's interface names",
                    name.len()
                ),
            ));
        }
        Ok(name)
    }

    fn number(&self, node: &Node, field: &str, what: &str) -> Result<f64> {
        match node.value {
            Value::Int(i) => Ok(i as f64),
            Value::Float(f) if f.is_finite() => Ok(f),
            _ => Err(self.expected(node, field, what)),
        }
    }

    /// A number checked by `ok`; `what` says what is expected (with the unit).
    fn number_where(
        &self,
        node: &Node,
        field: &str,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<f64> {
        let x = self.number(node, field, what)?;
        if ok(x) {
            Ok(x)
        } else {
            Err(self.expected(node, field, what))
        }
    }

    fn opt_number_where(
        &self,
        obj: &Obj<'_>,
        key: &str,
        what: &str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<Option<f64>> {
        obj.get(key)
            .map(|n| self.number_where(n, &obj.field(key), what, ok))
            .transpose()
    }

    fn uint(&self, node: &Node, field: &str, what: &str, min: u64) -> Result<u64> {
        match node.value {
            Value::Int(i) if i >= 0 && i as u64 >= min => Ok(i as u64),
            _ => Err(self.expected(node, field, what)),
        }
    }

    /// An unsigned integer from `min` to `max`: one past `max` is refused, not truncated.
    fn uint_to(&self, node: &Node, field: &str, what: &str, min: u64, max: u64) -> Result<u64> {
        match self.uint(node, field, what, min)? {
            n if n <= max => Ok(n),
            _ => Err(self.expected(node, field, what)),
        }
    }

    /// A keyword that `T::from_str` reads; `names` are the accepted ones (for the message).
    fn keyword<T: FromStr>(&self, node: &Node, field: &str, names: &[&str]) -> Result<T> {
        let what = format!("one of {}", describe_list(names));
        match &node.value {
            Value::Str(s) => s.parse().map_err(|_| self.expected(node, field, &what)),
            _ => Err(self.expected(node, field, &what)),
        }
    }

    /// A key that only makes sense with some other choice.
    fn not_here(&self, obj: &Obj<'_>, key: &str, why: &str) -> Result<()> {
        match obj.get(key) {
            Some(_) => Err(self.err(
                obj.key_pos(key),
                &obj.field(key),
                format!("does not apply {why}"),
            )),
            None => Ok(()),
        }
    }

    // ===== sections =====

    fn scenario(&self, root: &Node) -> Result<Scenario> {
        let top = self.obj(
            root,
            "",
            "a mapping with `switches`, `hosts`, `links`, ...",
            TOP_KEYS,
        )?;
        let default_name = std::path::Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_string();
        let mut sc = Scenario::new(default_name);
        if let Some(n) = top.get("name") {
            sc.name = self.string(n, "name", "the scenario's name (a string)")?;
        }
        if let Some(n) = top.get("description") {
            sc.description = self.string(n, "description", "a text")?;
        }
        if let Some(n) = top.get("duration") {
            sc.duration =
                self.number_where(n, "duration", "a duration in s greater than 0", |x| x > 0.0)?;
        }
        if let Some(n) = top.get("seed") {
            sc.seed = self.uint(n, "seed", "a non-negative integer", 0)?;
        }
        if let Some(n) = top.get("coordinates") {
            let names = keywords(Coordinates::ALL, Coordinates::as_str);
            sc.coordinates = self.keyword(n, "coordinates", &names)?;
        }
        if let Some(n) = top.get("control") {
            sc.control = self.control(n)?;
        }

        // One namespace for switches and hosts: name -> (kind, position).
        let mut names: HashMap<String, (bool, Pos, String)> = HashMap::new();
        let mut claim = |name: &str, is_switch: bool, pos: Pos, field: &str| -> Result<()> {
            if let Some((_, first, first_field)) = names.get(name) {
                return Err(self.err(
                    pos,
                    field,
                    format!(
                        "duplicate name `{name}`: already used by {first_field}{}; names of switches and hosts must be unique",
                        at_line(*first)
                    ),
                ));
            }
            names.insert(name.to_string(), (is_switch, pos, field.to_string()));
            Ok(())
        };

        let switch_nodes = self.seq(top.get("switches"), "switches", "switches")?;
        if switch_nodes.is_empty() {
            return Err(self.err(
                top.key_pos("switches"),
                "switches",
                "expected at least one switch (`switches: [{name: s1}]`)",
            ));
        }
        let mut switch_pos = Vec::new();
        for (i, node) in switch_nodes.iter().enumerate() {
            let path = format!("switches[{i}]");
            let obj = self.obj(
                node,
                &path,
                "a switch (`{name: s1, position: [x, y]}`)",
                SWITCH_KEYS,
            )?;
            let name_node = self.require(&obj, "name", "the switch's name")?;
            let name = self.name(name_node, &obj.field("name"))?;
            claim(&name, true, name_node.pos, &obj.field("name"))?;
            let position = obj
                .get("position")
                .map(|n| self.position(n, &obj.field("position")))
                .transpose()?;
            switch_pos.push(node.pos);
            sc.switches.push(Switch { name, position });
        }

        let host_nodes = self.seq(top.get("hosts"), "hosts", "hosts")?;
        let mut ips: HashMap<Ipv4Addr, String> = HashMap::new();
        let mut macs: HashMap<[u8; 6], String> = HashMap::new();
        for (i, node) in host_nodes.iter().enumerate() {
            let path = format!("hosts[{i}]");
            let obj = self.obj(
                node,
                &path,
                "a host (`{name: h1, switch: s1, role: client}`)",
                HOST_KEYS,
            )?;
            let name_node = self.require(&obj, "name", "the host's name")?;
            let name = self.name(name_node, &obj.field("name"))?;
            claim(&name, false, name_node.pos, &obj.field("name"))?;
            let sw_node = self.require(
                &obj,
                "switch",
                "the name of the switch the host is attached to",
            )?;
            let switch = self.string(sw_node, &obj.field("switch"), "the name of a switch")?;
            if sc.switch_index(&switch).is_none() {
                let msg = if sc.host(&switch).is_some() {
                    format!("`{switch}` is a host; a host attaches to a switch")
                } else {
                    format!(
                        "unknown switch `{switch}`; {}",
                        name_list(sc.switches.iter().map(|s| s.name.as_str()))
                    )
                };
                return Err(self.err(sw_node.pos, &obj.field("switch"), msg));
            }
            let roles = keywords(RoleKind::ALL, RoleKind::as_str);
            let role_node =
                self.require(&obj, "role", &format!("one of {}", describe_list(&roles)))?;
            let kind: RoleKind = self.keyword(role_node, &obj.field("role"), &roles)?;
            let role = match kind {
                RoleKind::Computer => Role::Computer(match obj.get("computer") {
                    Some(c) => self.computer(c, &obj.field("computer"))?,
                    None => Computer::preset(Preset::Raspberry),
                }),
                other => {
                    self.not_here(&obj, "computer", "to a host whose role is not `computer`")?;
                    match other {
                        RoleKind::Router => Role::Router,
                        RoleKind::Controller => Role::Controller,
                        RoleKind::Client => Role::Client,
                        RoleKind::TrafficSource => Role::TrafficSource,
                        RoleKind::TrafficSink => Role::TrafficSink,
                        RoleKind::Nat => Role::Nat,
                        RoleKind::Computer => unreachable!(),
                    }
                }
            };
            let ip = match obj.get("ip") {
                None => None,
                Some(n) => {
                    let field = obj.field("ip");
                    let text = self.string(n, &field, "an IPv4 address such as \"10.0.0.1\"")?;
                    let ip: Ipv4Addr = text.parse().map_err(|_| {
                        self.expected(n, &field, "an IPv4 address such as \"10.0.0.1\"")
                    })?;
                    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                        return Err(self.expected(n, &field, "a unicast IPv4 address"));
                    }
                    if let Some(other) = ips.insert(ip, name.clone()) {
                        return Err(self.err(
                            n.pos,
                            &field,
                            format!("address {ip} is already the address of `{other}`"),
                        ));
                    }
                    Some(ip)
                }
            };
            let mac = match obj.get("mac") {
                None => None,
                Some(n) => {
                    let field = obj.field("mac");
                    let what = "a MAC address such as \"00:00:00:00:00:01\"";
                    let text = self.string(n, &field, what)?;
                    let mac = parse_mac(&text).ok_or_else(|| self.expected(n, &field, what))?;
                    if mac[0] & 1 == 1 {
                        return Err(self.expected(
                            n,
                            &field,
                            "a unicast MAC address (lowest bit of the first byte 0)",
                        ));
                    }
                    if let Some(other) = macs.insert(mac, name.clone()) {
                        return Err(self.err(
                            n.pos,
                            &field,
                            format!("MAC {text} is already the MAC of `{other}`"),
                        ));
                    }
                    Some(mac)
                }
            };
            let link = match obj.get("link") {
                None => LinkParams::default(),
                Some(n) => {
                    let lo = self.obj(
                        n,
                        &obj.field("link"),
                        "the access link's shaping (`{bw: 100, delay: 1}`)",
                        LINK_PARAM_KEYS,
                    )?;
                    self.link_params(&lo)?
                }
            };
            sc.hosts.push(Host {
                name,
                switch,
                role,
                ip,
                mac,
                link,
            });
        }

        let external_nodes = self.seq(top.get("external"), "external", "external computers")?;
        let mut ports: HashMap<u16, String> = HashMap::new();
        for (i, node) in external_nodes.iter().enumerate() {
            let path = format!("external[{i}]");
            let obj = self.obj(
                node,
                &path,
                "an external computer (`{name: face, computer: {executor: face}, port: 10100}`)",
                EXTERNAL_KEYS,
            )?;
            if sc.hosts_with(RoleKind::Nat).next().is_none() {
                return Err(self.err(
                    node.pos,
                    &path,
                    "an external computer is reached through the NAT gateway: add a host whose role is `nat`",
                ));
            }
            let name_node = self.require(&obj, "name", "the external computer's name")?;
            let name = self.name(name_node, &obj.field("name"))?;
            claim(&name, false, name_node.pos, &obj.field("name"))?;
            let computer = match obj.get("computer") {
                Some(c) => self.computer(c, &obj.field("computer"))?,
                None => Computer::preset(Preset::Raspberry),
            };
            let what = "a TCP port from 1024 to 65534 (its utilization stream takes the next one)";
            let port = match obj.get("port") {
                Some(n) => {
                    let p = self.uint(n, &obj.field("port"), what, 1024)?;
                    if p > 65534 {
                        return Err(self.expected(n, &obj.field("port"), what));
                    }
                    p as u16
                }
                None => {
                    // Ports 10100, 10102, ... while they last.
                    let default = u64::from(EXTERNAL_FIRST_PORT) + 2 * i as u64;
                    if default > 65534 {
                        return Err(self.err(
                            node.pos,
                            &path,
                            format!(
                                "no default port left for external computer {i}: give it a `port`"
                            ),
                        ));
                    }
                    default as u16
                }
            };
            for p in [port, port + 1] {
                if let Some(other) = ports.insert(p, name.clone()) {
                    return Err(self.err(
                        obj.key_pos("port"),
                        &obj.field("port"),
                        format!(
                            "port {p} is already taken by `{other}` (each external computer takes its port and the next)"
                        ),
                    ));
                }
            }
            sc.external.push(External {
                name,
                computer,
                port,
            });
        }

        let link_nodes = self.seq(top.get("links"), "links", "links")?;
        let mut pairs: HashMap<(String, String), usize> = HashMap::new();
        for (i, node) in link_nodes.iter().enumerate() {
            let path = format!("links[{i}]");
            let obj = self.obj(
                node,
                &path,
                "a link (`{a: s1, b: s2, bw: 10, delay: 5}`)",
                LINK_KEYS,
            )?;
            let mut ends = Vec::new();
            for key in ["a", "b"] {
                let n = self.require(&obj, key, "the name of a switch")?;
                let s = self.string(n, &obj.field(key), "the name of a switch")?;
                if sc.switch_index(&s).is_none() {
                    let msg = if sc.host(&s).is_some() {
                        format!(
                            "`{s}` is a host; links join switches (a host's access link is its `link` field)"
                        )
                    } else {
                        format!(
                            "unknown switch `{s}`; {}",
                            name_list(sc.switches.iter().map(|s| s.name.as_str()))
                        )
                    };
                    return Err(self.err(n.pos, &obj.field(key), msg));
                }
                ends.push(s);
            }
            let (a, b) = (ends[0].clone(), ends[1].clone());
            if a == b {
                return Err(self.err(
                    obj.key_pos("b"),
                    &obj.field("b"),
                    format!("a link joins two different switches; both ends are `{a}`"),
                ));
            }
            let key = if a < b {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            if let Some(first) = pairs.insert(key, i) {
                return Err(self.err(
                    node.pos,
                    &path,
                    format!(
                        "duplicate link between `{a}` and `{b}`: links[{first}] already joins them"
                    ),
                ));
            }
            let params = self.link_params(&obj)?;
            sc.links.push(Link { a, b, params });
        }

        self.check_connected(&sc, &switch_pos)?;

        let workload_nodes = self.seq(top.get("workloads"), "workloads", "workloads")?;
        for (i, node) in workload_nodes.iter().enumerate() {
            let path = format!("workloads[{i}]");
            let w = self.workload(node, &path, &sc)?;
            sc.workloads.push(w);
        }
        let background_nodes = self.seq(top.get("background"), "background", "background flows")?;
        for (i, node) in background_nodes.iter().enumerate() {
            let path = format!("background[{i}]");
            let b = self.background(node, &path, &sc)?;
            sc.background.push(b);
        }
        let event_nodes = self.seq(top.get("events"), "events", "events")?;
        let mut events = Vec::new();
        for (i, node) in event_nodes.iter().enumerate() {
            let path = format!("events[{i}]");
            let e = self.event(node, &path, &sc)?;
            events.push((e, node, path));
        }
        // In time order (file order among events at the same time): the order they apply in.
        events.sort_by(|a, b| a.0.at.total_cmp(&b.0.at));
        self.check_event_order(&events)?;
        sc.events = events.into_iter().map(|(e, _, _)| e).collect();
        Ok(sc)
    }

    fn event(&self, node: &Node, path: &str, sc: &Scenario) -> Result<Event> {
        let kinds = Action::KINDS;
        let obj = self.obj(
            node,
            path,
            "an event (`{at: 10, kind: link-down, link: s1-s2}`)",
            EVENT_KEYS,
        )?;
        let at_node = self.require(&obj, "at", "a time in s from the start of the run")?;
        let at = self.number_where(
            at_node,
            &obj.field("at"),
            "a time in s from the start of the run, 0 or more",
            |x| x >= 0.0,
        )?;
        if at >= sc.duration {
            return Err(self.err(
                at_node.pos,
                &obj.field("at"),
                format!(
                    "at {at} s is not before the end of the run (duration {} s); expected 0 <= at < {}",
                    sc.duration, sc.duration
                ),
            ));
        }
        let kn = self.require(&obj, "kind", &format!("one of {}", describe_list(&kinds)))?;
        let kind = match &kn.value {
            Value::Str(s) if kinds.contains(&s.as_str()) => s.clone(),
            _ => {
                let what = format!("one of {}", describe_list(&kinds));
                return Err(self.expected(kn, &obj.field("kind"), &what));
            }
        };
        let only = |keys: &[&str]| -> Result<()> {
            for key in ["host", "link", "factor", "speed", "load", "bw", "delay"] {
                if !keys.contains(&key) {
                    self.not_here(&obj, key, &format!("to a `{kind}` event"))?;
                }
            }
            Ok(())
        };
        let action = match kind.as_str() {
            "computer-speed" => {
                only(&["host", "factor", "speed"])?;
                let host = self.simulated_computer(&obj, &kind, sc)?;
                let factor = self.opt_number_where(
                    &obj,
                    "factor",
                    "a factor of the computer's speed, greater than 0",
                    |x| x > 0.0,
                )?;
                let speed = self.opt_number_where(
                    &obj,
                    "speed",
                    "a speed in ops/s per core, greater than 0",
                    |x| x > 0.0,
                )?;
                let speed = match (factor, speed) {
                    (Some(f), None) => Speed::Factor(f),
                    (None, Some(s)) => Speed::OpsPerSec(s),
                    (Some(_), Some(_)) => {
                        return Err(self.err(
                            obj.key_pos("speed"),
                            &obj.field("speed"),
                            "give either `factor` (times the scenario's speed) or `speed` (ops/s per core), not both",
                        ));
                    }
                    (None, None) => {
                        return Err(self.err(
                            node.pos,
                            &obj.field("factor"),
                            "missing; a `computer-speed` event needs `factor` (times the scenario's speed) or `speed` (ops/s per core)",
                        ));
                    }
                };
                Action::ComputerSpeed { host, speed }
            }
            "computer-load" => {
                only(&["host", "load"])?;
                let host = self.simulated_computer(&obj, &kind, sc)?;
                let what = "the fraction of the computer's cores other work takes, at least 0 and below 1 (e.g. 0.3)";
                let n = self.require(&obj, "load", what)?;
                let load =
                    self.number_where(n, &obj.field("load"), what, |x| (0.0..1.0).contains(&x))?;
                Action::ComputerLoad { host, load }
            }
            "computer-stop" | "computer-start" | "computer-freeze" | "computer-thaw" => {
                only(&["host"])?;
                let host = self.host_with_role(&obj, "host", RoleKind::Computer, sc)?;
                match kind.as_str() {
                    "computer-stop" => Action::ComputerStop { host },
                    "computer-start" => Action::ComputerStart { host },
                    "computer-freeze" => Action::ComputerFreeze { host },
                    _ => Action::ComputerThaw { host },
                }
            }
            "router-restart" => {
                only(&["host"])?;
                Action::RouterRestart {
                    host: self.host_with_role(&obj, "host", RoleKind::Router, sc)?,
                }
            }
            "link-down" | "link-up" => {
                only(&["link"])?;
                let link = self.link_ref(&obj, sc)?;
                if kind == "link-down" {
                    Action::LinkDown { link }
                } else {
                    Action::LinkUp { link }
                }
            }
            _ => {
                only(&["link", "bw", "delay"])?;
                let link = self.link_ref(&obj, sc)?;
                let bw = self.opt_number_where(
                    &obj,
                    "bw",
                    "a bandwidth in Mbit/s greater than 0",
                    |x| x > 0.0,
                )?;
                let delay =
                    self.opt_number_where(&obj, "delay", "a delay in ms, 0 or more", |x| x >= 0.0)?;
                if bw.is_none() && delay.is_none() {
                    return Err(self.err(
                        node.pos,
                        &obj.field("bw"),
                        "missing; a `link-set` event needs `bw` (Mbit/s), `delay` (ms) or both",
                    ));
                }
                Action::LinkSet { link, bw, delay }
            }
        };
        Ok(Event { at, action })
    }

    /// The `host` of a `computer-speed` or `computer-load` event: a computer host whose speed
    /// the testbed can change, i.e. a simulated one.
    fn simulated_computer(&self, obj: &Obj<'_>, kind: &str, sc: &Scenario) -> Result<String> {
        let host = self.host_with_role(obj, "host", RoleKind::Computer, sc)?;
        if let Some(Role::Computer(c)) = sc.host(&host).map(|h| &h.role)
            && c.executor != Executor::Simulated
        {
            let n = obj.get("host").expect("host_with_role found it");
            return Err(self.err(
                n.pos,
                &obj.field("host"),
                format!(
                    "computer `{host}` runs `executor: {}`, real code at the machine's own speed; a `{kind}` event changes a simulated computer",
                    c.executor.as_str()
                ),
            ));
        }
        Ok(host)
    }

    /// The `link` of an event: a switch-to-switch link named `a-b` (or `b-a`); its canonical name.
    fn link_ref(&self, obj: &Obj<'_>, sc: &Scenario) -> Result<String> {
        let what = "the name of a link between two switches, `a-b` (e.g. `s1-s2`)";
        let n = self.require(obj, "link", what)?;
        let name = self.string(n, &obj.field("link"), what)?;
        for l in &sc.links {
            if name == l.name() || name == format!("{}-{}", l.b, l.a) {
                return Ok(l.name());
            }
        }
        let msg = if sc.host(&name).is_some() {
            format!("`{name}` is a host; events act on links between switches, named `a-b`")
        } else {
            format!(
                "unknown link `{name}`; {}",
                name_list(
                    sc.links
                        .iter()
                        .map(|l| l.name())
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str)
                )
            )
        };
        Err(self.err(n.pos, &obj.field("link"), msg))
    }

    /// Events must make sense in time order: a link goes down only when up, a computer stops
    /// only when running and starts only when stopped, a stopped computer changes no speed.
    fn check_event_order(&self, events: &[(Event, &Node, String)]) -> Result<()> {
        // Name -> (time, kind) of the event that made it down/stopped.
        let mut down: HashMap<&str, (f64, &str)> = HashMap::new();
        // Computer -> (time, kind) of the event that froze it.
        let mut frozen: HashMap<&str, (f64, &str)> = HashMap::new();
        for (e, node, path) in events {
            let field = format!("{path}.kind");
            let at = e.at;
            let bad = |msg: String| Err(self.err(node.pos, &field, msg));
            match &e.action {
                Action::LinkDown { link } => {
                    if let Some((t, _)) = down.get(link.as_str()) {
                        return bad(format!(
                            "link `{link}` is already down at {at} s (link-down at {t} s); expected a `link-up` before"
                        ));
                    }
                    down.insert(link, (at, "link-down"));
                }
                Action::LinkUp { link } => {
                    if down.remove(link.as_str()).is_none() {
                        return bad(format!(
                            "link `{link}` is up at {at} s; expected a `link-down` before it"
                        ));
                    }
                }
                Action::ComputerStop { host } => {
                    if let Some((t, _)) = frozen.get(host.as_str()) {
                        return bad(format!(
                            "computer `{host}` is frozen at {at} s (computer-freeze at {t} s); expected a `computer-thaw` before stopping it"
                        ));
                    }
                    if let Some((t, _)) = down.get(host.as_str()) {
                        return bad(format!(
                            "computer `{host}` is already stopped at {at} s (computer-stop at {t} s); expected a `computer-start` before"
                        ));
                    }
                    down.insert(host, (at, "computer-stop"));
                }
                Action::ComputerFreeze { host } => {
                    if let Some((t, _)) = down.get(host.as_str()) {
                        return bad(format!(
                            "computer `{host}` is stopped at {at} s (computer-stop at {t} s); expected a `computer-start` before freezing it"
                        ));
                    }
                    if let Some((t, _)) = frozen.get(host.as_str()) {
                        return bad(format!(
                            "computer `{host}` is already frozen at {at} s (computer-freeze at {t} s); expected a `computer-thaw` before"
                        ));
                    }
                    frozen.insert(host, (at, "computer-freeze"));
                }
                Action::ComputerThaw { host } => {
                    if frozen.remove(host.as_str()).is_none() {
                        return bad(format!(
                            "computer `{host}` is not frozen at {at} s; expected a `computer-freeze` before it"
                        ));
                    }
                }
                Action::ComputerStart { host } => {
                    if down.remove(host.as_str()).is_none() {
                        return bad(format!(
                            "computer `{host}` is running at {at} s; expected a `computer-stop` before it"
                        ));
                    }
                }
                Action::ComputerSpeed { host, .. } | Action::ComputerLoad { host, .. } => {
                    let what = if matches!(e.action, Action::ComputerLoad { .. }) {
                        "its background load"
                    } else {
                        "its speed"
                    };
                    if let Some((t, k)) = down.get(host.as_str()) {
                        return bad(format!(
                            "computer `{host}` is stopped at {at} s ({k} at {t} s); expected a `computer-start` before changing {what}"
                        ));
                    }
                    if let Some((t, k)) = frozen.get(host.as_str()) {
                        return bad(format!(
                            "computer `{host}` is frozen at {at} s ({k} at {t} s); expected a `computer-thaw` before changing {what}"
                        ));
                    }
                }
                Action::LinkSet { .. } | Action::RouterRestart { .. } => {}
            }
        }
        Ok(())
    }

    fn position(&self, node: &Node, field: &str) -> Result<[f64; 2]> {
        let what = "a position `[x, y]` (or `[longitude, latitude]`)";
        match &node.value {
            Value::Seq(items) if items.len() == 2 => Ok([
                self.number(&items[0], field, what)?,
                self.number(&items[1], field, what)?,
            ]),
            _ => Err(self.expected(node, field, what)),
        }
    }

    fn control(&self, node: &Node) -> Result<Control> {
        let obj = self.obj(
            node,
            "control",
            "a mapping of control choices (`policy`, `estimator`, ...)",
            CONTROL_KEYS,
        )?;
        let mut c = Control::default();
        if let Some(n) = obj.get("policy") {
            let names: Vec<String> = PolicyKind::ALL
                .iter()
                .map(|p| format!("`{p}` ({})", p.long_name()))
                .collect();
            let what = format!("one of {}", names.join(", "));
            c.policy = match &n.value {
                Value::Str(s) => s
                    .parse()
                    .map_err(|_| self.expected(n, "control.policy", &what))?,
                _ => return Err(self.expected(n, "control.policy", &what)),
            };
        }
        c.estimator = self.estimator(&obj, c.policy)?;
        let installer = match obj.get("installer") {
            None => "flat",
            Some(n) => match &n.value {
                Value::Str(s) if Installer::NAMES.contains(&s.as_str()) => s.as_str(),
                _ => {
                    let what = format!("one of {}", describe_list(&Installer::NAMES));
                    return Err(self.expected(n, "control.installer", &what));
                }
            },
        };
        c.installer = if installer == "flat" {
            self.not_here(&obj, "objective", "to the `flat` installer")?;
            Installer::Flat
        } else {
            let objective = obj
                .get("objective")
                .map(|n| {
                    self.keyword(
                        n,
                        "control.objective",
                        &keywords(Objective::ALL, Objective::as_str),
                    )
                })
                .transpose()?;
            Installer::TwoTier {
                objective: objective.unwrap_or(Objective::MinMax),
            }
        };
        if let Some(n) = obj.get("routing") {
            c.routing = self.keyword(
                n,
                "control.routing",
                &keywords(Routing::ALL, Routing::as_str),
            )?;
        }
        if let Some(x) = self.opt_number_where(
            &obj,
            "congestion-threshold",
            "a fraction of the link bandwidth, greater than 0 and at most 1",
            |x| x > 0.0 && x <= 1.0,
        )? {
            c.congestion_threshold = x;
        }
        Ok(c)
    }

    /// The estimator: `estimator` names it (`ewma`, `periodic`, `peak-ewma`, or core's full
    /// text such as `periodic:5:min`), and `alpha`, `period`, `stat`, `decay` set its
    /// parameters; without `estimator`, the policy's default estimator.
    fn estimator(&self, obj: &Obj<'_>, policy: PolicyKind) -> Result<EstimatorKind> {
        const PARAMS: [&str; 4] = ["alpha", "period", "stat", "decay"];
        let (base, named) = match obj.get("estimator") {
            None => (policy.default_estimator(), false),
            Some(n) => {
                let what = format!(
                    "one of {} (parameters as keys: `alpha` for ewma, `period` and `stat` for \
                     periodic, `decay` for peak-ewma)",
                    describe_list(&EstimatorKind::NAMES)
                );
                let Value::Str(text) = &n.value else {
                    return Err(self.expected(n, "control.estimator", &what));
                };
                let kind = text.parse::<EstimatorKind>().map_err(|e| {
                    let name = text.split(':').next().unwrap_or_default();
                    if EstimatorKind::NAMES.contains(&name.trim().to_ascii_lowercase().as_str()) {
                        self.err(n.pos, "control.estimator", e.to_string())
                    } else {
                        self.expected(n, "control.estimator", &what)
                    }
                })?;
                if text.contains(':')
                    && let Some(key) = PARAMS.iter().find(|k| obj.get(k).is_some())
                {
                    return Err(self.err(
                        obj.key_pos(key),
                        &obj.field(key),
                        format!(
                            "the estimator `{text}` gives its parameters already; give them \
                             either in `estimator` or as keys"
                        ),
                    ));
                }
                (kind, true)
            }
        };
        let why = if named {
            format!("to the `{}` estimator", base.name())
        } else {
            format!(
                "to the `{}` estimator (policy `{policy}`'s default; set `estimator`)",
                base.name()
            )
        };
        let secs = |key: &str, what: &str| -> Result<Option<Duration>> {
            let what = format!("{what} in s, greater than 0 and below {MAX_ESTIMATOR_SECS:e}");
            Ok(self
                .opt_number_where(obj, key, &what, |x| x > 0.0 && x < MAX_ESTIMATOR_SECS)?
                .map(Duration::from_secs_f64))
        };
        let only = |keys: &[&str]| -> Result<()> {
            for key in PARAMS.iter().filter(|k| !keys.contains(k)) {
                self.not_here(obj, key, &why)?;
            }
            Ok(())
        };
        Ok(match base {
            EstimatorKind::Ewma { alpha: default } => {
                only(&["alpha"])?;
                let alpha = self.opt_number_where(
                    obj,
                    "alpha",
                    "an EWMA weight alpha with 0 <= alpha <= 1",
                    |a| (0.0..=1.0).contains(&a),
                )?;
                EstimatorKind::Ewma {
                    alpha: alpha.unwrap_or(default),
                }
            }
            EstimatorKind::Periodic { period, stat } => {
                only(&["period", "stat"])?;
                let stat = match obj.get("stat") {
                    Some(n) => {
                        self.keyword(n, "control.stat", &keywords(&Stat::ALL, Stat::as_str))?
                    }
                    None => stat,
                };
                EstimatorKind::Periodic {
                    period: secs("period", "a period")?.unwrap_or(period),
                    stat,
                }
            }
            EstimatorKind::PeakEwma { decay } => {
                only(&["decay"])?;
                EstimatorKind::PeakEwma {
                    decay: secs("decay", "a decay time constant")?.unwrap_or(decay),
                }
            }
        })
    }

    fn computer(&self, node: &Node, path: &str) -> Result<Computer> {
        let obj = self.obj(
            node,
            path,
            "a computer (`{preset: raspberry}`)",
            COMPUTER_KEYS,
        )?;
        let preset = match obj.get("preset") {
            Some(n) => self.keyword(
                n,
                &obj.field("preset"),
                &keywords(&Preset::ALL, Preset::as_str),
            )?,
            None => Preset::Raspberry,
        };
        let mut c = Computer::preset(preset);
        if let Some(n) = obj.get("executor") {
            c.executor = self.keyword(
                n,
                &obj.field("executor"),
                &keywords(Executor::ALL, Executor::as_str),
            )?;
        }
        if c.executor == Executor::Face {
            for key in ["preset", "lambdas", "speed", "cores", "memory", "endpoints"] {
                self.not_here(
                    &obj,
                    key,
                    "to a face computer (`executor: face` runs facerec0, eyerec0 and clambda0)",
                )?;
            }
            return Ok(c);
        }
        if let Some(n) = obj.get("lambdas") {
            let what = format!("a number of lambdas of each kind, 1 to {MAX_COMPUTER_LAMBDAS}");
            c.lambdas = self.uint_to(
                n,
                &obj.field("lambdas"),
                &what,
                1,
                u64::from(MAX_COMPUTER_LAMBDAS),
            )? as u32;
        }
        c.speed = self.opt_number_where(
            &obj,
            "speed",
            "a speed in ops/s per core, greater than 0",
            |x| x > 0.0,
        )?;
        if let Some(n) = obj.get("cores") {
            let what = "a number of cores, at least 1";
            c.cores = Some(self.uint_to(n, &obj.field("cores"), what, 1, u32::MAX.into())? as u32);
        }
        if let Some(n) = obj.get("memory") {
            c.memory = Some(self.uint(
                n,
                &obj.field("memory"),
                "a memory size in bytes, at least 1",
                1,
            )?);
        }
        if let Some(n) = obj.get("endpoints") {
            let what = format!(
                "a number of computers this host serves on consecutive ports, 1 to {MAX_COMPUTER_ENDPOINTS}"
            );
            let endpoints = self.uint(n, &obj.field("endpoints"), &what, 1)?;
            if endpoints > u64::from(MAX_COMPUTER_ENDPOINTS) {
                return Err(self.expected(n, &obj.field("endpoints"), &what));
            }
            c.endpoints = endpoints as u32;
        }
        Ok(c)
    }

    fn link_params(&self, obj: &Obj<'_>) -> Result<LinkParams> {
        Ok(LinkParams {
            bw: self.opt_number_where(
                obj,
                "bw",
                "a bandwidth in Mbit/s greater than 0 (omit it for no limit)",
                |x| x > 0.0,
            )?,
            delay: self
                .opt_number_where(obj, "delay", "a delay in ms, 0 or more", |x| x >= 0.0)?
                .unwrap_or(0.0),
            loss: self
                .opt_number_where(obj, "loss", "a loss in percent, from 0 to 100", |x| {
                    (0.0..=100.0).contains(&x)
                })?
                .unwrap_or(0.0),
            queue: obj
                .get("queue")
                .map(|n| {
                    self.uint_to(
                        n,
                        &obj.field("queue"),
                        "a queue length in packets, at least 1",
                        1,
                        u32::MAX.into(),
                    )
                    .map(|q| q as u32)
                })
                .transpose()?,
        })
    }

    /// A host reference that must have a given role.
    fn host_with_role(
        &self,
        obj: &Obj<'_>,
        key: &str,
        kind: RoleKind,
        sc: &Scenario,
    ) -> Result<String> {
        let n = self.require(
            obj,
            key,
            &format!("the name of a host whose role is `{kind}`"),
        )?;
        let name = self.string(
            n,
            &obj.field(key),
            &format!("the name of a host whose role is `{kind}`"),
        )?;
        match sc.host(&name) {
            Some(h) if h.role.kind() == kind => Ok(name),
            Some(h) => Err(self.err(
                n.pos,
                &obj.field(key),
                format!(
                    "host `{name}` is a {}, expected a host whose role is `{kind}`",
                    h.role.kind()
                ),
            )),
            None => Err(self.err(
                n.pos,
                &obj.field(key),
                format!(
                    "unknown host `{name}`; {}",
                    name_list(sc.hosts_with(kind).map(|h| h.name.as_str()))
                ),
            )),
        }
    }

    /// The `fallback` of a workload: a router host, or a list of them, none the workload's
    /// `router` and none twice.
    fn fallback(&self, obj: &Obj<'_>, router: &str, sc: &Scenario) -> Result<Vec<String>> {
        let Some(n) = obj.get("fallback") else {
            return Ok(Vec::new());
        };
        let field = obj.field("fallback");
        let what = "a router (`fallback: r2`) or a list of routers (`fallback: [r2, r3]`) the client fails over to";
        let items: Vec<(&Node, String)> = match &n.value {
            Value::Str(_) => vec![(n, field.clone())],
            Value::Seq(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(k, item)| (item, format!("{field}[{k}]")))
                .collect(),
            _ => return Err(self.expected(n, &field, what)),
        };
        let mut out: Vec<String> = Vec::new();
        for (item, path) in items {
            let name = self.string(item, &path, what)?;
            match sc.host(&name) {
                Some(h) if h.role.kind() == RoleKind::Router => {}
                Some(h) => {
                    return Err(self.err(
                        item.pos,
                        &path,
                        format!(
                            "host `{name}` is a {}, expected a host whose role is `router`",
                            h.role.kind()
                        ),
                    ));
                }
                None => {
                    return Err(self.err(
                        item.pos,
                        &path,
                        format!(
                            "unknown host `{name}`; {}",
                            name_list(sc.hosts_with(RoleKind::Router).map(|h| h.name.as_str()))
                        ),
                    ));
                }
            }
            if name == router {
                return Err(self.err(
                    item.pos,
                    &path,
                    format!(
                        "`{name}` is the workload's `router`; a fallback is another router, tried when `{name}` cannot be reached"
                    ),
                ));
            }
            if out.contains(&name) {
                return Err(self.err(
                    item.pos,
                    &path,
                    format!("router `{name}` is listed twice; list each fallback router once"),
                ));
            }
            out.push(name);
        }
        Ok(out)
    }

    fn start_stop(&self, obj: &Obj<'_>, sc: &Scenario) -> Result<(f64, Option<f64>)> {
        let start = self
            .opt_number_where(obj, "start", "a start time in s, 0 or more", |x| x >= 0.0)?
            .unwrap_or(0.0);
        if start >= sc.duration {
            return Err(self.err(
                obj.key_pos("start"),
                &obj.field("start"),
                format!(
                    "starts at {start} s, not before the end of the run (duration {} s)",
                    sc.duration
                ),
            ));
        }
        let stop = self.opt_number_where(obj, "stop", "a stop time in s", |x| x >= 0.0)?;
        if let Some(stop) = stop
            && stop <= start
        {
            return Err(self.err(
                obj.key_pos("stop"),
                &obj.field("stop"),
                format!(
                    "stops at {stop} s, not after its start at {start} s; expected stop > start"
                ),
            ));
        }
        Ok((start, stop))
    }

    fn workload(&self, node: &Node, path: &str, sc: &Scenario) -> Result<Workload> {
        let obj = self.obj(
            node,
            path,
            "a workload (`{client: c1, router: r1, lambda: clambda0, pattern: poisson, rate: 10}`)",
            WORKLOAD_KEYS,
        )?;
        let client = self.host_with_role(&obj, "client", RoleKind::Client, sc)?;
        let router = self.host_with_role(&obj, "router", RoleKind::Router, sc)?;
        let fallback = self.fallback(&obj, &router, sc)?;
        let ln = self.require(&obj, "lambda", "the name of a lambda, e.g. `clambda0`")?;
        let lambda = self.string(
            ln,
            &obj.field("lambda"),
            "the name of a lambda, e.g. `clambda0`",
        )?;
        let patterns = Pattern::NAMES;
        let pn = self.require(
            &obj,
            "pattern",
            &format!("one of {}", describe_list(&patterns)),
        )?;
        let pattern_kw = match &pn.value {
            Value::Str(s) if patterns.contains(&s.as_str()) => s.clone(),
            _ => {
                let what = format!("one of {}", describe_list(&patterns));
                return Err(self.expected(pn, &obj.field("pattern"), &what));
            }
        };
        let only = |keys: &[&str]| -> Result<()> {
            for key in ["threads", "rate", "on", "off", "trace"]
                .iter()
                .chain(AOT_KEYS)
            {
                if !keys.contains(key) {
                    self.not_here(&obj, key, &format!("to the `{pattern_kw}` pattern"))?;
                }
            }
            Ok(())
        };
        let req_num = |key: &str, what: &str, ok: fn(f64) -> bool| -> Result<f64> {
            let n = self.require(&obj, key, what)?;
            self.number_where(n, &obj.field(key), what, ok)
        };
        let pattern = match pattern_kw.as_str() {
            "closed-loop" => {
                only(&["threads"])?;
                let threads = obj
                    .get("threads")
                    .map(|n| {
                        self.uint_to(
                            n,
                            &obj.field("threads"),
                            "a number of threads, at least 1",
                            1,
                            u32::MAX.into(),
                        )
                    })
                    .transpose()?
                    .unwrap_or(1) as u32;
                Pattern::ClosedLoop { threads }
            }
            "poisson" => {
                only(&["rate"])?;
                Pattern::Poisson {
                    rate: req_num("rate", "a rate in calls/s greater than 0", |x| x > 0.0)?,
                }
            }
            "on-off" => {
                only(&["rate", "on", "off"])?;
                Pattern::OnOff {
                    on: req_num("on", "the mean ON period in s, greater than 0", |x| x > 0.0)?,
                    off: req_num("off", "the mean OFF period in s, greater than 0", |x| {
                        x > 0.0
                    })?,
                    rate: req_num("rate", "a rate in calls/s during ON, greater than 0", |x| {
                        x > 0.0
                    })?,
                }
            }
            "trace" => {
                only(&["trace"])?;
                let n = self.require(&obj, "trace", "the path of a trace file")?;
                Pattern::Trace {
                    file: self.path(n, &obj.field("trace"), "the path of a trace file")?,
                }
            }
            _ => {
                let mut keys = vec!["trace"];
                keys.extend(AOT_KEYS);
                only(&keys)?;
                Pattern::Aot(self.aot(&obj)?)
            }
        };
        if let Pattern::Aot(aot) = &pattern
            && aot.payload != AotPayload::Size
        {
            self.not_here(
                &obj,
                "size",
                "with `payload: rows` or `per-row` (they size each call)",
            )?;
        }
        let size = match obj.get("size") {
            None => Size::Fixed(1000),
            Some(n) => self.size(n, &obj.field("size"))?,
        };
        let (start, stop) = self.start_stop(&obj, sc)?;
        let mut images = Vec::new();
        let what = "a list of image files (JPEG or PNG), e.g. `[../data/images/astronaut.jpg]`";
        if let Some(n) = obj.get("images") {
            let items = self.seq(Some(n), &obj.field("images"), "image files")?;
            if items.is_empty() {
                return Err(self.expected(n, &obj.field("images"), what));
            }
            for (k, item) in items.iter().enumerate() {
                images.push(self.path(item, &format!("{}[{k}]", obj.field("images")), what)?);
            }
            self.not_here(&obj, "size", "to a workload that sends images")?;
        }
        let eyes = match obj.get("eyes") {
            None => None,
            Some(n) => {
                if images.is_empty() {
                    self.not_here(&obj, "eyes", "to a workload without `images`")?;
                }
                Some(self.string(
                    n,
                    &obj.field("eyes"),
                    "the lambda called once per face found, e.g. `eyerec0`",
                )?)
            }
        };
        let api = match obj.get("api") {
            None => Api::Grpc,
            Some(n) => {
                let what = "`grpc` (the router's gRPC service) or `openwhisk` (OpenWhisk's REST API through a gateway on the router's host)";
                match self.string(n, &obj.field("api"), what)?.as_str() {
                    "grpc" => Api::Grpc,
                    "openwhisk" => Api::OpenWhisk,
                    _ => return Err(self.expected(n, &obj.field("api"), what)),
                }
            }
        };
        Ok(Workload {
            client,
            router,
            fallback,
            lambda,
            pattern,
            size,
            start,
            stop,
            images,
            eyes,
            api,
        })
    }

    /// The settings of a `pattern: aot` workload.
    fn aot(&self, obj: &Obj<'_>) -> Result<AotReplay> {
        let what = "the path of an AoT digest's data.csv or data.csv.gz";
        let n = self.require(obj, "trace", what)?;
        let mut aot = AotReplay::new(self.path(n, &obj.field("trace"), what)?);
        if let Some(n) = obj.get("window") {
            let field = obj.field("window");
            let w = self.obj(
                n,
                &field,
                "a window `{start: TIME, stop: TIME}`, each a UTC timestamp `YYYY/MM/DD HH:MM:SS` or seconds after the trace's first row",
                WINDOW_KEYS,
            )?;
            let spec = |key: &str| -> Result<Option<TimeSpec>> {
                let Some(n) = w.get(key) else {
                    return Ok(None);
                };
                let field = w.field(key);
                let what = "a UTC timestamp `YYYY/MM/DD HH:MM:SS` (e.g. `2018/09/03 12:00:00`) or a number of seconds (>= 0) after the trace's first row";
                match &n.value {
                    Value::Str(text) => Timestamp::parse(text)
                        .map(|t| Some(TimeSpec::At(t)))
                        .map_err(|e| self.err(n.pos, &field, e.to_string())),
                    _ => self
                        .number_where(n, &field, what, |x| x >= 0.0)
                        .map(|x| Some(TimeSpec::After(x))),
                }
            };
            aot.window = Window {
                start: spec("start")?,
                stop: spec("stop")?,
            };
            let order = match (aot.window.start, aot.window.stop) {
                (Some(TimeSpec::At(a)), Some(TimeSpec::At(b))) => a < b,
                (Some(TimeSpec::After(a)), Some(TimeSpec::After(b))) => a < b,
                (None, Some(TimeSpec::After(b))) => b > 0.0,
                _ => true,
            };
            if !order {
                return Err(self.err(
                    w.key_pos("stop"),
                    &w.field("stop"),
                    format!(
                        "the window stops at {}, not after its start{}; expected stop > start",
                        aot.window.stop.map_or(String::new(), |s| s.to_string()),
                        aot.window.start.map_or(String::new(), |s| format!(" {s}"))
                    ),
                ));
            }
        }
        if let Some(n) = obj.get("speedup") {
            aot.speedup = self.number_where(
                n,
                &obj.field("speedup"),
                "a speed-up factor greater than 0 (trace seconds per run second: 60 plays an hour in a minute)",
                |x| x > 0.0,
            )?;
        }
        if let Some(n) = obj.get("group") {
            let names: Vec<&str> = Group::ALL.iter().map(|g| g.as_str()).collect();
            aot.group = self.keyword(n, &obj.field("group"), &names)?;
        }
        let selector = |n: &Node, text: &str, field: &str| -> Result<SensorFilter> {
            text.parse()
                .map_err(|e: lambdaroute_trace::TraceError| self.err(n.pos, field, e.to_string()))
        };
        if let Some(n) = obj.get("lambdas") {
            let field = obj.field("lambdas");
            let Value::Map(entries) = &n.value else {
                return Err(self.expected(
                    n,
                    &field,
                    "a mapping of subsystem, sensor or parameter to lambda, e.g. `{chemsense: clambda0, metsense.tsys01: glambda0}`",
                ));
            };
            for (key, pos, value) in entries {
                let at = format!("{field}.{key}");
                let rule = LambdaRule {
                    selector: text_selector(self, *pos, key, &at)?,
                    lambda: self.string(value, &at, "the name of a lambda, e.g. `clambda0`")?,
                };
                aot.lambdas.push(rule);
            }
        }
        if let Some(n) = obj.get("sensors") {
            let field = obj.field("sensors");
            let what = "a subsystem, sensor or parameter: `chemsense`, `metsense.tsys01` or `metsense.tsys01.temperature`";
            for (i, item) in self
                .seq(Some(n), &field, "subsystems, sensors or parameters")?
                .iter()
                .enumerate()
            {
                let at = format!("{field}[{i}]");
                let text = self.string(item, &at, what)?;
                aot.sensors.push(selector(item, &text, &at)?);
            }
        }
        if let Some(n) = obj.get("payload") {
            let field = obj.field("payload");
            let what = "`size` (the workload's size), `rows` (the readings as CSV text) or `{per-row: BYTES}`";
            aot.payload = match &n.value {
                Value::Str(s) if s == "size" => AotPayload::Size,
                Value::Str(s) if s == "rows" => AotPayload::Rows,
                Value::Map(_) => {
                    let p = self.obj(n, &field, what, &["per-row"])?;
                    let bytes = self.require(&p, "per-row", "bytes per reading")?;
                    AotPayload::PerRow(self.uint(
                        bytes,
                        &p.field("per-row"),
                        "a number of bytes per reading, 0 or more",
                        0,
                    )?)
                }
                _ => return Err(self.expected(n, &field, what)),
            };
        }
        Ok(aot)
    }

    fn size(&self, node: &Node, field: &str) -> Result<Size> {
        let what = "a size in bytes, or `{min: bytes, max: bytes}` for sizes drawn uniformly";
        match &node.value {
            Value::Int(_) => Ok(Size::Fixed(self.uint(node, field, what, 0)?)),
            Value::Map(_) => {
                let obj = self.obj(node, field, what, SIZE_KEYS)?;
                let min = self.uint(
                    self.require(&obj, "min", "the smallest size in bytes")?,
                    &obj.field("min"),
                    "a size in bytes, 0 or more",
                    0,
                )?;
                let maxn = self.require(&obj, "max", "the largest size in bytes")?;
                let max = self.uint(maxn, &obj.field("max"), "a size in bytes, 0 or more", 0)?;
                if max < min {
                    return Err(self.err(
                        maxn.pos,
                        &obj.field("max"),
                        format!("max {max} is smaller than min {min}; expected max >= min"),
                    ));
                }
                Ok(Size::Uniform { min, max })
            }
            _ => Err(self.expected(node, field, what)),
        }
    }

    fn background(&self, node: &Node, path: &str, sc: &Scenario) -> Result<Background> {
        let obj = self.obj(
            node,
            path,
            "a background flow (`{source: t1, sink: t2, rate: 5}`)",
            BACKGROUND_KEYS,
        )?;
        let source = self.host_with_role(&obj, "source", RoleKind::TrafficSource, sc)?;
        let sink = self.host_with_role(&obj, "sink", RoleKind::TrafficSink, sc)?;
        let traffic = match (obj.get("trace"), obj.get("rate")) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    obj.key_pos("rate"),
                    &obj.field("rate"),
                    "give either `trace` (a trace file) or `rate` (synthetic traffic), not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    node.pos,
                    path,
                    "missing the traffic: expected `trace: <file>` or `rate: <Mbit/s>`",
                ));
            }
            (Some(n), None) => {
                self.not_here(&obj, "on", "to trace replay")?;
                self.not_here(&obj, "off", "to trace replay")?;
                Traffic::Trace {
                    file: self.path(n, &obj.field("trace"), "the path of a trace file")?,
                }
            }
            (None, Some(n)) => {
                let rate = self.number_where(
                    n,
                    &obj.field("rate"),
                    "a rate in Mbit/s greater than 0",
                    |x| x > 0.0,
                )?;
                let on = self.opt_number_where(
                    &obj,
                    "on",
                    "the mean ON period in s, greater than 0",
                    |x| x > 0.0,
                )?;
                let off = self.opt_number_where(
                    &obj,
                    "off",
                    "the mean OFF period in s, greater than 0",
                    |x| x > 0.0,
                )?;
                let on_off = match (on, off) {
                    (Some(on), Some(off)) => Some((on, off)),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(self.err(
                            obj.key_pos("on"),
                            &obj.field("off"),
                            "missing; `on` needs `off` (mean OFF period in s)",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(self.err(
                            obj.key_pos("off"),
                            &obj.field("on"),
                            "missing; `off` needs `on` (mean ON period in s)",
                        ));
                    }
                };
                Traffic::Synthetic { rate, on_off }
            }
        };
        let (start, stop) = self.start_stop(&obj, sc)?;
        Ok(Background {
            source,
            sink,
            traffic,
            start,
            stop,
        })
    }

    fn check_connected(&self, sc: &Scenario, switch_pos: &[Pos]) -> Result<()> {
        let components = crate::network::components(sc);
        if components.len() <= 1 {
            return Ok(());
        }
        let first: HashSet<&str> = components[0].iter().map(String::as_str).collect();
        let (i, s) = sc
            .switches
            .iter()
            .enumerate()
            .find(|(_, s)| !first.contains(s.name.as_str()))
            .expect("more than one component");
        Err(self.err(
            switch_pos[i],
            &format!("switches[{i}]"),
            format!(
                "switch `{}` cannot reach `{}`: the network has {} disconnected parts; add links to join them",
                s.name,
                sc.switches[0].name,
                components.len()
            ),
        ))
    }
}
