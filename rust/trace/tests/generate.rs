//! The generator: deterministic by seed, read back by the reader like a digest, nodes within
//! their dates, about every 25 s, values that follow the day, NAs, dropouts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lambdaroute_trace::generate::{GenerateOptions, generate};
use lambdaroute_trace::nodes::{SENSORS_CSV, parse_sensors};
use lambdaroute_trace::{NodeList, OwnedSample, Reader, Timestamp};

fn make(options: &GenerateOptions) -> Vec<u8> {
    let sensors = parse_sensors(SENSORS_CSV, "sensors.csv").unwrap();
    let mut out = Vec::new();
    generate(&NodeList::shipped(), &sensors, options, &mut out).unwrap();
    out
}

fn read(bytes: &[u8]) -> (Vec<OwnedSample>, lambdaroute_trace::ReadStats) {
    let mut reader = Reader::new(bytes, "generated.csv")
        .unwrap()
        .with_nodes(Arc::new(NodeList::shipped()))
        .unwrap();
    let mut samples = Vec::new();
    while let Some(s) = reader.next_sample().unwrap() {
        samples.push(s.to_owned());
    }
    (samples, reader.stats().clone())
}

fn hour(options: &GenerateOptions) -> GenerateOptions {
    GenerateOptions {
        duration: 3600,
        ..options.clone()
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_others() {
    let a = make(&hour(&GenerateOptions::default()));
    let b = make(&hour(&GenerateOptions::default()));
    assert!(a == b, "same seed, different traces");
    let c = make(&hour(&GenerateOptions {
        seed: 2,
        ..GenerateOptions::default()
    }));
    assert!(a != c, "another seed, the same trace");
}

#[test]
fn the_reader_takes_it_as_a_digest_and_nodes_report_about_every_25_s() {
    let options = hour(&GenerateOptions::default());
    let (samples, stats) = read(&make(&options));
    assert_eq!(stats.unknown_rows, 0);
    assert!(samples.len() > 100_000, "{} rows", samples.len());
    // Only nodes installed by then, none that had stopped.
    let nodes = NodeList::shipped();
    let active: BTreeSet<&str> = nodes
        .nodes
        .iter()
        .filter(|n| n.active_at(options.start))
        .map(|n| n.node_id.as_str())
        .collect();
    let seen: BTreeSet<&str> = samples.iter().map(|s| s.node_id.as_str()).collect();
    assert!(seen.is_subset(&active));
    assert!(
        seen.len() + 2 >= active.len(),
        "{} of {}",
        seen.len(),
        active.len()
    );
    // Samples of a node (its metsense temperature) come 23-27 s apart, but for dropouts.
    let mut times: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.sensor == "tsys01" && s.parameter == "temperature")
    {
        times.entry(&s.node_id).or_default().push(s.time.unix());
    }
    let gaps: Vec<i64> = times
        .values()
        .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]))
        .collect();
    let regular = gaps.iter().filter(|g| (22..=28).contains(*g)).count();
    assert!(
        regular as f64 > 0.97 * gaps.len() as f64,
        "{regular} of {}",
        gaps.len()
    );
    assert!(gaps.iter().all(|g| *g >= 22), "a gap under 22 s");
    // Some values missing, some sensors raw only (gases) or converted only (particles).
    let na = samples
        .iter()
        .filter(|s| s.subsystem == "metsense" && s.value_raw.is_none())
        .count();
    assert!(na > 0, "no NA among metsense raw values");
    assert!(
        samples
            .iter()
            .filter(|s| s.parameter == "concentration")
            .all(|s| s.value_hrf.is_none())
    );
    assert!(
        samples
            .iter()
            .filter(|s| s.subsystem == "plantower")
            .all(|s| s.value_raw.is_none())
    );
}

fn mean_of(samples: &[OwnedSample], sensor: &str, parameter: &str) -> f64 {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.sensor == sensor && s.parameter == parameter)
        .filter_map(|s| s.value_hrf.as_ref()?.parse().ok())
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn light_and_temperature_follow_the_day() {
    let at = |time: &str| {
        let options = GenerateOptions {
            start: Timestamp::parse(time).unwrap(),
            duration: 600,
            sensors: vec![
                "lightsense.tsl250rd".parse().unwrap(),
                "metsense.tsys01".parse().unwrap(),
            ],
            ..GenerateOptions::default()
        };
        read(&make(&options)).0
    };
    // Chicago is about UTC-6 in solar time: 18:00 UTC is around noon, 09:00 UTC the small hours.
    let noon = at("2018/07/02 18:00:00");
    let night = at("2018/07/02 09:00:00");
    assert!(mean_of(&noon, "tsl250rd", "intensity") > 10.0);
    assert!(mean_of(&night, "tsl250rd", "intensity") < 1.0);
    assert!(
        mean_of(&noon, "tsys01", "temperature") > mean_of(&night, "tsys01", "temperature") + 5.0
    );
    let winter = at("2018/01/08 18:00:00");
    assert!(
        mean_of(&noon, "tsys01", "temperature") > mean_of(&winter, "tsys01", "temperature") + 15.0
    );
}

#[test]
fn nodes_drop_out_and_restart() {
    let options = GenerateOptions {
        duration: 6 * 3600,
        dropouts_per_day: 8.0,
        sensors: vec!["metsense.tsys01".parse().unwrap()],
        ..GenerateOptions::default()
    };
    let (samples, _) = read(&make(&options));
    let mut times: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for s in &samples {
        times.entry(&s.node_id).or_default().push(s.time.unix());
    }
    let long = times
        .values()
        .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]))
        .filter(|g| *g >= 120)
        .count();
    // ~110 nodes x 6 h x 8/day = ~220 dropouts.
    assert!(long > 100, "{long} dropouts");
}

/// `traces/aot/chicago-30min.csv.gz` is what its documented command makes today
/// (`lambdaroute trace aot generate --hours 0.5 --start "2018/09/04 13:30:00" --seed 1
/// --sensors metsense.tsys01,metsense.htu21d,lightsense.tsl250rd,chemsense.co,image`).
#[test]
fn the_shipped_sample_is_what_its_command_makes() {
    let options = GenerateOptions {
        start: Timestamp::parse("2018/09/04 13:30:00").unwrap(),
        duration: 1800,
        seed: 1,
        sensors: [
            "metsense.tsys01",
            "metsense.htu21d",
            "lightsense.tsl250rd",
            "chemsense.co",
            "image",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect(),
        ..GenerateOptions::default()
    };
    // As the command writes it: the generator straight into the gzip encoder.
    let sensors = parse_sensors(SENSORS_CSV, "sensors.csv").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    generate(&NodeList::shipped(), &sensors, &options, &mut gz).unwrap();
    let made = gz.finish().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../traces/aot/chicago-30min.csv.gz");
    let shipped = std::fs::read(&path).unwrap();
    assert!(
        made == shipped,
        "{} is stale: regenerate it with the command in traces/README.md",
        path.display()
    );
}
