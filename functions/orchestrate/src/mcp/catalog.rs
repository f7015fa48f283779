//! [`Catalog`]: the tools of several servers under names a model can call. A tool keeps its
//! own name when it is the only one by that name and the name is a valid function name
//! (`^[a-zA-Z0-9_-]{1,64}$`, what OpenAI, Gemini and Anthropic accept); otherwise it becomes
//! `server__tool`. The separator is `__` because `.` is not allowed in function names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Arguments, McpError, McpServer, ToolInfo, ToolResult};

/// Between server and tool in a namespaced name.
pub const SEPARATOR: &str = "__";
/// Longest function name models accept.
pub const MAX_NAME: usize = 64;

/// One tool as the model sees it.
#[derive(Debug, Clone)]
pub struct CatalogTool {
    /// The name to give the model (and to call with).
    pub model_name: String,
    /// The server's name.
    pub server: String,
    /// The tool as the server described it (its own name inside).
    pub tool: ToolInfo,
}

/// The outcome of listing every server: the tools of those that answered, and an error for
/// each that did not (the run can go on without them).
#[derive(Debug, Default)]
pub struct Listing {
    /// The tools, server by server in configuration order.
    pub tools: Vec<CatalogTool>,
    /// One error per server that could not be listed.
    pub failures: Vec<McpError>,
}

/// Several servers behind one set of names.
pub struct Catalog {
    servers: Vec<Arc<dyn McpServer>>,
    /// model name -> (server index, tool name), from the last listing.
    routes: Mutex<HashMap<String, (usize, String)>>,
}

impl Catalog {
    /// The servers, in configuration order (their names should be distinct).
    pub fn new(servers: Vec<Arc<dyn McpServer>>) -> Self {
        Self {
            servers,
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// Lists every server (each through its own cache, if it has one) and names the tools.
    pub async fn list(&self) -> Listing {
        let lists =
            futures_util::future::join_all(self.servers.iter().map(|s| s.list_tools())).await;
        let mut failures = Vec::new();
        let mut per_server = Vec::new();
        for (index, list) in lists.into_iter().enumerate() {
            match list {
                Ok(list) => per_server.push((index, list.tools)),
                Err(e) => failures.push(e),
            }
        }
        let names: Vec<(&str, &[ToolInfo])> = per_server
            .iter()
            .map(|(i, tools)| (self.servers[*i].name(), &tools[..]))
            .collect();
        let named = namespace(&names);
        let mut routes = HashMap::with_capacity(named.len());
        let mut tools = Vec::with_capacity(named.len());
        for (slot, model_name, tool) in named {
            let index = per_server[slot].0;
            routes.insert(model_name.clone(), (index, tool.name.clone()));
            tools.push(CatalogTool {
                model_name,
                server: self.servers[index].name().to_owned(),
                tool: tool.clone(),
            });
        }
        *self.routes.lock().unwrap_or_else(|e| e.into_inner()) = routes;
        Listing { tools, failures }
    }

    /// Calls the tool the model knows as `model_name` (from the last [`Self::list`]).
    pub async fn call(
        &self,
        model_name: &str,
        arguments: Arguments,
        timeout: Duration,
    ) -> Result<ToolResult, McpError> {
        let route = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(model_name)
            .cloned();
        let Some((index, tool)) = route else {
            return Err(McpError::UnknownTool {
                server: "(no server offers it)".into(),
                tool: model_name.to_owned(),
            });
        };
        self.servers[index]
            .call_tool(&tool, arguments, timeout, None)
            .await
    }
}

/// True for a name every model provider accepts as a function name.
pub fn is_model_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `name` with every character outside `[a-zA-Z0-9_-]` replaced by `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Names every tool of `servers` (server name, its tools): `(server slot, model name, tool)`.
/// A tool that still collides after namespacing (two servers with the same name, or
/// truncation) is left out with a warning rather than routed to the wrong server.
fn namespace<'a>(servers: &[(&str, &'a [ToolInfo])]) -> Vec<(usize, String, &'a ToolInfo)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, tools) in servers {
        for tool in *tools {
            *count.entry(tool.name.as_str()).or_default() += 1;
        }
    }
    let mut taken = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (slot, (server, tools)) in servers.iter().enumerate() {
        for tool in *tools {
            let name = if count[tool.name.as_str()] == 1 && is_model_name(&tool.name) {
                tool.name.clone()
            } else {
                let mut name = format!("{}{SEPARATOR}{}", sanitize(server), sanitize(&tool.name));
                // ASCII only after sanitizing, so any byte index is a char boundary.
                name.truncate(MAX_NAME);
                name
            };
            if taken.insert(name.clone()) {
                out.push((slot, name, tool));
            } else {
                tracing::warn!(
                    server = %server,
                    tool = %tool.name,
                    "tool left out: its name collides with another server's"
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> ToolInfo {
        ToolInfo {
            name: name.into(),
            title: None,
            description: String::new(),
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            annotations: None,
        }
    }

    fn names(servers: &[(&str, &[ToolInfo])]) -> Vec<String> {
        namespace(servers).into_iter().map(|(_, n, _)| n).collect()
    }

    #[test]
    fn shared_names_are_namespaced_and_unique_ones_kept() {
        let a = [tool("echo"), tool("weather")];
        let b = [tool("echo"), tool("search")];
        assert_eq!(
            names(&[("a", &a), ("b", &b)]),
            ["a__echo", "weather", "b__echo", "search"]
        );
    }

    #[test]
    fn names_models_refuse_are_namespaced_and_sanitized() {
        let a = [tool("hf.search")];
        let names = names(&[("hugging face", &a)]);
        assert_eq!(names, ["hugging_face__hf_search"]);
        assert!(names.iter().all(|n| is_model_name(n)));
        let long = [tool(&"x".repeat(80))];
        let long = super::namespace(&[("s", &long)]);
        assert_eq!(long[0].1.len(), MAX_NAME);
    }

    #[test]
    fn collisions_after_namespacing_are_left_out() {
        let a = [tool("echo")];
        let b = [tool("echo")];
        assert_eq!(names(&[("same", &a), ("same", &b)]), ["same__echo"]);
    }
}
