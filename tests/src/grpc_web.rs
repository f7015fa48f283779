//! gRPC-Web (`application/grpc-web+proto` and `application/grpc-web-text`) built and parsed by
//! hand, as a browser client library would put it on the wire.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost::Message as _;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Flag of a data frame.
pub const DATA: u8 = 0x00;
/// Flag of the trailer frame.
pub const TRAILERS: u8 = 0x80;

/// One length-prefixed frame: flag, 4-byte big-endian length, payload.
pub fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame fits in u32");
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(flag);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The body of a unary `grpc.health.v1.Health/Check` call for `service`.
pub fn health_check_body(service: &str) -> Vec<u8> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    frame(DATA, &request.encode_to_vec())
}

/// Base64 for `application/grpc-web-text` request bodies.
pub fn to_text(body: &[u8]) -> Vec<u8> {
    STANDARD.encode(body).into_bytes()
}

/// Decodes an `application/grpc-web-text` response body. A server may encode each frame
/// separately (so padding can appear mid-body); every chunk is a whole number of 4-char
/// quanta, so decoding quantum by quantum handles both forms.
pub fn from_text(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert!(
        clean.len().is_multiple_of(4),
        "grpc-web-text body is not whole base64 quanta: {:?}",
        String::from_utf8_lossy(body)
    );
    clean
        .chunks(4)
        .flat_map(|q| {
            STANDARD
                .decode(q)
                .unwrap_or_else(|e| panic!("bad base64 quantum {q:?}: {e}"))
        })
        .collect()
}

/// A parsed gRPC-Web response body.
#[derive(Debug, Default)]
pub struct Reply {
    /// Payloads of the data frames.
    pub messages: Vec<Vec<u8>>,
    /// Trailers from the trailer frame, names lowercased.
    pub trailers: Vec<(String, String)>,
    /// Whether a trailer frame was present.
    pub has_trailer_frame: bool,
}

impl Reply {
    /// A trailer's value.
    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The single message decoded as a `HealthCheckResponse`.
    pub fn health_status(&self) -> i32 {
        assert_eq!(self.messages.len(), 1, "one response message: {self:?}");
        HealthCheckResponse::decode(self.messages[0].as_slice())
            .expect("HealthCheckResponse")
            .status
    }
}

/// Splits a binary gRPC-Web body into frames; panics on a truncated frame or anything
/// after the trailer frame.
pub fn parse(body: &[u8]) -> Reply {
    let mut reply = Reply::default();
    let mut rest = body;
    while !rest.is_empty() {
        assert!(!reply.has_trailer_frame, "data after the trailer frame");
        assert!(rest.len() >= 5, "truncated frame header: {rest:?}");
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        assert!(rest.len() >= 5 + len, "truncated frame: {rest:?}");
        let payload = &rest[5..5 + len];
        if flag & TRAILERS != 0 {
            reply.has_trailer_frame = true;
            let text = std::str::from_utf8(payload).expect("trailers are text");
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad trailer line {line:?}"));
                reply
                    .trailers
                    .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        } else {
            assert_eq!(flag, DATA, "uncompressed data frame");
            reply.messages.push(payload.to_vec());
        }
        rest = &rest[5 + len..];
    }
    reply
}

/// POSTs one gRPC-Web frame to `url` over HTTP/1.1, binary or base64 text, and returns the
/// response headers and the parsed (decoded) body. The transport answer must be a 200 over
/// HTTP/1.1 in the same gRPC-Web form; the gRPC status is the caller's to check.
pub async fn post(url: String, frame: Vec<u8>, text: bool) -> (reqwest::header::HeaderMap, Reply) {
    let (content_type, body) = if text {
        ("application/grpc-web-text", to_text(&frame))
    } else {
        ("application/grpc-web+proto", frame)
    };
    let r = crate::clients::http1()
        .post(url)
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        r.status(),
        200,
        "gRPC-Web answers 200 and puts the status in grpc-status"
    );
    let headers = r.headers().clone();
    let response_type = headers["content-type"].to_str().unwrap().to_owned();
    assert!(
        response_type.starts_with(content_type),
        "{content_type} answered as {response_type}"
    );
    let bytes = r.bytes().await.unwrap();
    let decoded = if text {
        from_text(&bytes)
    } else {
        bytes.to_vec()
    };
    (headers, parse(&decoded))
}
