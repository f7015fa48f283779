//! Every start-up error of the runtime's variables, to the byte: each function, run with each
//! bad value, exits with the code and the one stderr line written here (`FUNCTION: ` and the
//! line). The lines were taken from the binaries before the configuration moved beside each
//! subsystem (issue 24); a change to any of them is a change users see.

use std::time::Duration;

use e2e::run;

const TIMEOUT: Duration = Duration::from_secs(20);

/// (the environment, the exit code, the stderr line after `FUNCTION: `).
type Case = (&'static [(&'static str, &'static str)], i32, &'static str);

const CASES: &[Case] = &[
    (
        &[("PORT", "abc")],
        2,
        "PORT=\"abc\": invalid digit found in string; expected a port number from 0 to 65535",
    ),
    (
        &[("PORT", "70000")],
        2,
        "PORT=\"70000\": number too large to fit in target type; expected a port number from 0 to 65535",
    ),
    (
        &[("HOST", "nope")],
        2,
        "HOST=\"nope\": invalid IP address syntax; expected an IP address such as 0.0.0.0 or 127.0.0.1",
    ),
    (
        &[("LOG_LEVEL", "loud")],
        2,
        "LOG_LEVEL=\"loud\": unknown level; expected one of trace, debug, info, warn, error, off",
    ),
    (
        &[("RUST_LOG", "info,[request{id=1}]=debug")],
        2,
        "RUST_LOG=\"info,[request{id=1}]=debug\": invalid filter directive: too many '=' in filter directive, expected 0 or 1; expected comma-separated target=level directives such as info,aixrun=debug (span and field filters are not supported)",
    ),
    (
        &[("LOG_FORMAT", "xml")],
        2,
        "LOG_FORMAT=\"xml\": unknown format; expected json or text",
    ),
    (
        &[("SHUTDOWN_GRACE_PERIOD", "soon")],
        2,
        "SHUTDOWN_GRACE_PERIOD=\"soon\": \"soon\" does not start with a number; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("SHUTDOWN_GRACE_PERIOD", "5y")],
        2,
        "SHUTDOWN_GRACE_PERIOD=\"5y\": unknown unit \"y\"; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("SHUTDOWN_GRACE_PERIOD", "999999999")],
        2,
        "SHUTDOWN_GRACE_PERIOD=\"999999999\": out of range; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("MAX_REQUEST_HEADER_BYTES", "1KiB")],
        2,
        "MAX_REQUEST_HEADER_BYTES=\"1KiB\": below the HTTP/1 parser's minimum; expected at least 8KiB",
    ),
    (
        &[("MAX_REQUEST_HEADER_BYTES", "lots")],
        2,
        "MAX_REQUEST_HEADER_BYTES=\"lots\": not a whole number; expected a size in bytes such as 1048576, 64KiB or 4MiB",
    ),
    (
        &[("MAX_CONNECTIONS", "0")],
        2,
        "MAX_CONNECTIONS=\"0\": would refuse every connection; expected a whole number of connections, at least 1",
    ),
    (
        &[("MAX_CONNECTIONS", "many")],
        2,
        "MAX_CONNECTIONS=\"many\": invalid digit found in string; expected a whole number of connections, at least 1",
    ),
    (
        &[("MAX_REQUEST_BODY_BYTES", "-1")],
        2,
        "MAX_REQUEST_BODY_BYTES=\"-1\": not a whole number; expected a size in bytes such as 1048576, 64KiB or 4MiB",
    ),
    (
        &[("MAX_REQUEST_BODY_BYTES", "4XB")],
        2,
        "MAX_REQUEST_BODY_BYTES=\"4XB\": unknown unit \"xb\"; expected a size in bytes such as 1048576, 64KiB or 4MiB",
    ),
    (
        &[("MAX_REQUEST_BODY_BYTES", "99999999999999999999GiB")],
        2,
        "MAX_REQUEST_BODY_BYTES=\"99999999999999999999GiB\": not a whole number; expected a size in bytes such as 1048576, 64KiB or 4MiB",
    ),
    (
        &[("REQUEST_TIMEOUT", "0")],
        2,
        "REQUEST_TIMEOUT=\"0\": must be more than zero; expected a duration such as 8s, 500ms or 2m",
    ),
    (
        &[("REQUEST_TIMEOUT", "x")],
        2,
        "REQUEST_TIMEOUT=\"x\": \"x\" does not start with a number; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("BODY_READ_TIMEOUT", "0s")],
        2,
        "BODY_READ_TIMEOUT=\"0s\": must be more than zero; expected a duration such as 8s, 500ms or 2m",
    ),
    (
        &[("MAX_GRPC_MESSAGE_BYTES", "big")],
        2,
        "MAX_GRPC_MESSAGE_BYTES=\"big\": not a whole number; expected a size in bytes such as 1048576, 64KiB or 4MiB",
    ),
    (
        &[("HTTP2_KEEPALIVE_INTERVAL", "x")],
        2,
        "HTTP2_KEEPALIVE_INTERVAL=\"x\": \"x\" does not start with a number; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("FIRST_REQUEST_TIMEOUT", "0")],
        2,
        "FIRST_REQUEST_TIMEOUT=\"0\": must be more than zero; expected a duration such as 8s, 500ms or 2m",
    ),
    (
        &[("HEADER_READ_TIMEOUT", "0ms")],
        2,
        "HEADER_READ_TIMEOUT=\"0ms\": must be more than zero; expected a duration such as 8s, 500ms or 2m",
    ),
    (
        &[("IDLE_TIMEOUT", "never")],
        2,
        "IDLE_TIMEOUT=\"never\": \"never\" does not start with a number; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("HTTP2_KEEPALIVE_TIMEOUT", "0")],
        2,
        "HTTP2_KEEPALIVE_TIMEOUT=\"0\": must be more than zero; expected a duration such as 8s, 500ms or 2m",
    ),
    (
        &[("ALLOWED_ORIGINS", "example.com")],
        2,
        "ALLOWED_ORIGINS=\"example.com\": \"example.com\" is not an origin; expected comma-separated origins such as https://app.example.com,http://localhost:*",
    ),
    (
        &[(
            "ALLOWED_ORIGINS",
            "https://a.example,https://b.example/path",
        )],
        2,
        "ALLOWED_ORIGINS=\"https://a.example,https://b.example/path\": \"https://b.example/path\" is not an origin; expected comma-separated origins such as https://app.example.com,http://localhost:*",
    ),
    (
        &[("TLS_CERT_FILE", "/c.pem")],
        2,
        "TLS_CERT_FILE=\"/c.pem\": set without TLS_KEY_FILE; expected both TLS_CERT_FILE and TLS_KEY_FILE, or neither",
    ),
    (
        &[("TLS_KEY_FILE", "/k.pem")],
        2,
        "TLS_KEY_FILE=\"/k.pem\": set without TLS_CERT_FILE; expected both TLS_CERT_FILE and TLS_KEY_FILE, or neither",
    ),
    (
        &[("TLS_CLIENT_CA_FILE", "/ca.pem")],
        2,
        "TLS_CLIENT_CA_FILE=\"/ca.pem\": client certificates need TLS on the listener; expected TLS_CERT_FILE and TLS_KEY_FILE set as well",
    ),
    (
        &[("HEALTH_CHECK_TTL", "x")],
        2,
        "HEALTH_CHECK_TTL=\"x\": \"x\" does not start with a number; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[("AUTH_MODE", "kerberos")],
        2,
        "AUTH_MODE=\"kerberos\": unknown mode \"kerberos\"; expected none, or a comma-separated list of google, iap, api-key",
    ),
    (
        &[("AUTH_MODE", "none,google")],
        2,
        "AUTH_MODE=\"none,google\": none cannot be combined with other modes; expected none, or a comma-separated list of google, iap, api-key",
    ),
    (
        &[("AUTH_MODE", "google")],
        2,
        "AUTH_AUDIENCES=\"\": required with AUTH_MODE=google; expected comma-separated audiences, such as the service URL https://NAME-HASH-REGION.a.run.app",
    ),
    (
        &[("AUTH_MODE", "iap")],
        2,
        "IAP_AUDIENCE=\"\": required with AUTH_MODE=iap; expected /projects/NUMBER/global/backendServices/ID or /projects/NUMBER/apps/PROJECT",
    ),
    (
        &[("AUTH_MODE", "iap"), ("IAP_AUDIENCE", "/projects/x/apps/p")],
        2,
        "IAP_AUDIENCE=\"/projects/x/apps/p\": \"/projects/x/apps/p\" is not an IAP audience; expected /projects/NUMBER/global/backendServices/ID or /projects/NUMBER/apps/PROJECT",
    ),
    (
        &[("AUTH_MODE", "api-key")],
        2,
        "AUTH_API_KEYS=\"\": required with AUTH_MODE=api-key; expected comma-separated keys, for instance AUTH_API_KEYS=sm://api-keys",
    ),
    (
        &[("AUTH_OPEN_PATHS", "/health,metrics")],
        2,
        "AUTH_OPEN_PATHS=\"/health,metrics\": \"metrics\" is not a path; expected comma-separated paths such as /health,/metrics,/grpc.health.v1.Health/*",
    ),
    (
        &[("GOOGLE_JWKS_URL", "file:///etc/keys")],
        2,
        "GOOGLE_JWKS_URL=\"file:///etc/keys\": not an http(s) URL; expected a URL such as https://www.googleapis.com/oauth2/v3/certs",
    ),
    (
        &[("IAP_JWKS_URL", "nope")],
        2,
        "IAP_JWKS_URL=\"nope\": not an http(s) URL; expected a URL such as https://www.googleapis.com/oauth2/v3/certs",
    ),
    (
        &[("OTEL_SDK_DISABLED", "maybe")],
        2,
        "OTEL_SDK_DISABLED=\"maybe\": not a boolean; expected true or false",
    ),
    (
        &[("OTEL_TRACES_SAMPLER", "sometimes")],
        2,
        "OTEL_TRACES_SAMPLER=\"sometimes\": unknown sampler; expected parentbased_always_on, parentbased_always_off, parentbased_traceidratio, always_on, always_off or traceidratio",
    ),
    (
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ],
        2,
        "OTEL_TRACES_SAMPLER_ARG=\"2\": not a ratio; expected a number from 0 to 1, such as 0.25",
    ),
    (
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "half"),
        ],
        2,
        "OTEL_TRACES_SAMPLER_ARG=\"half\": not a ratio; expected a number from 0 to 1, such as 0.25",
    ),
    (
        &[("OTEL_PROPAGATORS", "b3")],
        2,
        "OTEL_PROPAGATORS=\"b3\": unknown or unsupported propagator \"b3\"; expected a comma-separated list of tracecontext, baggage, or none",
    ),
    (
        &[("OTEL_RESOURCE_ATTRIBUTES", "novalue")],
        2,
        "OTEL_RESOURCE_ATTRIBUTES=\"novalue\": \"novalue\" has no '='; expected comma-separated key=value pairs",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_HEADERS", "bad")],
        2,
        "OTEL_EXPORTER_OTLP_HEADERS=\"(not shown)\": \"an item\" has no '='; expected comma-separated key=value pairs",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_HEADERS", "x y=1")],
        2,
        "OTEL_EXPORTER_OTLP_HEADERS=\"(not shown)\": \"x y\" is not a valid header; expected comma-separated name=value pairs such as x-api-key=KEY",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "=v")],
        2,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS=\"(not shown)\": a key is empty; expected comma-separated key=value pairs",
    ),
    (
        &[("OTEL_TRACES_EXPORTER", "zipkin")],
        2,
        "OTEL_TRACES_EXPORTER=\"zipkin\": unknown exporter; expected otlp or none",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
        2,
        "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\": unknown or unsupported protocol; expected http/protobuf or grpc",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "x")],
        2,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"x\": unknown or unsupported protocol; expected http/protobuf or grpc",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "notaurl")],
        2,
        "OTEL_EXPORTER_OTLP_ENDPOINT=\"notaurl\": not an http(s) URL; expected a URL such as http://localhost:4318 or https://telemetry.googleapis.com",
    ),
    (
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x")],
        2,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=\"ftp://x\": not an http(s) URL; expected a URL such as http://localhost:4318 or https://telemetry.googleapis.com",
    ),
    (
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_GOOGLE_AUTH", "true"),
        ],
        2,
        "OTEL_EXPORTER_OTLP_GOOGLE_AUTH=\"true\": Google credentials are sent with OTLP over HTTP only; expected OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf with Cloud Trace",
    ),
    (
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_GOOGLE_AUTH", "perhaps"),
        ],
        2,
        "OTEL_EXPORTER_OTLP_GOOGLE_AUTH=\"perhaps\": not a boolean; expected true or false",
    ),
    (
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ],
        2,
        "OTEL_EXPORTER_OTLP_TIMEOUT=\"0\": not a positive duration; expected milliseconds such as 1000, or a duration such as 1s",
    ),
    (
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_BSP_SCHEDULE_DELAY", "x"),
        ],
        2,
        "OTEL_BSP_SCHEDULE_DELAY=\"x\": not a positive duration; expected milliseconds such as 1000, or a duration such as 1s",
    ),
    (
        &[("SOME_KEY", "sm://bad id!")],
        2,
        "SOME_KEY=\"sm://bad id!\": secret \"bad id!\" must be 1 to 255 letters, digits, '-' or '_'; expected sm://SECRET, sm://SECRET#VERSION or sm://projects/P/secrets/S/versions/V",
    ),
    (
        &[("SOME_KEY", "sm://projects//secrets/s")],
        2,
        "SOME_KEY=\"sm://projects//secrets/s\": project \"\" is not a project id; expected sm://SECRET, sm://SECRET#VERSION or sm://projects/P/secrets/S/versions/V",
    ),
    (
        &[("SOME_KEY", "sm://s"), ("SECRET_TIMEOUT", "soon")],
        2,
        "SECRET_TIMEOUT=\"soon\": \"soon\" does not start with a number; expected a duration such as 8s, 500ms or 2m (a bare number means seconds)",
    ),
    (
        &[
            ("SOME_KEY", "sm://s"),
            ("SECRET_TIMEOUT", "1s"),
            ("SECRET_MANAGER_ENDPOINT", "not a url"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("GCE_METADATA_HOST", "127.0.0.1:9"),
        ],
        1,
        "SECRET_MANAGER_ENDPOINT=\"not a url\": relative URL without a base; expected a URL such as https://secretmanager.googleapis.com",
    ),
    (
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-key=sm://bad id"),
        ],
        2,
        "OTEL_EXPORTER_OTLP_HEADERS[0]=\"sm://bad id\": secret \"bad id\" must be 1 to 255 letters, digits, '-' or '_'; expected sm://SECRET, sm://SECRET#VERSION or sm://projects/P/secrets/S/versions/V",
    ),
];

/// Runs `name args` with each case's environment and compares exit code and stderr exactly.
fn each_case(name: &str, args: &[&str]) {
    let mut wrong = Vec::new();
    for (envs, code, line) in CASES {
        let out = run(name, args, envs, TIMEOUT);
        let expected = format!("{name}: {line}\n");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(*code) || stderr != expected || !out.stdout.is_empty() {
            wrong.push(format!(
                "{envs:?}\n  expected {code} {expected:?}\n  got      {:?} {stderr:?}",
                out.status.code()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} differ:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n")
    );
}

#[test]
fn mcp_tool_says_each_bad_variable_as_before() {
    each_case("mcp-tool", &[]);
}

#[test]
fn orchestrate_says_each_bad_variable_as_before() {
    each_case("orchestrate", &[]);
}

#[test]
fn health_says_each_bad_variable_as_before() {
    each_case("health", &["serve"]);
}
