//! Between the gRPC run API's messages and the run service's JSON and types: a request becomes
//! the JSON object `POST /v1/run` takes (so that one policy checks both, and its errors name
//! the same fields), an event its SSE JSON, a result or stored run a `RunSummary`.

use aixrun_proto::mcp_json::double_as_json;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value as PbValue};
use serde_json::{Map, Value};

use super::pb;
use crate::run::{Envelope, RunSummary as Summary, Usage};
use crate::store::RunRecord;

/// `request` as the JSON fields [`crate::service::RunRequest::parse`] checks: unset fields
/// are left out (an empty string is unset, as proto3 has it).
pub fn request_fields(request: pb::RunRequest) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut text = |name: &str, value: String| {
        if !value.is_empty() {
            fields.insert(name.to_owned(), Value::String(value));
        }
    };
    text("workflow", request.workflow);
    text("session_id", request.session_id);
    text("on_disconnect", request.on_disconnect);
    text("if_busy", request.if_busy);
    if let Some(input) = request.input {
        fields.insert("input".to_owned(), to_json(input));
    }
    if let Some(metadata) = request.metadata {
        fields.insert("metadata".to_owned(), struct_to_json(metadata));
    }
    if let Some(budget) = request.budget {
        let limits = [
            ("wall_time_ms", budget.wall_time_ms),
            ("input_tokens", budget.input_tokens),
            ("output_tokens", budget.output_tokens),
            ("model_calls", budget.model_calls),
            ("tool_calls", budget.tool_calls),
        ];
        let budget: Map<String, Value> = limits
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), Value::from(v?))))
            .collect();
        fields.insert("budget".to_owned(), Value::Object(budget));
    }
    if let Some(ms) = request.deadline_ms {
        fields.insert("deadline_ms".to_owned(), Value::from(ms));
    }
    fields
}

/// A protobuf value as JSON, its numbers by the workspace's one rule
/// ([`aixrun_proto::mcp_json::double_as_json`]: whole numbers as integers, NaN and infinities
/// as null), as MCP's values over gRPC are.
pub fn to_json(value: PbValue) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => double_as_json(n),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => Value::Array(list.values.into_iter().map(to_json).collect()),
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

/// A `Struct` as a JSON object.
pub fn struct_to_json(s: Struct) -> Value {
    Value::Object(s.fields.into_iter().map(|(k, v)| (k, to_json(v))).collect())
}

/// JSON as a protobuf value.
pub fn from_json(value: Value) -> PbValue {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(ListValue {
            values: a.into_iter().map(from_json).collect(),
        }),
        Value::Object(o) => Kind::StructValue(object(o)),
    };
    PbValue { kind: Some(kind) }
}

fn object(o: Map<String, Value>) -> Struct {
    Struct {
        fields: o.into_iter().map(|(k, v)| (k, from_json(v))).collect(),
    }
}

/// JSON as a `Struct`: an object's fields (anything else, which the run's types never give
/// here, as an empty one).
fn to_struct(value: Value) -> Struct {
    match value {
        Value::Object(o) => object(o),
        _ => Struct::default(),
    }
}

/// A run's event, with its own fields as `data` (the SSE event's JSON less the envelope's).
pub fn event(envelope: &Envelope) -> pb::RunEvent {
    let mut data = match serde_json::to_value(envelope) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    for envelope_field in ["run_id", "seq", "at", "step_id", "parent_step_id", "type"] {
        data.remove(envelope_field);
    }
    pb::RunEvent {
        run_id: envelope.run_id.clone(),
        seq: envelope.seq,
        at: envelope.at.clone(),
        step_id: envelope.step_id.clone().unwrap_or_default(),
        parent_step_id: envelope.parent_step_id.clone().unwrap_or_default(),
        r#type: envelope.event.name().to_owned(),
        data: Some(object(data)),
    }
}

/// A run's result (the answer of `POST /v1/run`).
pub fn summary(run_id: &str, result: &Summary) -> pb::RunSummary {
    let to_structs = |items: Vec<Value>| items.into_iter().map(to_struct).collect();
    pb::RunSummary {
        run_id: run_id.to_owned(),
        workflow: result.workflow.clone(),
        status: result.status.as_str().to_owned(),
        output: Some(from_json(result.output.clone())),
        error: result.error.clone().unwrap_or_default(),
        usage: Some(usage(&result.usage)),
        duration_ms: result.duration_ms,
        steps: to_structs(json_items(&result.steps)),
        pending: to_structs(json_items(&result.pending)),
        ..Default::default()
    }
}

/// A stored run: where it stands, and its result once it has one.
pub fn record(record: &RunRecord) -> pb::RunSummary {
    let mut run = match &record.result {
        Some(result) => summary(&record.run_id, result),
        None => pb::RunSummary {
            run_id: record.run_id.clone(),
            workflow: record.workflow.clone(),
            ..Default::default()
        },
    };
    run.status = record.status.as_str().to_owned();
    run.session_id = record.session_id.clone().unwrap_or_default();
    run.request = Some(to_struct(record.request.clone()));
    run.created_at = record.created_at.clone();
    run.updated_at = record.updated_at.clone();
    run.last_seq = record.last_seq;
    run.cancel_requested = record.cancel_requested;
    run
}

fn json_items<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .map(|item| serde_json::to_value(item).unwrap_or(Value::Null))
        .collect()
}

fn usage(usage: &Usage) -> pb::Usage {
    pb::Usage {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        model_calls: usage.model_calls,
        tool_calls: usage.tool_calls,
        estimated: usage.estimated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_becomes_the_json_fields_with_unset_ones_left_out() {
        let request = pb::RunRequest {
            input: Some(from_json(json!({"text": "hi", "n": 3, "ratio": 0.5}))),
            workflow: "triage".into(),
            budget: Some(pb::Budget {
                model_calls: Some(2),
                ..Default::default()
            }),
            on_disconnect: "continue".into(),
            ..Default::default()
        };
        let fields = Value::Object(request_fields(request));
        assert_eq!(
            fields,
            json!({
                "input": {"text": "hi", "n": 3, "ratio": 0.5},
                "workflow": "triage",
                "budget": {"model_calls": 2},
                "on_disconnect": "continue",
            })
        );
        assert_eq!(
            Value::Object(request_fields(pb::RunRequest::default())),
            json!({})
        );
    }

    #[test]
    fn values_go_both_ways_and_numbers_json_cannot_hold_become_null() {
        let value =
            json!({"a": [1, -2, 1.5, "x", null, true], "b": {"c": 9_007_199_254_740_991_i64}});
        assert_eq!(to_json(from_json(value.clone())), value);
        let nan = PbValue {
            kind: Some(Kind::NumberValue(f64::NAN)),
        };
        assert_eq!(to_json(nan), Value::Null);
        assert_eq!(to_json(PbValue { kind: None }), Value::Null);
    }
}
