//! `mcp_servers` entries resolved: the transport's own keys required (and the others refused),
//! URLs parsed, TLS files checked to exist, auth tokens read.

use std::path::PathBuf;
use std::time::Duration;

use aixrun::Env;
use aixrun::llm::ApiKey;
use aixrun::outbound::Url;

use super::Problem;
use super::file::{AuthFile, AuthKind, McpServerFile, TlsFile, TransportKind};
use super::locate::Path;
use super::model::{Auth, McpServer, Tls, Transport};
use super::resolve::duration;

/// Default per-call timeout of an MCP server.
const DEFAULT_MCP_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn server(s: &McpServerFile, at: &Path, env: &Env) -> Result<McpServer, Problem> {
    let tls = s.tls.as_ref().map(|t| tls(t, &at.key("tls"))).transpose()?;
    let url_of = |raw: &str, key: &str, schemes: &[&str]| -> Result<Url, Problem> {
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("http://{raw}")
        };
        Url::parse(&with_scheme)
            .ok()
            .filter(|u| schemes.contains(&u.scheme()) && u.host_str().is_some())
            .ok_or_else(|| {
                Problem::new(
                    at.key(key),
                    format!("{raw:?} is not an address; expected such as https://mcp.example.com/mcp or host:port"),
                )
            })
    };
    let transport = match s.transport {
        TransportKind::Local => {
            for (key, set) in [
                ("address", s.address.is_some()),
                ("url", s.url.is_some()),
                ("tls", s.tls.is_some()),
                ("auth", s.auth.is_some()),
            ] {
                if set {
                    return Err(Problem::new(
                        at.key(key),
                        format!("a local MCP server runs in process and takes no {key}"),
                    ));
                }
            }
            Transport::Local
        }
        TransportKind::Grpc => {
            let raw = s.address.as_deref().ok_or_else(|| {
                Problem::new(
                    at.key("name"),
                    "a grpc MCP server needs `address` (host:port)",
                )
            })?;
            if s.url.is_some() {
                return Err(Problem::new(
                    at.key("url"),
                    "a grpc MCP server takes `address`, not `url`",
                ));
            }
            Transport::Grpc {
                address: url_of(raw, "address", &["http", "https"])?,
                tls,
            }
        }
        TransportKind::Http => {
            let raw = s
                .url
                .as_deref()
                .ok_or_else(|| Problem::new(at.key("name"), "an http MCP server needs `url`"))?;
            if s.address.is_some() {
                return Err(Problem::new(
                    at.key("address"),
                    "an http MCP server takes `url`, not `address`",
                ));
            }
            Transport::Http {
                url: url_of(raw, "url", &["http", "https"])?,
                tls,
            }
        }
    };
    let auth = match &s.auth {
        None => None,
        Some(a) => Some(auth(a, &at.key("auth"), &transport, env)?),
    };
    let timeout = match &s.timeout {
        None => DEFAULT_MCP_TIMEOUT,
        Some(raw) => duration(raw, &at.key("timeout"))?,
    };
    Ok(McpServer {
        name: s.name.clone(),
        transport,
        auth,
        timeout,
        tools: s.tools.clone(),
    })
}

fn auth(a: &AuthFile, at: &Path, transport: &Transport, env: &Env) -> Result<Auth, Problem> {
    match a.kind {
        AuthKind::Bearer => {
            if a.audience.is_some() {
                return Err(Problem::new(
                    at.key("audience"),
                    "audience is for id_token auth",
                ));
            }
            let token = match (&a.token, &a.token_env) {
                (Some(_), Some(_)) => {
                    return Err(Problem::new(
                        at.key("token_env"),
                        "set token or token_env, not both",
                    ));
                }
                (Some(t), None) => t.clone(),
                (None, Some(var)) => env.get(var).map(str::to_owned).ok_or_else(|| {
                    Problem::new(at.key("token_env"), format!("{var} is not set"))
                })?,
                (None, None) => {
                    return Err(Problem::new(
                        at.key("type"),
                        "bearer auth needs token or token_env",
                    ));
                }
            };
            Ok(Auth::Bearer(ApiKey::new(token)))
        }
        AuthKind::IdToken => {
            if a.token.is_some() || a.token_env.is_some() {
                return Err(Problem::new(
                    at.key("type"),
                    "id_token auth mints its own token; remove token and token_env",
                ));
            }
            let audience = match (&a.audience, transport) {
                (Some(aud), _) => aud.clone(),
                (None, Transport::Http { url, .. }) => url.origin().ascii_serialization(),
                (None, Transport::Grpc { address, .. }) => address.origin().ascii_serialization(),
                (None, Transport::Local) => String::new(),
            };
            Ok(Auth::IdToken { audience })
        }
        AuthKind::None => {
            no_token_keys(a, at, "none")?;
            if a.audience.is_some() {
                return Err(Problem::new(
                    at.key("audience"),
                    "audience is for id_token auth",
                ));
            }
            Ok(Auth::None)
        }
    }
}

/// `token` and `token_env` belong to bearer auth only.
pub(super) fn no_token_keys(a: &AuthFile, at: &Path, kind: &str) -> Result<(), Problem> {
    match (&a.token, &a.token_env) {
        (None, None) => Ok(()),
        (Some(_), _) => Err(Problem::new(
            at.key("token"),
            format!("{kind} auth takes no token"),
        )),
        (_, Some(_)) => Err(Problem::new(
            at.key("token_env"),
            format!("{kind} auth takes no token_env"),
        )),
    }
}

fn tls(t: &TlsFile, at: &Path) -> Result<Tls, Problem> {
    if t.cert_file.is_some() != t.key_file.is_some() {
        let missing = if t.cert_file.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        return Err(Problem::new(
            at.clone(),
            format!("cert_file and key_file go together; {missing} is missing"),
        ));
    }
    let file = |key: &str, v: &Option<String>| -> Result<Option<PathBuf>, Problem> {
        match v {
            None => Ok(None),
            Some(p) if std::path::Path::new(p).is_file() => Ok(Some(PathBuf::from(p))),
            Some(p) => Err(Problem::new(at.key(key), format!("{p}: no such file"))),
        }
    };
    Ok(Tls {
        ca_file: file("ca_file", &t.ca_file)?,
        cert_file: file("cert_file", &t.cert_file)?,
        key_file: file("key_file", &t.key_file)?,
    })
}
