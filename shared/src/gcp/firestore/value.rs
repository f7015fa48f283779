//! Firestore's typed values in their JSON form (`{"stringValue": "x"}`, `{"integerValue":
//! "12"}`: 64-bit integers travel as strings, `{"timestampValue": "RFC 3339"}`, `{"bytesValue":
//! base64}`, `{"mapValue": {"fields": {...}}}`, `{"arrayValue": {"values": [...]}}`), and
//! documents.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A document's fields, by name.
pub type Fields = BTreeMap<String, Value>;

/// One Firestore value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nullValue`.
    Null,
    /// `booleanValue`.
    Boolean(bool),
    /// `integerValue`: a signed 64-bit integer, written as a decimal string.
    Integer(i64),
    /// `doubleValue`.
    Double(f64),
    /// `timestampValue`: RFC 3339 on the wire, microsecond precision in the store.
    Timestamp(OffsetDateTime),
    /// `stringValue`: UTF-8 text (at most 1 MiB less the document's other bytes).
    String(String),
    /// `bytesValue`: base64 on the wire.
    Bytes(Vec<u8>),
    /// `referenceValue`: another document's full name (`projects/P/databases/D/documents/...`);
    /// cursors over `__name__` use it.
    Reference(String),
    /// `mapValue`.
    Map(Fields),
    /// `arrayValue` (an array may not hold an array).
    Array(Vec<Value>),
}

