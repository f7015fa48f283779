//! The document as a contract: each answer's status and content type must be documented for
//! its route and its body must match the schema (each server-sent event on its own), and what
//! was exercised is recorded so that every documented route can be asserted asked.

use std::collections::{BTreeSet, HashMap};

use aixrun::schema::Schema;
use e2e::clients;
use e2e::sse::SseReader;
use serde_json::{Value, json};

/// The document, its compiled schemas and what the test has exercised.
pub(crate) struct Contract {
    doc: Value,
    schemas: HashMap<String, Schema>,
    seen: BTreeSet<(String, String, u16)>,
}

impl Contract {
    pub(crate) fn new(doc: Value) -> Self {
        Self {
            doc,
            schemas: HashMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Checks `schema` (a schema object of the document) against `instance`.
    fn validate(&mut self, schema: &Value, instance: &Value, what: &str) {
        let key = schema.to_string();
        let components = self.doc["components"].clone();
        let compiled = self.schemas.entry(key).or_insert_with(|| {
            let mut root = schema.clone();
            if let Value::Object(map) = &mut root {
                map.insert("components".into(), components);
            }
            Schema::compile(&root).unwrap_or_else(|e| panic!("{what}: schema: {e}"))
        });
        if let Err(e) = compiled.validate(instance) {
            panic!("{what}: {e}\nbody: {instance:#}");
        }
    }

    /// `schema`, or what its `$ref` names.
    fn resolve(&self, schema: &Value) -> Value {
        match schema["$ref"].as_str() {
            Some(r) => self.doc.pointer(&r[1..]).cloned().unwrap(),
            None => schema.clone(),
        }
    }

    /// The documented response for this status (a `$ref` followed).
    fn response(&self, method: &str, path: &str, status: u16) -> Value {
        let operation = &self.doc["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the document"
        );
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which the document does not list"
        );
        match response["$ref"].as_str() {
            Some(r) => self.doc.pointer(&r[1..]).cloned().unwrap(),
            None => response.clone(),
        }
    }

    /// Sends `request` and checks the answer against the document; returns (status, JSON body
    /// or the stream's events' data).
    pub(crate) async fn call(
        &mut self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let request = request.build().unwrap();
        let method = request.method().as_str().to_ascii_lowercase();
        let response = clients::http1().execute(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let what = format!("{method} {path} -> {status}");
        self.seen.insert((path.to_owned(), method.clone(), status));
        let documented = self.response(&method, path, status);
        let media = headers
            .get("content-type")
            .map(|v| {
                v.to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        if documented["content"].is_null() {
            // An answer documented without content (204) must have none.
            let body = response.bytes().await.unwrap();
            assert!(
                media.is_empty() && body.is_empty(),
                "{what}: {media} {body:?}"
            );
            return (status, Value::Null, headers);
        }
        let content = &documented["content"][&media];
        assert!(
            content.is_object(),
            "{what}: content type {media:?} is not documented: {}",
            documented["content"]
        );
        if media == "text/event-stream" {
            let events = SseReader::new(response).all().await;
            assert!(!events.is_empty(), "{what}: no events");
            // The schema describes each event (OpenAPI 3.2's reading of event streams); its
            // `data` is JSON whose schema is `contentSchema` (an annotation to JSON Schema, so
            // checked here on its own).
            let schema = self.resolve(&content["schema"]);
            let data_schema = schema["properties"]["data"]["contentSchema"].clone();
            let mut data = Vec::new();
            for (i, event) in events.iter().enumerate() {
                let what = format!("{what}: event {i}");
                assert_eq!(event.data["type"], event.event, "{what}");
                let id = event.id.clone().unwrap_or_default();
                assert_eq!(id, event.data["seq"].to_string(), "{what}");
                let fields =
                    json!({"event": event.event, "id": id, "data": event.data.to_string()});
                self.validate(&schema, &fields, &what);
                // The event's own schema first (by the discriminator), for a precise message.
                let union = self.resolve(&data_schema);
                let own = &union["discriminator"]["mapping"][event.event.as_str()];
                assert!(own.is_string(), "{what}: {} is not documented", event.event);
                self.validate(&json!({"$ref": own}), &event.data, &what);
                self.validate(&data_schema, &event.data, &what);
                data.push(event.data.clone());
            }
            assert_eq!(data.last().unwrap()["type"], "run.finished", "{what}");
            return (status, Value::Array(data), headers);
        }
        let text = response.text().await.unwrap();
        if media == "application/json" {
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
            let schema = content["schema"].clone();
            self.validate(&schema, &body, &what);
            return (status, body, headers);
        }
        (status, Value::String(text), headers)
    }

    /// Asserts that every documented route was asked at least once.
    pub(crate) fn assert_every_route_exercised(&self) {
        let mut missing = Vec::new();
        let mut unexercised = Vec::new();
        for (path, operations) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                if !self.seen.iter().any(|(p, m, _)| p == path && m == method) {
                    missing.push(format!("{method} {path}"));
                }
                for status in operation["responses"].as_object().unwrap().keys() {
                    let code: u16 = status.parse().unwrap();
                    if !self.seen.contains(&(path.clone(), method.clone(), code)) {
                        unexercised.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "never exercised: {missing:?}");
        // Listed, not failed: some answers need a state the test does not stage (a draining
        // instance's 503 from /health/ready, for one).
        eprintln!("documented answers not exercised here: {unexercised:?}");
    }
}
