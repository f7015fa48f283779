//! The deployment's MCP tools for the run engine: one client per configured server (its tool
//! list cached), one catalog per agent naming its servers' tools for the model, and each call
//! routed to its server. Nothing is dialled at start-up: connections open on first use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aixrun::{Env, StartupError};
use prometheus_client::registry::Registry;
use serde_json::{Map, Value};

use crate::config::{Agent, Auth, McpServer as ServerConfig, Orchestration, Tls, Transport};
use crate::mcp::{self, AuthProvider, CachedServer, Catalog, IdTokenAuth, McpServer, StaticBearer};
use crate::run::{AgentTool, BoxFuture, ToolReply, Tools};
use aixrun::gcp::idtoken::{IdTokens, default_audience, on_by_default};

/// How long a tool list is reused when the server gives no `ttlMs`.
const DEFAULT_LIST_TTL: Duration = Duration::from_secs(60);

struct Configured {
    client: Arc<dyn McpServer>,
    timeout: Duration,
    allowed: Option<Vec<String>>,
}

/// Every configured MCP server, and each agent's view of them.
pub struct Toolbox {
    servers: HashMap<String, Configured>,
    catalogs: HashMap<String, Catalog>,
}

impl Toolbox {
    /// Clients for the servers `orchestration` names; the local transport's tool-call metrics
    /// go to `metrics`.
    pub fn new(
        orchestration: &Orchestration,
        env: &Env,
        metrics: &mut Registry,
    ) -> Result<Self, StartupError> {
        let mut servers = HashMap::new();
        let mut catalogs = HashMap::new();
        // One ID-token cache for the process (model services share it): tokens are per
        // audience, not per client.
        let id_tokens = IdTokens::shared();
        for agent in orchestration.agents.values() {
            let mut clients = Vec::new();
            for server in &agent.mcp_servers {
                if !servers.contains_key(&server.name) {
                    let client = connect(server, env, &id_tokens, metrics)
                        .map_err(|e| StartupError::Other(e.to_string()))?;
                    servers.insert(
                        server.name.clone(),
                        Configured {
                            client: Arc::new(CachedServer::new(client, DEFAULT_LIST_TTL)),
                            timeout: server.timeout,
                            allowed: server.tools.clone(),
                        },
                    );
                }
                clients.push(servers[&server.name].client.clone());
            }
            catalogs
                .entry(agent.name.clone())
                .or_insert_with(|| Catalog::new(clients));
        }
        Ok(Self { servers, catalogs })
    }
}

fn connect(
    server: &ServerConfig,
    env: &Env,
    id_tokens: &Arc<IdTokens>,
    metrics: &mut Registry,
) -> Result<Arc<dyn McpServer>, mcp::McpError> {
    let auth: Option<Arc<dyn AuthProvider>> = match &server.auth {
        Some(Auth::Bearer(token)) => {
            StaticBearer::new(token.expose()).map(|b| Arc::new(b) as Arc<dyn AuthProvider>)
        }
        Some(Auth::IdToken { audience }) => Some(Arc::new(IdTokenAuth::new(
            Arc::clone(id_tokens),
            audience.clone(),
        ))),
        Some(Auth::None) => None,
        // On Google Cloud, https:// servers get ID tokens unless configured otherwise: that is
        // what Cloud Run services deployed with --no-allow-unauthenticated require (the same
        // rule as model services').
        None => match &server.transport {
            Transport::Grpc { address: url, .. } | Transport::Http { url, .. }
                if on_by_default(env, url) =>
            {
                Some(Arc::new(IdTokenAuth::new(
                    Arc::clone(id_tokens),
                    default_audience(url),
                )))
            }
            _ => None,
        },
    };
    let tls = |t: &Option<Tls>| mcp::tls::TlsFiles {
        ca: t.as_ref().and_then(|t| t.ca_file.clone()),
        cert: t.as_ref().and_then(|t| t.cert_file.clone()),
        key: t.as_ref().and_then(|t| t.key_file.clone()),
    };
    Ok(match &server.transport {
        Transport::Grpc { address, tls: t } => Arc::new(mcp::grpc::GrpcServer::new(
            &server.name,
            address.as_str(),
            &tls(t),
            auth,
        )?),
        Transport::Http { url, tls: t } => Arc::new(mcp::http::HttpServer::new(
            &server.name,
            url.as_str(),
            &tls(t),
            auth,
        )?),
        #[cfg(feature = "local-tools")]
        Transport::Local => Arc::new(mcp::local::LocalServer::from_env(
            &server.name,
            env,
            metrics,
        )?),
        #[cfg(not(feature = "local-tools"))]
        Transport::Local => {
            let _ = (env, metrics);
            return Err(mcp::McpError::Config {
                server: server.name.clone(),
                problem: "transport local (mcp-tool's tools in process, as in the bundled example) \
                          is left out of this build: build orchestrate with `--features local-tools`, \
                          or reach mcp-tool with transport grpc or http"
                    .into(),
            });
        }
    })
}

impl Tools for Toolbox {
    fn list<'a>(&'a self, agent: &'a Agent) -> BoxFuture<'a, Result<Vec<AgentTool>, String>> {
        Box::pin(async move {
            let Some(catalog) = self.catalogs.get(&agent.name) else {
                return Ok(Vec::new());
            };
            let listing = catalog.list().await;
            if listing.tools.is_empty()
                && let Some(failure) = listing.failures.first()
            {
                return Err(failure.to_string());
            }
            for failure in &listing.failures {
                tracing::warn!(agent = agent.name, error = %failure, "an MCP server could not be listed; going on without it");
            }
            Ok(listing
                .tools
                .into_iter()
                .filter_map(|t| {
                    let server = self.servers.get(&t.server)?;
                    let allowed = server
                        .allowed
                        .as_ref()
                        .is_none_or(|list| list.contains(&t.tool.name));
                    allowed.then_some(AgentTool {
                        name: t.model_name,
                        server: t.server,
                        tool: t.tool.name,
                        description: t.tool.description,
                        parameters: t.tool.input_schema,
                        timeout: server.timeout,
                        annotations: t.tool.annotations,
                    })
                })
                .collect())
        })
    }

    fn call<'a>(
        &'a self,
        tool: &'a AgentTool,
        arguments: Map<String, Value>,
        timeout: Duration,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, ToolReply> {
        Box::pin(async move {
            let Some(server) = self.servers.get(&tool.server) else {
                return ToolReply::error(format!("no MCP server {}", tool.server));
            };
            match server
                .client
                .call_tool(&tool.tool, arguments, timeout, Some(idempotency_key))
                .await
            {
                Ok(result) => ToolReply {
                    text: result.text(),
                    is_error: result.is_error,
                },
                // The model's mistakes and the server's failures alike go back to the model,
                // which can correct the call or answer without the tool.
                Err(e) => ToolReply::error(e.to_string()),
            }
        })
    }
}
