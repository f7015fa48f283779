//! orchestrate's configuration: the YAML file named by `ORCHESTRATE_CONFIG` (else the bundled
//! example), `${VAR}` interpolation, and validation into the resolved [`Orchestration`] the run
//! engine walks. Every problem stops start-up with one line naming file:line:column.

mod file;
mod graph;
mod interpolate;
mod locate;
mod mcp_server;
mod model;
mod resolve;
mod roles;
mod secrets;
#[cfg(test)]
mod tests;

use aixrun::{ConfigError, Env, StartupError};

pub use file::FileConfig;
pub use model::{
    Agent, Aggregator, Approval, Auth, Budget, Category, Classifier, DEFAULT_SESSION_MAX_TURNS,
    Defaults, Join, Link, McpServer, ModelService, OnError, Orchestration, Planner, Role, Strategy,
    Supervisor, Tls, Transport, Workflow,
};

/// `ORCHESTRATE_CONFIG`: path of the YAML file describing MCP servers, model services, agents,
/// workflows and defaults; unset, the bundled example (one react agent on Ollama using
/// mcp-tool's `echo` and `get_weather`).
pub const ORCHESTRATE_CONFIG: &str = "ORCHESTRATE_CONFIG";
/// `ORCHESTRATE_MODEL`: the bundled example's model as `provider:model` (default
/// `ollama:qwen3:0.6b`); read only through the example's `${ORCHESTRATE_MODEL:-...}`.
pub const ORCHESTRATE_MODEL: &str = "ORCHESTRATE_MODEL";
/// `ORCHESTRATE_MODEL_URL`: the base URL of a model named in place as `provider:model` (such
/// as the bundled example's `ORCHESTRATE_MODEL`), as `config.address` is a model service's:
/// `openai_compatible:MODEL` with `http://127.0.0.1:8080/v1` runs on llama.cpp's server.
/// Unset, each provider's own rules apply (`OPENAI_BASE_URL`, `OLLAMA_URL`, ...).
pub const ORCHESTRATE_MODEL_URL: &str = "ORCHESTRATE_MODEL_URL";
/// `OPENAI_BASE_URL`: where `openai` and `openai_compatible` models without an address are
/// served (every OpenAI client's variable); `OPENAI_API_KEY` is sent there when set.
pub use aixrun::llm::config::OPENAI_BASE_URL;
/// API keys read when a model service's `config.api_key` is unset: `OPENAI_API_KEY` (openai),
/// `XAI_API_KEY` (xai), `HF_TOKEN` then `HUGGINGFACE_API_KEY` (huggingface).
pub use aixrun::llm::config::{HF_TOKEN, HUGGINGFACE_API_KEY, OPENAI_API_KEY, XAI_API_KEY};
/// `OLLAMA_URL`, then `OLLAMA_HOST`: where Ollama is when a model service names no
/// `config.address` (default `http://localhost:11434`). `OLLAMA_HOST` may lack a scheme and port.
pub use aixrun::llm::config::{OLLAMA_HOST, OLLAMA_URL};

/// The bundled example.
pub const BUNDLED: &str = include_str!("example.yaml");
/// How the bundled example is named in messages.
pub const BUNDLED_NAME: &str = "(bundled example)";

const EXPECTED: &str = "a YAML file as described in the README (orchestrate configuration)";

/// A problem found after parsing, at the path of the entry that has it.
#[derive(Debug)]
pub(crate) struct Problem {
    path: locate::Path,
    message: String,
}

impl Problem {
    fn new(path: locate::Path, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }
}

/// Reads, interpolates, parses and resolves the configuration (`sm://` values in it are
/// refused: see [`load_with_secrets`]).
pub fn load(env: &Env) -> Result<Orchestration, ConfigError> {
    let (name, text) = read(env)?;
    parse(&name, &text, env)
}

