//! Samples to calls: grouping, lambdas, payloads, speed-up, limits, and the schedule files.

use std::sync::Arc;

use lambdaroute_trace::schedule::{ScheduleReader, ScheduleWriter};
use lambdaroute_trace::{
    Call, Group, LambdaRule, NodeList, NodeSet, Payload, Reader, ReplayConfig, Target, Window,
};

const TRACE: &str = "timestamp,node_id,subsystem,sensor,parameter,value_raw,value_hrf
2018/01/01 00:00:00,001e0610ee36,metsense,tsys01,temperature,2231,22.31
2018/01/01 00:00:00,001e0610ee36,metsense,htu21d,humidity,4500,45.00
2018/01/01 00:00:00,001e0610ee36,chemsense,co,concentration,412,NA
2018/01/01 00:00:00,001e0610ba46,metsense,tsys01,temperature,2100,21.00
2018/01/01 00:00:25,001e0610ee36,metsense,tsys01,temperature,2232,22.32
2018/01/01 00:00:25,001e0610ba46,metsense,tsys01,temperature,2101,21.01
2018/01/01 00:00:50,001e0610ee36,chemsense,co,concentration,415,NA
2018/01/01 00:01:00,ffffffffffff,metsense,tsys01,temperature,1,1
";

fn run(targets: &[Target]) -> (Vec<Vec<Call>>, lambdaroute_trace::ReplayStats) {
    let reader = Reader::new(TRACE.as_bytes(), "data.csv")
        .unwrap()
        .with_nodes(Arc::new(NodeList::shipped()))
        .unwrap();
    let mut out = vec![Vec::new(); targets.len()];
    let stats = lambdaroute_trace::replay::replay(reader, Window::default(), targets, |i, c| {
        out[i].push(c.clone());
        Ok(())
    })
    .unwrap();
    (out, stats)
}

fn target(nodes: &[&str], config: ReplayConfig) -> Target {
    Target {
        nodes: NodeSet::Only(nodes.iter().map(|s| s.to_string()).collect()),
        config,
    }
}

#[test]
fn one_call_per_node_and_timestamp_at_trace_time_over_the_speedup() {
    let config = ReplayConfig {
        speedup: 25.0,
        ..ReplayConfig::new("clambda0")
    };
    let (calls, stats) = run(&[
        target(&["001e0610ee36"], config.clone()),
        target(&["001e0610ba46"], config),
    ]);
    let summary: Vec<(f64, u32)> = calls[0].iter().map(|c| (c.time, c.readings)).collect();
    assert_eq!(summary, [(0.0, 3), (1.0, 1), (2.0, 1)]);
    let summary: Vec<(f64, &str)> = calls[1]
        .iter()
        .map(|c| (c.time, c.node_id.as_str()))
        .collect();
    assert_eq!(summary, [(0.0, "001e0610ba46"), (1.0, "001e0610ba46")]);
    assert!(calls[0].iter().all(|c| c.size == 1000 && c.rows.is_none()));
    assert_eq!(stats.read.unknown_rows, 1);
    assert_eq!(stats.targets[0].calls, 3);
    assert_eq!(stats.targets[0].readings, 5);
    assert_eq!(
        stats.origin.unwrap().to_string(),
        "2018/01/01 00:00:00",
        "the first row is time zero for every target"
    );
}

#[test]
fn readings_subsystems_and_lambda_rules_split_calls() {
    let both = ["001e0610ee36", "001e0610ba46"];
    let per = |group: Group| {
        let (calls, _) = run(&[target(
            &both,
            ReplayConfig {
                group,
                ..ReplayConfig::new("clambda0")
            },
        )]);
        calls[0].len()
    };
    assert_eq!(per(Group::Reading), 7);
    assert_eq!(per(Group::Node), 5);
    assert_eq!(per(Group::Subsystem), 6);

    let rule = |selector: &str, lambda: &str| LambdaRule {
        selector: selector.parse().unwrap(),
        lambda: lambda.into(),
    };
    let config = ReplayConfig {
        lambdas: vec![
            rule("metsense", "glambda0"),
            rule("metsense.tsys01", "temp"),
        ],
        ..ReplayConfig::new("clambda0")
    };
    let (calls, _) = run(&[target(&["001e0610ee36"], config)]);
    let first: Vec<(&str, u32)> = calls[0]
        .iter()
        .filter(|c| c.time == 0.0)
        .map(|c| (c.lambda.as_str(), c.readings))
        .collect();
    // At 00:00:00: tsys01 -> temp (the most specific rule), htu21d -> glambda0, co -> default.
    assert_eq!(first, [("temp", 1), ("glambda0", 1), ("clambda0", 1)]);
}

