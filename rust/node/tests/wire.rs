//! The wire names are serverlessonedge's: a peer that only knows the upstream method paths
//! reaches our services, and malformed bytes on the wire get an error, never a panic.

use std::net::SocketAddr;
use std::path::Path;

use lambdaroute_core::policy::PolicyKind;
use lambdaroute_node::computer::{self, ComputerOptions};
use lambdaroute_node::router::{self, RouterOptions};
use lambdaroute_proto::uiiit::{
    EdgeRouterConf, ForwardingTable, LambdaRequest, LambdaResponse, NumTables, Return, TableId,
    Utilization, Void,
};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn grpc(address: SocketAddr) -> Grpc<Channel> {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Grpc::new(channel)
}

async fn unary<Req, Resp>(
    grpc: &mut Grpc<Channel>,
    path: &'static str,
    request: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    grpc.ready().await.unwrap();
    grpc.unary(
        tonic::Request::new(request),
        PathAndQuery::from_static(path),
        ProstCodec::<Req, Resp>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn services_answer_on_the_upstream_method_paths() {
    let config = computer::parse_config(
        Path::new("t.yaml"),
        "processors: [{name: cpu, type: cpu, speed: 1.0e9, cores: 1, memory: 1000000}]\n\
         containers: [{name: c, processor: cpu, lambda: f, num_workers: 1}]\n\
         lambdas: [{name: f, op_offset: 1000, op_coeff: 0}]\n",
    )
    .unwrap();
    let computer = computer::spawn(ComputerOptions::new(loopback(), config))
        .await
        .unwrap();
    let router = router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        policy: PolicyKind::RandomProportional,
        ..RouterOptions::default()
    })
    .await
    .unwrap();

    let mut table = grpc(router.table_listen).await;
    let reply: Return = unary(
        &mut table,
        "/uiiit.rpc.EdgeRouter/Configure",
        EdgeRouterConf {
            action: 1,
            lambda: "f".into(),
            destination: computer.endpoint().into(),
            weight: 1.0,
            r#final: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(reply.msg, "");
    let tables: NumTables = unary(&mut table, "/uiiit.rpc.EdgeRouter/GetNumTables", Void {})
        .await
        .unwrap();
    assert_eq!(tables.value, 2);
    let final_table: ForwardingTable = unary(
        &mut table,
        "/uiiit.rpc.EdgeRouter/GetTable",
        TableId { value: 1 },
    )
    .await
    .unwrap();
    assert_eq!(final_table.entries.len(), 1);

    for target in [router.listen, computer.lambda_addr()] {
        let mut server = grpc(target).await;
        let response: LambdaResponse = unary(
            &mut server,
            "/uiiit.rpc.EdgeServer/RunLambda",
            LambdaRequest {
                name: "f".into(),
                input: "hi".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(response.retcode, "OK");
        assert_eq!(response.output, "hi");
    }

    let mut util = grpc(computer.util_addr()).await;
    util.ready().await.unwrap();
    let mut stream = util
        .server_streaming(
            tonic::Request::new(Void {}),
            PathAndQuery::from_static("/uiiit.rpc.EdgeComputer/StreamUtil"),
            ProstCodec::<Void, Utilization>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.values.contains_key("cpu"), "{:?}", first.values);
}

/// Field 1 as raw bytes, to put invalid UTF-8 where a string is expected.
#[derive(Clone, PartialEq, prost::Message)]
struct RawName {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
}

#[tokio::test]
async fn malformed_messages_get_an_error_and_the_router_keeps_serving() {
    let router = router::spawn(RouterOptions {
        listen: loopback(),
        table_listen: loopback(),
        ..RouterOptions::default()
    })
    .await
    .unwrap();
    let mut lambdas = grpc(router.listen).await;
    // Field 1 of LambdaRequest is a string; EdgeRouterConf's is a varint: the bytes do not decode.
    let result: Result<LambdaResponse, _> = unary(
        &mut lambdas,
        "/uiiit.rpc.EdgeServer/RunLambda",
        EdgeRouterConf {
            action: 2,
            ..Default::default()
        },
    )
    .await;
    assert!(result.is_err());
    // The lambda name (a string) with bytes that are not UTF-8.
    let result: Result<LambdaResponse, _> = unary(
        &mut lambdas,
        "/uiiit.rpc.EdgeServer/RunLambda",
        RawName {
            name: vec![0xff, 0xfe, 0x00],
        },
    )
    .await;
    assert!(result.is_err());
    // An empty message decodes as an empty request: the router answers with an error retcode.
    let result: Result<LambdaResponse, _> =
        unary(&mut lambdas, "/uiiit.rpc.EdgeServer/RunLambda", Void {}).await;
    assert!(result.unwrap().retcode.starts_with("Error"));
    let mut table = grpc(router.table_listen).await;
    let reply: Return = unary(
        &mut table,
        "/uiiit.rpc.EdgeRouter/Configure",
        EdgeRouterConf {
            action: 99,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        reply.msg.starts_with("Error: unknown action 99"),
        "{}",
        reply.msg
    );
    let tables: NumTables = unary(&mut table, "/uiiit.rpc.EdgeRouter/GetNumTables", Void {})
        .await
        .unwrap();
    assert_eq!(tables.value, 2);
}
