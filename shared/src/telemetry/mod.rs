//! OpenTelemetry tracing, configured by the standard `OTEL_*` variables and off (no exporter,
//! no layer, no spans made) unless an OTLP endpoint or exporter is configured.
//!
//! Start-up has two phases. [`Telemetry::new`], in the synchronous first phase, builds the
//! tracer provider (resource, sampler, propagators) so that logging can be installed with the
//! OpenTelemetry layer from the first line on; spans that end before the exporter exists are
//! held. [`Telemetry::start`], in the asynchronous second phase (after `sm://` secrets resolve,
//! before the port opens), builds the exporter and the batch processor from the export headers
//! and the project that [`crate::run`] resolved (this module stands below `gcp` and `logging`
//! and asks neither). The [`TelemetryGuard`] it returns is shut down by [`crate::run`] after
//! the server's drain, which sends every span still queued.
//!
//! Spans are `tracing` spans that carry an `otel.name` field; only those reach OpenTelemetry.

pub mod config;
mod export;
pub mod propagation;
pub mod spans;
mod trace_context;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span as SdkSpan, SpanData, SpanProcessor,
};

pub use config::{
    ExporterConfig, GOOGLE_TELEMETRY_HOST, Propagators, Protocol, SamplerKind, TelemetryConfig,
    headers,
};
pub use trace_context::TraceContext;

use crate::error::StartupError;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Most finished spans held while the exporter is not built yet (start-up only).
const EARLY_SPANS: usize = 512;

/// Whether tracing is on in this process: instrumentation makes no span when it is not.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Who the spans come from: the function, and the service and revision the platform runs it
/// as (`K_SERVICE`, `K_REVISION`).
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    /// The function's name (`service.name` unless `K_SERVICE` or `OTEL_SERVICE_NAME` is set).
    pub function: &'a str,
    /// `service.version`.
    pub version: &'a str,
    /// `K_SERVICE`.
    pub k_service: Option<&'a str>,
    /// `K_REVISION`.
    pub k_revision: Option<&'a str>,
}

/// Phase one: the tracer provider, without an exporter yet.
pub struct Telemetry {
    provider: SdkTracerProvider,
    deferred: Arc<Deferred>,
    exporter: ExporterConfig,
}

impl Telemetry {
    /// The provider for this configuration, or `None` when tracing is off. Sets the
    /// process's propagators and turns [`enabled`] on.
    pub fn new(telemetry: &TelemetryConfig, service: Service<'_>) -> Option<Self> {
        let exporter = telemetry.exporter.clone()?;
        let deferred = Arc::new(Deferred::default());
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(telemetry, service))
            .with_sampler(sampler(telemetry.sampler))
            .with_span_processor(DeferredProcessor(deferred.clone()))
            .build();
        propagation::install(telemetry.propagators);
        ENABLED.store(true, Ordering::Relaxed);
        Some(Self {
            provider,
            deferred,
            exporter,
        })
    }

    /// The tracer the logging subscriber's OpenTelemetry layer writes through.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("aixrun")
    }

    /// Whether exports are signed with Google credentials (Cloud Trace), which file spans
    /// under a project: [`Self::start`] wants it then.
    pub fn google_auth(&self) -> bool {
        self.exporter.google_auth
    }

    /// Phase two: builds the exporter with its `headers` (secrets resolved) and, for Cloud
    /// Trace, the `project`, and starts sending.
    pub fn start(
        self,
        headers: Vec<(String, String)>,
        project: Option<String>,
    ) -> Result<TelemetryGuard, StartupError> {
        let mut extra = Vec::new();
        let project = if self.exporter.google_auth {
            match &project {
                // Cloud Trace files spans under the resource's project.
                Some(p) => extra.push(KeyValue::new("gcp.project_id", p.clone())),
                None => {
                    tracing::warn!("Cloud Trace export without a project: set GOOGLE_CLOUD_PROJECT")
                }
            }
            project
        } else {
            None
        };
        let processor = export::processor(&self.exporter, headers, project)
            .map_err(|e| StartupError::Other(format!("OpenTelemetry exporter: {e}")))?;
        self.deferred.install(processor, extra);
        tracing::debug!(
            endpoint = %self.exporter.endpoint,
            protocol = ?self.exporter.protocol,
            "tracing on"
        );
        Ok(TelemetryGuard {
            provider: self.provider,
        })
    }
}

