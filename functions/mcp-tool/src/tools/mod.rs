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

    /// Schemas compile on a tool's first call in production; every built-in one must compile
    /// (against the 2020-12 meta-schema, with no remote reference) here.
    #[test]
    fn every_builtin_tool_schema_compiles() {
        let mut tools = vec![echo::tool()];
        tools.extend(weather::tools(&weather::Settings::default()));
        tools.extend(huggingface::tools(
            &huggingface::Settings::default(),
            Some(huggingface::Token::new("hf_test")),
        ));
        tools.extend(conformance::tools());
        assert!(tools.len() > 15, "{}", tools.len());
        let registry = Registry::new(
            tools,
            1024,
            &mut prometheus_client::registry::Registry::default(),
        )
        .unwrap();
        registry.compile_all().unwrap();
    }
}
