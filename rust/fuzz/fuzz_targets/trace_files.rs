//! The Array of Things files: the first byte picks a digest's `data.csv` (read as a stream,
//! with the node list and a filter on some inputs), a node list (`nodes.csv`), a sensor list
//! (`sensors.csv`) or a call schedule; the rest is its text.
#![no_main]

use std::sync::{Arc, OnceLock};

use lambdaroute_trace::nodes::parse_sensors;
use lambdaroute_trace::schedule::ScheduleReader;
use lambdaroute_trace::{Filter, NodeList, Reader};
use libfuzzer_sys::fuzz_target;

/// The shipped node list, parsed once.
fn shipped() -> &'static Arc<NodeList> {
    static SHIPPED: OnceLock<Arc<NodeList>> = OnceLock::new();
    SHIPPED.get_or_init(|| Arc::new(NodeList::shipped()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 | 1 => {
            let Ok(reader) = Reader::new(rest, "data.csv") else {
                return;
            };
            let reader = if selector % 5 == 1 {
                match reader.with_nodes(Arc::clone(shipped())).and_then(|r| {
                    r.with_filter(Filter {
                        span: Some(600.0),
                        ..Filter::default()
                    })
                }) {
                    Ok(reader) => reader,
                    Err(_) => return,
                }
            } else {
                reader
            };
            let mut reader = reader;
            let mut line = String::new();
            while let Ok(Some(sample)) = reader.next_sample() {
                line.clear();
                sample.write_csv(&mut line);
                let _ = sample.to_owned();
            }
            let _ = reader.stats();
        }
        2 => {
            if let Ok(text) = std::str::from_utf8(rest)
                && let Ok(list) = NodeList::parse(text, "nodes.csv")
            {
                let _ = lambdaroute_trace::nodes::sites(&list);
            }
        }
        3 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = parse_sensors(text, "sensors.csv");
            }
        }
        _ => {
            if let Ok(reader) = ScheduleReader::new(rest, "schedule.csv") {
                for call in reader {
                    if call.is_err() {
                        break;
                    }
                }
            }
        }
    }
});