#[test]
fn payloads_are_the_rows_a_drawn_size_or_bytes_per_reading() {
    let node = ["001e0610ee36"];
    let with = |payload: Payload| {
        let (calls, _) = run(&[target(
            &node,
            ReplayConfig {
                payload,
                ..ReplayConfig::new("clambda0")
            },
        )]);
        calls.into_iter().next().unwrap()
    };
    let rows = with(Payload::Rows);
    let text = rows[0].rows.as_deref().unwrap();
    assert_eq!(
        text,
        "2018/01/01 00:00:00,001e0610ee36,metsense,tsys01,temperature,2231,22.31\n\
         2018/01/01 00:00:00,001e0610ee36,metsense,htu21d,humidity,4500,45.00\n\
         2018/01/01 00:00:00,001e0610ee36,chemsense,co,concentration,412,NA\n"
    );
    assert_eq!(rows[0].size, text.len() as u64);
    let per_row = with(Payload::PerRow(100));
    assert_eq!(
        per_row.iter().map(|c| c.size).collect::<Vec<_>>(),
        [300, 100, 100]
    );
    let drawn = with(Payload::Size { min: 10, max: 20 });
    assert!(drawn.iter().all(|c| (10..=20).contains(&c.size)));
    assert_eq!(
        drawn,
        with(Payload::Size { min: 10, max: 20 }),
        "same seed, same sizes"
    );
}

#[test]
fn a_limit_ends_a_target_and_the_reading() {
    let config = ReplayConfig {
        speedup: 25.0,
        limit: Some(1.5),
        ..ReplayConfig::new("clambda0")
    };
    let (calls, stats) = run(&[target(&["001e0610ee36"], config)]);
    assert_eq!(
        calls[0].iter().map(|c| c.time).collect::<Vec<_>>(),
        [0.0, 1.0]
    );
    assert!(stats.read.stopped_at_window_end);
    assert!(stats.read.rows < 8, "read {} rows", stats.read.rows);
}

#[test]
fn schedules_round_trip_and_bad_ones_name_the_line() {
    let config = ReplayConfig {
        payload: Payload::Rows,
        speedup: 10.0,
        ..ReplayConfig::new("clambda0")
    };
    let (calls, _) = run(&[target(&["001e0610ee36"], config)]);
    let mut writer = ScheduleWriter::new(Vec::new(), "s.csv").unwrap();
    for c in &calls[0] {
        writer.write(c).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let back: Vec<_> = ScheduleReader::new(bytes.as_slice(), "s.csv")
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[1].time, 2.5);
    assert_eq!(back[0].rows, calls[0][0].rows);
    assert_eq!(back[0].node, "001e0610ee36");

    let bad = "time,trace_time,node,lambda,size,readings,rows\n1,x,n,f,10,1,\n0.5,x,n,f,10,1,\n";
    let e = ScheduleReader::new(bad.as_bytes(), "s.csv")
        .unwrap()
        .find_map(Result::err)
        .unwrap();
    assert!(
        e.to_string()
            .starts_with("s.csv:3: time: 0.5 comes before the previous call's 1"),
        "{e}"
    );
    let e = ScheduleReader::new("time,node\n".as_bytes(), "s.csv")
        .err()
        .unwrap();
    assert!(e.to_string().starts_with("s.csv:1: header:"), "{e}");
}
