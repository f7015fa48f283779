//! The seed's flat `mcp.Schema` (an object's top-level properties: type, description, default)
//! and JSON Schema. The added `input_schema_json` carries the full schema; the flat one is for
//! clients and servers built from the seed's proto, so both directions are lossy by design.

use std::collections::HashMap;

use serde_json::{Map, Value as Json, json};

use super::value::{from_pb_value, to_pb_value};
use crate::mcp;

/// A JSON Schema's flat view: its top-level properties with their type (the first non-null one
/// of a list), description and default.
pub fn to_flat_schema(schema: &Json) -> mcp::Schema {
    let properties: HashMap<String, mcp::SchemaField> = schema
        .get("properties")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
        .map(|(name, prop)| {
            let field = mcp::SchemaField {
                r#type: type_of(prop),
                description: prop
                    .get("description")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                default_value: prop.get("default").cloned().map(to_pb_value),
            };
            (name.clone(), field)
        })
        .collect();
    mcp::Schema {
        r#type: type_of(schema),
        properties,
        required: schema
            .get("required")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(str::to_owned)
            .collect(),
    }
}

/// A flat schema as JSON Schema (an object of typed properties); none is any object.
pub fn from_flat_schema(schema: Option<&mcp::Schema>) -> Json {
    let Some(schema) = schema else {
        return json!({"type": "object"});
    };
    let properties: Map<String, Json> = schema
        .properties
        .iter()
        .map(|(name, field)| {
            let mut prop = Map::new();
            if !field.r#type.is_empty() {
                prop.insert("type".into(), Json::String(field.r#type.clone()));
            }
            if !field.description.is_empty() {
                prop.insert("description".into(), field.description.clone().into());
            }
            if let Some(default) = field.default_value.clone() {
                prop.insert("default".into(), from_pb_value(default));
            }
            (name.clone(), Json::Object(prop))
        })
        .collect();
    let mut out = json!({"type": "object", "properties": properties});
    if !schema.required.is_empty() {
        out["required"] = json!(schema.required);
    }
    out
}

fn type_of(schema: &Json) -> String {
    match schema.get("type") {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(types)) => types
            .iter()
            .filter_map(Json::as_str)
            .find(|t| *t != "null")
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_schema_keeps_top_level_fields() {
        let s = to_flat_schema(&json!({
            "type": "object",
            "properties": {"units": {"type": ["string", "null"], "description": "u", "default": "celsius"}},
            "required": ["units"]
        }));
        assert_eq!(s.r#type, "object");
        assert_eq!(s.properties["units"].r#type, "string");
        assert_eq!(s.required, ["units"]);
        assert!(s.properties["units"].default_value.is_some());
    }

    /// What a client of the seed's proto sees of a tool's schema, and reads back: an integer
    /// default stays an integer.
    #[test]
    fn flat_schema_round_trips_its_view() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "days": {"type": "integer", "default": 3},
                "ratio": {"type": "number", "default": 0.5}
            },
            "required": ["city"]
        });
        let back = from_flat_schema(Some(&to_flat_schema(&schema)));
        assert_eq!(back, schema);
        assert!(back["properties"]["days"]["default"].is_i64());
        assert_eq!(from_flat_schema(None), json!({"type": "object"}));
    }
}