/// [`load`], with every literal `sm://` value of the file first resolved from Secret Manager
/// (aixrun's resolver; `metadata_base` is the metadata server, for the project and token).
/// A malformed reference is a configuration error at its line (exit 2); a secret that can't be
/// read is one line naming the file and the key (exit 1).
pub async fn load_with_secrets(
    env: &Env,
    metadata_base: &str,
) -> Result<Orchestration, StartupError> {
    let (name, text) = read(env)?;
    let fail = failing(&name);
    let interpolated =
        interpolate::interpolate(&text, env).map_err(|e| fail(e.line, e.column, &e.problem))?;
    // Most files hold no reference: their YAML is parsed once, by `parse` (parsing is most of
    // orchestrate's start-up instructions). A reference can only be spelled with `sm://` in
    // the text, or through a double-quoted escape.
    if !secrets::may_hold_references(&interpolated.text) {
        return Ok(parse_interpolated(&name, &interpolated, env, &[])?);
    }
    let doc = match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&interpolated.text) {
        Ok(doc) => doc,
        // Not YAML: `parse_interpolated` says where.
        Err(_) => return Ok(parse_interpolated(&name, &interpolated, env, &[])?),
    };
    let refs = secrets::references(&doc).map_err(|(path, problem)| {
        let (line, column) = locate::locate(&interpolated.text, &path)
            .map_or((1, 1), |(l, c)| interpolated.original(l, c));
        fail(line, column, &format!("{path}: {problem}"))
    })?;
    if refs.is_empty() {
        return Ok(parse_interpolated(&name, &interpolated, env, &[])?);
    }
    let named: Vec<_> = refs
        .iter()
        .map(|(path, raw, r)| {
            (
                format!("{ORCHESTRATE_CONFIG}={name}: {path}"),
                raw.clone(),
                r.clone(),
            )
        })
        .collect();
    let values = aixrun::gcp::secrets::fetch(env, metadata_base, &named).await?;
    let values: Vec<_> = refs.into_iter().map(|(p, _, _)| p).zip(values).collect();
    Ok(parse_interpolated(&name, &interpolated, env, &values)?)
}

fn read(env: &Env) -> Result<(String, String), ConfigError> {
    match env.get(ORCHESTRATE_CONFIG) {
        None => Ok((BUNDLED_NAME.to_owned(), BUNDLED.to_owned())),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    ORCHESTRATE_CONFIG,
                    path,
                    format!("cannot read it: {e}"),
                    EXPECTED,
                )
            })?;
            Ok((path.to_owned(), text))
        }
    }
}

fn failing(name: &str) -> impl Fn(usize, usize, &str) -> ConfigError + '_ {
    move |line: usize, column: usize, problem: &str| {
        ConfigError::new(
            ORCHESTRATE_CONFIG,
            name,
            format!("{name}:{line}:{column}: {problem}"),
            EXPECTED,
        )
    }
}

/// Parses `text` (named `name` in messages).
pub fn parse(name: &str, text: &str, env: &Env) -> Result<Orchestration, ConfigError> {
    let interpolated = interpolate::interpolate(text, env)
        .map_err(|e| failing(name)(e.line, e.column, &e.problem))?;
    parse_interpolated(name, &interpolated, env, &[])
}

/// Parses the interpolated file with each resolved `sm://` value of `secrets` put in its
/// place; the file is still checked as written first, so that every error points into it.
fn parse_interpolated(
    name: &str,
    interpolated: &interpolate::Interpolated,
    env: &Env,
    secrets: &[(locate::Path, aixrun::gcp::secrets::SecretValue)],
) -> Result<Orchestration, ConfigError> {
    let fail = failing(name);
    let text = &interpolated.text;
    let file: FileConfig = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        let file: FileConfig = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map_or((1, 1), |l| interpolated.original(l.line(), l.column()));
            // serde_yaml_ng appends "at line L column C" of the substituted text: the position
            // is given in front instead, as it is in the file.
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or(&message);
            fail(line, column, message)
        })?;
        if secrets.is_empty() {
            file
        } else {
            let mut doc: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(text).map_err(|e| fail(1, 1, &e.to_string()))?;
            secrets::substitute(&mut doc, secrets);
            // Strings replaced by strings: the shape checked above is unchanged.
            serde_yaml_ng::from_value(doc).map_err(|e| fail(1, 1, &e.to_string()))?
        }
    };
    resolve::resolve(file, env, name).map_err(|p| {
        let (line, column) =
            locate::locate(text, &p.path).map_or((1, 1), |(l, c)| interpolated.original(l, c));
        fail(line, column, &format!("{}: {}", p.path, p.message))
    })
}
