//! `get_weather` against a loopback fake of Open-Meteo.

mod fakes;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use fakes::{Fake, HUGE_BYTES, call, find, huge, json, schema_accepts, text};
use mcp_tool::tools::weather::{GET_WEATHER, Settings, tools};
use serde_json::{Value, json};
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

/// Reproduces Open-Meteo as documented at open-meteo.com/en/docs and /en/docs/geocoding-api:
/// `GET /v1/search?name&count&language&format` answers `{"results": [...]}`, with no `results`
/// key when nothing matches; `GET /v1/forecast?latitude&longitude&current&temperature_unit&
/// wind_speed_unit&timezone` answers `{latitude, longitude, timezone, current_units, current}`
/// with only the variables asked for; bad parameters get 400 `{"error": true, "reason"}`.
fn open_meteo() -> Router {
    Router::new()
        .route("/v1/search", get(search))
        .route("/v1/forecast", get(forecast))
}

fn rejected(reason: &str) -> Response {
    json(400, json!({"error": true, "reason": reason}))
}

fn places() -> Vec<Value> {
    let place =
        |name: &str, lat: f64, lon: f64, country: &str, code: &str, admin1: &str, tz: &str| {
            json!({
                "id": 1, "name": name, "latitude": lat, "longitude": lon, "elevation": 74.0,
                "feature_code": "PPLC", "country_code": code, "country": country, "admin1": admin1,
                "timezone": tz, "population": 1000, "country_id": 1, "admin1_id": 1
            })
        };
    vec![
        place(
            "Berlin",
            52.52437,
            13.41053,
            "Germany",
            "DE",
            "Land Berlin",
            "Europe/Berlin",
        ),
        place(
            "Springfield",
            37.21533,
            -93.29824,
            "United States",
            "US",
            "Missouri",
            "America/Chicago",
        ),
        place(
            "Springfield",
            39.80172,
            -89.64371,
            "United States",
            "US",
            "Illinois",
            "America/Chicago",
        ),
        // Coordinates the forecast API refuses, to reach its 400.
        place("Atlantis", 95.0, 0.0, "Nowhere", "XX", "Deep", "GMT"),
    ]
}

async fn search(Query(q): Params) -> Response {
    let Some(name) = q.get("name") else {
        return rejected("Parameter 'name' is missing");
    };
    let count: usize = match q.get("count").map(|c| c.parse()) {
        None => 10,
        Some(Ok(n @ 1..=100)) => n,
        Some(_) => return rejected("Parameter 'count' must be between 1 and 100"),
    };
    if q.get("format").is_some_and(|f| f != "json") {
        return rejected("Parameter 'format' must be json or protobuf");
    }
    let results: Vec<Value> = places()
        .into_iter()
        .filter(|p| p["name"].as_str().unwrap().eq_ignore_ascii_case(name))
        .take(count)
        .collect();
    if results.is_empty() {
        return json(200, json!({"generationtime_ms": 0.4}));
    }
    json(200, json!({"results": results, "generationtime_ms": 0.4}))
}

async fn forecast(Query(q): Params) -> Response {
    let coordinate = |key: &str| q.get(key).and_then(|v| v.parse::<f64>().ok());
    let (Some(lat), Some(lon)) = (coordinate("latitude"), coordinate("longitude")) else {
        return rejected(
            "Parameter 'latitude' and 'longitude' must have the same number of elements",
        );
    };
    if !(-90.0..=90.0).contains(&lat) {
        return rejected(&format!(
            "Latitude must be in range of -90 to 90°. Given: {lat:.1}."
        ));
    }
    let fahrenheit = match q.get("temperature_unit").map(String::as_str) {
        None | Some("celsius") => false,
        Some("fahrenheit") => true,
        Some(other) => {
            return rejected(&format!(
                "Data corrupted at path ''. Cannot initialize TemperatureUnit from invalid String value {other}."
            ));
        }
    };
    let wind_unit = match q.get("wind_speed_unit").map(String::as_str) {
        None | Some("kmh") => "km/h",
        Some("mph") => "mph",
        Some("ms") => "m/s",
        Some("kn") => "kn",
        Some(other) => {
            return rejected(&format!(
                "Cannot initialize WindspeedUnit from invalid String value {other}."
            ));
        }
    };
    let temp = |c: f64| if fahrenheit { c * 9.0 / 5.0 + 32.0 } else { c };
    let known = json!({
        "temperature_2m": [temp(21.5), if fahrenheit { "°F" } else { "°C" }],
        "relative_humidity_2m": [48, "%"],
        "apparent_temperature": [temp(20.0), if fahrenheit { "°F" } else { "°C" }],
        "weather_code": [2, "wmo code"],
        "wind_speed_10m": [12.4, wind_unit]
    });
    let mut current = json!({"time": "2025-06-01T14:00", "interval": 900});
    let mut units = json!({"time": "iso8601", "interval": "seconds"});
    for variable in q
        .get("current")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
    {
        let Some([value, unit]) = known
            .get(variable)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        else {
            return rejected(&format!(
                "Data corrupted at path ''. Cannot initialize ForecastVariable from invalid String value {variable}."
            ));
        };
        current[variable] = value.clone();
        units[variable] = unit.clone();
    }
    json(
        200,
        json!({
            "latitude": lat, "longitude": lon, "generationtime_ms": 0.1, "utc_offset_seconds": 7200,
            "timezone": "Europe/Berlin", "timezone_abbreviation": "GMT+2", "elevation": 38.0,
            "current_units": units, "current": current
        }),
    )
}

