//! The tools mcp-tool can serve, one module per group, and the set the configuration enables.

pub mod conformance;
pub mod echo;
pub mod huggingface;
pub mod weather;

use aixrun::ConfigError;

use crate::config::{MCP_TOOL_CONFIG, McpToolConfig};
use crate::tool::Tool;

/// The enabled tools with their limits applied: `limits.<tool>` over `defaults` over the
/// tool's own. Names in `limits` or `enabled_tools` that match no tool are configuration errors.
pub fn enabled(config: &McpToolConfig) -> Result<Vec<Tool>, ConfigError> {
    let groups = &config.tools;
    let mut tools = Vec::new();
    if groups.echo.enabled {
        tools.push(echo::tool());
    }
    if groups.weather.enabled {
        tools.extend(weather::tools(&groups.weather));
    }
    if groups
        .huggingface
        .enabled
        .unwrap_or(config.hf_token.is_some())
    {
        tools.extend(huggingface::tools(
            &groups.huggingface,
            config.hf_token.clone(),
        ));
    }
    if groups.conformance.enabled {
        tools.extend(conformance::tools());
    }
    let unknown = |what: &str, name: &str| {
        ConfigError::new(
            MCP_TOOL_CONFIG,
            name,
            format!("{what} names {name:?}, which is not an enabled tool"),
            format!(
                "one of: {}",
                tools
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    if let Some(names) = &config.enabled_tools
        && let Some(missing) = names.iter().find(|n| !tools.iter().any(|t| &t.name == *n))
    {
        return Err(unknown("MCP_TOOLS / enabled_tools", missing));
    }
    if let Some(name) = config
        .limits
        .keys()
        .find(|n| !tools.iter().any(|t| &t.name == *n))
    {
        return Err(unknown("limits", name));
    }
    if let Some(names) = &config.enabled_tools {
        tools.retain(|t| names.contains(&t.name));
    }
    for tool in &mut tools {
        let own = config.limits.get(&tool.name);
        if let Some(timeout) = own.and_then(|l| l.timeout).or(config.defaults.timeout) {
            tool.timeout = timeout;
        }
        if let Some(n) = own
            .and_then(|l| l.max_concurrency)
            .or(config.defaults.max_concurrency)
        {
            tool.max_concurrency = n;
        }
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    use serde_json::Value;

    fn builtin() -> Vec<Tool> {
        let mut tools = vec![echo::tool()];
        tools.extend(weather::tools(&weather::Settings::default()));
        tools.extend(huggingface::tools(
            &huggingface::Settings::default(),
            Some(huggingface::Token::new("hf_test")),
        ));
        tools.extend(conformance::tools());
        assert!(tools.len() > 15, "{}", tools.len());
        tools
    }

    /// Paths (`/properties/region/type`) of every `type` keyword whose value is not one string.
    fn type_arrays(schema: &Value, path: &str, found: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                for (key, value) in map {
                    let here = format!("{path}/{key}");
                    // A property may itself be called "type": only keywords count.
                    let keyword = key == "type" && !path.ends_with("/properties");
                    if keyword && !value.is_string() {
                        found.push(here.clone());
                    }
                    type_arrays(value, &here, found);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    type_arrays(item, &format!("{path}/{i}"), found);
                }
            }
            _ => {}
        }
    }

    /// Single-type dialects (Gemini's function declarations, the Inspector's `--strict`) reject
    /// `"type": ["number", "null"]`: no built-in schema may use one.
    #[test]
    fn no_builtin_schema_has_a_type_array() {
        let mut found = Vec::new();
        for tool in builtin() {
            type_arrays(
                &tool.input_schema,
                &format!("{}/input", tool.name),
                &mut found,
            );
            if let Some(output) = &tool.output_schema {
                type_arrays(output, &format!("{}/output", tool.name), &mut found);
            }
        }
        assert!(found.is_empty(), "type arrays at {found:?}");
        let mut planted = Vec::new();
        let bad = serde_json::json!({"properties": {"type": {"type": ["string", "null"]}}});
        type_arrays(&bad, "", &mut planted);
        assert_eq!(planted, ["/properties/type/type"]);
    }

    /// Schemas compile on a tool's first call in production; every built-in one must compile
    /// (against the 2020-12 meta-schema, with no remote reference) here.
    #[test]
    fn every_builtin_tool_schema_compiles() {
        let tools = builtin();
        let registry = Registry::new(
            tools,
            1024,
            &mut prometheus_client::registry::Registry::default(),
        )
        .unwrap();
        registry.compile_all().unwrap();
    }
}
