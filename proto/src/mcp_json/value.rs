//! JSON values as `mcp.Value` (the seed's copy of `google.protobuf.Value`) and back.
//!
//! `mcp.Value` has one number type, a double. Going to the proto every JSON number becomes the
//! nearest double. Coming back, a whole number that a double holds exactly and that fits `i64`
//! (or, when positive, `u64`) becomes a JSON integer, and only the rest stays a float: `3` sent
//! as the double `3.0` arrives as `3`. The reason is what reads the arguments after a gRPC round
//! trip: JSON Schema's `integer` admits `3.0` (boon checks the value), but tools deserialize
//! their arguments into Rust integers (`serde_json::from_value` of a struct with a `u32`), which
//! refuse a float, and a model or a log would read `3.0` where `3` was sent. Doubles that are
//! not numbers (NaN, infinities) have no JSON form: they become `null`, which a schema asking
//! for a number then rejects with its path.

use std::collections::HashMap;

use serde_json::{Map, Number, Value as Json};

use crate::mcp::value::Kind;
use crate::mcp::{ListValue, NullValue, StructValue, Value};

/// 2^63 (exact as a double): the first whole number past `i64::MAX`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
/// 2^64 (exact as a double): the first whole number past `u64::MAX`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// JSON to `mcp.Value`. Numbers become the nearest double (integers above 2^53 may round).
pub fn to_pb_value(value: Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(NullValue::NullValue as i32),
        Json::Bool(b) => Kind::BoolValue(b),
        // `as_f64` is `None` only with serde_json's `arbitrary_precision`, which is off.
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(to_pb_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(StructValue {
            fields: to_pb_fields(map),
        }),
    };
    Value { kind: Some(kind) }
}

/// `mcp.Value` to JSON; whole numbers come back as integers (see the module's note). A value
/// without a kind is `null`.
pub fn from_pb_value(value: Value) -> Json {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(b),
        Some(Kind::NumberValue(n)) => double_as_json(n),
        Some(Kind::StringValue(s)) => Json::String(s),
        Some(Kind::ListValue(list)) => {
            Json::Array(list.values.into_iter().map(from_pb_value).collect())
        }
        Some(Kind::StructValue(s)) => Json::Object(from_pb_fields(s.fields)),
    }
}

/// A JSON object as a `map<string, Value>` (`CallToolRequest.arguments`, `StructValue`).
pub fn to_pb_fields(map: Map<String, Json>) -> HashMap<String, Value> {
    map.into_iter().map(|(k, v)| (k, to_pb_value(v))).collect()
}

/// A `map<string, Value>` as a JSON object.
pub fn from_pb_fields(fields: HashMap<String, Value>) -> Map<String, Json> {
    fields
        .into_iter()
        .map(|(k, v)| (k, from_pb_value(v)))
        .collect()
}

