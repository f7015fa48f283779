//! mcp-tool's configuration: an optional YAML file named by `MCP_TOOL_CONFIG`, then environment
//! overrides. Every problem stops start-up with one line (for the file: path, line, column).

use std::collections::BTreeMap;
use std::time::Duration;

use aixrun::config::parse_duration;
use aixrun::{ConfigError, Env};
use serde::Deserialize;

use crate::tools::{huggingface, weather};

/// `MCP_TOOL_CONFIG`: path of the YAML configuration file.
pub const MCP_TOOL_CONFIG: &str = "MCP_TOOL_CONFIG";
/// `MCP_ALLOWED_ORIGINS`: comma-separated browser origins allowed to call mcp-tool (added to
/// the runtime's `ALLOWED_ORIGINS`).
pub const MCP_ALLOWED_ORIGINS: &str = "MCP_ALLOWED_ORIGINS";
/// `MCP_TOOLS`: comma-separated tool names; when set, only these are served.
pub const MCP_TOOLS: &str = "MCP_TOOLS";
/// `MCP_CONFORMANCE_TOOLS`: serve the conformance suite's fixture tools.
pub const MCP_CONFORMANCE_TOOLS: &str = "MCP_CONFORMANCE_TOOLS";
/// `MCP_TOOL_TIMEOUT`: default per-tool timeout.
pub const MCP_TOOL_TIMEOUT: &str = "MCP_TOOL_TIMEOUT";
/// `MCP_TOOL_CONCURRENCY`: default calls of one tool at once.
pub const MCP_TOOL_CONCURRENCY: &str = "MCP_TOOL_CONCURRENCY";
/// `MCP_MAX_RESULT_BYTES`: largest tool result (content plus structured content).
pub const MCP_MAX_RESULT_BYTES: &str = "MCP_MAX_RESULT_BYTES";

const DEFAULT_MAX_RESULT: usize = 1024 * 1024;

/// The file's shape. Every section and key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Browser origins allowed to call `/mcp`.
    pub allowed_origins: Vec<String>,
    /// Largest tool result in bytes.
    pub max_result_bytes: Option<usize>,
    /// Limits applied to every tool unless overridden.
    pub defaults: Limits,
    /// Per-tool limits, by tool name.
    pub limits: BTreeMap<String, Limits>,
    /// Only these tools (by name) are served, when set.
    pub enabled_tools: Option<Vec<String>>,
    /// Tool groups and their settings.
    pub tools: ToolsConfig,
}

/// Timeout and concurrency of a tool.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Such as `30s` or `500ms`.
    pub timeout: Option<String>,
    /// Calls at once.
    pub max_concurrency: Option<usize>,
}

/// An on/off switch for a tool group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Toggle {
    /// Whether the group is served.
    pub enabled: bool,
}

impl Toggle {
    const fn on() -> Self {
        Self { enabled: true }
    }
}

impl Default for Toggle {
    fn default() -> Self {
        Self::on()
    }
}

/// The tool groups.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// `echo`.
    pub echo: Toggle,
    /// `get_weather` (Open-Meteo).
    pub weather: weather::Settings,
    /// `hf_*` (Hugging Face).
    pub huggingface: huggingface::Settings,
    /// `test_*` fixtures for the conformance suite (off by default).
    pub conformance: Toggle,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            echo: Toggle::on(),
            weather: weather::Settings::default(),
            huggingface: huggingface::Settings::default(),
            conformance: Toggle { enabled: false },
        }
    }
}

/// Resolved limits for one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// Timeout.
    pub timeout: Option<Duration>,
    /// Concurrency.
    pub max_concurrency: Option<usize>,
}

/// Everything mcp-tool needs, resolved.
#[derive(Debug)]
pub struct McpToolConfig {
    /// Origins allowed to call `/mcp` from a browser.
    pub allowed_origins: Vec<String>,
    /// Result size cap.
    pub max_result_bytes: usize,
    /// Default limits.
    pub defaults: ToolLimits,
    /// Per-tool limits.
    pub limits: BTreeMap<String, ToolLimits>,
    /// Tool name filter.
    pub enabled_tools: Option<Vec<String>>,
    /// Tool groups.
    pub tools: ToolsConfig,
    /// Hugging Face token, if any.
    pub hf_token: Option<huggingface::Token>,
}

