//! The dev console at `/ui`: one page, its script and its styles (`ui/`), embedded in the binary
//! and served as they are (no build step, nothing fetched from elsewhere). The page reads
//! `GET /v1/workflows` and draws each workflow's graph, runs one with `POST /v1/run` as a stream
//! (fetch with a streaming body reader: EventSource cannot POST) and renders the events as the
//! step tree; cancelling aborts the request, which cancels the run. Past runs are this page's
//! own until orchestrate has a run store.
//!
//! On by default only off the platform (`K_SERVICE` unset): `DEV_UI` turns it on or off.

use aixrun::config::{ConfigError, Env};
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// `DEV_UI`: serve the dev console at `/ui` (default: `true` off the platform, `false` on it).
pub const DEV_UI: &str = "DEV_UI";

/// Whether to serve the console: `DEV_UI`, else whether this runs off the platform.
pub fn enabled(env: &Env, on_platform: bool) -> Result<bool, ConfigError> {
    env.bool_or(DEV_UI, !on_platform)
}

const INDEX: &str = include_str!("../ui/index.html");
const SCRIPT: &str = include_str!("../ui/app.js");
const STYLE: &str = include_str!("../ui/app.css");

/// Only this origin's own files and API: no inline script, no other host.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /ui` (and `/ui/`), `/ui/app.js`, `/ui/app.css`.
pub fn router() -> Router {
    Router::new()
        .route(
            "/ui",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/",
            get(|| async { file("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
}

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // A dev tool: always the binary's current files.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_by_default_only_off_the_platform_and_dev_ui_decides() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        assert!(enabled(&env(&[]), false).unwrap());
        assert!(!enabled(&env(&[]), true).unwrap());
        assert!(enabled(&env(&[(DEV_UI, "true")]), true).unwrap());
        assert!(!enabled(&env(&[(DEV_UI, "0")]), false).unwrap());
        let e = enabled(&env(&[(DEV_UI, "maybe")]), false).unwrap_err();
        assert!(e.to_string().contains(DEV_UI), "{e}");
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        assert!(INDEX.contains("src=\"/ui/app.js\""));
        assert!(INDEX.contains("href=\"/ui/app.css\""));
        for text in [INDEX, SCRIPT, STYLE] {
            // (SVG's namespace is a name, not an address.)
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
