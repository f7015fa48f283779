//! `mcp-tool`: the MCP server. See the README for its configuration.

use std::process::ExitCode;

fn main() -> ExitCode {
    mcp_tool::main()
}
