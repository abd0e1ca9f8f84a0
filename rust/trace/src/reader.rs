//! The streaming reader of a digest's `data.csv` (or `data.csv.gz`).
//!
//! It never holds the file: rows are parsed one at a time into one reused record, gzip is
//! decompressed as it is read (several concatenated gzip members too), and the caller gets each
//! sample as a view into that record. It checks the header, every timestamp and that time never
//! goes backwards; rows of node ids that the node list does not know are counted and skipped;
//! filters keep a time window, some nodes, some subsystems or sensors. The window's end stops
//! the reading: rows are in ascending time, so nothing after it can be in it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Result, TraceError};
use crate::nodes::NodeList;
use crate::time::{Timestamp, Window};

/// The columns of a digest's `data.csv`, in order.
pub const DATA_HEADER: [&str; 7] = [
    "timestamp",
    "node_id",
    "subsystem",
    "sensor",
    "parameter",
    "value_raw",
    "value_hrf",
];

/// How a missing value is written.
pub const MISSING: &str = "NA";

/// Keeps the rows of a subsystem, of one of its sensors, or of one parameter of a sensor:
/// `chemsense`, `metsense.tsys01`, `metsense.tsys01.temperature`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SensorFilter {
    /// The subsystem (board), e.g. `metsense`.
    pub subsystem: String,
    /// One sensor of it; None: all.
    pub sensor: Option<String>,
    /// One parameter of the sensor; None: all.
    pub parameter: Option<String>,
}

impl SensorFilter {
    /// Whether a row of this subsystem, sensor and parameter is kept.
    pub fn matches(&self, subsystem: &str, sensor: &str, parameter: &str) -> bool {
        self.subsystem == subsystem
            && self.sensor.as_deref().is_none_or(|s| s == sensor)
            && self.parameter.as_deref().is_none_or(|p| p == parameter)
    }

    /// How specific it is: 1 (subsystem), 2 (sensor) or 3 (parameter).
    pub fn depth(&self) -> usize {
        1 + usize::from(self.sensor.is_some()) + usize::from(self.parameter.is_some())
    }
}

impl FromStr for SensorFilter {
    type Err = TraceError;

    fn from_str(text: &str) -> Result<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        let bad = || {
            TraceError::Setting(format!(
                "`{text}` is not a sensor selector: expected `subsystem`, `subsystem.sensor` or \
                 `subsystem.sensor.parameter` (e.g. `chemsense`, `metsense.tsys01`, \
                 `metsense.tsys01.temperature`)"
            ))
        };
        if parts.len() > 3 || parts.iter().any(|p| p.trim().is_empty()) {
            return Err(bad());
        }
        Ok(SensorFilter {
            subsystem: parts[0].trim().to_owned(),
            sensor: parts.get(1).map(|s| s.trim().to_owned()),
            parameter: parts.get(2).map(|s| s.trim().to_owned()),
        })
    }
}

impl fmt::Display for SensorFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subsystem)?;
        if let Some(s) = &self.sensor {
            write!(f, ".{s}")?;
        }
        if let Some(p) = &self.parameter {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

/// Which rows the reader hands out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// The span of trace time kept (and where the reading stops).
    pub window: Window,
    /// Node ids or vsns kept; None: every node.
    pub nodes: Option<Vec<String>>,
    /// Subsystems, sensors or parameters kept; empty: all.
    pub sensors: Vec<SensorFilter>,
    /// Stop reading this many seconds of trace time after the window's start (at the
    /// window's stop if that comes first); None: no such limit.
    pub span: Option<f64>,
}

/// One row of `data.csv`, a view into the reader's current record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<'a> {
    /// When it was measured.
    pub time: Timestamp,
    /// Index of the node in the reader's node list (None without a list).
    pub node: Option<usize>,
    /// The node's id.
    pub node_id: &'a str,
    /// Board, e.g. `metsense`.
    pub subsystem: &'a str,
    /// Sensor, e.g. `tsys01`.
    pub sensor: &'a str,
    /// Parameter, e.g. `temperature`.
    pub parameter: &'a str,
    /// The raw value as the sensor gave it; None when `NA` (or empty).
    pub value_raw: Option<&'a str>,
    /// The converted value in the sensor's unit; None when `NA` (or empty).
    pub value_hrf: Option<&'a str>,
    /// Line of the row in the (decompressed) file, from 1 (the header).
    pub line: u64,
}

