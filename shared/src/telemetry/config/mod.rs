//! The `OTEL_*` variables, read in the first (synchronous) start-up phase so that a bad value
//! stops the process with exit code 2 before anything starts. Header values are read again
//! in the second phase, after `sm://` references have become their secrets.

use std::time::Duration;

use crate::config::{ConfigError, Env};

/// `OTEL_SDK_DISABLED`: `true` turns tracing off whatever else is set.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// `OTEL_SERVICE_NAME`: `service.name` of every span (default: `K_SERVICE`, else the function).
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,...` added to the resource of every span.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// `OTEL_TRACES_SAMPLER`: `parentbased_always_on` (default), `parentbased_always_off`,
/// `parentbased_traceidratio`, `always_on`, `always_off`, `traceidratio`.
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// `OTEL_TRACES_SAMPLER_ARG`: the ratio of the `*traceidratio` samplers, 0 to 1 (default 1).
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// `OTEL_PROPAGATORS`: comma list of `tracecontext`, `baggage`, `none`.
pub const OTEL_PROPAGATORS: &str = "OTEL_PROPAGATORS";
/// `OTEL_TRACES_EXPORTER`: `otlp` or `none`; `otlp` alone turns tracing on (to the default endpoint).
pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL; set, tracing is on.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full URL for traces (wins over the base URL).
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (default) or `grpc`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: the same for traces only (wins).
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,...` sent with every export (values may be `sm://`).
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`: the same for traces only (wins).
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: the longest one export may take (default 10s).
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_BSP_SCHEDULE_DELAY`: how long finished spans may wait before they are sent (default 1s).
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
/// `OTEL_EXPORTER_OTLP_GOOGLE_AUTH`: `true` signs every export with an access token from
/// Application Default Credentials plus `x-goog-user-project` (Cloud Trace's OTLP endpoint).
/// Default: true when the endpoint is `telemetry.googleapis.com`.
pub const OTEL_EXPORTER_OTLP_GOOGLE_AUTH: &str = "OTEL_EXPORTER_OTLP_GOOGLE_AUTH";

/// Cloud Trace's OTLP endpoint (Telemetry API).
pub const GOOGLE_TELEMETRY_HOST: &str = "telemetry.googleapis.com";
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(1);
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How spans are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (`POST {endpoint}/v1/traces`).
    HttpProtobuf,
    /// OTLP/gRPC (`opentelemetry.proto.collector.trace.v1.TraceService/Export`).
    Grpc,
}

/// Which spans are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerKind {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedRatio(f64),
}

/// Which trace-context formats are read from requests and written into calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Propagators {
    /// W3C `traceparent`/`tracestate` (and Google's `X-Cloud-Trace-Context` when reading).
    pub tracecontext: bool,
    /// W3C `baggage`.
    pub baggage: bool,
}

/// Where spans go, when tracing is on.
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterConfig {
    /// The URL spans are sent to: the full `/v1/traces` URL for HTTP, the base URL for gRPC.
    pub endpoint: String,
    pub protocol: Protocol,
    /// Sign exports with Google credentials (Cloud Trace).
    pub google_auth: bool,
    pub timeout: Duration,
    pub schedule_delay: Duration,
}

/// The tracing configuration: `exporter` is `None` when tracing is off.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    pub exporter: Option<ExporterConfig>,
    /// `OTEL_SERVICE_NAME` when set.
    pub service_name: Option<String>,
    pub resource_attributes: Vec<(String, String)>,
    pub sampler: SamplerKind,
    pub propagators: Propagators,
}

// `f64` keeps `Eq` from being derived; the ratio is never NaN (checked when parsed).
impl Eq for TelemetryConfig {}

