//! `GET /health/live`, `GET /health/ready` and `GET /health`, in the seed's JSON format.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Health, Status, go_duration};
use crate::process;

/// The three health routes, sharing `health`.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/health", get(full))
        .with_state(health)
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "alive"}))
}

async fn ready(State(health): State<Health>) -> impl IntoResponse {
    let report = health.readiness().await;
    if report.ready() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": report.reason()})),
        )
    }
}

async fn full(State(health): State<Health>) -> impl IntoResponse {
    let report = health.report().await;
    let code = if report.status == Status::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let id = health.identity();
    let uptime = health.uptime();
    let mem = process::memory();
    let mut body = json!({
        "status": report.status,
        "timestamp": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        "version": id.version,
        "uptime": go_duration(uptime),
        "uptime_seconds": uptime.as_secs(),
        "checks": report.checks,
        "system": {
            "num_goroutines": process::live_tasks(),
            "num_cpu": process::num_cpus(),
            "mem_alloc_mb": mem.anon_bytes / (1024 * 1024),
            "mem_sys_mb": mem.rss_bytes / (1024 * 1024),
        },
    });
    // The platform's names, only where the platform set them.
    for (key, value) in [
        ("service", &id.k_service),
        ("revision", &id.k_revision),
        ("configuration", &id.k_configuration),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    (code, Json(body))
}
