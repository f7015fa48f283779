//! A loopback JSON Web Key Set endpoint in the format Google (`oauth2/v3/certs`, RSA) and IAP
//! (`iap/verify/public_key-jwk`, P-256) serve, with keys generated in the test and tokens signed
//! with them (aws-lc-rs, test-only: the product's ring cannot generate RSA keys): good ones and
//! every kind of bad one.
//!
//! The key set, its `Cache-Control`, a latency and a failure mode can be changed while it
//! runs; fetches are counted.

use super::*;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair as _};
use base64::Engine as _;
use serde_json::json;
use std::io::Write as _;
use std::net::TcpListener;

/// An issuer of Google ID tokens.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The issuer of IAP assertions.
pub const IAP_ISSUER: &str = "https://cloud.google.com/iap";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Rsa(aws_lc_rs::rsa::KeyPair),
    P256(sig::EcdsaKeyPair),
}

/// A key pair generated for the test, with its public JWK.
pub struct TestKey {
    /// The `kid` it is published and signs under.
    pub kid: String,
    pair: Pair,
    /// The public key as a JWK (kid, alg and use included).
    pub jwk: Value,
    /// The public key in PEM (SubjectPublicKeyInfo): what an HS256 forgery uses as secret.
    pub public_pem: String,
}

impl TestKey {
    /// A fresh RSA-2048 key (RS256), as Google signs ID tokens with.
    pub fn rsa(kid: &str) -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("generate RSA key");
        let public = pair.public_key();
        let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(public);
        let der = public.as_der().expect("public key DER");
        Self {
            kid: kid.to_owned(),
            jwk: json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": b64(&components.n), "e": b64(&components.e),
            }),
            public_pem: pem(der.as_ref()),
            pair: Pair::Rsa(pair),
        }
    }

    /// A fresh P-256 key (ES256), as IAP signs its assertions with.
    pub fn p256(kid: &str) -> Self {
        let pair = sig::EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("generate P-256 key");
        let point = pair.public_key().as_ref().to_vec();
        let der = pair.public_key().as_der().expect("public key DER");
        Self {
            kid: kid.to_owned(),
            jwk: json!({
                "kty": "EC", "alg": "ES256", "crv": "P-256", "kid": kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..]),
            }),
            public_pem: pem(der.as_ref()),
            pair: Pair::P256(pair),
        }
    }

    /// `claims` signed with this key under its own `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// `claims` signed with this key, the header naming `kid` (a forgery, or an unknown key).
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let alg = match self.pair {
            Pair::Rsa(_) => "RS256",
            Pair::P256(_) => "ES256",
        };
        let input = signing_input(&json!({"alg": alg, "typ": "JWT", "kid": kid}), claims);
        let rng = SystemRandom::new();
        let signature = match &self.pair {
            Pair::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut out)
                    .expect("sign RS256");
                out
            }
            Pair::P256(pair) => pair
                .sign(&rng, input.as_bytes())
                .expect("sign ES256")
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }

    /// The classic key-confusion forgery: HS256 with this key's public PEM as the secret.
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": self.kid});
        let input = signing_input(&header, claims);
        let key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.public_pem.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", b64(tag.as_ref()))
    }

    /// An unsigned token (`alg: none`, empty signature) naming this key.
    pub fn alg_none(&self, claims: &Value) -> String {
        let header = json!({"alg": "none", "typ": "JWT", "kid": self.kid});
        format!("{}.", signing_input(&header, claims))
    }
}

/// `base64url(header).base64url(claims)`, what a JWS signs.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A SubjectPublicKeyInfo in PEM.
fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
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
