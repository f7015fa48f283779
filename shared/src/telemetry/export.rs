//! The OTLP exporter and batch processor. OTLP/HTTP goes through the workspace's reqwest (an
//! `opentelemetry_http::HttpClient` of our own, so no second HTTP stack is linked), optionally
//! signed with Google credentials for Cloud Trace; OTLP/gRPC goes through a tonic channel
//! built here (TLS from the workspace's tonic for `https://` endpoints).

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::BatchConfigBuilder;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;

use super::{Batch, ExporterConfig, Protocol};

/// The batch processor sending to `config`'s endpoint with `headers` on every export.
pub(super) fn processor(
    config: &ExporterConfig,
    headers: Vec<(String, String)>,
    project: Option<String>,
) -> Result<Batch, String> {
    let exporter = match config.protocol {
        Protocol::HttpProtobuf => {
            let client = OtlpHttpClient {
                headers: header_map(&headers),
                client: reqwest::Client::builder()
                    .timeout(config.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("HTTP client: {e}"))?,
                google: config.google_auth.then(|| GoogleAuth::new(project)),
            };
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(config.endpoint.clone())
                .with_timeout(config.timeout)
                .with_http_client(client)
                .build()
                .map_err(|e| e.to_string())?
        }
        Protocol::Grpc => {
            let mut endpoint = tonic::transport::Endpoint::from_shared(config.endpoint.clone())
                .map_err(|e| format!("{}: {e}", config.endpoint))?
                .timeout(config.timeout);
            if config.endpoint.starts_with("https://") {
                endpoint = endpoint
                    .tls_config(crate::crypto::grpc_client_tls())
                    .map_err(|e| format!("TLS: {e}"))?;
            }
            let metadata = tonic::metadata::MetadataMap::from_headers(header_map(&headers));
            // An interceptor, not `with_metadata`: the exporter adds the process environment's
            // OTEL_EXPORTER_OTLP_HEADERS after its metadata, which would put an unresolved
            // `sm://` reference back; the interceptor runs last and replaces them.
            let interceptor = move |mut request: tonic::Request<()>| {
                for (key, value) in metadata.iter().filter_map(|kv| match kv {
                    tonic::metadata::KeyAndValueRef::Ascii(k, v) => Some((k, v)),
                    tonic::metadata::KeyAndValueRef::Binary(..) => None,
                }) {
                    request.metadata_mut().insert(key.clone(), value.clone());
                }
                Ok(request)
            };
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_channel(endpoint.connect_lazy())
                .with_timeout(config.timeout)
                .with_interceptor(interceptor)
                .build()
                .map_err(|e| e.to_string())?
        }
    };
    let batch = BatchConfigBuilder::default()
        .with_scheduled_delay(config.schedule_delay)
        .with_max_export_timeout(config.timeout)
        .build();
    Ok(BatchSpanProcessor::builder(exporter, Tokio)
        .with_batch_config(batch)
        .build())
}

/// The export headers as a map (names and values were checked when the configuration was read).
fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(name), Ok(mut value)) = (
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(v),
        ) {
            value.set_sensitive(true);
            map.insert(name, value);
        }
    }
    map
}

/// OTLP/HTTP over reqwest. Its own client: exports are not outbound calls of the function
/// (they make no spans, which would feed back into the exporter).
struct OtlpHttpClient {
    client: reqwest::Client,
    /// Set on every request here, not through the exporter's `with_headers`: the exporter
    /// adds the process environment's OTEL_EXPORTER_OTLP_HEADERS after those, which would put
    /// an unresolved `sm://` reference back in place of its secret.
    headers: HeaderMap,
    google: Option<GoogleAuth>,
}

impl fmt::Debug for OtlpHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpHttpClient")
            .field("google_auth", &self.google.is_some())
            .finish()
    }
}

#[async_trait::async_trait]
impl HttpClient for OtlpHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut headers = parts.headers;
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(google) = &self.google {
            google.sign(&mut headers).await?;
        }
        let response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(headers)
            .body(body)
            .send()
            .await?;
        let mut out = Response::builder().status(response.status());
        if let Some(h) = out.headers_mut() {
            *h = response.headers().clone();
        }
        let body = response.bytes().await?;
        Ok(out.body(body)?)
    }
}

/// `Authorization: Bearer <access token>` from Application Default Credentials (cached and
/// refreshed by google-cloud-auth) and `x-goog-user-project`, the project billed for the call.
struct GoogleAuth {
    credentials: tokio::sync::OnceCell<google_cloud_auth::credentials::Credentials>,
    project: Option<String>,
}

impl GoogleAuth {
    fn new(project: Option<String>) -> Self {
        Self {
            credentials: tokio::sync::OnceCell::new(),
            project,
        }
    }

    async fn sign(&self, headers: &mut HeaderMap) -> Result<(), HttpError> {
        let credentials = self
            .credentials
            .get_or_try_init(|| async {
                google_cloud_auth::credentials::Builder::default().build()
            })
            .await?;
        match credentials.headers(http::Extensions::new()).await? {
            google_cloud_auth::credentials::CacheableResource::New { data, .. } => {
                headers.extend(data);
            }
            google_cloud_auth::credentials::CacheableResource::NotModified => {}
        }
        if let Some(project) = &self.project
            && !headers.contains_key("x-goog-user-project")
        {
            headers.insert(
                HeaderName::from_static("x-goog-user-project"),
                HeaderValue::from_str(project)?,
            );
        }
        Ok(())
    }
}
