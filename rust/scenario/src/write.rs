//! Writing a [`Scenario`] back to YAML, in the same format [`crate::parse`] reads.
//!
//! Every choice is written explicitly (defaults included), so that reading the text back gives
//! an equal model and writing that again gives the same text.

use crate::model::*;
use crate::yaml::{Out, emit};

/// The scenario as YAML text.
pub fn to_yaml(sc: &Scenario) -> String {
    let mut top: Vec<(String, Out)> = vec![("name".into(), sc.name.as_str().into())];
    if !sc.description.is_empty() {
        top.push(("description".into(), sc.description.as_str().into()));
    }
    top.push(("duration".into(), sc.duration.into()));
    top.push(("seed".into(), sc.seed.into()));
    if sc.coordinates == Coordinates::Geo {
        top.push(("coordinates".into(), sc.coordinates.as_str().into()));
    }
    top.push(("control".into(), control(&sc.control)));
    top.push((
        "switches".into(),
        Out::Seq(
            sc.switches
                .iter()
                .map(|s| {
                    let mut m = vec![("name".into(), s.name.as_str().into())];
                    if let Some([x, y]) = s.position {
                        m.push(("position".into(), Out::Seq(vec![x.into(), y.into()])));
                    }
                    Out::Map(m)
                })
                .collect(),
        ),
    ));
    top.push((
        "hosts".into(),
        Out::Seq(sc.hosts.iter().map(host).collect()),
    ));
    top.push((
        "links".into(),
        Out::Seq(
            sc.links
                .iter()
                .map(|l| {
                    let mut m = vec![
                        ("a".into(), l.a.as_str().into()),
                        ("b".into(), l.b.as_str().into()),
                    ];
                    m.extend(link_params(&l.params));
                    Out::Map(m)
                })
                .collect(),
        ),
    ));
    if !sc.workloads.is_empty() {
        top.push((
            "workloads".into(),
            Out::Seq(sc.workloads.iter().map(workload).collect()),
        ));
    }
    if !sc.background.is_empty() {
        top.push((
            "background".into(),
            Out::Seq(sc.background.iter().map(background).collect()),
        ));
    }
    if !sc.external.is_empty() {
        top.push((
            "external".into(),
            Out::Seq(sc.external.iter().map(external).collect()),
        ));
    }
    if !sc.events.is_empty() {
        top.push((
            "events".into(),
            Out::Seq(sc.events.iter().map(event).collect()),
        ));
    }
    emit(&Out::Map(top))
}

fn event(e: &Event) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("at".into(), e.at.into()),
        ("kind".into(), e.action.kind().into()),
    ];
    match &e.action {
        Action::ComputerSpeed { host, speed } => {
            m.push(("host".into(), host.as_str().into()));
            match speed {
                Speed::Factor(f) => m.push(("factor".into(), (*f).into())),
                Speed::OpsPerSec(s) => m.push(("speed".into(), (*s).into())),
            }
        }
        Action::ComputerLoad { host, load } => {
            m.push(("host".into(), host.as_str().into()));
            m.push(("load".into(), (*load).into()));
        }
        Action::ComputerStop { host }
        | Action::ComputerStart { host }
        | Action::ComputerFreeze { host }
        | Action::ComputerThaw { host }
        | Action::RouterRestart { host } => m.push(("host".into(), host.as_str().into())),
        Action::LinkDown { link } | Action::LinkUp { link } => {
            m.push(("link".into(), link.as_str().into()));
        }
        Action::LinkSet { link, bw, delay } => {
            m.push(("link".into(), link.as_str().into()));
            if let Some(bw) = bw {
                m.push(("bw".into(), (*bw).into()));
            }
            if let Some(d) = delay {
                m.push(("delay".into(), (*d).into()));
            }
        }
    }
    Out::Map(m)
}

fn control(c: &Control) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("policy".into(), c.policy.to_string().into()),
        ("estimator".into(), c.estimator.name().into()),
    ];
    match c.estimator {
        EstimatorKind::Ewma { alpha } => m.push(("alpha".into(), alpha.into())),
        EstimatorKind::Periodic { period, stat } => {
            m.push(("period".into(), period.as_secs_f64().into()));
            m.push(("stat".into(), stat.as_str().into()));
        }
        EstimatorKind::PeakEwma { decay } => {
            m.push(("decay".into(), decay.as_secs_f64().into()));
        }
    }
    m.push(("installer".into(), c.installer.as_str().into()));
    if let Installer::TwoTier { objective } = c.installer {
        m.push(("objective".into(), objective.as_str().into()));
    }
    m.push(("routing".into(), c.routing.as_str().into()));
    m.push(("congestion-threshold".into(), c.congestion_threshold.into()));
    Out::Map(m)
}

fn link_params(p: &LinkParams) -> Vec<(String, Out)> {
    let mut m = Vec::new();
    if let Some(bw) = p.bw {
        m.push(("bw".into(), bw.into()));
    }
    if p.delay != 0.0 {
        m.push(("delay".into(), p.delay.into()));
    }
    if p.loss != 0.0 {
        m.push(("loss".into(), p.loss.into()));
    }
    if let Some(q) = p.queue {
        m.push(("queue".into(), q.into()));
    }
    m
}

fn host(h: &Host) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("name".into(), h.name.as_str().into()),
        ("switch".into(), h.switch.as_str().into()),
        ("role".into(), h.role.kind().as_str().into()),
    ];
    if let Role::Computer(c) = &h.role {
        m.push(("computer".into(), computer(c)));
    }
    if let Some(ip) = h.ip {
        m.push(("ip".into(), ip.to_string().into()));
    }
    if let Some(mac) = &h.mac {
        m.push(("mac".into(), mac_to_string(mac).into()));
    }
    let link = link_params(&h.link);
    if !link.is_empty() {
        m.push(("link".into(), Out::Map(link)));
    }
    Out::Map(m)
}

