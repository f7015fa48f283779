//! A loopback JSON Web Key Set endpoint in the format Google (`oauth2/v3/certs`, RSA) and IAP
//! (`iap/verify/public_key-jwk`, P-256) serve, with keys generated in the test (rcgen on
//! aws-lc-rs) and tokens signed with them (jsonwebtoken): good ones and every kind of bad one.
//!
//! The key set, its `Cache-Control`, a latency and a failure mode can be changed while it
//! runs; fetches are counted.

use super::*;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::io::Write as _;
use std::net::TcpListener;

/// An issuer of Google ID tokens.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The issuer of IAP assertions.
pub const IAP_ISSUER: &str = "https://cloud.google.com/iap";

/// A key pair generated for the test, with its public JWK.
pub struct TestKey {
    /// The `kid` it is published and signs under.
    pub kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// The public key as a JWK (kid, alg and use included).
    pub jwk: Value,
    /// The public key in PEM (SubjectPublicKeyInfo): what an HS256 forgery uses as secret.
    pub public_pem: String,
}

impl TestKey {
    /// A fresh RSA-2048 key (RS256), as Google signs ID tokens with.
    pub fn rsa(kid: &str) -> Self {
        Self::generate(kid, &rcgen::PKCS_RSA_SHA256, Algorithm::RS256)
    }

    /// A fresh P-256 key (ES256), as IAP signs its assertions with.
    pub fn p256(kid: &str) -> Self {
        Self::generate(kid, &rcgen::PKCS_ECDSA_P256_SHA256, Algorithm::ES256)
    }

    fn generate(kid: &str, rcgen_alg: &'static rcgen::SignatureAlgorithm, alg: Algorithm) -> Self {
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).expect("generate key");
        let pem = pair.serialize_pem();
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            _ => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .expect("encoding key");
        let public = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
        let jwk = match &public.algorithm {
            AlgorithmParameters::RSA(p) => json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": p.n, "e": p.e,
            }),
            AlgorithmParameters::EllipticCurve(p) => json!({
                "kty": "EC", "alg": "ES256", "crv": "P-256", "kid": kid, "x": p.x, "y": p.y,
            }),
            _ => unreachable!("RSA and P-256 only"),
        };
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    /// `claims` signed with this key under its own `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// `claims` signed with this key, the header naming `kid` (a forgery, or an unknown key).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    /// The classic key-confusion forgery: HS256 with this key's public PEM as the secret.
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let secret = EncodingKey::from_secret(self.public_pem.as_bytes());
        jsonwebtoken::encode(&header, claims, &secret).expect("sign HS256")
    }

    /// An unsigned token (`alg: none`, empty signature) naming this key.
    pub fn alg_none(&self, claims: &Value) -> String {
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.kid});
        format!("{}.{}.", b64(&header), b64(claims))
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// The claims of a Google ID token for `aud`, minted just now for `email` (as the metadata
/// server mints them with `format=full`).
pub fn google_claims(aud: &str, email: &str) -> Value {
    let now = now();
    json!({
        "iss": GOOGLE_ISSUER,
        "aud": aud,
        "azp": "1234567890",
        "sub": "1234567890",
        "email": email,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    })
}

/// The claims of an IAP assertion for `aud`, minted just now for `email`.
pub fn iap_claims(aud: &str, email: &str) -> Value {
    let now = now();
    json!({
        "iss": IAP_ISSUER,
        "aud": aud,
        "sub": "accounts.google.com:1234567890",
        "email": email,
        "hd": "example.com",
        "iat": now,
        "exp": now + 600,
    })
}

struct State {
    body: String,
    cache_control: String,
    latency: Duration,
    failing: bool,
    fetches: usize,
}

/// The key-set server, on its own threads until the test process ends.
pub struct JwksServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl JwksServer {
    /// Serves these keys with `Cache-Control: public, max-age=3600`.
    pub fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind JWKS server");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            body: key_set(keys),
            cache_control: "public, max-age=3600, must-revalidate, no-transform".into(),
            latency: Duration::ZERO,
            failing: false,
            fetches: 0,
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { addr, state }
    }

    /// The key set's URL (for `GOOGLE_JWKS_URL` or `IAP_JWKS_URL`).
    pub fn url(&self) -> String {
        format!("http://{}/oauth2/v3/certs", self.addr)
    }

    /// Publishes these keys from now on (a rotation).
    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.state.lock().unwrap().body = key_set(keys);
    }

    /// Delays every answer (to make concurrent first requests overlap).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// Answers 503 from now on (or serves again).
    pub fn set_failing(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    /// Key-set requests answered so far.
    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().fetches
    }
}

fn key_set(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut stream = stream;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let (body, cache_control, latency, failing) = {
        let mut s = state.lock().unwrap();
        s.fetches += 1;
        (
            s.body.clone(),
            s.cache_control.clone(),
            s.latency,
            s.failing,
        )
    };
    std::thread::sleep(latency);
    let answer = if failing {
        let body = "Service Unavailable";
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nCache-Control: {cache_control}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let _ = stream.write_all(answer.as_bytes());
}
