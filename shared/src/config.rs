//! The environment reader at the bottom of the library: [`Env`] (the process environment,
//! with `.env` beneath it locally), the one error a bad value makes ([`ConfigError`]: one line
//! naming the variable, what is wrong and the accepted form), the parse helpers every
//! subsystem shares (durations, sizes, booleans, origins), and the platform's `K_*` variables.
//!
//! Each subsystem keeps its own variables as constants beside their defaults, with their parse
//! (`server/config.rs`, `logging/config.rs`, ...); [`crate::app::RuntimeConfig`] composes them.
//! Functions parse their own variables through the same [`Env`], so the error format and the
//! `.env` rule hold for every variable of every function.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`: set by Cloud Run and Knative.
pub const K_SERVICE: &str = "K_SERVICE";
#[allow(missing_docs)]
pub const K_REVISION: &str = "K_REVISION";
#[allow(missing_docs)]
pub const K_CONFIGURATION: &str = "K_CONFIGURATION";

/// A variable with a value that can't be used: printed as one line, then the process exits 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?}: {problem}; expected {expected}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: String,
    /// The value as given (never printed for variables that hold secrets).
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// The accepted form.
    pub expected: String,
}

impl ConfigError {
    /// An error for `var` holding `value`.
    pub fn new(
        var: &str,
        value: &str,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Self {
            var: var.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

/// The variables a function sees: the process environment over, in a local run (no
/// `K_SERVICE`), a `.env` file in the working directory, with `sm://` values replaced by their
/// secrets at start-up. Never mutates the process environment. `Debug` lists names only: values
/// may be keys and secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The process environment, with `.env` beneath it when running locally.
    pub fn load() -> Result<Self, ConfigError> {
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        if !vars.contains_key(K_SERVICE) {
            let path = PathBuf::from(".env");
            if path.is_file() {
                let iter = dotenvy::from_path_iter(&path).map_err(|e| dotenv_error(&e, &path))?;
                for item in iter {
                    let (key, value) = item.map_err(|e| dotenv_error(&e, &path))?;
                    vars.entry(key).or_insert(value);
                }
            }
        }
        Ok(Self { vars })
    }

    /// An environment made of exactly these pairs (tests).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every variable, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets `var` (start-up only: secrets resolved into the environment).
    pub(crate) fn set(&mut self, var: &str, value: String) {
        self.vars.insert(var.to_owned(), value);
    }

    /// The raw value, treating an empty string as unset.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first of `vars` that is set.
    pub fn first_of<'a>(&'a self, vars: &[&'static str]) -> Option<(&'static str, &'a str)> {
        vars.iter()
            .find_map(|&name| self.get(name).map(|v| (name, v)))
    }

    /// A value parsed by `FromStr`, or `default` when unset.
    pub fn parse_or<T: FromStr>(
        &self,
        var: &str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::new(var, raw, e.to_string(), expected)),
        }
    }

    /// A duration such as `8s`, `500ms`, `2m` or a bare number of seconds; `default` when unset.
    pub fn duration_or(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).map_err(|problem| {
                ConfigError::new(
                    var,
                    raw,
                    problem,
                    "a duration such as 8s, 500ms or 2m (a bare number means seconds)",
                )
            }),
        }
    }

    /// A byte size such as `4MiB`, `16KiB`, `1048576`; `default` when unset.
    pub fn bytes_or(&self, var: &str, default: usize) -> Result<usize, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_bytes(raw).map_err(|problem| {
                ConfigError::new(
                    var,
                    raw,
                    problem,
                    "a size in bytes such as 1048576, 64KiB or 4MiB",
                )
            }),
        }
    }

    /// `true`/`false` (also 1/0, yes/no, on/off); `default` when unset.
    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    var,
                    self.get(var).unwrap_or_default(),
                    "not a boolean",
                    "true or false",
                )),
            },
        }
    }
}

/// A `.env` problem without the offending text: the line may hold a secret.
fn dotenv_error(e: &dotenvy::Error, path: &std::path::Path) -> ConfigError {
    let problem = match e {
        dotenvy::Error::LineParse(line, at) => {
            let number = std::fs::read_to_string(path).ok().and_then(|text| {
                text.lines()
                    .position(|l| l.contains(line.trim_end()))
                    .map(|i| i + 1)
            });
            match number {
                Some(n) => format!("line {n} does not parse (at character {})", at + 1),
                None => format!("a line does not parse (at character {})", at + 1),
            }
        }
        dotenvy::Error::Io(io) => format!("cannot read it: {io}"),
        _ => "does not parse".to_owned(),
    };
    ConfigError::new(".env", "", problem, "KEY=value lines (or remove .env)")
}

/// A duration that must not be zero (a zero timeout would refuse everything).
pub(crate) fn positive(env: &Env, var: &str, default: Duration) -> Result<Duration, ConfigError> {
    let d = env.duration_or(var, default)?;
    if d.is_zero() {
        return Err(ConfigError::new(
            var,
            env.get(var).unwrap_or_default(),
            "must be more than zero",
            "a duration such as 8s, 500ms or 2m",
        ));
    }
    Ok(d)
}

/// A comma-separated list of browser origins (`scheme://host[:port]`, `*` for any port).
pub fn origins(env: &Env, var: &str) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.get(var) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let o = o.trim_end_matches('/');
            let valid = (o.starts_with("http://") || o.starts_with("https://"))
                && !o["https://".len().min(o.len())..].contains('/');
            if valid {
                Ok(o.to_owned())
            } else {
                Err(ConfigError::new(
                    var,
                    raw,
                    format!("{o:?} is not an origin"),
                    "comma-separated origins such as https://app.example.com,http://localhost:*",
                ))
            }
        })
        .collect()
}

/// Parses `8s`, `500ms`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?}")),
    };
    let secs = n * scale;
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err("out of range".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_bytes(raw: &str) -> Result<usize, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| "not a whole number".to_string())?;
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" | "kb" => 1024,
        "mib" | "m" | "mb" => 1024 * 1024,
        "gib" | "g" | "gb" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown unit {other:?}")),
    };
    n.checked_mul(scale).ok_or_else(|| "too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_bytes("64KiB").unwrap(), 65536);
        assert!(parse_bytes("-1").is_err());
    }
}
