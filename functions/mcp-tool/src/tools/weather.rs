//! `get_weather`: current conditions for a place name from Open-Meteo (free, no API key). The
//! name is geocoded first (`/v1/search`), then the current weather at those coordinates is
//! fetched (`/v1/forecast`); both requests share the tool's time limit, its response cap and
//! its budget of bytes in flight.

use std::sync::Arc;
use std::time::Duration;

use aixrun::outbound::{ByteBudget, Call, OutboundError, Request, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::tool::{Args, Content, Tool, ToolError, ToolOutput};

/// The tool's name.
pub const GET_WEATHER: &str = "get_weather";

const DESCRIPTION: &str = "Current weather for a city or place name: temperature, feels-like \
temperature, humidity, wind speed and conditions, from Open-Meteo. Add the region or country \
after a comma to pick between places of the same name (\"Portland, Oregon\", \"Paris, France\").";

/// Longest accepted `location`, in characters.
const MAX_LOCATION_CHARS: usize = 200;
/// Candidates fetched when the location carries hints to choose between them.
const CANDIDATES_WITH_HINTS: u8 = 10;
/// Upstream error bodies quoted to the model are cut to this many characters.
const MAX_QUOTED_CHARS: usize = 300;
/// Largest Open-Meteo answer read: real ones are a few KiB (ten geocoding candidates, one set
/// of current values).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Error bodies are only quoted, so only their start is read.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;
/// Response bytes all `get_weather` calls of an instance may hold at once: eight answers at
/// the cap, or the default 64 concurrent calls' real answers many times over.
const BYTE_BUDGET: usize = 8 * MAX_RESPONSE_BYTES;
const CURRENT_FIELDS: &str =
    "temperature_2m,relative_humidity_2m,apparent_temperature,weather_code,wind_speed_10m";

/// Settings of the weather tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Serve `get_weather`.
    pub enabled: bool,
    /// Base URL of Open-Meteo's geocoding API (`{geocoding_url}/v1/search`).
    pub geocoding_url: String,
    /// Base URL of Open-Meteo's forecast API (`{forecast_url}/v1/forecast`).
    pub forecast_url: String,
    /// Longest a call may take, both requests included, in seconds.
    pub timeout_secs: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            geocoding_url: "https://geocoding-api.open-meteo.com".to_owned(),
            forecast_url: "https://api.open-meteo.com".to_owned(),
            timeout_secs: 10.0,
        }
    }
}

impl Settings {
    /// Checks the URLs and the timeout; the error names the setting and what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (name, url) in [
            ("geocoding_url", &self.geocoding_url),
            ("forecast_url", &self.forecast_url),
        ] {
            match Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(format!("{name}={url:?}: not an http(s) URL")),
            }
        }
        if duration(self.timeout_secs).is_none() {
            return Err(format!(
                "timeout_secs={}: must be a positive number of seconds",
                self.timeout_secs
            ));
        }
        Ok(())
    }

    /// The tool's time limit (the default when the setting is unusable).
    fn timeout(&self) -> Duration {
        duration(self.timeout_secs)
            .unwrap_or_else(|| duration(Self::default().timeout_secs).unwrap_or_default())
    }
}

fn duration(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// The weather tools: `get_weather`, or none when disabled.
pub fn tools(settings: &Settings) -> Vec<Tool> {
    if !settings.enabled {
        return Vec::new();
    }
    let timeout = settings.timeout();
    let shared = Arc::new((settings.clone(), ByteBudget::new(BYTE_BUDGET)));
    let tool = Tool::new(
        GET_WEATHER,
        DESCRIPTION,
        input_schema(),
        move |args, _ctx| {
            let shared = Arc::clone(&shared);
            async move {
                let (settings, budget) = &*shared;
                get_weather(settings, budget, args).await
            }
        },
    );
    vec![
        tool.title("Current weather")
            .output_schema(output_schema())
            .annotations(json!({"readOnlyHint": true, "openWorldHint": true}))
            .timeout(timeout),
    ]
}

fn input_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_LOCATION_CHARS,
                "description": "City or place name, optionally followed by region and/or \
                    country after commas, e.g. \"Berlin\" or \"Springfield, Illinois\"."
            },
            "units": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "default": "celsius",
                "description": "celsius (wind in km/h) or fahrenheit (wind in mph)."
            }
        },
        "required": ["location"],
        "additionalProperties": false
    })
}

