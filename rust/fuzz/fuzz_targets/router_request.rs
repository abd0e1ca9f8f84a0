//! The router's request handling, in process ([`InProcessRouter`], fake mode: answered right
//! after the decision, nothing connects anywhere): table changes and marks as the table and
//! marks services apply them, and `RunLambda` request bodies as their bytes arrive (the
//! admission layer reading the gRPC header, tonic's decoding, the dispatcher, the e-table's
//! choice and completion), built from fields or raw. An answer "OK" names a destination of the
//! lambda's table; every call the table hands out is completed.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use lambdaroute_core::table::TableKind;
use lambdaroute_core::{EstimatorKind, PolicyKind};
use lambdaroute_node::router::{InProcessRouter, RouterOptions};
use lambdaroute_proto::uiiit::{EdgeRouterConf, LambdaRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

const POLICIES: [&str; 4] = ["rp", "li", "rr", "p2c"];
const ESTIMATORS: [&str; 5] = [
    "",
    "ewma:0.95",
    "periodic:5:min",
    "peak-ewma:10",
    "ewma:0.1",
];

/// A lambda or destination name: mostly a few known ones, so that calls find entries.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Any(String),
}

impl Name {
    fn lambda(&self) -> String {
        match self {
            Name::Known(i) => format!("f{}", i % 4),
            Name::Any(s) => s.clone(),
        }
    }

    fn destination(&self) -> String {
        match self {
            Name::Known(i) => format!("127.0.0.1:{}", 10000 + u16::from(i % 6)),
            Name::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Configure {
        action: u8,
        lambda: Name,
        destination: Name,
        weight: f32,
        is_final: bool,
    },
    Mark {
        destination: Name,
        marked: bool,
    },
    Call {
        name: Name,
        input: String,
        datain: Vec<u8>,
        dry: bool,
        forward: bool,
        hops: u32,
        chunk: u8,
    },
    /// Arbitrary message bytes in a well-formed gRPC frame.
    Framed {
        message: Vec<u8>,
        chunk: u8,
    },
    /// An arbitrary request body.
    Raw {
        body: Vec<u8>,
        chunk: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    policy: u8,
    estimator: u8,
    seed: u64,
    /// Caps of the listener: largest request, bytes in flight (kept small to reach them).
    max_request_bytes: u16,
    ops: Vec<Op>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(5 + message.len());
    bytes.push(0);
    bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
    bytes.extend_from_slice(message);
    bytes
}

fn chunks(body: &[u8], chunk: u8) -> Vec<Bytes> {
    if body.is_empty() {
        return Vec::new();
    }
    body.chunks(usize::from(chunk.max(1)))
        .map(Bytes::copy_from_slice)
        .collect()
}

fuzz_target!(|input: Input| {
    let policy: PolicyKind = POLICIES[usize::from(input.policy) % POLICIES.len()]
        .parse()
        .expect("a policy");
    let estimator = ESTIMATORS[usize::from(input.estimator) % ESTIMATORS.len()];
    let estimator: Option<EstimatorKind> =
        (!estimator.is_empty()).then(|| estimator.parse().expect("an estimator"));
    let mut options = RouterOptions {
        policy,
        estimator,
        seed: input.seed,
        max_request_bytes: usize::from(input.max_request_bytes).max(16),
        ..RouterOptions::default()
    };
    options.limits.max_bytes_in_flight = 1 << 16;
    runtime().block_on(async move {
        let mut router = InProcessRouter::new(options);
        for op in input.ops {
            match op {
                Op::Configure {
                    action,
                    lambda,
                    destination,
                    weight,
                    is_final,
                } => {
                    let _ = router.configure(&EdgeRouterConf {
                        action: i32::from(action % 4),
                        lambda: lambda.lambda(),
                        destination: destination.destination(),
                        weight,
                        r#final: is_final,
                    });
                }
                Op::Mark {
                    destination,
                    marked,
                } => {
                    router.mark(&destination.destination(), marked);
                }
                Op::Call {
                    name,
                    input,
                    datain,
                    dry,
                    forward,
                    hops,
                    chunk,
                } => {
                    let request = LambdaRequest {
                        name: name.lambda(),
                        input,
                        datain,
                        dry,
                        forward,
                        hops,
                    };
                    let body = frame(&request.encode_to_vec());
                    if let Ok(answer) = router.run_lambda(chunks(&body, chunk)).await
                        && answer.retcode == "OK"
                    {
                        let table = if forward {
                            TableKind::Final
                        } else {
                            TableKind::Overall
                        };
                        assert!(
                            router
                                .entries(table)
                                .iter()
                                .any(|e| e.lambda == request.name
                                    && e.destination == answer.responder),
                            "answered by {} which is not in the table of {}",
                            answer.responder,
                            request.name
                        );
                        assert_eq!(answer.hops, hops + 1);
                    }
                }
                Op::Framed { message, chunk } => {
                    let _ = router.run_lambda(chunks(&frame(&message), chunk)).await;
                }
                Op::Raw { body, chunk } => {
                    let _ = router.run_lambda(chunks(&body, chunk)).await;
                }
            }
        }
        for table in [TableKind::Overall, TableKind::Final] {
            for entry in router.entries(table) {
                assert_eq!(entry.in_flight, 0, "a call never completed: {entry:?}");
                assert!(entry.weight.is_finite() && entry.weight > 0.0, "{entry:?}");
            }
        }
    });
});