impl Value {
    /// The text of a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// An `Integer`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// A `Double`, or an `Integer` as a double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Double(d) => Some(*d),
            Self::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// A `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// A `Timestamp`.
    pub fn as_timestamp(&self) -> Option<OffsetDateTime> {
        match self {
            Self::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    /// The bytes of `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The fields of a `Map`.
    pub fn as_map(&self) -> Option<&Fields> {
        match self {
            Self::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The values of an `Array`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Any JSON as Firestore values: objects become maps, whole numbers that fit integers,
    /// other numbers doubles. (An array directly inside an array is refused by Firestore; keep
    /// such JSON as text in a `String` instead, as for anything whose keys may be `__x__`.)
    pub fn from_json(json: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match json {
            J::Null => Self::Null,
            J::Bool(b) => Self::Boolean(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Self::Integer(i),
                None => Self::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Self::String(s),
            J::Array(a) => Self::Array(a.into_iter().map(Self::from_json).collect()),
            J::Object(o) => Self::Map(
                o.into_iter()
                    .map(|(k, v)| (k, Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The value as plain JSON: timestamps as RFC 3339 text, bytes as base64 text, references
    /// as their names, doubles that are not finite as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Boolean(b) => J::Bool(*b),
            Self::Integer(i) => J::from(*i),
            Self::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
            Self::Timestamp(t) => J::String(rfc3339(*t)),
            Self::String(s) | Self::Reference(s) => J::String(s.clone()),
            Self::Bytes(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Self::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Self::Array(a) => J::Array(a.iter().map(Self::to_json).collect()),
        }
    }
}

/// `t` in RFC 3339, in UTC, as Firestore writes it.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Integer(i)
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Self::Integer(i.into())
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Self::Double(d)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Boolean(b)
    }
}

impl From<OffsetDateTime> for Value {
    fn from(t: OffsetDateTime) -> Self {
        Self::Timestamp(t)
    }
}

impl From<Fields> for Value {
    fn from(m: Fields) -> Self {
        Self::Map(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Self::Array(a)
    }
}

/// `{"fields": {...}}` around a map's fields.
#[derive(Serialize)]
struct MapOut<'a> {
    fields: &'a Fields,
}

/// `{"values": [...]}` around an array's values.
#[derive(Serialize)]
struct ArrayOut<'a> {
    values: &'a [Value],
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Self::Null => map.serialize_entry("nullValue", &())?,
            Self::Boolean(b) => map.serialize_entry("booleanValue", b)?,
            Self::Integer(i) => map.serialize_entry("integerValue", &i.to_string())?,
            // JSON has no NaN or infinities: Firestore's JSON mapping writes them as strings.
            Self::Double(d) if d.is_nan() => map.serialize_entry("doubleValue", "NaN")?,
            Self::Double(d) if d.is_infinite() => map.serialize_entry(
                "doubleValue",
                if *d > 0.0 { "Infinity" } else { "-Infinity" },
            )?,
            Self::Double(d) => map.serialize_entry("doubleValue", d)?,
            Self::Timestamp(t) => map.serialize_entry("timestampValue", &rfc3339(*t))?,
            Self::String(s) => map.serialize_entry("stringValue", s)?,
            Self::Bytes(b) => map.serialize_entry(
                "bytesValue",
                &base64::engine::general_purpose::STANDARD.encode(b),
            )?,
            Self::Reference(r) => map.serialize_entry("referenceValue", r)?,
            Self::Map(fields) => map.serialize_entry("mapValue", &MapOut { fields })?,
            Self::Array(values) => map.serialize_entry("arrayValue", &ArrayOut { values })?,
        }
        map.end()
    }
}

/// A number that may come as a JSON number or as text (int64 and the doubles JSON lacks).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(serde_json::Number),
    Text(String),
}

#[derive(Deserialize, Default)]
struct MapIn {
    #[serde(default)]
    fields: Fields,
}

#[derive(Deserialize, Default)]
struct ArrayIn {
    #[serde(default)]
    values: Vec<Value>,
}

/// The wire form read: exactly one of these keys.
#[derive(Deserialize)]
enum Wire {
    #[serde(rename = "nullValue")]
    Null(serde::de::IgnoredAny),
    #[serde(rename = "booleanValue")]
    Boolean(bool),
    #[serde(rename = "integerValue")]
    Integer(NumberOrText),
    #[serde(rename = "doubleValue")]
    Double(NumberOrText),
    #[serde(rename = "timestampValue")]
    Timestamp(String),
    #[serde(rename = "stringValue")]
    String(String),
    #[serde(rename = "bytesValue")]
    Bytes(String),
    #[serde(rename = "referenceValue")]
    Reference(String),
    #[serde(rename = "mapValue")]
    Map(MapIn),
    #[serde(rename = "arrayValue")]
    Array(ArrayIn),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Null(_) => Self::Null,
            Wire::Boolean(b) => Self::Boolean(b),
            Wire::Integer(NumberOrText::Number(n)) => Self::Integer(
                n.as_i64()
                    .ok_or_else(|| D::Error::custom(format!("integerValue {n} is not an int64")))?,
            ),
            Wire::Integer(NumberOrText::Text(t)) => Self::Integer(
                t.parse()
                    .map_err(|_| D::Error::custom(format!("integerValue {t:?} is not an int64")))?,
            ),
            Wire::Double(NumberOrText::Number(n)) => Self::Double(n.as_f64().unwrap_or(f64::NAN)),
            Wire::Double(NumberOrText::Text(t)) => Self::Double(match t.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                _ => t
                    .parse()
                    .map_err(|_| D::Error::custom(format!("doubleValue {t:?} is not a number")))?,
            }),
            Wire::Timestamp(t) => {
                Self::Timestamp(OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| {
                    D::Error::custom(format!("timestampValue {t:?} is not RFC 3339"))
                })?)
            }
            Wire::String(s) => Self::String(s),
            Wire::Bytes(b) => Self::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b.as_bytes())
                    .map_err(|_| D::Error::custom("bytesValue is not base64"))?,
            ),
            Wire::Reference(r) => Self::Reference(r),
            Wire::Map(m) => Self::Map(m.fields),
            Wire::Array(a) => Self::Array(a.values),
        })
    }
}

/// A stored document: its full name, its fields, and the times Firestore gave it
/// (`update_time` is what a conditional write compares against).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// `projects/P/databases/D/documents/runs/r1`.
    pub name: String,
    /// Its fields.
    #[serde(default)]
    pub fields: Fields,
    /// When it was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub create_time: Option<OffsetDateTime>,
    /// When it was last written.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub update_time: Option<OffsetDateTime>,
}

impl Document {
    /// Its id: the last segment of its name.
    pub fn id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    /// Its path below the database's documents (`runs/r1`), as the client's methods take it.
    pub fn path(&self) -> &str {
        self.name
            .split_once("/documents/")
            .map_or(self.name.as_str(), |(_, p)| p)
    }

    /// A field.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// A `String` field's text.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.get(field).and_then(Value::as_str)
    }

    /// An `Integer` field.
    pub fn i64(&self, field: &str) -> Option<i64> {
        self.get(field).and_then(Value::as_i64)
    }
}
