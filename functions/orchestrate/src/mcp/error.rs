//! [`McpError`]: why a list or a call produced no result, one clear line each, naming the
//! server and its host but never a token, a URL's path or query, or the arguments.

use std::time::Duration;

/// A list or call that produced no result.
///
/// [`McpError::UnknownTool`] and [`McpError::InvalidArguments`] are the model's mistakes: the
/// engine feeds them back as tool errors ([`McpError::is_model_error`]). The others are the
/// deployment's problems.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// The server has no tool by that name.
    #[error("MCP server {server}: unknown tool {tool:?}")]
    UnknownTool {
        /// Server name and host.
        server: String,
        /// The name asked for.
        tool: String,
    },
    /// The arguments don't match the tool's input schema (the server's words).
    #[error("MCP server {server}: invalid arguments for {tool}: {message}")]
    InvalidArguments {
        /// Server name and host.
        server: String,
        /// Tool name.
        tool: String,
        /// What is wrong, as the server said it.
        message: String,
    },
    /// No answer within the call's timeout (the call was cancelled on the server).
    #[error("MCP server {server}: no answer within {timeout:?}")]
    Timeout {
        /// Server name and host.
        server: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The server could not be reached or the connection failed (refused, TLS, HTTP status,
    /// closed stream).
    #[error("MCP server {server}: {problem}")]
    Transport {
        /// Server name and host.
        server: String,
        /// What went wrong.
        problem: String,
    },
    /// The server answered, but not with something this client can use (a malformed result,
    /// an unexpected JSON-RPC error).
    #[error("MCP server {server}: {problem}")]
    Protocol {
        /// Server name and host.
        server: String,
        /// What went wrong.
        problem: String,
    },
    /// The client for this server could not be set up (URL, TLS files).
    #[error("MCP server {server}: {problem}")]
    Config {
        /// Server name and host.
        server: String,
        /// What is wrong.
        problem: String,
    },
}

impl McpError {
    /// True for the errors the model caused and can correct (unknown tool, invalid
    /// arguments): the engine hands them back to it as a tool error.
    pub fn is_model_error(&self) -> bool {
        matches!(
            self,
            Self::UnknownTool { .. } | Self::InvalidArguments { .. }
        )
    }

    /// True when the call's timeout ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// A short, stable name for OpenTelemetry's `error.type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnknownTool { .. } => "unknown_tool",
            Self::InvalidArguments { .. } => "invalid_arguments",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport",
            Self::Protocol { .. } => "protocol",
            Self::Config { .. } => "config",
        }
    }
}

/// `message` with every occurrence of `url` (which may carry a path, a query or userinfo)
/// replaced by `host`: library errors such as reqwest's quote the whole URL.
pub(crate) fn redact(message: &str, url: &str, host: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.is_empty() {
        return message.to_owned();
    }
    message.replace(trimmed, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_the_url_but_keeps_the_problem() {
        let url = "https://user:secret@tools.example.com/mcp?key=abc";
        let message = format!("error sending request for url ({url})");
        let out = redact(&message, url, "tools.example.com");
        assert_eq!(out, "error sending request for url (tools.example.com)");
    }

    #[test]
    fn model_errors_are_told_apart() {
        let unknown = McpError::UnknownTool {
            server: "a".into(),
            tool: "x".into(),
        };
        let timeout = McpError::Timeout {
            server: "a".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(unknown.is_model_error());
        assert!(!timeout.is_model_error());
        assert_eq!(unknown.to_string(), "MCP server a: unknown tool \"x\"");
    }
}
