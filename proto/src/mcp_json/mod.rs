//! `mcp.proto`'s messages as MCP's JSON, and back: the one place that decides how a value, a
//! content block or a flat schema crosses the seed's wire format, used by mcp-tool's server and
//! orchestrate's client alike so that both ends agree.

mod content;
mod schema;
mod value;

pub use content::{CONTENT_TYPES, Content, from_pb_content, to_pb_content};
pub use schema::{from_flat_schema, to_flat_schema};
pub use value::{double_as_json, from_pb_fields, from_pb_value, to_pb_fields, to_pb_value};
