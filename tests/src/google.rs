//! A loopback stand-in for Google's metadata server and Secret Manager, on one port, reproducing
//! their wire formats as `platform.md` (sections 2 and 3) documents them:
//!
//! - metadata (`GCE_METADATA_HOST`): every request must carry `Metadata-Flavor: Google` (else
//!   403) and every answer carries it; `project/project-id` as text;
//!   `instance/service-accounts/default/token` as `{"access_token", "expires_in",
//!   "token_type": "Bearer"}`; `instance/service-accounts/default/email` as text, and
//!   `instance/service-accounts/default/?recursive=true` as `{"aliases", "email", "scopes"}`;
//!   when started [`FakeGoogle::minting`] ID tokens, `instance/service-accounts/default/identity
//!   ?audience=AUD[&format=full]` as the raw JWT (RS256, signed with the given [`TestKey`],
//!   `iss` `https://accounts.google.com`, `aud` AUD, `email` only with `format=full`), 400
//!   without an audience; mints are counted per audience;
//! - Secret Manager (`SECRET_MANAGER_ENDPOINT`): `GET /v1/projects/P/secrets/S/versions/V:access`
//!   with `Authorization: Bearer <that token>` answers `{"name", "payload": {"data": base64,
//!   "dataCrc32c": "<decimal>"}}`; errors are Google's JSON `{"error": {"code", "message",
//!   "status"}}`.
//!
//! Each secret is scripted ([`SecretAnswer`]); every Secret Manager answer can be delayed by a
//! fixed latency. Request lines are kept for assertions.

use super::*;
use crate::jwks::{self, TestKey};
use base64::Engine as _;
use std::io::Write as _;
use std::net::TcpListener;

/// The access token the fake metadata server hands out (and Secret Manager expects).
pub const ACCESS_TOKEN: &str = "ya29.fake-access-token";
/// The service account the fake metadata server reports.
pub const SERVICE_ACCOUNT: &str = "runtime@test-project.iam.gserviceaccount.com";

/// How Secret Manager answers for one secret.
#[derive(Clone, Debug)]
pub enum SecretAnswer {
    /// The value, with its correct CRC32C.
    Value(String),
    /// The value with a `dataCrc32c` that does not match it.
    WrongChecksum(String),
    /// An error: HTTP status, Google status (`PERMISSION_DENIED`) and message.
    Error(u16, &'static str, String),
    /// Never answers.
    Hang,
    /// `503 UNAVAILABLE` this many times, then the value.
    UnavailableThen(usize, String),
}

/// The server, on its own threads until the test process ends.
pub struct FakeGoogle {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    script: Arc<Script>,
}

struct Script {
    project: String,
    secrets: Vec<(String, SecretAnswer)>,
    latency: Duration,
    /// Failures served so far, by secret.
    failures: Mutex<std::collections::HashMap<String, usize>>,
    /// The key ID tokens are signed with, when the identity endpoint is served.
    identity: Option<TestKey>,
    /// The key the first ID token is signed with instead, when set: a key rotated out of the
    /// published set, so that verifiers refuse that token (and accept the next).
    stale_first: Option<TestKey>,
    /// ID tokens minted so far: (audience, format) of each, in order.
    minted: Mutex<Vec<(String, Option<String>)>>,
}

impl FakeGoogle {
    /// Serves `project` and these secrets (by secret id, any project and version), each
    /// Secret Manager answer after `latency`.
    pub fn start(project: &str, secrets: &[(&str, SecretAnswer)], latency: Duration) -> Self {
        Self::start_with(project, secrets, latency, None, None)
    }

    /// Serves `project`, no secrets, and ID tokens signed with `key` (publish it on a
    /// [`crate::jwks::JwksServer`] to have them verified).
    pub fn minting(project: &str, key: TestKey) -> Self {
        Self::start_with(project, &[], Duration::ZERO, Some(key), None)
    }

