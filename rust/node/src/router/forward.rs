//! One forwarded call as a gRPC unary call over a destination's HTTP/2 connection
//! (`destinations.rs`): the request encoded once into a gRPC frame and sent with its HEADERS
//! in one write; the answer read as it arrives, its size checked and charged to the call's
//! bytes in flight from its 5-byte header, before it is buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderValue, Method, Request, header};
use lambdaroute_proto::uiiit::{LambdaRequest, LambdaResponse};
use prost::Message as _;
use tonic::Status;

use crate::destinations::Destination;
use crate::limits::CallBudget;

/// The 5-byte prefix of a gRPC message: a compression flag and the length.
const PREFIX: usize = 5;

/// Calls `RunLambda` at `destination` on `sender` with `request`, taking messages of
/// `max_message` bytes at most either way and charging the answer to `budget`. An error is
/// the destination's gRPC status, or `UNAVAILABLE` when the connection failed.
pub(super) async fn run_lambda(
    destination: &Destination,
    sender: SendRequest<Bytes>,
    request: &LambdaRequest,
    max_message: usize,
    budget: Option<&CallBudget>,
) -> Result<LambdaResponse, Status> {
    let frame = encode(request, max_message)?;
    let head = Request::builder()
        .method(Method::POST)
        .uri(destination.run_lambda_uri().clone())
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        )
        .header(header::TE, HeaderValue::from_static("trailers"))
        .body(())
        .map_err(|e| Status::internal(format!("request headers: {e}")))?;

    let mut sender = sender.ready().await.map_err(unavailable)?;
    let (answer, mut body) = sender.send_request(head, false).map_err(unavailable)?;
    // Queued before the connection task runs: HEADERS and DATA leave in one write.
    body.send_data(frame, true).map_err(unavailable)?;

    let (parts, mut body) = answer.await.map_err(unavailable)?.into_parts();
    // "Trailers-only": an error answered in the headers.
    if let Some(status) = Status::from_header_map(&parts.headers)
        && status.code() != tonic::Code::Ok
    {
        return Err(status);
    }
    if parts.status != http::StatusCode::OK {
        return Err(Status::unknown(format!(
            "the destination answered HTTP {}, not a gRPC answer",
            parts.status
        )));
    }
    let mut message = Answer::new(max_message, budget);
    while let Some(data) = body.data().await {
        let data = data.map_err(unavailable)?;
        // The bytes are ours now: let the destination send more.
        let _ = body.flow_control().release_capacity(data.len());
        message.push(data)?;
    }
    let trailers = body.trailers().await.map_err(unavailable)?;
    match trailers.as_ref().and_then(Status::from_header_map) {
        Some(status) if status.code() == tonic::Code::Ok => message.decode(),
        Some(status) => Err(status),
        None => Err(Status::internal("the answer ended without a gRPC status")),
    }
}

/// The request as one gRPC message: prefix and protobuf, in one buffer.
fn encode(request: &LambdaRequest, max_message: usize) -> Result<Bytes, Status> {
    let len = request.encoded_len();
    if len > max_message {
        return Err(Status::out_of_range(format!(
            "the forwarded request is {len} bytes, more than the largest message, \
             {max_message} bytes (--max-request-bytes)"
        )));
    }
    let mut frame = BytesMut::with_capacity(PREFIX + len);
    frame.put_u8(0);
    frame.put_u32(len as u32);
    request
        .encode(&mut frame)
        .map_err(|e| Status::internal(format!("cannot encode the request: {e}")))?;
    Ok(frame.freeze())
}

/// A connection-level failure: the destination is unreachable for this call.
fn unavailable(error: h2::Error) -> Status {
    Status::unavailable(error.to_string())
}

/// The answer's one gRPC message, as its bytes arrive.
struct Answer<'a> {
    max_message: usize,
    budget: Option<&'a CallBudget>,
    bytes: BytesMut,
    /// The message's length, from its prefix.
    len: Option<usize>,
}

