//! `GET /openapi.json`: orchestrate's HTTP API as an OpenAPI 3.1 document. It is written by
//! hand in `openapi.yaml` (YAML for its comments; serde_yaml_ng is linked anyway for the
//! configuration), embedded in the binary, and converted to JSON once, on the first request, so
//! start-up pays nothing. tests/tests/openapi.rs keeps it true against the real binary.

use std::sync::OnceLock;

use aixrun::error::{ApiError, ErrorKind};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::Value;

/// The document's source.
pub const SOURCE: &str = include_str!("openapi.yaml");

/// The document, with `info.version` set to this binary's version.
pub fn document() -> Result<Value, String> {
    let mut doc: Value =
        serde_yaml_ng::from_str(SOURCE).map_err(|e| format!("openapi.yaml: {e}"))?;
    doc["info"]["version"] = Value::String(env!("CARGO_PKG_VERSION").to_owned());
    Ok(doc)
}

/// `GET /openapi.json`.
pub fn router() -> Router {
    Router::new().route("/openapi.json", get(serve))
}

async fn serve() -> Response {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    match JSON.get_or_init(|| document().map(|doc| doc.to_string())) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            Bytes::from_static(text.as_bytes()),
        )
            .into_response(),
        Err(why) => ApiError::new(ErrorKind::Internal, why.clone()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_names_every_route_of_the_api() {
        let doc = document().unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        for path in [
            "/v1/run",
            "/v1/workflows",
            "/v1/runs",
            "/v1/runs/{id}",
            "/v1/runs/{id}:cancel",
            "/v1/runs/{id}:resume",
            "/v1/runs:execute",
            "/v1/runs/{id}/events",
            "/v1/sessions/{id}",
            "/openapi.json",
            "/ui",
            "/health",
            "/health/live",
            "/health/ready",
            "/metrics",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not documented");
        }
    }

    #[test]
    fn every_schema_it_names_compiles_and_every_reference_resolves() {
        let doc = document().unwrap();
        let text = doc.to_string();
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            let root = serde_json::json!({
                "$ref": format!("#/components/schemas/{name}"),
                "components": doc["components"],
            });
            aixrun::schema::Schema::compile(&root).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for (at, _) in text.match_indices("\"$ref\":\"#/") {
            let rest = &text[at + 8..];
            let target = &rest[1..rest.find('"').unwrap()];
            assert!(
                doc.pointer(target).is_some(),
                "{target} is referenced but not defined"
            );
        }
    }
}
