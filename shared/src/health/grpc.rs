//! `grpc.health.v1.Health` over the same state as `/health/ready`: overall (`""`) and for each
//! gRPC service the function serves.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health as HealthRpc, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::{Health, Phase};

/// How often an open `Watch` re-evaluates the checks (between phase changes).
const WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// The gRPC health service.
#[derive(Clone)]
pub struct HealthService {
    health: Health,
    services: Arc<Vec<String>>,
}

impl HealthService {
    /// Reports for `""` and each of `services` (full names such as `mcp.MCPService`).
    pub fn new(health: Health, services: Vec<String>) -> HealthServer<Self> {
        HealthServer::new(Self {
            health,
            services: Arc::new(services),
        })
    }

    fn known(&self, service: &str) -> bool {
        service.is_empty() || self.services.iter().any(|s| s == service)
    }

    async fn status(&self) -> ServingStatus {
        if self.health.readiness().await.ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl HealthRpc for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if !self.known(&service) {
            return Err(Status::not_found(format!("unknown service {service:?}")));
        }
        Ok(Response::new(response(self.status().await)))
    }

    type WatchStream = WatchStream;

    /// Sends the current status, then each change; ends after reporting NOT_SERVING on drain
    /// so that an open watch never holds up shutdown.
    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        if !self.known(&service) {
            return Ok(Response::new(Box::pin(futures_util::stream::once(async {
                Ok(response(ServingStatus::ServiceUnknown))
            }))));
        }
        let this = self.clone();
        let phases = self.health.subscribe();
        let stream = futures_util::stream::unfold(
            (this, phases, None::<ServingStatus>, false),
            |(this, mut phases, last, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let status = this.status().await;
                    let draining = *phases.borrow() == Phase::Draining;
                    if last != Some(status) || draining {
                        return Some((
                            Ok(response(status)),
                            (this, phases, Some(status), draining),
                        ));
                    }
                    tokio::select! {
                        changed = phases.changed() => if changed.is_err() { return None },
                        _ = tokio::time::sleep(WATCH_INTERVAL) => {}
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