    /// [`FakeGoogle::minting`], but the first ID token is signed with `stale` (give it the same
    /// `kid` and leave it off the key set): a verifier refuses that one token as badly signed,
    /// as after a key rotation, and accepts every later one.
    pub fn minting_stale_first(project: &str, key: TestKey, stale: TestKey) -> Self {
        Self::start_with(project, &[], Duration::ZERO, Some(key), Some(stale))
    }

    fn start_with(
        project: &str,
        secrets: &[(&str, SecretAnswer)],
        latency: Duration,
        identity: Option<TestKey>,
        stale_first: Option<TestKey>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake google");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Script {
            project: project.to_owned(),
            secrets: secrets
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            latency,
            failures: Mutex::new(Default::default()),
            identity,
            stale_first,
            minted: Mutex::new(Vec::new()),
        });
        let (log, shared) = (seen.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, script) = (log.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &script, &log);
                });
            }
        });
        Self { addr, seen, script }
    }

    /// The value for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// The value for `SECRET_MANAGER_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request line so far, with its `Authorization` header when it had one.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// How many Secret Manager reads reached the fake.
    pub fn secret_reads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.contains(":access"))
            .count()
    }

    /// The (audience, format) of every ID token minted so far, in order.
    pub fn minted(&self) -> Vec<(String, Option<String>)> {
        self.script.minted.lock().unwrap().clone()
    }

    /// How many ID tokens were minted for `audience`.
    pub fn mints_for(&self, audience: &str) -> usize {
        self.minted().iter().filter(|(a, _)| a == audience).count()
    }
}