impl Sample<'_> {
    /// A copy that owns its text.
    pub fn to_owned(&self) -> OwnedSample {
        OwnedSample {
            time: self.time,
            node_id: self.node_id.to_owned(),
            subsystem: self.subsystem.to_owned(),
            sensor: self.sensor.to_owned(),
            parameter: self.parameter.to_owned(),
            value_raw: self.value_raw.map(str::to_owned),
            value_hrf: self.value_hrf.map(str::to_owned),
            line: self.line,
        }
    }

    /// Appends the row as `data.csv` writes it (no newline), `NA` for missing values.
    pub fn write_csv(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = write!(out, "{}", self.time);
        for field in [
            self.node_id,
            self.subsystem,
            self.sensor,
            self.parameter,
            self.value_raw.unwrap_or(MISSING),
            self.value_hrf.unwrap_or(MISSING),
        ] {
            out.push(',');
            push_csv_field(out, field);
        }
    }
}

/// Appends a CSV field, quoted when it holds a comma, a quote or a line break.
pub(crate) fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// A [`Sample`] that owns its text.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedSample {
    /// When it was measured.
    pub time: Timestamp,
    /// The node's id.
    pub node_id: String,
    /// Board, e.g. `metsense`.
    pub subsystem: String,
    /// Sensor, e.g. `tsys01`.
    pub sensor: String,
    /// Parameter, e.g. `temperature`.
    pub parameter: String,
    /// The raw value; None when `NA`.
    pub value_raw: Option<String>,
    /// The converted value; None when `NA`.
    pub value_hrf: Option<String>,
    /// Line of the row in the (decompressed) file.
    pub line: u64,
}

/// What a reader has seen so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadStats {
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Samples handed out (after the filters).
    pub samples: u64,
    /// Rows of node ids the node list does not know (skipped).
    pub unknown_rows: u64,
    /// Those node ids, with their rows.
    pub unknown_nodes: BTreeMap<String, u64>,
    /// Time of the first row.
    pub first: Option<Timestamp>,
    /// Time of the last row read.
    pub last: Option<Timestamp>,
    /// Whether the reading stopped at the window's end, before the end of the file.
    pub stopped_at_window_end: bool,
}

/// Size of the buffers between the file, the decompressor and the CSV parser.
const BUFFER: usize = 256 * 1024;

