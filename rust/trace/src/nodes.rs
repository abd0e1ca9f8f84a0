//! The digest's `nodes.csv` and `sensors.csv`, and the merge rule that turns nodes into sites.
//!
//! Upstream's rule (serverlessonedge's AoT experiment), which the AoT scenario generator
//! applies: nodes are taken in file order; a node within [`MERGE_DEG`] degrees of a node kept
//! before it is dropped, otherwise it is kept. Each kept node is a *site* (one switch of the AoT
//! scenario). A dropped node belongs to the site it was merged into: the nearest of the nodes
//! kept before it that lie within [`MERGE_DEG`] (ties: the first kept).

use std::collections::HashMap;

use crate::error::{Result, TraceError};
use crate::time::Timestamp;

/// The shipped copy of the Array of Things node list (`data/aot/nodes.csv`, see its SOURCE.md).
pub const NODES_CSV: &str = include_str!("../../../data/aot/nodes.csv");
/// The shipped copy of the Array of Things sensor list (`data/aot/sensors.csv`).
pub const SENSORS_CSV: &str = include_str!("../../../data/aot/sensors.csv");

/// Upstream rule: a node within this distance (degrees) of a kept one is dropped (merged).
pub const MERGE_DEG: f64 = 0.010;

/// One row of `nodes.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The node's id, as in `data.csv` (`001e0610ee36`).
    pub node_id: String,
    /// Its short name (`vsn`, e.g. `004`).
    pub vsn: String,
    /// Street address.
    pub address: String,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Free text; `[C]`, `[A]`, `[P]` mark chemsense, alphasense, plantower boards.
    pub description: String,
    /// When it started reporting; None when the column is empty or absent.
    pub start: Option<Timestamp>,
    /// When it stopped; None while it still reports.
    pub end: Option<Timestamp>,
}

impl Node {
    /// Distance in degrees, as upstream measures it (`hypot(dlat, dlon)`).
    pub fn degrees_to(&self, other: &Node) -> f64 {
        (self.lat - other.lat).hypot(self.lon - other.lon)
    }

    /// Whether it reports at `t` (within its start and end dates).
    pub fn active_at(&self, t: Timestamp) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

/// The nodes of a `nodes.csv`, in file order, looked up by id or vsn.
#[derive(Clone, Debug, Default)]
pub struct NodeList {
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
    by_id: HashMap<String, usize>,
}

/// Position of each wanted column in the header (a leading byte-order mark ignored).
fn columns(headers: &csv::StringRecord, wanted: &[&str]) -> Vec<Option<usize>> {
    wanted
        .iter()
        .map(|w| {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}').trim() == *w)
        })
        .collect()
}

fn required(file: &str, index: Option<usize>, name: &str, header: &str) -> Result<usize> {
    index.ok_or_else(|| {
        TraceError::row(
            file,
            1,
            "header",
            format!("no `{name}` column; expected the AoT digest's header `{header}`"),
        )
    })
}

const NODES_HEADER: &str =
    "node_id,project_id,vsn,address,lat,lon,description,start_timestamp,end_timestamp";
const SENSORS_HEADER: &str =
    "ontology,subsystem,sensor,parameter,hrf_unit,hrf_minval,hrf_maxval,datasheet";

