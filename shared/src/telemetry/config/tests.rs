//! The `OTEL_*` parse: when tracing is on, Cloud Trace defaults, bad values, samplers,
//! propagators and key=value pairs.

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
    TelemetryConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
}

#[test]
fn off_unless_an_endpoint_or_exporter_is_set() {
    assert!(!cfg(&[]).unwrap().enabled());
    assert!(!cfg(&[("OTEL_SERVICE_NAME", "x")]).unwrap().enabled());
    let on = cfg(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]).unwrap();
    let e = on.exporter.unwrap();
    assert_eq!(e.endpoint, "http://c:4318/v1/traces");
    assert_eq!(e.protocol, Protocol::HttpProtobuf);
    assert!(!e.google_auth);
    let grpc = cfg(&[
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .unwrap();
    assert_eq!(grpc.exporter.unwrap().endpoint, "http://localhost:4317");
    let none = cfg(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]);
    assert!(!none.unwrap().enabled());
    let disabled = cfg(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
        ("OTEL_SDK_DISABLED", "true"),
    ]);
    assert!(!disabled.unwrap().enabled());
    let full = cfg(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://d/custom"),
    ]);
    assert_eq!(full.unwrap().exporter.unwrap().endpoint, "http://d/custom");
}

#[test]
fn cloud_trace_signs_by_default() {
    let e = cfg(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://telemetry.googleapis.com",
    )])
    .unwrap()
    .exporter
    .unwrap();
    assert!(e.google_auth);
    assert_eq!(e.endpoint, "https://telemetry.googleapis.com/v1/traces");
}

#[test]
fn bad_values_name_their_variable() {
    for (var, value) in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_PROPAGATORS", "b3"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("OTEL_SDK_DISABLED", "maybe"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-key"),
    ] {
        let mut pairs = vec![(var, value)];
        if var == "OTEL_TRACES_SAMPLER_ARG" {
            pairs.push(("OTEL_TRACES_SAMPLER", "traceidratio"));
        }
        let e = cfg(&pairs).unwrap_err();
        assert_eq!(e.var, var, "{e}");
    }
    let e = cfg(&[("OTEL_EXPORTER_OTLP_HEADERS", "x-key")]).unwrap_err();
    assert!(!e.to_string().contains("x-key\""), "{e}");
}

#[test]
fn samplers_propagators_and_pairs() {
    let c = cfg(&[
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_PROPAGATORS", "tracecontext"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,team=a%20b",
        ),
    ])
    .unwrap();
    assert_eq!(c.sampler, SamplerKind::ParentBasedRatio(0.25));
    assert_eq!(
        c.propagators,
        Propagators {
            tracecontext: true,
            baggage: false
        }
    );
    assert_eq!(c.resource_attributes[1], ("team".into(), "a b".into()));
    assert_eq!(cfg(&[]).unwrap().sampler, SamplerKind::ParentBasedAlwaysOn);
    let none = cfg(&[("OTEL_PROPAGATORS", "none")]).unwrap();
    assert_eq!(none.propagators, Propagators::default());
}