/// A protobuf double as JSON, by the rule above: whole and within `i64` (or `u64`) an
/// integer, else a float, NaN and the infinities `null`. Shared with every proto whose numbers
/// are doubles (`google.protobuf.Value` in orchestrate's run API too), so that all agree.
pub fn double_as_json(n: f64) -> Json {
    // Whole and in range, the casts are exact (a double's integers in this range are integers
    // of the target type); -0.0 becomes 0.
    if n.fract() == 0.0 {
        if (-TWO_POW_63..TWO_POW_63).contains(&n) {
            return Json::Number(Number::from(n as i64));
        }
        if (0.0..TWO_POW_64).contains(&n) {
            return Json::Number(Number::from(n as u64));
        }
    }
    // Fractions, whole numbers past u64 (1e20 stays 1e20), and NaN and the infinities, which
    // `from_f64` refuses.
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn through_pb(v: Json) -> Json {
        from_pb_value(to_pb_value(v))
    }

    fn number(n: f64) -> Value {
        Value {
            kind: Some(Kind::NumberValue(n)),
        }
    }

    #[test]
    fn nested_values_round_trip() {
        let v = json!({
            "a": [1, 2.5, "x", null, true, false, [], {}],
            "b": {"c": -3, "d": {"e": [0.125, {"f": "g"}]}},
            "": ""
        });
        assert_eq!(through_pb(v.clone()), v);
    }

    #[test]
    fn whole_doubles_become_integers() {
        for (double, expected) in [(3.0, json!(3)), (-7.0, json!(-7)), (0.0, json!(0))] {
            let back = from_pb_value(number(double));
            assert_eq!(back, expected);
            assert!(back.is_i64(), "{double} came back as {back}");
        }
        // -0.0 is the integer 0, not "-0.0".
        assert_eq!(from_pb_value(number(-0.0)).to_string(), "0");
        // An integer argument stays an integer, so a tool's `u32` field reads it.
        let args = through_pb(json!({"limit": 5}));
        assert_eq!(args.to_string(), r#"{"limit":5}"#);
        assert_eq!(
            serde_json::from_value::<u32>(args["limit"].clone()).unwrap(),
            5
        );
    }

    #[test]
    fn fractions_stay_floats() {
        for f in [2.5, -0.1, 1e-300, f64::MIN_POSITIVE] {
            let back = from_pb_value(number(f));
            assert!(back.is_f64(), "{f} came back as {back}");
            assert_eq!(back.as_f64(), Some(f));
        }
    }

    #[test]
    fn the_edges_of_i64_and_u64() {
        // The largest and smallest doubles that fit i64 exactly.
        let below = TWO_POW_63 - 1024.0;
        assert_eq!(from_pb_value(number(below)), json!(below as i64));
        assert_eq!(from_pb_value(number(-TWO_POW_63)), json!(i64::MIN));
        // 2^63 is past i64 but fits u64.
        let back = from_pb_value(number(TWO_POW_63));
        assert!(back.is_u64() && !back.is_i64(), "{back}");
        assert_eq!(back, json!(1u64 << 63));
        // The largest double below 2^64.
        let top = TWO_POW_64 - 2048.0;
        assert_eq!(from_pb_value(number(top)), json!(top as u64));
        // Whole numbers past u64 (or below i64) have no integer form: they stay floats.
        for big in [TWO_POW_64, 1e20, -1e20, f64::MAX, -TWO_POW_63 * 2.0] {
            let back = from_pb_value(number(big));
            assert!(back.is_f64(), "{big} came back as {back}");
            assert_eq!(back.as_f64(), Some(big));
        }
    }

    #[test]
    fn big_json_integers_round_to_the_nearest_double() {
        // Exact up to 2^53, then rounded by the proto's double, still coming back whole.
        assert_eq!(
            through_pb(json!(9_007_199_254_740_992_i64)),
            json!(9_007_199_254_740_992_i64)
        );
        assert_eq!(
            through_pb(json!(9_007_199_254_740_993_i64)),
            json!(9_007_199_254_740_992_i64)
        );
        // u64::MAX rounds up to 2^64, one past u64: a float.
        assert_eq!(through_pb(json!(u64::MAX)), json!(TWO_POW_64));
        assert_eq!(through_pb(json!(i64::MIN)), json!(i64::MIN));
    }

    #[test]
    fn nan_and_infinities_become_null() {
        for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(from_pb_value(number(n)), Json::Null);
        }
        let nested = Value {
            kind: Some(Kind::ListValue(ListValue {
                values: vec![number(f64::NAN), number(1.0)],
            })),
        };
        assert_eq!(from_pb_value(nested), json!([null, 1]));
    }

    #[test]
    fn null_and_missing_kinds_are_null() {
        assert_eq!(through_pb(Json::Null), Json::Null);
        assert_eq!(to_pb_value(Json::Null).kind, Some(Kind::NullValue(0)));
        assert_eq!(from_pb_value(Value { kind: None }), Json::Null);
    }

    #[test]
    fn fields_convert_as_objects() {
        let map = json!({"city": "Paris", "days": 3, "hourly": false});
        let Json::Object(map) = map else {
            unreachable!()
        };
        let fields = to_pb_fields(map.clone());
        assert_eq!(fields["days"], number(3.0));
        assert_eq!(from_pb_fields(fields), map);
    }
}
