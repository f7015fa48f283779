//! `aixrun.orchestrate.v1.Orchestrator` (`proto/orchestrate.proto`): the run API over gRPC
//! and gRPC-Web on the runtime's one port. It drives the run service as `/v1/run` and
//! `/v1/runs` do, with the same request policy (the request becomes the same JSON fields),
//! the same decision between a run on its own and a stored one, the call's deadline
//! (`grpc-timeout`, capped by `REQUEST_TIMEOUT`) as the request's deadline, and a dropped call
//! cancelling its run; errors go through the runtime's one table (`ApiError::to_status`).

pub mod convert;

use std::pin::Pin;
use std::sync::Arc;

use aixrun::error::{ApiError, ErrorKind};
use aixrun::server::Deadline;
use futures_util::{Stream, StreamExt as _};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::reachability::Reachability;
use crate::run::{Envelope, Event, Interruptions};
use crate::service::request::valid_id;
use crate::service::start::Admitted;
use crate::service::{RunRequest, RunService};
use crate::store::StoreError;

/// The generated server and client of `proto/orchestrate.proto`, with its descriptor set (and
/// `google/protobuf/struct.proto`'s) for reflection.
pub use aixrun_proto::aixrun::orchestrate::v1 as pb;

/// A stream of run events, as the generated server takes it.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RunEvent, Status>> + Send>>;

/// The service.
pub struct Orchestrator {
    service: Arc<RunService>,
    models: Arc<Reachability>,
}

impl Orchestrator {
    /// The service over `service`, checking `models` before a run as `/v1/run` does.
    pub fn new(service: Arc<RunService>, models: Arc<Reachability>) -> Self {
        Self { service, models }
    }

    /// The generated server, without tonic's own 4 MiB message cap: the runtime enforces
    /// `MAX_GRPC_MESSAGE_BYTES` on every gRPC service.
    pub fn server(self) -> pb::orchestrator_server::OrchestratorServer<Self> {
        pb::orchestrator_server::OrchestratorServer::new(self)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    /// The checked run, or why it is refused (logged at WARN as `/v1/run` does). The call's
    /// deadline is the door's deadline: the run ends early enough to answer before it.
    async fn admit(
        &self,
        request: Request<pb::RunRequest>,
    ) -> Result<(Admitted, Option<Deadline>), Status> {
        let deadline = request.extensions().get::<Deadline>().copied();
        let fields = convert::request_fields(request.into_inner());
        let route = deadline.map(|d| d.remaining());
        match self.service.admit(&self.models, &fields, route, None).await {
            Ok(admitted) => Ok((admitted, deadline)),
            Err(error) => {
                let workflow =
                    RunRequest::workflow_named(&self.service.engine.orchestration, &fields);
                tracing::warn!(
                    code = ?error.kind.grpc_code(),
                    workflow = (!workflow.is_empty()).then_some(workflow.as_str()),
                    reason = error.message.as_str(),
                    "run refused: {}",
                    error.message
                );
                Err(error.to_status())
            }
        }
    }
}

/// A store that failed while a run was followed.
fn store_down(e: &StoreError) -> Status {
    ApiError::new(ErrorKind::Unavailable, e.to_string()).to_status()
}

/// The `run_id` of a request: INVALID_ARGUMENT unless it can name a run.
fn run_id(id: &str) -> Result<&str, Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument("run_id is required"));
    }
    if !valid_id(id) {
        return Err(Status::invalid_argument(
            "run_id must be 1-128 letters, digits, '-', '_' or '.' (a run's id, as in its events)",
        ));
    }
    Ok(id)
}

#[tonic::async_trait]
impl pb::orchestrator_server::Orchestrator for Orchestrator {
    async fn run(
        &self,
        request: Request<pb::RunRequest>,
    ) -> Result<Response<pb::RunSummary>, Status> {
        let (admitted, deadline) = self.admit(request).await?;
        if !admitted.stored() {
            // The handler owns the run: a caller that leaves (or whose deadline passes) drops
            // it, and the run with it.
            let stop = Interruptions {
                cancel: CancellationToken::new(),
                shutdown: self.service.shutdown.clone(),
            };
            let result = self.service.engine.run(admitted.spec, None, stop).await;
            return Ok(Response::new(convert::summary(
                &result.run_id,
                &result.summary,
            )));
        }
        let attached = self
            .service
            .attach(&admitted.request, deadline.map(|d| d.0))
            .await
            .map_err(|e| e.to_status())?;
        let mut events = attached.events;
        while let Some(item) = events.next().await {
            match item {
                Ok(Envelope {
                    event: Event::RunFinished(summary),
                    ..
                }) => return Ok(Response::new(convert::summary(&attached.run_id, &summary))),
                Ok(_) => {}
                Err(e) => return Err(store_down(&e)),
            }
        }
        // The events ended without a `run.finished` to read: the run as stored.
        let record = self
            .service
            .get(&attached.run_id)
            .await
            .map_err(|e| e.to_status())?;
        Ok(Response::new(convert::record(&record)))
    }

    type RunStreamStream = EventStream;

    async fn run_stream(
        &self,
        request: Request<pb::RunRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let (admitted, deadline) = self.admit(request).await?;
        if !admitted.stored() {
            let events = self
                .service
                .run_here(admitted.spec)
                .map(|envelope| Ok(convert::event(&envelope)));
            return Ok(Response::new(Box::pin(events)));
        }
        let attached = self
            .service
            .attach(&admitted.request, deadline.map(|d| d.0))
            .await
            .map_err(|e| e.to_status())?;
        let events = attached.events.map(|item| match item {
            Ok(envelope) => Ok(convert::event(&envelope)),
            Err(e) => Err(store_down(&e)),
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::RunSummary>, Status> {
        let id = run_id(&request.get_ref().run_id)?;
        let record = self.service.get(id).await.map_err(|e| e.to_status())?;
        Ok(Response::new(convert::record(&record)))
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::RunSummary>, Status> {
        let id = run_id(&request.get_ref().run_id)?;
        let record = self.service.cancel(id).await.map_err(|e| e.to_status())?;
        Ok(Response::new(convert::record(&record)))
    }

    type StreamRunEventsStream = EventStream;

    async fn stream_run_events(
        &self,
        request: Request<pb::StreamRunEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let request = request.into_inner();
        let id = run_id(&request.run_id)?;
        self.service.get(id).await.map_err(|e| e.to_status())?;
        let events = self
            .service
            .follow(id, request.after_seq)
            .map(|item| match item {
                Ok(envelope) => Ok(convert::event(&envelope)),
                Err(e) => Err(store_down(&e)),
            });
        Ok(Response::new(Box::pin(events)))
    }
}
