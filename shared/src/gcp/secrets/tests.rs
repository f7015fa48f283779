//! References in every documented form, and payloads checked against their CRC32C.

use base64::Engine as _;

use super::access::{Failure, Payload, decode};
use super::*;

#[test]
fn references_parse_in_every_documented_form() {
    let r = |s: &str| SecretRef::parse(s).unwrap().unwrap();
    assert_eq!(
        r("sm://hf-token").resource("p"),
        "projects/p/secrets/hf-token/versions/latest"
    );
    assert_eq!(
        r("sm://hf-token#3").resource("p"),
        "projects/p/secrets/hf-token/versions/3"
    );
    assert_eq!(
        r("sm://projects/other/secrets/k/versions/7").resource("p"),
        "projects/other/secrets/k/versions/7"
    );
    assert_eq!(
        r("sm://projects/other/secrets/k").resource("p"),
        "projects/other/secrets/k/versions/latest"
    );
    assert_eq!(
        r("sm://projects/o/locations/europe-west1/secrets/k/versions/2").resource("p"),
        "projects/o/locations/europe-west1/secrets/k/versions/2"
    );
    assert!(SecretRef::parse("https://x").is_none());
    for bad in [
        "sm://",
        "sm://a/b",
        "sm://a#",
        "sm://projects/p/keys/k",
        "sm://bad name",
    ] {
        assert!(SecretRef::parse(bad).unwrap().is_err(), "{bad}");
    }
}

#[test]
fn payloads_are_checked_against_their_crc32c() {
    let data = base64::engine::general_purpose::STANDARD.encode("s3cret");
    let crc = crc32c::crc32c(b"s3cret").to_string();
    let good = Payload {
        data: data.clone(),
        data_crc32c: Some(crc),
    };
    assert_eq!(decode(&good).ok().unwrap().expose(), "s3cret");
    let bad = Payload {
        data,
        data_crc32c: Some("1".into()),
    };
    assert!(matches!(decode(&bad), Err(Failure::Checksum)));
    assert_eq!(
        format!("{:?}", decode(&good).ok().unwrap()),
        "SecretValue(***)"
    );
}