impl NodeList {
    /// Reads a `nodes.csv` (`node_id`, `vsn`, `lat`, `lon` required; `address`, `description`,
    /// `start_timestamp`, `end_timestamp` used when present). `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<NodeList> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| TraceError::row(file, 1, "header", e.to_string()))?
            .clone();
        let cols = columns(
            &headers,
            &[
                "node_id",
                "vsn",
                "lat",
                "lon",
                "address",
                "description",
                "start_timestamp",
                "end_timestamp",
            ],
        );
        let id = required(file, cols[0], "node_id", NODES_HEADER)?;
        let vsn = required(file, cols[1], "vsn", NODES_HEADER)?;
        let lat = required(file, cols[2], "lat", NODES_HEADER)?;
        let lon = required(file, cols[3], "lon", NODES_HEADER)?;
        let mut list = NodeList::default();
        for row in reader.records() {
            let row = row.map_err(|e| unreadable_row(file, &e))?;
            let line = row.position().map_or(0, |p| p.line());
            let text_of = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").trim();
            let coordinate = |c: usize, name: &str| -> Result<f64> {
                let v = text_of(Some(c));
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        TraceError::row(
                            file,
                            line,
                            name,
                            format!("`{v}` is not a coordinate in degrees (e.g. 41.878377)"),
                        )
                    })
            };
            let date = |c: Option<usize>, name: &str| -> Result<Option<Timestamp>> {
                match text_of(c) {
                    "" => Ok(None),
                    v => Timestamp::parse(v)
                        .map(Some)
                        .map_err(|e| TraceError::row(file, line, name, e.to_string())),
                }
            };
            let node_id = text_of(Some(id)).to_owned();
            if node_id.is_empty() {
                return Err(TraceError::row(
                    file,
                    line,
                    "node_id",
                    "empty; every node needs its id",
                ));
            }
            let node = Node {
                vsn: text_of(Some(vsn)).to_owned(),
                address: text_of(cols[4]).to_owned(),
                lat: coordinate(lat, "lat")?,
                lon: coordinate(lon, "lon")?,
                description: text_of(cols[5]).to_owned(),
                start: date(cols[6], "start_timestamp")?,
                end: date(cols[7], "end_timestamp")?,
                node_id,
            };
            if list.by_id.contains_key(&node.node_id) {
                return Err(TraceError::row(
                    file,
                    line,
                    "node_id",
                    format!("`{}` is listed twice", node.node_id),
                ));
            }
            list.by_id.insert(node.node_id.clone(), list.nodes.len());
            list.nodes.push(node);
        }
        Ok(list)
    }

    /// The shipped node list ([`NODES_CSV`]).
    pub fn shipped() -> NodeList {
        NodeList::parse(NODES_CSV, "data/aot/nodes.csv").expect("the shipped nodes.csv is valid")
    }

    /// Index of the node with this id.
    pub fn index(&self, node_id: &str) -> Option<usize> {
        self.by_id.get(node_id).copied()
    }

    /// Index of the node with this id or vsn.
    pub fn find(&self, id_or_vsn: &str) -> Option<usize> {
        self.index(id_or_vsn)
            .or_else(|| self.nodes.iter().position(|n| n.vsn == id_or_vsn))
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A kept node and the nodes merged into it (see the module's documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Site {
    /// Index of the kept node in the [`NodeList`].
    pub node: usize,
    /// Indices of every node of the site, the kept one first, then the merged ones in file order.
    pub members: Vec<usize>,
}

/// The sites of a node list by the merge rule, in the order their nodes were kept.
pub fn sites(list: &NodeList) -> Vec<Site> {
    let mut sites: Vec<Site> = Vec::new();
    for (i, node) in list.nodes.iter().enumerate() {
        let nearest = sites
            .iter()
            .enumerate()
            .map(|(s, site)| (s, node.degrees_to(&list.nodes[site.node])))
            .filter(|&(_, d)| d < MERGE_DEG)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match nearest {
            Some((s, _)) => sites[s].members.push(i),
            None => sites.push(Site {
                node: i,
                members: vec![i],
            }),
        }
    }
    sites
}

/// One parameter of `sensors.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sensor {
    /// Board, e.g. `metsense`.
    pub subsystem: String,
    /// Sensor on the board, e.g. `tsys01`.
    pub sensor: String,
    /// What it measures, e.g. `temperature`.
    pub parameter: String,
    /// Unit of the converted value (`value_hrf`).
    pub unit: String,
    /// Smallest converted value the sensor gives, when known.
    pub min: Option<f64>,
    /// Largest converted value the sensor gives, when known.
    pub max: Option<f64>,
}