impl<'a> Answer<'a> {
    fn new(max_message: usize, budget: Option<&'a CallBudget>) -> Self {
        Answer {
            max_message,
            budget,
            bytes: BytesMut::new(),
            len: None,
        }
    }

    fn push(&mut self, data: Bytes) -> Result<(), Status> {
        self.bytes.extend_from_slice(&data);
        if self.len.is_none() && self.bytes.len() >= PREFIX {
            if self.bytes[0] != 0 {
                return Err(Status::internal(
                    "the answer is compressed; the router asks for none",
                ));
            }
            let len = u32::from_be_bytes(self.bytes[1..PREFIX].try_into().expect("4 bytes"));
            if len as usize > self.max_message {
                return Err(Status::out_of_range(format!(
                    "the answer is {len} bytes, more than the largest message, {} bytes \
                     (--max-request-bytes)",
                    self.max_message
                )));
            }
            // Charged before it is buffered, so that large answers wait for no memory.
            if let Some(budget) = self.budget {
                budget.charge_answer(len)?;
            }
            self.bytes.reserve(PREFIX + len as usize - self.bytes.len());
            self.len = Some(len as usize);
        }
        if let Some(len) = self.len
            && self.bytes.len() > PREFIX + len
        {
            return Err(Status::internal(
                "the answer holds more than one message, for a unary call",
            ));
        }
        Ok(())
    }

    fn decode(self) -> Result<LambdaResponse, Status> {
        match self.len {
            Some(len) if self.bytes.len() == PREFIX + len => {
                let mut bytes = self.bytes.freeze();
                bytes.advance(PREFIX);
                LambdaResponse::decode(bytes)
                    .map_err(|e| Status::internal(format!("cannot decode the answer: {e}")))
            }
            _ => Err(Status::internal("the answer ended inside its message")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(message: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        frame.put_u8(0);
        frame.put_u32(message.len() as u32);
        frame.extend_from_slice(message);
        frame.freeze()
    }

    #[test]
    fn an_answer_split_anywhere_decodes_as_a_whole() {
        let response = LambdaResponse {
            retcode: "OK".into(),
            output: "x".repeat(300),
            hops: 2,
            ..Default::default()
        };
        let frame = framed(&response.encode_to_vec());
        for cut in [1, 4, 5, 6, 100, frame.len() - 1] {
            let mut answer = Answer::new(1 << 20, None);
            answer.push(frame.slice(..cut)).unwrap();
            answer.push(frame.slice(cut..)).unwrap();
            assert_eq!(answer.decode().unwrap(), response, "cut at {cut}");
        }
    }

    #[test]
    fn an_answer_larger_than_the_largest_message_is_refused_at_its_prefix() {
        let mut answer = Answer::new(10, None);
        let error = answer.push(framed(&[0; 11]).slice(..PREFIX)).unwrap_err();
        assert_eq!(error.code(), tonic::Code::OutOfRange);
        assert!(error.message().contains("11 bytes"), "{}", error.message());
    }

    #[test]
    fn a_cut_short_a_compressed_or_a_second_message_is_an_error() {
        let frame = framed(b"abc");
        let mut short = Answer::new(100, None);
        short.push(frame.slice(..6)).unwrap();
        assert!(short.decode().is_err());

        let mut compressed = BytesMut::from(&frame[..]);
        compressed[0] = 1;
        assert!(Answer::new(100, None).push(compressed.freeze()).is_err());

        let mut twice = Answer::new(100, None);
        twice.push(frame.clone()).unwrap();
        assert!(twice.push(frame).is_err());
    }

    #[test]
    fn a_request_is_framed_with_its_length() {
        let request = LambdaRequest {
            name: "clambda0".into(),
            input: "hello".into(),
            ..Default::default()
        };
        let frame = encode(&request, 1 << 20).unwrap();
        assert_eq!(frame[0], 0);
        assert_eq!(
            u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize,
            frame.len() - PREFIX
        );
        assert_eq!(LambdaRequest::decode(&frame[PREFIX..]).unwrap(), request);
        assert_eq!(
            encode(&request, 3).unwrap_err().code(),
            tonic::Code::OutOfRange
        );
    }
}
