//! The router's request handling without sockets, for the fuzz targets (`rust/fuzz`) and tests:
//! a `RunLambda` request body, as its bytes arrive from the network, goes through the same
//! stack as on the lambda listener (the admission layer that reads each gRPC message's header,
//! tonic's decoding, the dispatcher, the e-table), and table changes through the table
//! service's checks. The router runs in fake mode ([`RouterOptions::fake`]): it answers a
//! call right after choosing its destination, so nothing ever connects anywhere.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as _, Frame};
use lambdaroute_core::table::{Entry, TableKind};
use lambdaroute_proto::uiiit::edge_server_server::EdgeServerServer;
use lambdaroute_proto::uiiit::{EdgeRouterConf, LambdaResponse};
use prost::Message as _;
use tonic::Status;
use tonic::body::Body;
use tower_service::Service as _;

use super::dispatch::Dispatcher;
use super::table_service::TableService;
use super::{RouterOptions, RouterState};
use crate::limits::Admission;
use crate::membership::FailureReports;

/// The gRPC path of `uiiit.rpc.EdgeServer.RunLambda`.
pub const RUN_LAMBDA_PATH: &str = "/uiiit.rpc.EdgeServer/RunLambda";

/// A router in this process, without listeners, in fake mode ([module docs](self)).
pub struct InProcessRouter {
    state: Arc<RouterState>,
    lambda_service: Admission<EdgeServerServer<Dispatcher>>,
    table_service: TableService,
}

impl InProcessRouter {
    /// A router with `options` (their addresses, controller and `fake` ignored: it never
    /// listens, announces nor forwards).
    pub fn new(options: RouterOptions) -> Self {
        let options = RouterOptions {
            fake: true,
            controller: None,
            ..options
        };
        let max_request_bytes = options.max_request_bytes;
        let admission = options.limits.forwarding_admission(max_request_bytes);
        let state = Arc::new(RouterState::new(
            options,
            FailureReports::default(),
            crate::tls::ClientSecurity::plain(),
        ));
        let server = EdgeServerServer::new(Dispatcher::new(Arc::clone(&state)))
            .max_decoding_message_size(max_request_bytes)
            .max_encoding_message_size(max_request_bytes);
        InProcessRouter {
            lambda_service: tower_layer::Layer::layer(&admission, server),
            table_service: TableService::new(Arc::clone(&state)),
            state,
        }
    }

    /// Serves one `RunLambda` call whose request body (gRPC frames: a flag byte, a 4-byte
    /// big-endian length, the message) arrives in `chunks`. Returns the decoded answer, or the
    /// gRPC status of a refused call. Await it inside a tokio runtime.
    pub async fn run_lambda(&mut self, chunks: Vec<Bytes>) -> Result<LambdaResponse, Status> {
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(RUN_LAMBDA_PATH)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(Body::new(Chunks(chunks.into())))
            .expect("a valid request");
        let Ok(()) = std::future::poll_fn(|cx| self.lambda_service.poll_ready(cx)).await;
        let Ok(response) = self.lambda_service.call(request).await;
        let (parts, mut body) = response.into_parts();
        if let Some(status) = Status::from_header_map(&parts.headers)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        let mut data = BytesMut::new();
        let mut trailers = None;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame?;
            match frame.into_data() {
                Ok(chunk) => data.extend_from_slice(&chunk),
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        if let Some(status) = trailers.as_ref().and_then(Status::from_header_map)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        // One answer: flag, length, message.
        if data.len() < 5 {
            return Err(Status::internal("no answer in the response body"));
        }
        let mut data = data.freeze();
        data.advance(1);
        let len = data.get_u32() as usize;
        if data.len() != len {
            return Err(Status::internal(
                "the answer's length does not match its frame",
            ));
        }
        LambdaResponse::decode(data).map_err(|e| Status::internal(e.to_string()))
    }

    /// Applies one table configuration with the table service's checks, as
    /// `uiiit.rpc.EdgeRouter.Configure` does but without connecting to a new destination first.
    /// `Ok` carries the answer's message; `Err` what the service answers after "Error: ".
    pub fn configure(&self, conf: &EdgeRouterConf) -> Result<String, String> {
        self.table_service.apply(conf)
    }

    /// Marks or unmarks a destination as behind a congested link (`lambdaroute.rpc.Marks`);
    /// returns the entries changed.
    pub fn mark(&self, destination: &str, marked: bool) -> usize {
        self.state
            .table
            .lock()
            .etable
            .set_marked(destination, marked)
    }

    /// The entries of one table.
    pub fn entries(&self, table: TableKind) -> Vec<Entry> {
        self.state.table.lock().etable.entries(table)
    }
}

/// A request body of given chunks.
struct Chunks(VecDeque<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|chunk| Ok(Frame::data(chunk))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}
