//! What the run engine needs from MCP: the tools an agent may call, as the model sees them,
//! and a way to call one. The MCP client (gRPC, Streamable HTTP, in-process) implements it; the
//! engine's tests use a scripted one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::Agent;

/// A boxed future, for the object-safe trait below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One tool an agent may call.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTool {
    /// The name the model calls it by (namespaced by server when two servers share a name).
    pub name: String,
    /// The MCP server that serves it.
    pub server: String,
    /// Its name on that server.
    pub tool: String,
    /// What it does, for the model.
    pub description: String,
    /// Its arguments' JSON Schema.
    pub parameters: Value,
    /// Per-call timeout (the server's).
    pub timeout: Duration,
    /// Its MCP annotations (`destructiveHint`, ...), as the server gave them.
    pub annotations: Option<Value>,
}

/// A tool call's answer, as the model will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolReply {
    /// The result's text (or the error's).
    pub text: String,
    /// Whether it is an error the model should act on (the tool failed, the arguments were
    /// invalid, the call timed out).
    pub is_error: bool,
}

impl ToolReply {
    /// An error the model should see.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
        }
    }
}

/// The tools of a deployment.
pub trait Tools: Send + Sync {
    /// The tools `agent` may call. An error means a server could not be asked (the run fails
    /// with that message).
    fn list<'a>(&'a self, agent: &'a Agent) -> BoxFuture<'a, Result<Vec<AgentTool>, String>>;

    /// Calls `tool`. Every outcome the model can act on is a reply; dropping the future
    /// cancels the call. `idempotency_key` (`{run_id}/{step_id}/m{turn}/t{i}`) is the same when a
    /// resumed run makes a call again that was in flight when its instance stopped.
    fn call<'a>(
        &'a self,
        tool: &'a AgentTool,
        arguments: Map<String, Value>,
        timeout: Duration,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, ToolReply>;
}
