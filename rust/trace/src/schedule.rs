//! Schedule files: the calls one client sends, in due-time order, as CSV.
//!
//! ```text
//! time,trace_time,node,lambda,size,readings,rows
//! 0.000000,2018/09/03 12:00:04,001e0610ba46,clambda0,1000,43,
//! 0.416667,2018/09/03 12:00:29,001e0610ba46,clambda0,1000,43,
//! ```
//!
//! `time` is seconds after the client's start; `trace_time` the readings' time in the trace;
//! `node` the AoT node id; `size` the input's bytes; `readings` how many rows the call stands
//! for; `rows` their `data.csv` text when the call carries them (then `size` is its length),
//! else empty.

use std::io::{Read, Write};

use crate::error::{Result, TraceError};
use crate::replay::Call;

/// The columns of a schedule file, in order.
pub const SCHEDULE_HEADER: [&str; 7] = [
    "time",
    "trace_time",
    "node",
    "lambda",
    "size",
    "readings",
    "rows",
];

/// Writes a schedule file.
pub struct ScheduleWriter<W: Write> {
    csv: csv::Writer<W>,
    file: String,
    last: f64,
}

impl<W: Write> ScheduleWriter<W> {
    /// A writer of `sink`; `file` names it in errors. Writes the header.
    pub fn new(sink: W, file: &str) -> Result<Self> {
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(sink);
        csv.write_record(SCHEDULE_HEADER)
            .map_err(|e| TraceError::file(file, format!("cannot write: {e}")))?;
        Ok(ScheduleWriter {
            csv,
            file: file.to_owned(),
            last: 0.0,
        })
    }

    /// Appends a call; calls come in due-time order.
    pub fn write(&mut self, call: &Call) -> Result<()> {
        if call.time < self.last {
            return Err(TraceError::Setting(format!(
                "{}: call at {} s written after one at {} s: schedules are in due-time order",
                self.file, call.time, self.last
            )));
        }
        self.last = call.time;
        let record = [
            format!("{:.6}", call.time),
            call.trace_time.to_string(),
            call.node_id.clone(),
            call.lambda.clone(),
            call.size.to_string(),
            call.readings.to_string(),
        ];
        let rows = call.rows.as_deref().unwrap_or("");
        self.csv
            .write_record(record.iter().map(String::as_str).chain([rows]))
            .map_err(|e| TraceError::file(&self.file, format!("cannot write: {e}")))
    }

    /// Flushes and hands back the sink.
    pub fn finish(self) -> Result<W> {
        let file = self.file.clone();
        self.csv
            .into_inner()
            .map_err(|e| TraceError::file(&file, format!("cannot write: {}", e.error())))
    }
}

/// One call read from a schedule file.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledCall {
    /// When it is due, seconds after the client's start.
    pub time: f64,
    /// The AoT node id whose readings it carries.
    pub node: String,
    /// The lambda it calls.
    pub lambda: String,
    /// Size of its input, bytes.
    pub size: u64,
    /// Its input when it carries rows; None: `size` bytes of filler.
    pub rows: Option<String>,
}

/// Reads a schedule file row by row, checking each.
pub struct ScheduleReader<R: Read> {
    records: csv::StringRecordsIntoIter<R>,
    file: String,
    last: f64,
    failed: bool,
}

impl<R: Read> ScheduleReader<R> {
    /// A reader of `source`; `file` names it in errors. Checks the header.
    pub fn new(source: R, file: &str) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(source);
        let header = csv
            .headers()
            .map_err(|e| TraceError::row(file, 1, "header", e.to_string()))?;
        if header.iter().ne(SCHEDULE_HEADER) {
            return Err(TraceError::row(
                file,
                1,
                "header",
                format!(
                    "found `{}`; expected `{}` (a schedule made by `lambdaroute trace aot schedule` \
                     or the testbed)",
                    header.iter().collect::<Vec<_>>().join(","),
                    SCHEDULE_HEADER.join(",")
                ),
            ));
        }
        Ok(ScheduleReader {
            records: csv.into_records(),
            file: file.to_owned(),
            last: 0.0,
            failed: false,
        })
    }

    fn parse(&mut self, row: csv::StringRecord) -> Result<ScheduledCall> {
        let line = row.position().map_or(0, |p| p.line());
        let err = |field: &str, message: String| TraceError::row(&self.file, line, field, message);
        let time: f64 = row[0]
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                err(
                    "time",
                    format!("`{}` is not a number of seconds >= 0", &row[0]),
                )
            })?;
        if time < self.last {
            return Err(err(
                "time",
                format!(
                    "{time} comes before the previous call's {}: a schedule is in due-time order",
                    self.last
                ),
            ));
        }
        let size: u64 = row[4]
            .parse()
            .map_err(|_| err("size", format!("`{}` is not a number of bytes", &row[4])))?;
        if row[3].is_empty() {
            return Err(err("lambda", "empty; every call names its lambda".into()));
        }
        let rows = (!row[6].is_empty()).then(|| row[6].to_owned());
        if let Some(rows) = &rows
            && rows.len() as u64 != size
        {
            return Err(err(
                "size",
                format!(
                    "{size} bytes, but the call's rows are {} bytes long",
                    rows.len()
                ),
            ));
        }
        self.last = time;
        Ok(ScheduledCall {
            time,
            node: row[2].to_owned(),
            lambda: row[3].to_owned(),
            size,
            rows,
        })
    }
}

impl<R: Read> Iterator for ScheduleReader<R> {
    type Item = Result<ScheduledCall>;

    /// The next call; an error ends the iteration.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.records.next()? {
            Ok(row) if row.len() == SCHEDULE_HEADER.len() => self.parse(row),
            Ok(row) => Err(TraceError::row(
                &self.file,
                row.position().map_or(0, |p| p.line()),
                "row",
                format!("{} fields; expected {}", row.len(), SCHEDULE_HEADER.len()),
            )),
            Err(e) => Err(TraceError::row(
                &self.file,
                e.position().map_or(0, |p| p.line()),
                "row",
                e.to_string(),
            )),
        };
        self.failed = item.is_err();
        Some(item)
    }
}
