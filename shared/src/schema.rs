//! JSON Schema validation: tools' input schemas (mcp-tool checks arguments, orchestrate the
//! schemas it is given) and agents' `output_schema`. Draft 2020-12 unless a schema's `$schema`
//! names another draft, as MCP prescribes.
//!
//! Built on boon, which passes the JSON-Schema-Test-Suite for every draft since 4. It replaced
//! jsonschema, which added 1.7 MiB to each binary that validates (two regex engines, a
//! big-number library, every draft's keywords) against boon's 0.3 MiB: measured on a release
//! build that already links serde_json, regex and url, as every function does.

use std::error::Error;

use boon::{Compiler, Draft, ErrorKind, SchemaIndex, Schemas, UrlLoader, ValidationError};
use serde_json::Value;

/// Where a schema is put for compiling: a base for relative `$ref`s, which the loader refuses.
const LOCATION: &str = "file:///schema.json";

/// A compiled schema.
pub struct Schema {
    schemas: Schemas,
    index: SchemaIndex,
}

/// Why an instance does not match: the first failure found, at the deepest location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// JSON Pointer to the failing value (`/` for the root).
    pub path: String,
    /// What is wrong, without the value itself: the value may be a secret, and the message
    /// reaches logs and models.
    pub message: String,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at {}: {}", self.path, self.message)
    }
}

impl Schema {
    /// Compiles `schema`, checking it against its draft's meta-schema. A `$ref` outside the
    /// schema (a file or a URL) is refused, never fetched.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let mut compiler = Compiler::new();
        compiler.set_default_draft(Draft::V2020_12);
        compiler.use_loader(Box::new(NoLoader));
        compiler
            .add_resource(LOCATION, schema.clone())
            .map_err(|e| e.to_string())?;
        let mut schemas = Schemas::new();
        let index = compiler
            .compile(LOCATION, &mut schemas)
            .map_err(|e| compile_message(&e))?;
        Ok(Self { schemas, index })
    }

    /// Whether `instance` matches, and if not, where and why.
    pub fn validate(&self, instance: &Value) -> Result<(), Invalid> {
        self.schemas
            .validate(instance, self.index)
            .map_err(|e| invalid(&e))
    }
}

/// Refuses every load: schemas are checked on their own, nothing is read from disk or network.
struct NoLoader;

impl UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn Error>> {
        Err(format!("{url} is outside the schema; references are not fetched").into())
    }
}

/// boon's message, with its placeholder base URL taken out.
fn compile_message(e: &boon::CompileError) -> String {
    let text = match e {
        // Its own Display names the meta-schema only; the alternate form says what failed.
        boon::CompileError::ValidationError { src, .. } => {
            let leaf = deepest(src);
            let path = leaf.instance_location.to_string();
            let path = if path.is_empty() { "/".into() } else { path };
            format!("does not match its meta-schema at {path}: {}", leaf.kind)
        }
        boon::CompileError::LoadUrlError { src, .. } => src.to_string(),
        other => other.to_string(),
    };
    text.replace(LOCATION, "the schema")
}

fn deepest<'a, 's, 'v>(e: &'a ValidationError<'s, 'v>) -> &'a ValidationError<'s, 'v> {
    let mut e = e;
    while let Some(first) = e.causes.first() {
        e = first;
    }
    e
}

fn invalid(e: &ValidationError<'_, '_>) -> Invalid {
    let leaf = deepest(e);
    let path = leaf.instance_location.to_string();
    Invalid {
        path: if path.is_empty() { "/".into() } else { path },
        message: masked(&leaf.kind),
    }
}

/// The failure without the failing value (boon's own message quotes it for these kinds).
fn masked(kind: &ErrorKind<'_, '_>) -> String {
    match kind {
        ErrorKind::Pattern { want, .. } => format!("does not match the pattern {want:?}"),
        ErrorKind::Format { want, .. } => format!("is not a valid {want}"),
        ErrorKind::Minimum { want, .. } => format!("must be >= {want}"),
        ErrorKind::Maximum { want, .. } => format!("must be <= {want}"),
        ErrorKind::ExclusiveMinimum { want, .. } => format!("must be > {want}"),
        ErrorKind::ExclusiveMaximum { want, .. } => format!("must be < {want}"),
        ErrorKind::MultipleOf { want, .. } => format!("must be a multiple of {want}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validates_and_says_where_without_the_value() {
        let s = Schema::compile(&json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "pattern": "^[A-Z]"},
                "days": {"type": "integer", "minimum": 1}
            },
            "required": ["city"]
        }))
        .unwrap();
        assert!(s.validate(&json!({"city": "Paris", "days": 2})).is_ok());
        let e = s.validate(&json!({"city": "secret-token"})).unwrap_err();
        assert_eq!(e.path, "/city");
        assert!(!e.message.contains("secret-token"), "{e}");
        assert!(e.message.contains("pattern"), "{e}");
        let e = s.validate(&json!({"days": 0})).unwrap_err();
        assert_eq!(e.path, "/");
        assert!(e.message.contains("city"), "{e}");
        let e = s.validate(&json!({"city": "A", "days": 0})).unwrap_err();
        assert_eq!(e.to_string(), "at /days: must be >= 1");
    }

    #[test]
    fn refuses_bad_schemas_and_outside_references() {
        let e = Schema::compile(&json!({"type": "strnig"})).unwrap_err();
        assert!(e.contains("meta-schema"), "{e}");
        assert!(!e.contains("file:///schema.json"), "{e}");
        let e = Schema::compile(&json!({"$ref": "file:///etc/passwd"})).unwrap_err();
        assert!(e.contains("not fetched"), "{e}");
        let e = Schema::compile(&json!({"$ref": "https://example.com/s.json"})).unwrap_err();
        assert!(e.contains("not fetched"), "{e}");
    }

    #[test]
    fn honours_the_schema_draft() {
        // Draft 7's tuple form of `items`, a different keyword in 2020-12.
        let s = Schema::compile(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "string"}]
        }))
        .unwrap();
        assert!(s.validate(&json!(["a", 1])).is_ok());
        assert!(s.validate(&json!([1])).is_err());
        // Internal references work.
        let s = Schema::compile(&json!({
            "$defs": {"n": {"type": "integer"}},
            "properties": {"x": {"$ref": "#/$defs/n"}}
        }))
        .unwrap();
        assert_eq!(s.validate(&json!({"x": "1"})).unwrap_err().path, "/x");
    }
}
