//! One readiness target: an HTTP function (its `/health/ready`) or a gRPC server
//! (`grpc.health.v1.Health/Check` for the overall status).

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How a target is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// `GET` on the URL.
    Http,
    /// `grpc.health.v1.Health/Check` with service `""`.
    Grpc,
}

/// A named URL to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name in `/health` and the `target` label.
    pub name: String,
    /// What is requested: for HTTP the full readiness URL, for gRPC the endpoint.
    pub url: String,
    /// How it is asked.
    pub protocol: Protocol,
}

impl Target {
    /// `http(s)://host[:port][/path]` (path defaults to `/health/ready`), or
    /// `grpc://host:port` / `grpcs://host[:port]` for gRPC health.
    pub fn parse(name: &str, url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} has no scheme"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{url:?} has no host"));
        }
        let (protocol, url) = match scheme {
            "http" | "https" => {
                let url = match rest.find('/') {
                    None => format!("{url}/health/ready"),
                    Some(i) if rest[i..] == *"/" => format!("{}health/ready", url),
                    Some(_) => url.to_owned(),
                };
                (Protocol::Http, url)
            }
            "grpc" => (Protocol::Grpc, format!("http://{rest}")),
            "grpcs" => (Protocol::Grpc, format!("https://{rest}")),
            other => {
                return Err(format!(
                    "scheme {other:?} is not http, https, grpc or grpcs"
                ));
            }
        };
        Ok(Self {
            name: name.to_owned(),
            url,
            protocol,
        })
    }

    /// Asks the target once, within `timeout`: `Ok(description)` when ready.
    pub async fn check(&self, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        let outcome = match self.protocol {
            Protocol::Http => http_ready(&self.url, timeout).await,
            Protocol::Grpc => grpc_serving(&self.url, timeout).await,
        };
        let ms = start.elapsed().as_secs_f64() * 1e3;
        outcome
            .map(|m| format!("{m} in {ms:.1} ms"))
            .map_err(|m| format!("{m} after {ms:.1} ms"))
    }

    /// [`Self::check`], recording `aixgo_dependency_up` and the latency histogram.
    pub async fn check_recorded(
        &self,
        timeout: Duration,
        metrics: &DependencyMetrics,
    ) -> Result<String, String> {
        let start = Instant::now();
        let result = self.check(timeout).await;
        let labels = TargetLabels {
            target: self.name.clone(),
        };
        metrics
            .latency
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
        metrics
            .up
            .get_or_create(&labels)
            .set(i64::from(result.is_ok()));
        result
    }
}

/// Label of the dependency families: the target's configured name (a bounded set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Target name.
    pub target: String,
}

/// `aixgo_dependency_up{target}` and `aixgo_dependency_check_duration_seconds{target}`.
#[derive(Clone)]
pub struct DependencyMetrics {
    /// 1 when ready at the last check.
    pub up: Family<TargetLabels, Gauge>,
    /// Check latency.
    pub latency: Family<TargetLabels, Histogram, fn() -> Histogram>,
}

async fn http_ready(url: &str, timeout: Duration) -> Result<String, String> {
    let response = aixrun::http_client::get()
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e, timeout))?;
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        Ok(format!("{} {}", status.as_u16(), reason(status)))
    } else {
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err(format!(
            "{} {}: {}",
            status.as_u16(),
            reason(status),
            body.trim()
        ))
    }
}

fn reason(status: reqwest::StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("")
}

fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {timeout:?}")
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut deepest = e.to_string();
        while let Some(s) = source {
            deepest = s.to_string();
            source = s.source();
        }
        format!("cannot connect: {deepest}")
    } else {
        e.to_string()
    }
}

async fn grpc_serving(url: &str, timeout: Duration) -> Result<String, String> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("bad endpoint {url}: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| format!("TLS: {e}"))?;
    }
    let check = async {
        let channel: Channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {}", deepest(&e)))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        let status =
            ServingStatus::try_from(response.into_inner().status).unwrap_or(ServingStatus::Unknown);
        match status {
            ServingStatus::Serving => Ok("SERVING".to_owned()),
            other => Err(other.as_str_name().to_owned()),
        }
    };
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
}

fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_targets_default_to_readiness() {
        let t = Target::parse("a", "http://x:1").unwrap();
        assert_eq!(t.url, "http://x:1/health/ready");
        let t = Target::parse("a", "https://x.run.app/").unwrap();
        assert_eq!(t.url, "https://x.run.app/health/ready");
        let t = Target::parse("a", "http://x/custom").unwrap();
        assert_eq!(t.url, "http://x/custom");
        let t = Target::parse("a", "grpc://x:9").unwrap();
        assert_eq!((t.url.as_str(), t.protocol), ("http://x:9", Protocol::Grpc));
    }
}
