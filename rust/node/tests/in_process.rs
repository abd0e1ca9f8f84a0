//! The router's request handling without sockets ([`InProcessRouter`]): what the fuzz target
//! `router_request` drives, checked on known requests.

use bytes::Bytes;
use lambdaroute_core::table::TableKind;
use lambdaroute_node::router::{InProcessRouter, RouterOptions};
use lambdaroute_proto::uiiit::{EdgeRouterConf, LambdaRequest};
use prost::Message as _;

/// A gRPC frame (flag 0, big-endian length) around `request`.
fn frame(request: &LambdaRequest) -> Vec<u8> {
    let message = request.encode_to_vec();
    let mut bytes = vec![0];
    bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&message);
    bytes
}

fn change(lambda: &str, destination: &str, is_final: bool) -> EdgeRouterConf {
    EdgeRouterConf {
        action: 1,
        lambda: lambda.into(),
        destination: destination.into(),
        weight: 0.01,
        r#final: is_final,
    }
}

fn request(name: &str) -> LambdaRequest {
    LambdaRequest {
        name: name.into(),
        input: "hello".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_call_split_into_any_chunks_is_answered_by_an_installed_destination() {
    let mut router = InProcessRouter::new(RouterOptions::default());
    router
        .configure(&change("f", "127.0.0.1:10001", true))
        .unwrap();
    let bytes = frame(&request("f"));
    for size in [1, 2, 5, 7, bytes.len()] {
        let chunks = bytes.chunks(size).map(Bytes::copy_from_slice).collect();
        let answer = router.run_lambda(chunks).await.unwrap();
        assert_eq!(answer.retcode, "OK");
        assert_eq!(answer.responder, "127.0.0.1:10001");
        assert_eq!(answer.hops, 1);
    }
    let entries = router.entries(TableKind::Overall);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].in_flight, 0, "every call completed");
}

#[tokio::test]
async fn bad_requests_get_answers_not_panics() {
    let mut options = RouterOptions {
        max_request_bytes: 64,
        ..RouterOptions::default()
    };
    options.limits.max_bytes_in_flight = 1000;
    let mut router = InProcessRouter::new(options);
    // Unknown lambda: an error in retcode.
    let answer = router
        .run_lambda(vec![frame(&request("g")).into()])
        .await
        .unwrap();
    assert!(answer.retcode.starts_with("Error: "), "{answer:?}");
    // Larger than the largest request: refused from its header.
    let status = router
        .run_lambda(vec![Bytes::from_static(&[0, 0, 0, 1, 0])])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    // Not protobuf.
    let status = router
        .run_lambda(vec![Bytes::from_static(&[0, 0, 0, 0, 2, 0xff, 0xff])])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
    // A truncated frame, and no frame at all.
    assert!(
        router
            .run_lambda(vec![Bytes::from_static(&[0, 0])])
            .await
            .is_err()
    );
    assert!(router.run_lambda(Vec::new()).await.is_err());
    // Table changes the table service refuses.
    let error = router.configure(&change("f", "", true)).unwrap_err();
    assert!(error.contains("destination"), "{error}");
    let error = router
        .configure(&EdgeRouterConf {
            action: 9,
            ..change("f", "d:1", true)
        })
        .unwrap_err();
    assert!(error.contains("unknown action"), "{error}");
}
