//! Reading a credential without trusting it yet: the bearer token, a JWT's header (to pick
//! the key and pin `alg`), the claims checked beyond `jsonwebtoken`'s, and what each
//! validation failure tells the caller.

use base64::Engine as _;
use jsonwebtoken::Validation;
use serde::Deserialize;

use super::IAP_ISSUER;
use super::LEEWAY_SECS;
use super::jwks::KeyType;

pub(super) fn validation(key_type: KeyType, audiences: &[String]) -> Validation {
    let mut v = Validation::new(key_type.algorithm());
    v.leeway = LEEWAY_SECS;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_audience(audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v
}

#[derive(Deserialize)]
pub(super) struct JwtHeader {
    pub(super) alg: String,
    pub(super) kid: Option<String>,
}

/// The header of a compact JWS, read without trusting it (to choose the key and pin `alg`).
pub(super) fn jwt_header(token: &str) -> Option<JwtHeader> {
    let mut parts = token.split('.');
    let (head, _, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2
}

pub(super) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A header value from the token, made safe to repeat: short, letters and digits only.
pub(super) fn printable(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(16)
        .collect();
    if clean.is_empty() {
        "\"\"".into()
    } else {
        clean
    }
}

pub(super) fn digest(text: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
    out
}

pub(super) fn is_true(value: &serde_json::Value) -> bool {
    value.as_bool() == Some(true) || value.as_str() == Some("true")
}

/// The claims read beyond those `jsonwebtoken` validates.
#[derive(Deserialize)]
pub(super) struct Claims {
    pub(super) sub: Option<String>,
    pub(super) email: Option<String>,
    pub(super) email_verified: Option<serde_json::Value>,
    pub(super) iat: Option<f64>,
}

pub(super) fn describe(kind: &jsonwebtoken::errors::ErrorKind, key_type: KeyType) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    let (issuer, audiences) = match key_type {
        KeyType::Rsa => ("accounts.google.com", "AUTH_AUDIENCES"),
        KeyType::P256 => (IAP_ISSUER, "IAP_AUDIENCE"),
    };
    match kind {
        K::ExpiredSignature => "has expired (exp)".into(),
        K::ImmatureSignature => "is not valid yet (nbf in the future)".into(),
        K::InvalidAudience => format!("is for another audience (aud not in {audiences})"),
        K::InvalidIssuer => format!("was not issued by {issuer} (iss)"),
        K::InvalidSignature => "has a bad signature".into(),
        K::InvalidAlgorithm => format!("is not signed with {}", key_type.alg_name()),
        K::MissingRequiredClaim(claim) => format!("has no {} claim", printable(claim)),
        K::InvalidClaimFormat(claim) => format!("has a malformed {} claim", printable(claim)),
        _ => "is not a well-formed JWT".into(),
    }
}