fn settings(base: &str) -> Settings {
    Settings {
        geocoding_url: base.to_owned(),
        forecast_url: base.to_owned(),
        ..Settings::default()
    }
}

async fn weather(
    fake: &Fake,
    args: Value,
) -> Result<mcp_tool::tool::ToolOutput, mcp_tool::tool::ToolError> {
    call(&tools(&settings(&fake.url)), GET_WEATHER, args).await
}

#[tokio::test]
async fn geocodes_then_reads_the_current_weather() {
    let fake = Fake::start(open_meteo()).await;
    let out = weather(&fake, json!({"location": "Berlin"})).await.unwrap();

    let s = out.structured.as_ref().unwrap();
    assert_eq!(s["location"], "Berlin");
    assert_eq!(s["country"], "Germany");
    assert_eq!(s["latitude"], 52.52437);
    assert_eq!(s["temperature"], 21.5);
    assert_eq!(s["humidity"], 48.0);
    assert_eq!(s["conditions"], "partly cloudy");
    assert_eq!(
        s["units"],
        json!({"temperature": "°C", "wind_speed": "km/h"})
    );
    assert!(
        text(&out).starts_with("Berlin, Land Berlin, Germany: 21.5 °C"),
        "{}",
        text(&out)
    );

    let [geo, fc] = fake.received().try_into().expect("two requests");
    assert_eq!(
        (geo.method.as_str(), geo.path.as_str()),
        ("GET", "/v1/search")
    );
    assert_eq!(geo.query["name"], "Berlin");
    assert_eq!(geo.query["count"], "1");
    assert_eq!(geo.query["language"], "en");
    assert_eq!(geo.query["format"], "json");
    assert_eq!(fc.path, "/v1/forecast");
    assert_eq!(fc.query["latitude"], "52.52437");
    assert_eq!(fc.query["longitude"], "13.41053");
    assert_eq!(fc.query["temperature_unit"], "celsius");
    assert_eq!(fc.query["wind_speed_unit"], "kmh");
    assert_eq!(fc.query["timezone"], "auto");
    assert!(fc.query["current"].contains("weather_code"));
    // Open-Meteo needs no key: nothing secret may travel there.
    assert!(geo.authorization.is_none() && fc.authorization.is_none());
    assert!(geo.body.is_none() && fc.body.is_none());
}

#[tokio::test]
async fn fahrenheit_asks_for_fahrenheit_and_mph() {
    let fake = Fake::start(open_meteo()).await;
    let args = json!({"location": "Berlin", "units": "fahrenheit"});
    let out = weather(&fake, args).await.unwrap();
    let s = out.structured.unwrap();
    assert_eq!(
        s["units"],
        json!({"temperature": "°F", "wind_speed": "mph"})
    );
    assert_eq!(s["temperature"], 70.7);
    let forecast = &fake.received()[1];
    assert_eq!(forecast.query["temperature_unit"], "fahrenheit");
    assert_eq!(forecast.query["wind_speed_unit"], "mph");
}

#[tokio::test]
async fn region_after_a_comma_picks_between_places() {
    let fake = Fake::start(open_meteo()).await;
    let out = weather(&fake, json!({"location": "Springfield, Illinois"}))
        .await
        .unwrap();
    assert_eq!(out.structured.unwrap()["region"], "Illinois");
    let geo = &fake.received()[0];
    assert_eq!(geo.query["name"], "Springfield");
    assert_eq!(geo.query["count"], "10");
}

#[tokio::test]
async fn unknown_place_says_what_to_do() {
    let fake = Fake::start(open_meteo()).await;
    let err = weather(&fake, json!({"location": "Atlantys"}))
        .await
        .unwrap_err();
    assert!(
        err.0
            .starts_with("no place named \"Atlantys\": check the spelling or add the country"),
        "{err}"
    );
    assert_eq!(fake.received().len(), 1);
}