impl McpToolConfig {
    /// Reads the file (if named) and applies the environment overrides.
    pub fn load(env: &Env) -> Result<Self, ConfigError> {
        let file = match env.get(MCP_TOOL_CONFIG) {
            None => FileConfig::default(),
            Some(path) => read_file(path)?,
        };
        let limits_of = |var: &str, l: &Limits| -> Result<ToolLimits, ConfigError> {
            let timeout = match &l.timeout {
                None => None,
                Some(raw) => Some(parse_duration(raw).map_err(|p| {
                    ConfigError::new(var, raw, p, "a duration such as 30s or 500ms")
                })?),
            };
            if l.max_concurrency == Some(0) {
                return Err(ConfigError::new(
                    var,
                    "0",
                    "would refuse every call",
                    "at least 1",
                ));
            }
            Ok(ToolLimits {
                timeout,
                max_concurrency: l.max_concurrency,
            })
        };
        let mut defaults = limits_of("MCP_TOOL_CONFIG defaults", &file.defaults)?;
        if env.get(MCP_TOOL_TIMEOUT).is_some() {
            defaults.timeout = Some(env.duration_or(MCP_TOOL_TIMEOUT, Duration::ZERO)?);
        }
        if env.get(MCP_TOOL_CONCURRENCY).is_some() {
            let n: usize = env.parse_or(MCP_TOOL_CONCURRENCY, 1, "a whole number, at least 1")?;
            if n == 0 {
                return Err(ConfigError::new(
                    MCP_TOOL_CONCURRENCY,
                    "0",
                    "would refuse every call",
                    "at least 1",
                ));
            }
            defaults.max_concurrency = Some(n);
        }
        let mut limits = BTreeMap::new();
        for (name, l) in &file.limits {
            limits.insert(
                name.clone(),
                limits_of(&format!("MCP_TOOL_CONFIG limits.{name}"), l)?,
            );
        }
        let allowed_origins = match env.get(MCP_ALLOWED_ORIGINS) {
            Some(raw) => split_list(raw),
            None => file.allowed_origins,
        };
        for origin in &allowed_origins {
            if origin != "null" && !origin.contains("://") {
                return Err(ConfigError::new(
                    MCP_ALLOWED_ORIGINS,
                    origin,
                    "an origin needs a scheme",
                    "origins such as https://app.example.com or http://localhost:*",
                ));
            }
        }
        let mut tools = file.tools;
        for (group, check) in [
            ("tools.weather", tools.weather.validate()),
            ("tools.huggingface", tools.huggingface.validate()),
        ] {
            check.map_err(|problem| {
                ConfigError::new(
                    MCP_TOOL_CONFIG,
                    env.get(MCP_TOOL_CONFIG).unwrap_or_default(),
                    format!("{group}: {problem}"),
                    "settings as described in the README",
                )
            })?;
        }
        if env.get(MCP_CONFORMANCE_TOOLS).is_some() {
            tools.conformance.enabled = env.bool_or(MCP_CONFORMANCE_TOOLS, false)?;
        }
        let max_result_bytes = match file.max_result_bytes {
            Some(n) if env.get(MCP_MAX_RESULT_BYTES).is_none() => n,
            _ => env.bytes_or(MCP_MAX_RESULT_BYTES, DEFAULT_MAX_RESULT)?,
        };
        Ok(Self {
            allowed_origins,
            max_result_bytes,
            defaults,
            limits,
            enabled_tools: env.get(MCP_TOOLS).map(split_list).or(file.enabled_tools),
            tools,
            hf_token: huggingface::Token::from_env(env),
        })
    }
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_file(path: &str) -> Result<FileConfig, ConfigError> {
    let expected = "a YAML file as described in the README (mcp-tool configuration)";
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            MCP_TOOL_CONFIG,
            path,
            format!("cannot read it: {e}"),
            expected,
        )
    })?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml_ng::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!("{path}:{}:{}: ", l.line(), l.column()))
            .unwrap_or_else(|| format!("{path}: "));
        ConfigError::new(MCP_TOOL_CONFIG, path, format!("{at}{e}"), expected)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A YAML file in the temp directory, removed on drop.
    struct TempFile(std::path::PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn write(content: &str) -> TempFile {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("mcp-tool-cfg-{}-{n}.yaml", std::process::id()));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }

    fn load(pairs: &[(&str, &str)]) -> Result<McpToolConfig, ConfigError> {
        McpToolConfig::load(&Env::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_serve_echo_and_weather() {
        let c = load(&[]).unwrap();
        assert!(c.tools.echo.enabled && c.tools.weather.enabled);
        assert!(!c.tools.conformance.enabled);
        assert_eq!(c.max_result_bytes, DEFAULT_MAX_RESULT);
    }

    #[test]
    fn file_errors_name_file_line_and_column() {
        let f = write("tools:\n  echo:\n    enabled: true\n    colour: blue\n");
        let path = f.0.display().to_string();
        let e = load(&[(MCP_TOOL_CONFIG, &path)]).unwrap_err();
        let line = e.to_string();
        assert!(line.contains(&format!("{path}:4:")), "{line}");
        assert!(line.contains("unknown field `colour`"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn env_overrides_file() {
        let f = write(
            "allowed_origins: [\"https://a.example\"]\ndefaults: {timeout: 5s}\nlimits: {echo: {max_concurrency: 2}}\n",
        );
        let path = f.0.display().to_string();
        let c = load(&[
            (MCP_TOOL_CONFIG, path.as_str()),
            (MCP_ALLOWED_ORIGINS, "https://b.example"),
            (MCP_CONFORMANCE_TOOLS, "true"),
        ])
        .unwrap();
        assert_eq!(c.allowed_origins, ["https://b.example"]);
        assert!(c.tools.conformance.enabled);
        assert_eq!(c.defaults.timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.limits["echo"].max_concurrency, Some(2));
        assert!(load(&[(MCP_ALLOWED_ORIGINS, "example.com")]).is_err());
    }
}
