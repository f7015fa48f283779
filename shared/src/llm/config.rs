//! Where models are and how to sign in: the environment variables model providers are found
//! with, their default base URLs, API keys that never print, and Ollama's address rules.

use std::fmt;

use crate::config::{ConfigError, Env};
use crate::outbound::Url;

/// `OLLAMA_URL`: Ollama's base URL (such as `http://ollama:11434`), when a model service names
/// no `config.address`.
pub const OLLAMA_URL: &str = "OLLAMA_URL";
/// `OLLAMA_HOST`: Ollama's own variable, read when `OLLAMA_URL` is unset; like Ollama, it may
/// lack a scheme (`http` then) and a port (11434 without a scheme, else the scheme's).
pub const OLLAMA_HOST: &str = "OLLAMA_HOST";
/// `OPENAI_API_KEY`: the key for OpenAI's API.
pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
/// `OPENAI_BASE_URL`: the variable every OpenAI client honours, read when an `openai` or
/// `openai_compatible` model names no `config.address` (such as `http://127.0.0.1:8080/v1`
/// for llama.cpp's server). Not OpenAI's own API, so no key is required (`OPENAI_API_KEY` is
/// sent when set).
pub const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
/// `XAI_API_KEY`: the key for xAI's API.
pub const XAI_API_KEY: &str = "XAI_API_KEY";
/// `HF_TOKEN`: the Hugging Face token (the Hub's own name for it).
pub const HF_TOKEN: &str = "HF_TOKEN";
/// `HUGGINGFACE_API_KEY`: the Hugging Face token as the seed system's manifests named it; read
/// when `HF_TOKEN` is unset.
pub const HUGGINGFACE_API_KEY: &str = "HUGGINGFACE_API_KEY";

/// Where Ollama listens when nothing says otherwise.
pub const DEFAULT_OLLAMA_URL: &str = "http://localhost:11434";
/// OpenAI's API.
pub const DEFAULT_OPENAI_URL: &str = "https://api.openai.com/v1";
/// xAI's API.
pub const DEFAULT_XAI_URL: &str = "https://api.x.ai/v1";
/// Hugging Face's Inference Providers router (OpenAI-compatible).
pub const DEFAULT_HF_URL: &str = "https://router.huggingface.co/v1";

const OLLAMA_PORT: u16 = 11434;

/// An API key. `Debug` and `Display` print `***`; the text is only reachable through
/// [`ApiKey::expose`], which the HTTP layer calls to build a sensitive header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps `key` (surrounding whitespace, such as a newline from a secret file, is cut).
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_owned())
    }

    /// The first of `vars` that is set in `env`.
    pub fn from_env(env: &Env, vars: &[&'static str]) -> Option<Self> {
        env.first_of(vars).map(|(_, v)| Self::new(v))
    }

    /// The key itself: only for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `***` (for quoting server messages,
    /// which sometimes repeat what they were sent).
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A model provider: which wire format it speaks, where its API is by default and which
/// variables hold its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Ollama's native API (`/api/chat`).
    Ollama,
    /// OpenAI.
    OpenAi,
    /// xAI.
    Xai,
    /// Hugging Face's router.
    HuggingFace,
    /// Any other OpenAI-compatible server (vLLM, llama.cpp's server, Ollama's `/v1`); it has no
    /// default address and no key variable.
    OpenAiCompatible,
}

impl Provider {
    /// Every provider, for messages listing them.
    pub const ALL: [Provider; 5] = [
        Self::Ollama,
        Self::OpenAi,
        Self::Xai,
        Self::HuggingFace,
        Self::OpenAiCompatible,
    ];

    /// The name used in configuration files (`ollama`, `openai`, `xai`, `huggingface`,
    /// `openai_compatible`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
            Self::Xai => "xai",
            Self::HuggingFace => "huggingface",
            Self::OpenAiCompatible => "openai_compatible",
        }
    }

    /// The provider named `name` in configuration (`hf` and `vllm`, `llamacpp` are accepted too).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "ollama" => Self::Ollama,
            "openai" => Self::OpenAi,
            "xai" | "x_ai" | "grok" => Self::Xai,
            "huggingface" | "hf" => Self::HuggingFace,
            "openai_compatible" | "openai-compatible" | "vllm" | "llamacpp" | "llama.cpp" => {
                Self::OpenAiCompatible
            }
            _ => return None,
        })
    }

    /// OpenTelemetry's `gen_ai.provider.name` (none is defined for Ollama or generic servers).
    pub fn otel_name(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
            Self::Xai => "x_ai",
            Self::HuggingFace => "huggingface",
            Self::OpenAiCompatible => "openai_compatible",
        }
    }

    /// The variables its key is read from, first match wins.
    pub fn key_vars(self) -> &'static [&'static str] {
        match self {
            Self::OpenAi => &[OPENAI_API_KEY],
            Self::Xai => &[XAI_API_KEY],
            Self::HuggingFace => &[HF_TOKEN, HUGGINGFACE_API_KEY],
            Self::Ollama | Self::OpenAiCompatible => &[],
        }
    }

    /// Its public API, if it has one.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            Self::Ollama => Some(DEFAULT_OLLAMA_URL),
            Self::OpenAi => Some(DEFAULT_OPENAI_URL),
            Self::Xai => Some(DEFAULT_XAI_URL),
            Self::HuggingFace => Some(DEFAULT_HF_URL),
            Self::OpenAiCompatible => None,
        }
    }
}