/// Reads a `sensors.csv` (`subsystem`, `sensor`, `parameter` required; `hrf_unit`,
/// `hrf_minval`, `hrf_maxval` used when present). `file` names it in errors.
pub fn parse_sensors(text: &str, file: &str) -> Result<Vec<Sensor>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| TraceError::row(file, 1, "header", e.to_string()))?
        .clone();
    let cols = columns(
        &headers,
        &[
            "subsystem",
            "sensor",
            "parameter",
            "hrf_unit",
            "hrf_minval",
            "hrf_maxval",
        ],
    );
    let sub = required(file, cols[0], "subsystem", SENSORS_HEADER)?;
    let sen = required(file, cols[1], "sensor", SENSORS_HEADER)?;
    let par = required(file, cols[2], "parameter", SENSORS_HEADER)?;
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| unreadable_row(file, &e))?;
        let line = row.position().map_or(0, |p| p.line());
        let text_of = |c: Option<usize>| c.and_then(|c| row.get(c)).unwrap_or("").trim();
        let bound = |c: Option<usize>, name: &str| -> Result<Option<f64>> {
            match text_of(c) {
                "" => Ok(None),
                v => v.parse().map(Some).map_err(|_| {
                    TraceError::row(file, line, name, format!("`{v}` is not a number"))
                }),
            }
        };
        let sensor = Sensor {
            subsystem: text_of(Some(sub)).to_owned(),
            sensor: text_of(Some(sen)).to_owned(),
            parameter: text_of(Some(par)).to_owned(),
            unit: text_of(cols[3]).to_owned(),
            min: bound(cols[4], "hrf_minval")?,
            max: bound(cols[5], "hrf_maxval")?,
        };
        if sensor.subsystem.is_empty() || sensor.sensor.is_empty() || sensor.parameter.is_empty() {
            return Err(TraceError::row(
                file,
                line,
                "row",
                "subsystem, sensor and parameter must not be empty",
            ));
        }
        out.push(sensor);
    }
    Ok(out)
}

/// A row the CSV reader cannot take (bad quoting, invalid UTF-8, a wrong field count), with its
/// line and what to do.
fn unreadable_row(file: &str, e: &csv::Error) -> TraceError {
    let line = e.position().map_or(0, |p| p.line());
    TraceError::row(
        file,
        line,
        "row",
        format!("{e}; fix or remove the row (the file should be the published CSV, unchanged)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_lists_parse() {
        let nodes = NodeList::shipped();
        assert_eq!(nodes.len(), 126);
        let n = &nodes.nodes[nodes.find("004").unwrap()];
        assert_eq!(n.node_id, "001e0610ba46");
        assert_eq!(n.start.unwrap().to_string(), "2017/10/09 00:00:00");
        let sensors = parse_sensors(SENSORS_CSV, "sensors.csv").unwrap();
        assert_eq!(sensors.len(), 193);
    }

    #[test]
    fn merged_nodes_belong_to_the_nearest_earlier_site_within_the_rule() {
        let text = "node_id,vsn,lat,lon\n\
                    a,1,0.0,0.0\n\
                    b,2,0.0,0.009\n\
                    c,3,0.0,0.0185\n\
                    d,4,0.0,0.0105\n";
        let list = NodeList::parse(text, "n.csv").unwrap();
        let s = sites(&list);
        // b is within 0.010 of a: merged. c is 0.0185 from a: kept. d is 0.0105 from a and
        // 0.008 from c: merged into c, the nearest kept node within the rule.
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].members, vec![0, 1]);
        assert_eq!(s[1].members, vec![2, 3]);
    }

    #[test]
    fn bad_rows_name_file_line_and_field() {
        let e = NodeList::parse("node_id,vsn,lat,lon\na,1,north,0\n", "n.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "n.csv:2: lat: `north` is not a coordinate in degrees (e.g. 41.878377)"
        );
        let e = NodeList::parse("id,vsn,lat,lon\n", "n.csv").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("n.csv:1: header: no `node_id` column")
        );
    }
}