/// Values Open-Meteo may not know are left out rather than `null`: single-type schemas are what
/// every function-calling dialect accepts (Gemini's declarations reject type arrays).
fn output_schema() -> Value {
    let number = |description: &str| json!({"type": "number", "description": description});
    let text = |description: &str| json!({"type": "string", "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "Name of the place found."},
            "region": text("Its region or state, when known."),
            "country": text("Its country, when known."),
            "latitude": {"type": "number", "description": "Latitude in degrees."},
            "longitude": {"type": "number", "description": "Longitude in degrees."},
            "timezone": text("IANA time zone of the place, when known."),
            "time": {"type": "string", "description": "Local time of the observation (ISO 8601)."},
            "temperature": number("Air temperature at 2 m, when known."),
            "apparent_temperature": number("Feels-like temperature, when known."),
            "humidity": number("Relative humidity at 2 m, in percent, when known."),
            "wind_speed": number("Wind speed at 10 m, when known."),
            "conditions": {"type": "string", "description": "Weather conditions in words."},
            "units": {
                "type": "object",
                "properties": {
                    "temperature": {"type": "string", "description": "Unit of temperatures."},
                    "wind_speed": {"type": "string", "description": "Unit of wind speed."}
                },
                "required": ["temperature", "wind_speed"],
                "additionalProperties": false,
                "description": "Units of the numbers above."
            }
        },
        "required": ["location", "latitude", "longitude", "time", "conditions", "units"],
        "additionalProperties": false
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeatherArgs {
    location: String,
    #[serde(default)]
    units: Units,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Units {
    #[default]
    Celsius,
    Fahrenheit,
}

impl Units {
    /// Open-Meteo's `temperature_unit` and `wind_speed_unit` for this choice.
    fn query(self) -> [(&'static str, &'static str); 2] {
        match self {
            Self::Celsius => [("temperature_unit", "celsius"), ("wind_speed_unit", "kmh")],
            Self::Fahrenheit => [
                ("temperature_unit", "fahrenheit"),
                ("wind_speed_unit", "mph"),
            ],
        }
    }

    /// Temperature and wind speed symbols, for when the answer doesn't name its units.
    fn symbols(self) -> (&'static str, &'static str) {
        match self {
            Self::Celsius => ("°C", "km/h"),
            Self::Fahrenheit => ("°F", "mph"),
        }
    }
}

/// One geocoding result (fields as `/v1/search` names them).
#[derive(Debug, Deserialize)]
struct Place {
    name: String,
    latitude: f64,
    longitude: f64,
    country: Option<String>,
    country_code: Option<String>,
    admin1: Option<String>,
    admin2: Option<String>,
    admin3: Option<String>,
    timezone: Option<String>,
}

/// `/v1/search` answer: no `results` key at all when nothing matched.
#[derive(Debug, Deserialize)]
struct Geocoding {
    #[serde(default)]
    results: Vec<Place>,
}

#[derive(Debug, Deserialize)]
struct Forecast {
    timezone: Option<String>,
    #[serde(default)]
    current_units: CurrentUnits,
    current: Current,
}

#[derive(Debug, Default, Deserialize)]
struct CurrentUnits {
    temperature_2m: Option<String>,
    wind_speed_10m: Option<String>,
}

/// Current values; Open-Meteo sends `null` where a model has no data.
#[derive(Debug, Deserialize)]
struct Current {
    time: String,
    temperature_2m: Option<f64>,
    relative_humidity_2m: Option<f64>,
    apparent_temperature: Option<f64>,
    weather_code: Option<u16>,
    wind_speed_10m: Option<f64>,
}

async fn get_weather(
    settings: &Settings,
    budget: &ByteBudget,
    args: Args,
) -> Result<ToolOutput, ToolError> {
    let args: WeatherArgs = serde_json::from_value(Value::Object(args))
        .map_err(|e| ToolError::new(format!("invalid arguments: {e}")))?;
    let location = args.location.trim();
    if location.is_empty() || location.chars().count() > MAX_LOCATION_CHARS {
        return Err(ToolError::new(format!(
            "location must be a place name of 1 to {MAX_LOCATION_CHARS} characters"
        )));
    }
    let upstream = Upstream::new(settings, budget);
    let place = geocode(&upstream, settings, location).await?;
    let forecast = forecast(&upstream, settings, &place, args.units).await?;
    Ok(report(place, forecast, args.units))
}

/// Finds the place: the text before the first comma is the name Open-Meteo searches (it matches
/// names only); what follows are hints matched against region and country to pick a candidate.
async fn geocode(
    upstream: &Upstream,
    settings: &Settings,
    location: &str,
) -> Result<Place, ToolError> {
    let mut parts = location.split(',').map(str::trim).filter(|p| !p.is_empty());
    let name = parts.next().unwrap_or(location);
    let hints: Vec<&str> = parts.collect();
    let count = if hints.is_empty() {
        1
    } else {
        CANDIDATES_WITH_HINTS
    };
    let url = upstream.url(
        &settings.geocoding_url,
        "/v1/search",
        &[
            ("name", name),
            ("count", &count.to_string()),
            ("language", "en"),
            ("format", "json"),
        ],
    )?;
    let found: Geocoding = upstream.get(url).await?;
    best_match(found.results, &hints).ok_or_else(|| {
        ToolError::new(format!(
            "no place named {location:?}: check the spelling or add the country \
             (e.g. \"Paris, France\")"
        ))
    })
}

/// The candidate matching the most hints; Open-Meteo's ranking (population) breaks ties.
fn best_match(candidates: Vec<Place>, hints: &[&str]) -> Option<Place> {
    let score = |place: &Place| {
        let fields = [
            &place.country,
            &place.country_code,
            &place.admin1,
            &place.admin2,
            &place.admin3,
        ];
        hints
            .iter()
            .filter(|hint| {
                fields.iter().any(|f| {
                    f.as_deref()
                        .is_some_and(|f| f.to_lowercase() == hint.to_lowercase())
                })
            })
            .count()
    };
    let mut best: Option<(usize, Place)> = None;
    for place in candidates {
        let s = score(&place);
        if best.as_ref().is_none_or(|(top, _)| s > *top) {
            best = Some((s, place));
        }
    }
    best.map(|(_, place)| place)
}

async fn forecast(
    upstream: &Upstream,
    settings: &Settings,
    place: &Place,
    units: Units,
) -> Result<Forecast, ToolError> {
    let (latitude, longitude) = (place.latitude.to_string(), place.longitude.to_string());
    let mut query = vec![
        ("latitude", latitude.as_str()),
        ("longitude", longitude.as_str()),
        ("current", CURRENT_FIELDS),
        ("timezone", "auto"),
    ];
    query.extend(units.query());
    let url = upstream.url(&settings.forecast_url, "/v1/forecast", &query)?;
    upstream.get(url).await
}

fn report(place: Place, forecast: Forecast, units: Units) -> ToolOutput {
    let (default_temp, default_wind) = units.symbols();
    let temp_unit = forecast
        .current_units
        .temperature_2m
        .unwrap_or_else(|| default_temp.to_owned());
    let wind_unit = forecast
        .current_units
        .wind_speed_10m
        .unwrap_or_else(|| default_wind.to_owned());
    let now = &forecast.current;
    let conditions = now
        .weather_code
        .map_or_else(|| "unknown".to_owned(), conditions);
    let timezone = forecast.timezone.or(place.timezone);
    let shown =
        |v: Option<f64>, unit: &str| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v} {unit}"));

    let name = [
        Some(place.name.as_str()),
        place.admin1.as_deref(),
        place.country.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let summary = format!(
        "{name}: {}, feels like {}, {conditions}, humidity {}, wind {} (local time {}{})",
        shown(now.temperature_2m, &temp_unit),
        shown(now.apparent_temperature, &temp_unit),
        shown(now.relative_humidity_2m, "%"),
        shown(now.wind_speed_10m, &wind_unit),
        now.time,
        timezone
            .as_deref()
            .map(|tz| format!(", {tz}"))
            .unwrap_or_default(),
    );
    let mut structured = json!({
        "location": place.name,
        "region": place.admin1,
        "country": place.country,
        "latitude": place.latitude,
        "longitude": place.longitude,
        "timezone": timezone,
        "time": now.time,
        "temperature": now.temperature_2m,
        "apparent_temperature": now.apparent_temperature,
        "humidity": now.relative_humidity_2m,
        "wind_speed": now.wind_speed_10m,
        "conditions": conditions,
        "units": {"temperature": temp_unit, "wind_speed": wind_unit},
    });
    // Unknown values are left out, as the output schema says.
    if let Some(fields) = structured.as_object_mut() {
        fields.retain(|_, value| !value.is_null());
    }
    ToolOutput {
        content: vec![Content::text(summary)],
        structured: Some(structured),
    }
}

/// WMO weather interpretation code (as Open-Meteo documents it) in words.
fn conditions(code: u16) -> String {
    let text = match code {
        0 => "clear sky",
        1 => "mainly clear",
        2 => "partly cloudy",
        3 => "overcast",
        45 => "fog",
        48 => "depositing rime fog",
        51 => "light drizzle",
        53 => "moderate drizzle",
        55 => "dense drizzle",
        56 => "light freezing drizzle",
        57 => "dense freezing drizzle",
        61 => "slight rain",
        63 => "moderate rain",
        65 => "heavy rain",
        66 => "light freezing rain",
        67 => "heavy freezing rain",
        71 => "slight snowfall",
        73 => "moderate snowfall",
        75 => "heavy snowfall",
        77 => "snow grains",
        80 => "slight rain showers",
        81 => "moderate rain showers",
        82 => "violent rain showers",
        85 => "slight snow showers",
        86 => "heavy snow showers",
        95 => "thunderstorm",
        96 => "thunderstorm with slight hail",
        99 => "thunderstorm with heavy hail",
        other => return format!("unknown (WMO code {other})"),
    };
    text.to_owned()
}

/// Requests to Open-Meteo within one call's time limit, response cap and byte budget.
struct Upstream {
    call: Call,
    /// The tool's limit, for the message.
    timeout: Duration,
}

impl Upstream {
    fn new(settings: &Settings, budget: &ByteBudget) -> Self {
        let timeout = settings.timeout();
        // Stop a little before the tool's limit so the model gets our message, not a bare timeout.
        let margin = (timeout / 10).min(Duration::from_secs(1));
        Self {
            call: Call::new(timeout - margin, MAX_RESPONSE_BYTES).budget(budget),
            timeout,
        }
    }

    fn url(&self, base: &str, path: &str, query: &[(&str, &str)]) -> Result<Url, ToolError> {
        let url = format!("{}{path}", base.trim_end_matches('/'));
        Url::parse_with_params(&url, query).map_err(|e| {
            ToolError::new(format!(
                "the weather tool is misconfigured ({url:?} is not a URL: {e}); tell the operator"
            ))
        })
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, ToolError> {
        let response = Request::get(url)
            .send(&self.call)
            .await
            .map_err(|e| self.failed(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.body_prefix(MAX_ERROR_BODY_BYTES).await;
            return Err(status_error(status, &body));
        }
        response.body_json().await.map_err(|e| self.failed(&e))
    }

    /// What the model is told: the host and the problem, never the URL with its query.
    fn failed(&self, error: &OutboundError) -> ToolError {
        let message = match error {
            e if e.is_timeout() => format!(
                "Open-Meteo did not answer within {} s; try again later",
                self.timeout.as_secs_f64()
            ),
            OutboundError::Decode { problem, .. } => format!(
                "Open-Meteo sent a response this tool does not understand ({problem}); try again \
                 later"
            ),
            OutboundError::TooLarge { .. } => format!(
                "Open-Meteo sent an answer far larger than a weather report ({error}); try again \
                 later"
            ),
            other => format!("could not reach Open-Meteo ({other}); try again later"),
        };
        ToolError::new(message)
    }
}

/// Open-Meteo answers bad requests with 400 `{"error": true, "reason": "..."}`.
fn status_error(status: StatusCode, body: &[u8]) -> ToolError {
    #[derive(Deserialize)]
    struct Rejection {
        reason: String,
    }
    if let Ok(Rejection { reason }) = serde_json::from_slice(body) {
        return ToolError::new(format!("Open-Meteo rejected the request: {reason}"));
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(MAX_QUOTED_CHARS).collect();
    let advice = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        "; try again later"
    } else {
        ""
    };
    ToolError::new(format!("Open-Meteo returned HTTP {status}: {text}{advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str, country: &str, admin1: &str) -> Place {
        Place {
            name: name.to_owned(),
            latitude: 0.0,
            longitude: 0.0,
            country: Some(country.to_owned()),
            country_code: None,
            admin1: Some(admin1.to_owned()),
            admin2: None,
            admin3: None,
            timezone: None,
        }
    }

    #[test]
    fn schemas_are_valid_2020_12() {
        for schema in [input_schema(), output_schema()] {
            assert!(aixrun::schema::Schema::compile(&schema).is_ok(), "{schema}");
        }
    }

    #[test]
    fn hints_pick_the_candidate_and_ties_keep_upstream_order() {
        let candidates = || {
            vec![
                place("Springfield", "United States", "Missouri"),
                place("Springfield", "United States", "Illinois"),
            ]
        };
        assert_eq!(
            best_match(candidates(), &["illinois"])
                .unwrap()
                .admin1
                .unwrap(),
            "Illinois"
        );
        assert_eq!(
            best_match(candidates(), &[]).unwrap().admin1.unwrap(),
            "Missouri"
        );
        assert!(best_match(Vec::new(), &[]).is_none());
    }

    #[test]
    fn weather_codes_have_words() {
        assert_eq!(conditions(0), "clear sky");
        assert_eq!(conditions(63), "moderate rain");
        assert_eq!(conditions(99), "thunderstorm with heavy hail");
        assert_eq!(conditions(42), "unknown (WMO code 42)");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = Settings {
            timeout_secs: -1.0,
            ..Settings::default()
        };
        assert!(bad.validate().unwrap_err().starts_with("timeout_secs"));
        assert_eq!(bad.timeout(), Duration::from_secs(10));
        assert!(Settings::default().validate().is_ok());
    }
}
