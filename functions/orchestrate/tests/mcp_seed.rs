//! The `grpc` transport against a server built from the seed's `mcp.proto`, which the real
//! mcp-tool cannot play: its tools carry only the flat `Schema` (no `input_schema_json`), it
//! reads only the `arguments` map of a call, and it describes content in `metadata`. Numbers
//! cross that map as doubles; whole ones must come back as JSON integers on both sides, as
//! they do in mcp-tool (the one conversion of `aixrun_proto::mcp_json`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aixrun_proto::mcp::mcp_service_server::{McpService, McpServiceServer};
use aixrun_proto::mcp::{self as pb, value::Kind};
use aixrun_proto::mcp_json::from_pb_fields;
use orchestrate::mcp::grpc::GrpcServer;
use orchestrate::mcp::tls::TlsFiles;
use orchestrate::mcp::{Content, McpServer};
use serde_json::{Map, Value, json};
use tonic::{Request, Response, Status};

/// The arguments of every call, as the seed server decoded them.
#[derive(Clone, Default)]
struct Seed {
    calls: Arc<Mutex<Vec<Map<String, Value>>>>,
}

fn field(r#type: &str, default: Option<f64>) -> pb::SchemaField {
    pb::SchemaField {
        r#type: r#type.into(),
        description: String::new(),
        default_value: default.map(|n| pb::Value {
            kind: Some(Kind::NumberValue(n)),
        }),
    }
}

#[tonic::async_trait]
impl McpService for Seed {
    async fn initialize(
        &self,
        _: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        Ok(Response::new(pb::InitializeResponse::default()))
    }

    async fn list_tools(
        &self,
        _: Request<pb::ListToolsRequest>,
    ) -> Result<Response<pb::ListToolsResponse>, Status> {
        let tool = pb::Tool {
            name: "forecast".into(),
            description: "Days of weather".into(),
            input_schema: Some(pb::Schema {
                r#type: "object".into(),
                properties: HashMap::from([
                    ("city".to_owned(), field("string", None)),
                    ("days".to_owned(), field("integer", Some(3.0))),
                    ("ratio".to_owned(), field("number", Some(0.5))),
                ]),
                required: vec!["city".into()],
            }),
            ..Default::default()
        };
        Ok(Response::new(pb::ListToolsResponse {
            tools: vec![tool],
            next_cursor: String::new(),
        }))
    }

    async fn call_tool(
        &self,
        request: Request<pb::CallToolRequest>,
    ) -> Result<Response<pb::CallToolResponse>, Status> {
        let arguments = from_pb_fields(request.into_inner().arguments);
        let text = Value::Object(arguments.clone()).to_string();
        self.calls.lock().unwrap().push(arguments);
        // The seed describes a resource in `metadata` only.
        let resource = pb::Content {
            r#type: "resource".into(),
            text: "sunny".into(),
            metadata: HashMap::from([
                ("uri".to_owned(), "weather://paris".to_owned()),
                ("mimeType".to_owned(), "text/plain".to_owned()),
            ]),
            ..Default::default()
        };
        let text = pb::Content {
            r#type: "text".into(),
            text,
            ..Default::default()
        };
        Ok(Response::new(pb::CallToolResponse {
            content: vec![text, resource],
            ..Default::default()
        }))
    }

    type StreamCallToolStream = futures_util::stream::Empty<Result<pb::CallToolResponse, Status>>;

    async fn stream_call_tool(
        &self,
        _: Request<pb::CallToolRequest>,
    ) -> Result<Response<Self::StreamCallToolStream>, Status> {
        Err(Status::unimplemented("not in the seed's server"))
    }

    async fn ping(
        &self,
        request: Request<pb::PingRequest>,
    ) -> Result<Response<pb::PingResponse>, Status> {
        Ok(Response::new(pb::PingResponse {
            timestamp: request.into_inner().timestamp,
            status: "ok".into(),
        }))
    }
}

/// Serves `seed` over h2c on a loopback port; returns its address.
async fn serve(seed: Seed) -> String {
    let app =
        axum::Router::new().route_service("/mcp.MCPService/{*method}", McpServiceServer::new(seed));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_seed_server_gets_the_arguments_map_and_whole_numbers_stay_integers() {
    let seed = Seed::default();
    let url = serve(seed.clone()).await;
    let server = GrpcServer::new("seed", &url, &TlsFiles::default(), None).unwrap();

    let list = server.list_tools().await.unwrap();
    let schema = &list.tools[0].input_schema;
    assert_eq!(
        schema,
        &json!({"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer", "default": 3},
            "ratio": {"type": "number", "default": 0.5}
        }})
    );
    // The double 3.0 of the seed's default is the integer 3, as mcp-tool would read it.
    assert!(schema["properties"]["days"]["default"].is_i64());

    let Value::Object(arguments) =
        json!({"city": "Paris", "days": 5, "ratio": 0.25, "hourly": [1, 2.5]})
    else {
        unreachable!()
    };
    let result = server
        .call_tool("forecast", arguments.clone(), e2e::WAIT_TIMEOUT, None)
        .await
        .unwrap();
    // The listing had no `input_schema_json`: the map was sent, and read back exactly.
    let calls = seed.calls.lock().unwrap().clone();
    assert_eq!(calls, [arguments]);
    assert!(calls[0]["days"].is_i64() && calls[0]["hourly"][0].is_i64());
    assert_eq!(
        result.content,
        [
            Content::text(r#"{"city":"Paris","days":5,"hourly":[1,2.5],"ratio":0.25}"#),
            Content::Resource {
                resource: json!({"uri": "weather://paris", "mimeType": "text/plain", "text": "sunny"})
            }
        ]
    );
}