/// The value of `name` in a query string, percent-decoded (`+` as a space).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(stream: TcpStream, script: &Script, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let target = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let auth = header("authorization");
    seen.lock().unwrap().push(match &auth {
        Some(a) => format!("GET {target} [{a}]"),
        None => format!("GET {target}"),
    });
    let path = target.split('?').next().unwrap_or_default();
    let mut out = stream;
    if let Some(meta) = path.strip_prefix("/computeMetadata/v1/") {
        if header("metadata-flavor").as_deref() != Some("Google") {
            return respond(
                &mut out,
                "403 Forbidden",
                "text/html",
                "Missing required header \"Metadata-Flavor\": \"Google\"",
                true,
            );
        }
        let sa = "instance/service-accounts/default/";
        return match meta {
            "project/project-id" => respond(
                &mut out,
                "200 OK",
                "application/text",
                &script.project,
                true,
            ),
            m if m == sa => {
                // `?recursive=true`: the account's details, as google-auth reads them first.
                let body = serde_json::json!({"aliases": ["default"], "email": SERVICE_ACCOUNT,
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"]});
                respond(
                    &mut out,
                    "200 OK",
                    "application/json",
                    &body.to_string(),
                    true,
                )
            }
            m if m == format!("{sa}email") => respond(
                &mut out,
                "200 OK",
                "application/text",
                SERVICE_ACCOUNT,
                true,
            ),
            m if m == format!("{sa}identity") && script.identity.is_some() => {
                let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
                let audience = query_param(query, "audience").filter(|a| !a.is_empty());
                let Some(audience) = audience else {
                    return respond(
                        &mut out,
                        "400 Bad Request",
                        "text/plain; charset=utf-8",
                        "non-empty audience parameter required",
                        true,
                    );
                };
                let format = query_param(query, "format");
                let mut claims = jwks::google_claims(&audience, SERVICE_ACCOUNT);
                if format.as_deref() != Some("full") {
                    // The standard format carries no e-mail.
                    let map = claims.as_object_mut().expect("claims are an object");
                    map.remove("email");
                    map.remove("email_verified");
                }
                let mut minted = script.minted.lock().unwrap();
                let key = match &script.stale_first {
                    Some(stale) if minted.is_empty() => stale,
                    _ => script.identity.as_ref().expect("checked above"),
                };
                let token = key.sign(&claims);
                minted.push((audience, format));
                drop(minted);
                respond(&mut out, "200 OK", "text/html; charset=utf-8", &token, true)
            }
            m if m == format!("{sa}token") => {
                let body = serde_json::json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"});
                respond(
                    &mut out,
                    "200 OK",
                    "application/json",
                    &body.to_string(),
                    true,
                )
            }
            _ => respond(&mut out, "404 Not Found", "text/html", "Not Found", true),
        };
    }
    if path == "/" || path == "/computeMetadata/v1" {
        // google-auth's probe for a metadata server.
        return respond(
            &mut out,
            "200 OK",
            "application/text",
            "computeMetadata/\n",
            true,
        );
    }
    std::thread::sleep(script.latency);
    let Some(resource) = path
        .strip_prefix("/v1/")
        .and_then(|p| p.strip_suffix(":access"))
    else {
        return google_error(&mut out, 404, "NOT_FOUND", "Method not found.");
    };
    if auth.as_deref() != Some(&format!("Bearer {ACCESS_TOKEN}")) {
        return google_error(
            &mut out,
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
    }
    let parts: Vec<&str> = resource.split('/').collect();
    let secret = parts
        .iter()
        .position(|p| *p == "secrets")
        .and_then(|i| parts.get(i + 1))
        .copied()
        .unwrap_or_default();
    let answer = script
        .secrets
        .iter()
        .find(|(s, _)| s == secret)
        .map(|(_, a)| a.clone());
    // Secret Manager names versions by project number in its answers.
    let name = format!("projects/123456789012/secrets/{secret}/versions/1");
    let payload = |value: &str, crc: u32| {
        let data = base64::engine::general_purpose::STANDARD.encode(value);
        serde_json::json!({"name": name, "payload": {"data": data, "dataCrc32c": crc.to_string()}})
            .to_string()
    };
    match answer {
        None => google_error(
            &mut out,
            404,
            "NOT_FOUND",
            &format!(
                "Secret [projects/123456789012/secrets/{secret}] not found or has no versions."
            ),
        ),
        Some(SecretAnswer::Value(v)) => respond(
            &mut out,
            "200 OK",
            "application/json; charset=UTF-8",
            &payload(&v, crc32c(v.as_bytes())),
            false,
        ),
        Some(SecretAnswer::WrongChecksum(v)) => respond(
            &mut out,
            "200 OK",
            "application/json; charset=UTF-8",
            &payload(&v, crc32c(v.as_bytes()) ^ 1),
            false,
        ),
        Some(SecretAnswer::Error(code, status, message)) => {
            google_error(&mut out, code, status, &message)
        }
        Some(SecretAnswer::Hang) => {
            let _ = reader.read_to_end(&mut Vec::new());
            Ok(())
        }
        Some(SecretAnswer::UnavailableThen(n, v)) => {
            let served = {
                let mut failures = script.failures.lock().unwrap();
                let count = failures.entry(secret.to_owned()).or_insert(0);
                *count += 1;
                *count
            };
            if served <= n {
                google_error(
                    &mut out,
                    503,
                    "UNAVAILABLE",
                    "The service is currently unavailable.",
                )
            } else {
                respond(
                    &mut out,
                    "200 OK",
                    "application/json; charset=UTF-8",
                    &payload(&v, crc32c(v.as_bytes())),
                    false,
                )
            }
        }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: test data is small.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn google_error(
    out: &mut TcpStream,
    code: u16,
    status: &str,
    message: &str,
) -> std::io::Result<()> {
    let body = serde_json::json!({"error": {"code": code, "message": message, "status": status}});
    let line = match code {
        401 => "401 Unauthorized",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        429 => "429 Too Many Requests",
        503 => "503 Service Unavailable",
        _ => "400 Bad Request",
    };
    respond(
        out,
        line,
        "application/json; charset=UTF-8",
        &body.to_string(),
        false,
    )
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    metadata: bool,
) -> std::io::Result<()> {
    let flavor = if metadata {
        "Metadata-Flavor: Google\r\n"
    } else {
        ""
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\n{flavor}Content-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