/// Ollama's base URL: `address` (a model service's `config.address`), else `OLLAMA_URL`, else
/// `OLLAMA_HOST`, else [`DEFAULT_OLLAMA_URL`]. Each may be written the way `OLLAMA_HOST` allows
/// (`ollama`, `0.0.0.0:11434`, `http://x:1`); an unspecified address (`0.0.0.0`, `::`) is
/// where a server listens, so it is reached on loopback.
pub fn ollama_url(address: Option<&str>, env: &Env) -> Result<Url, ConfigError> {
    let (source, raw) = match address.map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => ("config.address", a),
        None => match env.first_of(&[OLLAMA_URL, OLLAMA_HOST]) {
            Some(found) => found,
            None => return normalize_ollama(DEFAULT_OLLAMA_URL).map_err(|_| unreachable_default()),
        },
    };
    normalize_ollama(raw).map_err(|problem| {
        ConfigError::new(
            source,
            raw,
            problem,
            "an address such as http://ollama:11434, ollama:11434 or ollama",
        )
    })
}

fn unreachable_default() -> ConfigError {
    ConfigError::new(OLLAMA_URL, DEFAULT_OLLAMA_URL, "invalid default", "a URL")
}

/// Ollama's own `envconfig.Host` rules: no scheme means http and port 11434; an explicit
/// scheme without a port means that scheme's port.
fn normalize_ollama(raw: &str) -> Result<Url, String> {
    let raw = raw.trim().trim_end_matches('/');
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), raw),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("unsupported scheme {scheme}"));
    }
    let has_scheme = raw.contains("://");
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    if hostport.is_empty() {
        return Err("no host".into());
    }
    let mut url = Url::parse(&format!("{scheme}://{hostport}/{path}"))
        .map_err(|e| format!("not an address: {e}"))?;
    if !has_scheme && url.port().is_none() {
        let _ = url.set_port(Some(OLLAMA_PORT));
    }
    let unspecified = url
        .host_str()
        .and_then(|h| h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_unspecified());
    if unspecified {
        let _ = url.set_host(Some("127.0.0.1"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(address: Option<&str>, pairs: &[(&str, &str)]) -> String {
        let env = Env::from_pairs(pairs.iter().copied());
        ollama_url(address, &env).unwrap().to_string()
    }

    #[test]
    fn ollama_address_precedence_and_ollama_host_forms() {
        assert_eq!(resolve(None, &[]), "http://localhost:11434/");
        assert_eq!(
            resolve(None, &[(OLLAMA_HOST, "ollama")]),
            "http://ollama:11434/"
        );
        assert_eq!(
            resolve(None, &[(OLLAMA_HOST, "0.0.0.0:11434")]),
            "http://127.0.0.1:11434/"
        );
        assert_eq!(resolve(None, &[(OLLAMA_HOST, "http://x:1")]), "http://x:1/");
        assert_eq!(resolve(None, &[(OLLAMA_HOST, "https://x")]), "https://x/");
        assert_eq!(
            resolve(None, &[(OLLAMA_HOST, "ollama"), (OLLAMA_URL, "http://u:2")]),
            "http://u:2/"
        );
        assert_eq!(
            resolve(Some("http://a:3/base"), &[(OLLAMA_URL, "http://u:2")]),
            "http://a:3/base"
        );
        let env = Env::from_pairs([(OLLAMA_URL, "ftp://x")]);
        let e = ollama_url(None, &env).unwrap_err().to_string();
        assert!(
            e.starts_with("OLLAMA_URL=\"ftp://x\": unsupported scheme ftp"),
            "{e}"
        );
    }

    #[test]
    fn api_keys_never_print() {
        let key = ApiKey::new("sk-secret-123\n");
        assert_eq!(format!("{key:?} {key}"), "ApiKey(***) ***");
        assert_eq!(key.expose(), "sk-secret-123");
        assert_eq!(key.redact("bad key sk-secret-123!"), "bad key ***!");
        let env = Env::from_pairs([(HUGGINGFACE_API_KEY, "hf_b")]);
        let found = ApiKey::from_env(&env, Provider::HuggingFace.key_vars()).unwrap();
        assert_eq!(found.expose(), "hf_b");
    }
}
