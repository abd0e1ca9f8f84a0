//! The gRPC floor: a bare `uiiit.rpc.EdgeServer` that answers every call at once ("OK", no
//! output, `responder` = its own address, `hops + 1`), with no model, queue or table behind it.
//! The benchmark runs it in a child process (`lambdaroute bench --serve-answer N`) as the
//! destinations of the router in normal mode and as the floor that the router is compared with.

use std::net::SocketAddr;

use anyhow::Context;
use lambdaroute_proto::RETCODE_OK;
use lambdaroute_proto::uiiit::edge_server_server::{EdgeServer, EdgeServerServer};
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

/// Answers every call at once.
#[derive(Clone, Debug)]
pub struct Answerer {
    responder: String,
}

#[tonic::async_trait]
impl EdgeServer for Answerer {
    async fn run_lambda(
        &self,
        request: Request<LambdaRequest>,
    ) -> Result<Response<LambdaResponse>, Status> {
        let hops = request.get_ref().hops + 1;
        Ok(Response::new(LambdaResponse {
            retcode: RETCODE_OK.into(),
            responder: self.responder.clone(),
            hops,
            ..Default::default()
        }))
    }
}

/// Bind `count` answering servers on 127.0.0.1 (free ports), print their addresses on stdout,
/// one a line, and serve until stdin closes (the parent benchmark exited or closed the pipe).
pub async fn serve_stdio(count: usize) -> anyhow::Result<()> {
    let mut servers = tokio::task::JoinSet::new();
    let mut addresses = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind an answering server on 127.0.0.1")?;
        let address: SocketAddr = listener.local_addr()?;
        addresses.push(address.to_string());
        let service = EdgeServerServer::new(Answerer {
            responder: address.to_string(),
        });
        servers.spawn(
            Server::builder()
                .tcp_nodelay(true)
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", addresses.join("\n"))?;
        out.flush()?;
    }
    // Stops when stdin reaches its end: the parent closed it or went away. A plain thread
    // reads it (blocking), so that tokio's io-std feature is not needed for this.
    let (eof_tx, mut eof_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(std::io::Read::read(&mut stdin, &mut sink), Ok(n) if n > 0) {}
        let _ = eof_tx.send(());
    });
    loop {
        tokio::select! {
            _ = &mut eof_rx => return Ok(()),
            Some(ended) = servers.join_next() => {
                ended.context("answering server panicked")?.context("answering server failed")?;
            }
        }
    }
}