impl TelemetryConfig {
    /// Reads every `OTEL_*` variable; errors name the variable and the accepted form.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let disabled = env.bool_or(OTEL_SDK_DISABLED, false)?;
        let sampler = sampler(env)?;
        let propagators = propagators(env)?;
        let resource_attributes = pairs(env, OTEL_RESOURCE_ATTRIBUTES, true)?;
        // Checked now (unless the whole value is an `sm://` reference), used after secrets
        // resolve.
        if ![
            OTEL_EXPORTER_OTLP_HEADERS,
            OTEL_EXPORTER_OTLP_TRACES_HEADERS,
        ]
        .iter()
        .any(|v| {
            env.get(v)
                .is_some_and(|x| x.trim_start().starts_with("sm://"))
        }) {
            headers(env)?;
        }
        let exporter_named = match env
            .get(OTEL_TRACES_EXPORTER)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => None,
            Some(v) if v == "otlp" => Some(true),
            Some(v) if v == "none" => Some(false),
            Some(_) => {
                return Err(ConfigError::new(
                    OTEL_TRACES_EXPORTER,
                    env.get(OTEL_TRACES_EXPORTER).unwrap_or_default(),
                    "unknown exporter",
                    "otlp or none",
                ));
            }
        };
        let protocol = protocol(env)?;
        let traces_endpoint = env.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).map(str::trim);
        let base_endpoint = env.get(OTEL_EXPORTER_OTLP_ENDPOINT).map(str::trim);
        for (var, value) in [
            (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, traces_endpoint),
            (OTEL_EXPORTER_OTLP_ENDPOINT, base_endpoint),
        ] {
            if let Some(value) = value {
                check_url(var, value)?;
            }
        }
        let on = match exporter_named {
            Some(named) => named,
            None => traces_endpoint.is_some() || base_endpoint.is_some(),
        };
        let exporter = if on && !disabled {
            let endpoint = match (traces_endpoint, base_endpoint, protocol) {
                (Some(full), _, _) => full.to_owned(),
                (None, Some(base), Protocol::HttpProtobuf) => {
                    format!("{}/v1/traces", base.trim_end_matches('/'))
                }
                (None, Some(base), Protocol::Grpc) => base.to_owned(),
                (None, None, Protocol::HttpProtobuf) => {
                    format!("{DEFAULT_HTTP_ENDPOINT}/v1/traces")
                }
                (None, None, Protocol::Grpc) => DEFAULT_GRPC_ENDPOINT.to_owned(),
            };
            let google_default = reqwest::Url::parse(&endpoint)
                .ok()
                .and_then(|u| u.host_str().map(|h| h == GOOGLE_TELEMETRY_HOST))
                .unwrap_or(false);
            let google_auth = env.bool_or(OTEL_EXPORTER_OTLP_GOOGLE_AUTH, google_default)?;
            if google_auth && protocol == Protocol::Grpc {
                return Err(ConfigError::new(
                    OTEL_EXPORTER_OTLP_GOOGLE_AUTH,
                    "true",
                    "Google credentials are sent with OTLP over HTTP only",
                    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf with Cloud Trace",
                ));
            }
            Some(ExporterConfig {
                endpoint,
                protocol,
                google_auth,
                timeout: positive_ms(env, OTEL_EXPORTER_OTLP_TIMEOUT, DEFAULT_EXPORT_TIMEOUT)?,
                schedule_delay: positive_ms(env, OTEL_BSP_SCHEDULE_DELAY, DEFAULT_SCHEDULE_DELAY)?,
            })
        } else {
            None
        };
        Ok(Self {
            exporter,
            service_name: env.get(OTEL_SERVICE_NAME).map(|s| s.trim().to_owned()),
            resource_attributes,
            sampler,
            propagators,
        })
    }

    /// Whether spans are made and sent at all.
    pub fn enabled(&self) -> bool {
        self.exporter.is_some()
    }
}

/// The export headers, `OTEL_EXPORTER_OTLP_TRACES_HEADERS` over `OTEL_EXPORTER_OTLP_HEADERS`
/// (values percent-decoded). Read after secrets resolve; values are never printed.
pub fn headers(env: &Env) -> Result<Vec<(String, String)>, ConfigError> {
    let mut all = pairs(env, OTEL_EXPORTER_OTLP_HEADERS, false)?;
    for (k, v) in pairs(env, OTEL_EXPORTER_OTLP_TRACES_HEADERS, false)? {
        all.retain(|(key, _)| !key.eq_ignore_ascii_case(&k));
        all.push((k, v));
    }
    for (k, v) in &all {
        let name_ok = http::HeaderName::from_bytes(k.as_bytes()).is_ok();
        let value_ok = http::HeaderValue::from_str(v).is_ok();
        if !name_ok || !value_ok {
            return Err(ConfigError::new(
                OTEL_EXPORTER_OTLP_HEADERS,
                "(not shown)",
                format!("{k:?} is not a valid header"),
                "comma-separated name=value pairs such as x-api-key=KEY",
            ));
        }
    }
    Ok(all)
}