#[tokio::test]
async fn open_meteo_400_reason_reaches_the_model() {
    let fake = Fake::start(open_meteo()).await;
    let err = weather(&fake, json!({"location": "Atlantis"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.0,
        "Open-Meteo rejected the request: Latitude must be in range of -90 to 90°. Given: 95.0."
    );
}

#[tokio::test]
async fn upstream_500_is_an_error_to_retry_later() {
    let broken = Router::new().fallback(|| async {
        (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "upstream exploded",
        )
    });
    let fake = Fake::start(broken).await;
    let err = weather(&fake, json!({"location": "Berlin"}))
        .await
        .unwrap_err();
    assert!(
        err.0.contains("HTTP 500") && err.0.contains("upstream exploded"),
        "{err}"
    );
    assert!(err.0.ends_with("try again later"), "{err}");
}

#[tokio::test]
async fn malformed_json_is_an_error() {
    let garbage = Router::new().fallback(|| async { "<html>maintenance</html>" });
    let fake = Fake::start(garbage).await;
    let err = weather(&fake, json!({"location": "Berlin"}))
        .await
        .unwrap_err();
    assert!(err.0.contains("does not understand"), "{err}");
}

#[tokio::test]
async fn a_slow_upstream_ends_within_the_time_limit() {
    let slow = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "{}"
    });
    let fake = Fake::start(slow).await;
    let settings = Settings {
        timeout_secs: 1.0,
        ..settings(&fake.url)
    };
    let err = call(
        &tools(&settings),
        GET_WEATHER,
        json!({"location": "Berlin"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.0,
        "Open-Meteo did not answer within 1 s; try again later"
    );
}

#[tokio::test]
async fn a_huge_answer_is_cut_off_at_the_cap() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let runaway = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move { huge(counter) }
    });
    let fake = Fake::start(runaway).await;
    let err = weather(&fake, json!({"location": "Berlin"}))
        .await
        .unwrap_err();
    let host = fake.url.trim_start_matches("http://");
    assert_eq!(
        err.0,
        format!(
            "Open-Meteo sent an answer far larger than a weather report (response from {host} \
             exceeded 1 MiB); try again later"
        )
    );
    assert!(
        sent.load(Ordering::SeqCst) < HUGE_BYTES / 4,
        "the fake stopped being read"
    );
}

#[tokio::test]
async fn failures_name_the_host_not_the_url() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = settings(&format!("http://127.0.0.1:{port}"));
    let err = call(
        &tools(&settings),
        GET_WEATHER,
        json!({"location": "Secret Town"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.0.starts_with(&format!(
            "could not reach Open-Meteo (cannot connect to 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    for leak in ["/v1/search", "name=", "Secret", "count=", "?"] {
        assert!(!err.0.contains(leak), "{leak} in {err}");
    }
}

#[tokio::test]
async fn unknown_values_are_left_out_not_null() {
    let partial = Router::new()
        .route(
            "/v1/search",
            get(|| async {
                json(
                    200,
                    json!({"results": [{"name": "Nowhere", "latitude": 1.0, "longitude": 2.0}]}),
                )
            }),
        )
        .route(
            "/v1/forecast",
            get(|| async {
                json(
                    200,
                    json!({"current": {"time": "2025-06-01T14:00", "temperature_2m": null}}),
                )
            }),
        );
    let fake = Fake::start(partial).await;
    let out = weather(&fake, json!({"location": "Nowhere"}))
        .await
        .unwrap();
    let s = out.structured.unwrap();
    for absent in ["region", "country", "timezone", "temperature", "humidity"] {
        assert!(s.get(absent).is_none(), "{absent} in {s}");
    }
    assert_eq!(s["conditions"], "unknown");
}

#[tokio::test]
async fn schema_and_switch() {
    let all = tools(&Settings::default());
    let tool = find(&all, GET_WEATHER);
    assert_eq!(tool.title.as_deref(), Some("Current weather"));
    assert_eq!(
        tool.annotations,
        Some(json!({"readOnlyHint": true, "openWorldHint": true}))
    );
    assert!(schema_accepts(
        tool,
        &json!({"location": "Oslo", "units": "celsius"})
    ));
    assert!(!schema_accepts(
        tool,
        &json!({"location": "Oslo", "units": "kelvin"})
    ));
    assert!(!schema_accepts(tool, &json!({"location": ""})));
    assert!(!schema_accepts(tool, &json!({"city": "Oslo"})));
    assert!(
        tools(&Settings {
            enabled: false,
            ..Settings::default()
        })
        .is_empty()
    );
}
