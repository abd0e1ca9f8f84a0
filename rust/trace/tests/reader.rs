//! The reader on the edge cases of a digest: header, timestamps, order, compression, unknown
//! nodes, missing values, filters.

use std::io::Write;
use std::sync::Arc;

use flate2::Compression;
use flate2::write::GzEncoder;
use lambdaroute_trace::{
    Filter, NodeList, OwnedSample, Reader, SensorFilter, TimeSpec, Timestamp, Window,
};

const HEADER: &str = "timestamp,node_id,subsystem,sensor,parameter,value_raw,value_hrf\n";

fn rows(lines: &[&str]) -> String {
    let mut text = HEADER.to_string();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text
}

fn read_all(text: &str) -> Result<Vec<OwnedSample>, String> {
    let reader = Reader::new(text.as_bytes(), "data.csv").map_err(|e| e.to_string())?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

const ROW1: &str = "2018/01/01 00:00:06,001e0610ee36,chemsense,at0,temperature,2231,22.31";
const ROW2: &str = "2018/01/01 00:00:06,001e0610ee36,chemsense,co,concentration,412,NA";
const ROW3: &str = "2018/01/01 00:00:31,001e0610ba46,plantower,pms7003,pm1_atm,NA,7.5";

#[test]
fn reads_rows_with_raw_only_converted_only_or_both() {
    let samples = read_all(&rows(&[ROW1, ROW2, ROW3])).unwrap();
    assert_eq!(samples.len(), 3);
    let s = &samples[0];
    assert_eq!(s.time.to_string(), "2018/01/01 00:00:06");
    assert_eq!(s.node_id, "001e0610ee36");
    assert_eq!(
        (s.subsystem.as_str(), s.sensor.as_str()),
        ("chemsense", "at0")
    );
    assert_eq!(s.parameter, "temperature");
    assert_eq!(s.value_raw.as_deref(), Some("2231"));
    assert_eq!(s.value_hrf.as_deref(), Some("22.31"));
    assert_eq!(s.line, 2);
    assert_eq!(samples[1].value_hrf, None);
    assert_eq!(samples[2].value_raw, None);
    assert_eq!(samples[2].value_hrf.as_deref(), Some("7.5"));
}

#[test]
fn a_wrong_header_says_what_is_expected() {
    let e =
        read_all("timestamp,node,subsystem,sensor,parameter,value_raw,value_hrf\n").unwrap_err();
    assert!(
        e.starts_with("data.csv:1: header: found `timestamp,node,subsystem"),
        "{e}"
    );
    assert!(
        e.contains("expected `timestamp,node_id,subsystem,sensor,parameter,value_raw,value_hrf`"),
        "{e}"
    );
    let e = read_all("").unwrap_err();
    assert!(
        e.starts_with("data.csv:1: header: the file is empty"),
        "{e}"
    );
    // nodes.csv given as data.csv
    let e = read_all(lambdaroute_trace::nodes::NODES_CSV).unwrap_err();
    assert!(e.contains("found `node_id,project_id"), "{e}");
}

#[test]
fn a_bad_timestamp_names_file_line_and_the_format() {
    let e = read_all(&rows(&[ROW1, "2018-01-01 00:00:07,a,b,c,d,1,1"])).unwrap_err();
    assert!(
        e.starts_with("data.csv:3: timestamp: `2018-01-01 00:00:07` is not a timestamp"),
        "{e}"
    );
    assert!(e.contains("YYYY/MM/DD HH:MM:SS"), "{e}");
    let e = read_all(&rows(&["2018/02/30 00:00:00,a,b,c,d,1,1"])).unwrap_err();
    assert!(e.contains("no such date"), "{e}");
}

#[test]
fn time_going_backwards_is_an_error_naming_both_lines() {
    let e = read_all(&rows(&[ROW3, ROW1])).unwrap_err();
    assert!(
        e.starts_with(
            "data.csv:3: timestamp: 2018/01/01 00:00:06 is before 2018/01/01 00:00:31 of line 2: time goes backwards"
        ),
        "{e}"
    );
}

#[test]
fn a_row_with_too_few_fields_is_an_error() {
    let e = read_all(&rows(&[ROW1, "2018/01/01 00:00:07,a,b,c"])).unwrap_err();
    assert!(
        e.starts_with("data.csv:3: row: 4 fields; expected 7"),
        "{e}"
    );
}

#[test]
fn gzip_is_read_as_it_comes_and_a_truncated_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text = rows(&[ROW1, ROW2, ROW3]);
    let path = dir.path().join("data.csv.gz");
    std::fs::write(&path, gzip(&text)).unwrap();
    let samples: Vec<_> = Reader::open(&path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(samples.len(), 3);

    // Two gzip members one after the other (`cat a.gz b.gz`) are one stream.
    let mut two = gzip(&rows(&[ROW1]));
    two.extend(gzip(&format!("{ROW3}\n")));
    std::fs::write(&path, &two).unwrap();
    let n = Reader::open(&path).unwrap().count();
    assert_eq!(n, 2);

    // A big file cut in the middle.
    let mut big = HEADER.to_string();
    for i in 0..20_000 {
        big.push_str(&format!(
            "2018/01/01 00:{:02}:{:02},001e0610ee36,metsense,tsys01,temperature,{i},{i}\n",
            i / 3600 % 60,
            i / 60 % 60
        ));
    }
    let full = gzip(&big);
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let mut reader = Reader::open(&path).unwrap();
    let e = loop {
        match reader.next_sample() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a truncated file read to the end"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(e.starts_with(&format!("{}:", path.display())), "{e}");
    assert!(e.contains("truncated"), "{e}");
    assert!(e.contains("rows up to line"), "{e}");

    // Named .gz but plain text.
    std::fs::write(&path, text).unwrap();
    let e = Reader::open(&path).err().unwrap().to_string();
    assert!(e.contains("named .gz but its content is not gzip"), "{e}");
}

#[test]
fn unknown_node_ids_are_counted_and_skipped_not_fatal() {
    let text = rows(&[
        ROW1,
        "2018/01/01 00:00:07,ffffffffffff,metsense,tsys01,temperature,1,1",
        "2018/01/01 00:00:08,ffffffffffff,metsense,tsys01,temperature,1,1",
        ROW3,
    ]);
    let mut reader = Reader::new(text.as_bytes(), "data.csv")
        .unwrap()
        .with_nodes(Arc::new(NodeList::shipped()))
        .unwrap();
    let mut ids = Vec::new();
    while let Some(s) = reader.next_sample().unwrap() {
        assert!(s.node.is_some());
        ids.push(s.node_id.to_string());
    }
    assert_eq!(ids, ["001e0610ee36", "001e0610ba46"]);
    let stats = reader.stats();
    assert_eq!((stats.rows, stats.samples, stats.unknown_rows), (4, 2, 2));
    assert_eq!(stats.unknown_nodes.get("ffffffffffff"), Some(&2));
}

#[test]
fn filters_keep_a_window_some_nodes_and_some_sensors() {
    let text = rows(&[
        "2018/01/01 00:00:00,001e0610ee36,metsense,tsys01,temperature,1,1",
        "2018/01/01 00:00:10,001e0610ee36,metsense,htu21d,humidity,1,1",
        "2018/01/01 00:00:10,001e0610ba46,lightsense,tsl250rd,intensity,1,1",
        "2018/01/01 00:00:20,001e0610ba46,metsense,tsys01,temperature,1,1",
        "2018/01/01 00:00:30,001e0610ee36,chemsense,co,concentration,1,NA",
        "2018/01/01 00:00:40,001e0610ee36,metsense,tsys01,temperature,1,1",
    ]);
    let read = |filter: Filter| -> (Vec<u64>, bool) {
        let mut reader = Reader::new(text.as_bytes(), "data.csv")
            .unwrap()
            .with_nodes(Arc::new(NodeList::shipped()))
            .unwrap()
            .with_filter(filter)
            .unwrap();
        let mut lines = Vec::new();
        while let Some(s) = reader.next_sample().unwrap() {
            lines.push(s.line);
        }
        (lines, reader.stats().stopped_at_window_end)
    };
    // Window: seconds after the first row, or timestamps; the stop is exclusive and ends the reading.
    let window = Window {
        start: Some(TimeSpec::After(10.0)),
        stop: Some(TimeSpec::At(
            Timestamp::parse("2018/01/01 00:00:30").unwrap(),
        )),
    };
    assert_eq!(
        read(Filter {
            window,
            ..Filter::default()
        }),
        (vec![3, 4, 5], true)
    );
    // Nodes by id or vsn (004 is 001e0610ba46).
    let nodes = Some(vec!["004".to_string()]);
    assert_eq!(
        read(Filter {
            nodes,
            ..Filter::default()
        })
        .0,
        vec![4, 5]
    );
    // Subsystems, sensors, parameters.
    let sensors: Vec<SensorFilter> = ["chemsense", "metsense.tsys01"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        read(Filter {
            sensors,
            ..Filter::default()
        })
        .0,
        vec![2, 5, 6, 7]
    );
    // A span stops the reading that many seconds after the start.
    assert_eq!(
        read(Filter {
            span: Some(25.0),
            ..Filter::default()
        }),
        (vec![2, 3, 4, 5], true)
    );
    // A node the list does not know cannot be a filter.
    let e = Reader::new(text.as_bytes(), "data.csv")
        .unwrap()
        .with_nodes(Arc::new(NodeList::shipped()))
        .unwrap()
        .with_filter(Filter {
            nodes: Some(vec!["nope".into()]),
            ..Filter::default()
        })
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("`nope` is neither a node_id nor a vsn"),
        "{e}"
    );
    assert!("a..b".parse::<SensorFilter>().is_err());
}