/// `key=value,key2=value2` with percent-encoded values (the OTel environment format).
fn pairs(env: &Env, var: &str, show: bool) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(raw) = env.get(var) else {
        return Ok(Vec::new());
    };
    let shown = if show { raw } else { "(not shown)" };
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(ConfigError::new(
                var,
                shown,
                format!("{:?} has no '='", if show { item } else { "an item" }),
                "comma-separated key=value pairs",
            ));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(ConfigError::new(
                var,
                shown,
                "a key is empty",
                "comma-separated key=value pairs",
            ));
        }
        out.push((k.to_owned(), percent_decode(v.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn protocol(env: &Env) -> Result<Protocol, ConfigError> {
    let Some((var, raw)) = env.first_of(&[
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
        OTEL_EXPORTER_OTLP_PROTOCOL,
    ]) else {
        return Ok(Protocol::HttpProtobuf);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "grpc" => Ok(Protocol::Grpc),
        _ => Err(ConfigError::new(
            var,
            raw,
            "unknown or unsupported protocol",
            "http/protobuf or grpc",
        )),
    }
}

fn sampler(env: &Env) -> Result<SamplerKind, ConfigError> {
    let name = env
        .get(OTEL_TRACES_SAMPLER)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "parentbased_always_on".into());
    let ratio = || -> Result<f64, ConfigError> {
        let Some(raw) = env.get(OTEL_TRACES_SAMPLER_ARG) else {
            return Ok(1.0);
        };
        match raw.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(ConfigError::new(
                OTEL_TRACES_SAMPLER_ARG,
                raw,
                "not a ratio",
                "a number from 0 to 1, such as 0.25",
            )),
        }
    };
    Ok(match name.as_str() {
        "always_on" => SamplerKind::AlwaysOn,
        "always_off" => SamplerKind::AlwaysOff,
        "traceidratio" => SamplerKind::Ratio(ratio()?),
        "parentbased_always_on" => SamplerKind::ParentBasedAlwaysOn,
        "parentbased_always_off" => SamplerKind::ParentBasedAlwaysOff,
        "parentbased_traceidratio" => SamplerKind::ParentBasedRatio(ratio()?),
        _ => {
            return Err(ConfigError::new(
                OTEL_TRACES_SAMPLER,
                env.get(OTEL_TRACES_SAMPLER).unwrap_or_default(),
                "unknown sampler",
                "parentbased_always_on, parentbased_always_off, parentbased_traceidratio, \
                 always_on, always_off or traceidratio",
            ));
        }
    })
}

fn propagators(env: &Env) -> Result<Propagators, ConfigError> {
    let Some(raw) = env.get(OTEL_PROPAGATORS) else {
        return Ok(Propagators {
            tracecontext: true,
            baggage: true,
        });
    };
    let mut p = Propagators::default();
    for name in raw.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "tracecontext" => p.tracecontext = true,
            "baggage" => p.baggage = true,
            "none" | "" => {}
            _ => {
                return Err(ConfigError::new(
                    OTEL_PROPAGATORS,
                    raw,
                    format!("unknown or unsupported propagator {name:?}"),
                    "a comma-separated list of tracecontext, baggage, or none",
                ));
            }
        }
    }
    Ok(p)
}

fn check_url(var: &str, raw: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(ConfigError::new(
            var,
            raw,
            "not an http(s) URL",
            "a URL such as http://localhost:4318 or https://telemetry.googleapis.com",
        )),
    }
}

/// OTel's durations are milliseconds; a unit (`5s`) is accepted too.
fn positive_ms(env: &Env, var: &str, default: Duration) -> Result<Duration, ConfigError> {
    let Some(raw) = env.get(var) else {
        return Ok(default);
    };
    let raw = raw.trim();
    let parsed = if raw.bytes().all(|b| b.is_ascii_digit()) {
        raw.parse::<u64>().ok().map(Duration::from_millis)
    } else {
        crate::config::parse_duration(raw).ok()
    };
    match parsed {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(ConfigError::new(
            var,
            raw,
            "not a positive duration",
            "milliseconds such as 1000, or a duration such as 1s",
        )),
    }
}

#[cfg(test)]
mod tests;
