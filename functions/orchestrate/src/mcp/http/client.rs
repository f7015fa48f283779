//! The HTTP client under rmcp's Streamable HTTP transport: a reqwest client built for one
//! server (its TLS and mTLS, a connect timeout, no redirects, no proxy from the environment)
//! that asks the [`AuthProvider`] for `Authorization` before every request, so that expiring
//! identity tokens are refreshed without reconnecting, and posts once more with a fresh token
//! when the server answers 401 (aixrun's `with_refresh`, as the gRPC transport and model calls).
//!
//! Why not `aixrun::outbound`: its one shared client cannot carry a per-server CA or client
//! certificate, and rmcp needs a streaming client it can drive itself (SSE responses, closing
//! a stream to cancel). What outbound guarantees still holds: every call runs under a
//! deadline ([`super::HttpServer`] wraps it in `tokio::time::timeout`), response bodies are
//! capped (rmcp's reqwest client enforces `max_json_response_size` and `max_sse_event_size`,
//! set by `HttpServer`), redirects are never followed, and errors name only the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue, header::AUTHORIZATION};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use crate::mcp::auth::{AuthProvider, with_refresh};
use crate::mcp::tls::TlsFiles;

/// Longest wait for the TCP and TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// reqwest plus the identity hook.
#[derive(Clone)]
pub(crate) struct AuthedClient {
    inner: reqwest::Client,
    auth: Option<Arc<dyn AuthProvider>>,
    /// The trace context of the connection being opened (see [`AuthedClient::traced`]).
    connecting: Arc<Mutex<Option<serde_json::Map<String, serde_json::Value>>>>,
}

impl AuthedClient {
    /// The client for the server at `url`.
    pub(crate) fn new(
        url: &str,
        tls: &TlsFiles,
        auth: Option<Arc<dyn AuthProvider>>,
    ) -> Result<Self, String> {
        aixrun::crypto::install_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect could carry the token to another origin; MCP servers don't redirect.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("aixrun-orchestrate/", env!("CARGO_PKG_VERSION")));
        if url.starts_with("https://") {
            builder = tls.read()?.reqwest(builder)?;
        } else if !tls.is_empty() {
            return Err("TLS files are set but the URL is not https://".into());
        }
        let inner = builder
            .build()
            .map_err(|_| "the HTTP client could not be built (TLS setup)".to_owned())?;
        Ok(Self {
            inner,
            auth,
            connecting: Arc::default(),
        })
    }

    /// `headers` plus the trace context of `message`'s `params._meta` as
    /// `traceparent`/`tracestate` (rmcp sends from its own task, where the caller's span is not
    /// current; the request's `_meta` is), else of the connection being opened
    /// ([`AuthedClient::set_connecting`]: `server/discover` has no `_meta` of ours).
    fn traced(
        &self,
        mut headers: HashMap<HeaderName, HeaderValue>,
        message: Option<&ClientJsonRpcMessage>,
    ) -> HashMap<HeaderName, HeaderValue> {
        if !aixrun::telemetry::enabled() {
            return headers;
        }
        let from_message = message
            .and_then(|m| serde_json::to_value(m).ok())
            .and_then(|v| v.pointer("/params/_meta").cloned())
            .and_then(|m| match m {
                serde_json::Value::Object(m) if m.contains_key("traceparent") => Some(m),
                _ => None,
            });
        let meta = from_message.or_else(|| {
            self.connecting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
        for name in ["traceparent", "tracestate"] {
            if let Some(v) = meta
                .as_ref()
                .and_then(|m| m.get(name))
                .and_then(|v| v.as_str())
                && let Ok(v) = HeaderValue::from_str(v)
            {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        headers
    }

    /// The trace context (`_meta` form) of the connection being opened, for the handshake's
    /// requests that carry none; `None` once it is open.
    pub(crate) fn set_connecting(&self, meta: Option<serde_json::Map<String, serde_json::Value>>) {
        *self.connecting.lock().unwrap_or_else(|e| e.into_inner()) = meta;
    }

    /// `headers` plus `Authorization` when the provider gives one (for GET and DELETE, which
    /// rmcp retries or abandons itself).
    async fn with_auth(
        &self,
        headers: HashMap<HeaderName, HeaderValue>,
    ) -> HashMap<HeaderName, HeaderValue> {
        let mut headers = self.traced(headers, None);
        if let Some(auth) = &self.auth
            && let Some(value) = auth.header().await
        {
            headers.insert(AUTHORIZATION, value);
        }
        headers
    }

    /// One POST through [`with_refresh`]: a 401 (rmcp's `AuthRequired` when the server sent a
    /// challenge, else its "HTTP 401" error) drops the token, mints one and posts once more.
    /// A 401 answers the request head before any response stream exists, so the message was
    /// not processed and resending it is safe.
    async fn post(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>> {
        let headers = self.traced(custom_headers, Some(&message));
        with_refresh(
            self.auth.as_deref(),
            |authorization| {
                let mut headers = headers.clone();
                if let Some(value) = authorization {
                    headers.insert(AUTHORIZATION, value);
                }
                self.inner.post_message_with_response_limits(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    auth_header.clone(),
                    headers,
                    limits,
                )
            },
            |outcome| matches!(outcome, Err(e) if is_unauthorized(e)),
        )
        .await
    }
}

/// rmcp's ways of saying the server answered 401.
fn is_unauthorized(error: &StreamableHttpError<reqwest::Error>) -> bool {
    match error {
        StreamableHttpError::AuthRequired(_) => true,
        StreamableHttpError::UnexpectedServerResponse(message) => message.starts_with("HTTP 401"),
        StreamableHttpError::Client(e) => e.status() == Some(reqwest::StatusCode::UNAUTHORIZED),
        _ => false,
    }
}

// Every method delegates to rmcp's reqwest implementation (which enforces the response
// limits); only the headers change. rmcp's own `auth_header` (a static bearer) is unused.
impl StreamableHttpClient for AuthedClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            limits,
        )
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let headers = self.with_auth(custom_headers).await;
        self.inner
            .delete_session(uri, session_id, auth_header, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let headers = self.with_auth(custom_headers).await;
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let headers = self.with_auth(custom_headers).await;
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                headers,
                max_sse_event_size,
            )
            .await
    }
}