fn computer(c: &Computer) -> Out {
    if c.executor == Executor::Face {
        return Out::Map(vec![("executor".into(), c.executor.as_str().into())]);
    }
    let mut cm: Vec<(String, Out)> = vec![("preset".into(), c.preset.as_str().into())];
    if c.lambdas != 1 {
        cm.push(("lambdas".into(), c.lambdas.into()));
    }
    if let Some(s) = c.speed {
        cm.push(("speed".into(), s.into()));
    }
    if let Some(x) = c.cores {
        cm.push(("cores".into(), x.into()));
    }
    if let Some(x) = c.memory {
        cm.push(("memory".into(), x.into()));
    }
    if c.endpoints != 1 {
        cm.push(("endpoints".into(), c.endpoints.into()));
    }
    Out::Map(cm)
}

fn external(e: &External) -> Out {
    Out::Map(vec![
        ("name".into(), e.name.as_str().into()),
        ("computer".into(), computer(&e.computer)),
        ("port".into(), u32::from(e.port).into()),
    ])
}

fn start_stop(m: &mut Vec<(String, Out)>, start: f64, stop: Option<f64>) {
    if start != 0.0 {
        m.push(("start".into(), start.into()));
    }
    if let Some(stop) = stop {
        m.push(("stop".into(), stop.into()));
    }
}

fn workload(w: &Workload) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("client".into(), w.client.as_str().into()),
        ("router".into(), w.router.as_str().into()),
    ];
    match w.fallback.as_slice() {
        [] => {}
        [one] => m.push(("fallback".into(), one.as_str().into())),
        many => m.push((
            "fallback".into(),
            Out::Seq(many.iter().map(|r| r.as_str().into()).collect()),
        )),
    }
    m.extend([
        ("lambda".into(), w.lambda.as_str().into()),
        ("pattern".into(), w.pattern.as_str().into()),
    ]);
    match &w.pattern {
        Pattern::ClosedLoop { threads } => m.push(("threads".into(), (*threads).into())),
        Pattern::Poisson { rate } => m.push(("rate".into(), (*rate).into())),
        Pattern::OnOff { on, off, rate } => {
            m.push(("rate".into(), (*rate).into()));
            m.push(("on".into(), (*on).into()));
            m.push(("off".into(), (*off).into()));
        }
        Pattern::Trace { file } => m.push(("trace".into(), file.as_str().into())),
        Pattern::Aot(aot) => m.extend(aot_settings(aot)),
    }
    let sized = match &w.pattern {
        Pattern::Aot(aot) => aot.payload == AotPayload::Size,
        _ => true,
    };
    if w.api != Api::Grpc {
        m.push(("api".into(), w.api.as_str().into()));
    }
    if !w.images.is_empty() {
        m.push((
            "images".into(),
            Out::Seq(w.images.iter().map(|i| i.as_str().into()).collect()),
        ));
        if let Some(eyes) = &w.eyes {
            m.push(("eyes".into(), eyes.as_str().into()));
        }
    } else if sized {
        m.push((
            "size".into(),
            match w.size {
                Size::Fixed(s) => s.into(),
                Size::Uniform { min, max } => {
                    Out::Map(vec![("min".into(), min.into()), ("max".into(), max.into())])
                }
            },
        ));
    }
    start_stop(&mut m, w.start, w.stop);
    Out::Map(m)
}

fn time_spec(t: TimeSpec) -> Out {
    match t {
        TimeSpec::At(t) => t.to_string().into(),
        TimeSpec::After(s) => s.into(),
    }
}

fn aot_settings(aot: &AotReplay) -> Vec<(String, Out)> {
    let mut m: Vec<(String, Out)> = vec![("trace".into(), aot.trace.as_str().into())];
    let mut window = Vec::new();
    if let Some(start) = aot.window.start {
        window.push(("start".into(), time_spec(start)));
    }
    if let Some(stop) = aot.window.stop {
        window.push(("stop".into(), time_spec(stop)));
    }
    if !window.is_empty() {
        m.push(("window".into(), Out::Map(window)));
    }
    m.push(("speedup".into(), aot.speedup.into()));
    m.push(("group".into(), aot.group.as_str().into()));
    if !aot.lambdas.is_empty() {
        m.push((
            "lambdas".into(),
            Out::Map(
                aot.lambdas
                    .iter()
                    .map(|r| (r.selector.to_string(), r.lambda.as_str().into()))
                    .collect(),
            ),
        ));
    }
    if !aot.sensors.is_empty() {
        m.push((
            "sensors".into(),
            Out::Seq(aot.sensors.iter().map(|s| s.to_string().into()).collect()),
        ));
    }
    m.push((
        "payload".into(),
        match aot.payload {
            AotPayload::Size => "size".into(),
            AotPayload::Rows => "rows".into(),
            AotPayload::PerRow(bytes) => Out::Map(vec![("per-row".into(), bytes.into())]),
        },
    ));
    m
}

fn background(b: &Background) -> Out {
    let mut m: Vec<(String, Out)> = vec![
        ("source".into(), b.source.as_str().into()),
        ("sink".into(), b.sink.as_str().into()),
    ];
    match &b.traffic {
        Traffic::Trace { file } => m.push(("trace".into(), file.as_str().into())),
        Traffic::Synthetic { rate, on_off } => {
            m.push(("rate".into(), (*rate).into()));
            if let Some((on, off)) = on_off {
                m.push(("on".into(), (*on).into()));
                m.push(("off".into(), (*off).into()));
            }
        }
    }
    start_stop(&mut m, b.start, b.stop);
    Out::Map(m)
}