/// A file's bytes, decompressed when they are gzip (recognised by their first two bytes).
pub fn open_decompressed(path: &Path) -> Result<Box<dyn Read + Send>> {
    let name = path.display().to_string();
    let file =
        File::open(path).map_err(|e| TraceError::file(&name, format!("cannot open: {e}")))?;
    let mut buffered = BufReader::with_capacity(BUFFER, file);
    let head = buffered
        .fill_buf()
        .map_err(|e| TraceError::file(&name, format!("cannot read: {e}")))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if !gzip && name.ends_with(".gz") && !head.is_empty() {
        return Err(TraceError::file(
            &name,
            "named .gz but its content is not gzip data; rename it or compress it with `gzip`",
        ));
    }
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

/// Reads `data.csv` rows one by one; see the module's documentation.
pub struct Reader<R> {
    csv: csv::Reader<R>,
    file: String,
    record: csv::ByteRecord,
    nodes: Option<Arc<NodeList>>,
    filter: Filter,
    /// With a node list: kept nodes by index. Without: kept ids.
    keep_index: Option<Vec<bool>>,
    keep_ids: Option<std::collections::HashSet<String>>,
    start: Option<Timestamp>,
    stop: Option<Timestamp>,
    last: Option<(Timestamp, u64)>,
    /// The text of the last timestamp parsed and its value: consecutive rows share it.
    cached: (Vec<u8>, Timestamp),
    stats: ReadStats,
    done: bool,
    /// The row `step` moved to: its time, node index and line.
    current: Option<(Timestamp, Option<usize>, u64)>,
}

impl Reader<Box<dyn Read + Send>> {
    /// Opens `data.csv` or `data.csv.gz` (gzip is recognised by its content) and checks its
    /// header.
    pub fn open(path: &Path) -> Result<Self> {
        let source = open_decompressed(path)?;
        Reader::new(source, &path.display().to_string())
    }
}

impl<R: Read> Reader<R> {
    /// A reader of `source` (already decompressed); `file` names it in errors. Reads and checks
    /// the header.
    pub fn new(source: R, file: &str) -> Result<Self> {
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(BUFFER)
            .from_reader(source);
        let mut reader = Reader {
            csv,
            file: file.to_owned(),
            record: csv::ByteRecord::new(),
            nodes: None,
            filter: Filter::default(),
            keep_index: None,
            keep_ids: None,
            start: None,
            stop: None,
            last: None,
            cached: (Vec::new(), Timestamp::from_unix(0)),
            stats: ReadStats::default(),
            done: false,
            current: None,
        };
        reader.header()?;
        Ok(reader)
    }

    /// Counts and skips rows of node ids not in `nodes`; samples carry their node's index.
    pub fn with_nodes(mut self, nodes: Arc<NodeList>) -> Result<Self> {
        self.nodes = Some(nodes);
        self.resolve_node_filter()?;
        Ok(self)
    }

    /// Keeps only the rows `filter` selects. A node of the filter must be in the node list
    /// (when there is one).
    pub fn with_filter(mut self, filter: Filter) -> Result<Self> {
        self.filter = filter;
        self.resolve_node_filter()?;
        Ok(self)
    }

    fn resolve_node_filter(&mut self) -> Result<()> {
        self.keep_index = None;
        self.keep_ids = None;
        let Some(wanted) = &self.filter.nodes else {
            return Ok(());
        };
        match &self.nodes {
            Some(list) => {
                let mut keep = vec![false; list.len()];
                for w in wanted {
                    let i = list.find(w).ok_or_else(|| {
                        TraceError::Setting(format!(
                            "node filter: `{w}` is neither a node_id nor a vsn of the node list \
                             ({} nodes, e.g. `{}`)",
                            list.len(),
                            list.nodes.first().map_or("", |n| n.node_id.as_str())
                        ))
                    })?;
                    keep[i] = true;
                }
                self.keep_index = Some(keep);
            }
            None => self.keep_ids = Some(wanted.iter().cloned().collect()),
        }
        Ok(())
    }

    /// The file, as named in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// What has been read so far.
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// The window's start, once the first row is read (the first row's time by default).
    pub fn window_start(&self) -> Option<Timestamp> {
        self.start
    }

    fn csv_error(&self, e: csv::Error) -> TraceError {
        let line = e
            .position()
            .map(|p| p.line())
            .or_else(|| self.last.map(|(_, l)| l + 1))
            .unwrap_or(1);
        match e.kind() {
            csv::ErrorKind::Io(io) => {
                let read = match self.last {
                    Some((_, l)) => format!("rows up to line {l} were read"),
                    None => "no row was read".to_string(),
                };
                let message = match io.kind() {
                    std::io::ErrorKind::UnexpectedEof => format!(
                        "the gzip stream ends early: the file is truncated (an interrupted \
                         download or copy); fetch or copy it again ({read})"
                    ),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                        format!("the gzip data is corrupt ({io}); fetch or copy it again ({read})")
                    }
                    _ => format!("cannot read: {io} ({read})"),
                };
                TraceError::row(&self.file, line, "file", message)
            }
            _ => TraceError::row(&self.file, line, "row", e.to_string()),
        }
    }

    fn header(&mut self) -> Result<()> {
        let found = self
            .csv
            .read_byte_record(&mut self.record)
            .map_err(|e| self.csv_error(e))?;
        let expected = DATA_HEADER.join(",");
        if !found {
            return Err(TraceError::row(
                &self.file,
                1,
                "header",
                format!(
                    "the file is empty; expected the AoT digest's data.csv, whose first line is `{expected}`"
                ),
            ));
        }
        let names: Vec<String> = self
            .record
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_owned()
            })
            .collect();
        if names != DATA_HEADER {
            return Err(TraceError::row(
                &self.file,
                1,
                "header",
                format!(
                    "found `{}`; expected `{expected}` (the data.csv of an AoT \"complete\" digest; \
                     nodes.csv and sensors.csv are read separately)",
                    names.join(",")
                ),
            ));
        }
        Ok(())
    }

    fn text(&self, i: usize, field: &str, line: u64) -> Result<&str> {
        std::str::from_utf8(&self.record[i]).map_err(|_| {
            TraceError::row(
                &self.file,
                line,
                field,
                "not UTF-8 text; is this a CSV file?",
            )
        })
    }

    /// Reads up to the next row the filters keep; its time, node index and line.
    fn advance(&mut self) -> Result<Option<(Timestamp, Option<usize>, u64)>> {
        loop {
            if self.done {
                return Ok(None);
            }
            match self.csv.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.done = true;
                    return Err(self.csv_error(e));
                }
            }
            let line = self.record.position().map_or(0, |p| p.line());
            if self.record.len() == 1 && self.record[0].is_empty() {
                continue; // a blank line
            }
            self.stats.rows += 1;
            if self.record.len() != DATA_HEADER.len() {
                self.done = true;
                return Err(TraceError::row(
                    &self.file,
                    line,
                    "row",
                    format!(
                        "{} fields; expected {} ({}); is the file cut or mixed with another?",
                        self.record.len(),
                        DATA_HEADER.len(),
                        DATA_HEADER.join(",")
                    ),
                ));
            }
            let time = if self.record[0] == self.cached.0[..] {
                self.cached.1
            } else {
                match Timestamp::parse_bytes(&self.record[0]) {
                    Ok(t) => {
                        self.cached = (self.record[0].to_vec(), t);
                        t
                    }
                    Err(reason) => {
                        self.done = true;
                        return Err(TraceError::row(
                            &self.file,
                            line,
                            "timestamp",
                            format!(
                                "`{}` is not a timestamp: {reason}; expected {}",
                                String::from_utf8_lossy(&self.record[0]),
                                crate::time::TIMESTAMP_FORMAT
                            ),
                        ));
                    }
                }
            };
            if let Some((previous, previous_line)) = self.last
                && time < previous
            {
                self.done = true;
                return Err(TraceError::row(
                    &self.file,
                    line,
                    "timestamp",
                    format!(
                        "{time} is before {previous} of line {previous_line}: time goes backwards; \
                         a digest's rows are in ascending time (sort the rows by their first column, \
                         the header first, e.g. `(head -1 data.csv; tail -n +2 data.csv | sort -s -t, -k1,1)`)"
                    ),
                ));
            }
            self.last = Some((time, line));
            self.stats.last = Some(time);
            if self.stats.first.is_none() {
                self.stats.first = Some(time);
                self.start = Some(self.filter.window.start.map_or(time, |s| s.resolve(time)));
                let start = self.start.unwrap_or(time);
                let span = self
                    .filter
                    .span
                    .map(|span| start.add_seconds(span.max(0.0).ceil() as i64));
                self.stop = match (self.filter.window.stop.map(|s| s.resolve(time)), span) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if self.stop.is_some_and(|stop| time >= stop) {
                self.done = true;
                self.stats.stopped_at_window_end = true;
                return Ok(None);
            }
            let node_id = self.text(1, "node_id", line)?;
            if node_id.is_empty() {
                self.done = true;
                return Err(TraceError::row(
                    &self.file,
                    line,
                    "node_id",
                    "empty; every row names its node",
                ));
            }
            let node = match &self.nodes {
                Some(list) => match list.index(node_id) {
                    Some(i) => Some(i),
                    None => {
                        let id = node_id.to_owned();
                        self.stats.unknown_rows += 1;
                        *self.stats.unknown_nodes.entry(id).or_default() += 1;
                        continue;
                    }
                },
                None => None,
            };
            if self.start.is_some_and(|start| time < start) {
                continue;
            }
            let kept = match (&self.keep_index, &self.keep_ids, node) {
                (Some(keep), _, Some(i)) => keep[i],
                (_, Some(ids), _) => ids.contains(node_id),
                _ => true,
            };
            if !kept {
                continue;
            }
            if !self.filter.sensors.is_empty() {
                let subsystem = self.text(2, "subsystem", line)?;
                let sensor = self.text(3, "sensor", line)?;
                let parameter = self.text(4, "parameter", line)?;
                if !self
                    .filter
                    .sensors
                    .iter()
                    .any(|f| f.matches(subsystem, sensor, parameter))
                {
                    continue;
                }
            }
            self.stats.samples += 1;
            return Ok(Some((time, node, line)));
        }
    }

    /// Moves to the next row the filters keep ([`Reader::current`] gives it); false at the end
    /// of the file or of the window.
    pub fn step(&mut self) -> Result<bool> {
        self.current = self.advance()?;
        Ok(self.current.is_some())
    }

    /// The row [`Reader::step`] moved to.
    ///
    /// # Errors
    /// When a field is not UTF-8 text, or when `step` has not found a row.
    pub fn current(&self) -> Result<Sample<'_>> {
        let Some((time, node, line)) = self.current else {
            return Err(TraceError::Setting(
                "Reader::current before a successful Reader::step".into(),
            ));
        };
        let value = |i: usize, field: &str| -> Result<Option<&str>> {
            let v = self.text(i, field, line)?;
            Ok((!v.is_empty() && v != MISSING).then_some(v))
        };
        Ok(Sample {
            time,
            node,
            node_id: self.text(1, "node_id", line)?,
            subsystem: self.text(2, "subsystem", line)?,
            sensor: self.text(3, "sensor", line)?,
            parameter: self.text(4, "parameter", line)?,
            value_raw: value(5, "value_raw")?,
            value_hrf: value(6, "value_hrf")?,
            line,
        })
    }

    /// The next sample the filters keep; None at the end of the file or of the window.
    pub fn next_sample(&mut self) -> Result<Option<Sample<'_>>> {
        if self.step()? {
            self.current().map(Some)
        } else {
            Ok(None)
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<OwnedSample>;

    /// Owned samples; an error ends the iteration.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_sample()
            .map(|s| s.map(|s| s.to_owned()))
            .transpose()
    }
}