/// Sends what is still queued when dropped or shut down; [`crate::run`] does so after the drain.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports every queued span and stops, waiting at most `timeout`.
    pub fn shutdown(self, timeout: Duration) {
        if let Err(e) = self.provider.shutdown_with_timeout(timeout) {
            eprintln!("OpenTelemetry: spans may be lost at shutdown: {e}");
        }
    }
}

fn resource(telemetry: &TelemetryConfig, service: Service<'_>) -> Resource {
    let default_name = service.k_service.unwrap_or(service.function).to_owned();
    let mut defaults = vec![
        KeyValue::new("service.name", default_name),
        KeyValue::new("service.version", service.version.to_owned()),
        KeyValue::new("telemetry.sdk.name", "opentelemetry"),
        KeyValue::new("telemetry.sdk.language", "rust"),
    ];
    if let Some(k_service) = service.k_service {
        defaults.push(KeyValue::new("cloud.provider", "gcp"));
        defaults.push(KeyValue::new("cloud.platform", "gcp_cloud_run"));
        defaults.push(KeyValue::new("faas.name", k_service.to_owned()));
    }
    if let Some(revision) = service.k_revision {
        defaults.push(KeyValue::new("faas.version", revision.to_owned()));
    }
    let mut builder = Resource::builder_empty()
        .with_attributes(defaults)
        .with_attributes(
            telemetry
                .resource_attributes
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        );
    // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES.
    if let Some(name) = &telemetry.service_name {
        builder = builder.with_service_name(name.clone());
    }
    builder.build()
}

fn sampler(kind: SamplerKind) -> Sampler {
    match kind {
        SamplerKind::AlwaysOn => Sampler::AlwaysOn,
        SamplerKind::AlwaysOff => Sampler::AlwaysOff,
        SamplerKind::Ratio(r) => Sampler::TraceIdRatioBased(r),
        SamplerKind::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        SamplerKind::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        SamplerKind::ParentBasedRatio(r) => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
        }
    }
}

type Batch = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor<
    opentelemetry_sdk::runtime::Tokio,
>;

/// The batch processor once phase two built it; spans that end before are held.
#[derive(Debug, Default)]
struct Deferred {
    batch: OnceLock<Batch>,
    early: Mutex<Vec<SpanData>>,
    resource: Mutex<Option<Resource>>,
}

impl Deferred {
    fn install(&self, mut batch: Batch, extra: Vec<KeyValue>) {
        let resource = self
            .resource
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| Resource::builder_empty().build());
        let resource = if extra.is_empty() {
            resource
        } else {
            Resource::builder_empty()
                .with_attributes(
                    resource
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
                )
                .with_attributes(extra)
                .build()
        };
        batch.set_resource(&resource);
        let mut early = self
            .early
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let batch = self.batch.get_or_init(|| batch);
        for span in early.drain(..) {
            batch.on_end(span);
        }
    }
}

#[derive(Debug)]
struct DeferredProcessor(Arc<Deferred>);

impl SpanProcessor for DeferredProcessor {
    fn on_start(&self, _span: &mut SdkSpan, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if let Some(batch) = self.0.batch.get() {
            return batch.on_end(span);
        }
        let mut early = self
            .0
            .early
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.0.batch.get() {
            Some(batch) => {
                drop(early);
                batch.on_end(span);
            }
            None if early.len() < EARLY_SPANS => early.push(span),
            None => {}
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0
            .batch
            .get()
            .map_or(Ok(()), SpanProcessor::force_flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0
            .batch
            .get()
            .map_or(Ok(()), |b| b.shutdown_with_timeout(timeout))
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self
            .0
            .resource
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(resource.clone());
    }
}
