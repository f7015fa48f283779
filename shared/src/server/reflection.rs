//! gRPC server reflection, v1 and v1alpha (grpcurl 1.8 speaks only v1alpha), built on the
//! first reflection request: decoding every descriptor set, twice, is most of a cold start's
//! work otherwise, and production traffic rarely asks.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, FutureExt};
use http::{Request, Response};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic_reflection::pb::{v1, v1alpha};
use tonic_reflection::server::Builder;
use tower::{Service, ServiceExt};

use super::GrpcService;

/// The encoded descriptor sets to describe.
type Descriptors = Arc<Vec<&'static [u8]>>;

/// Both reflection services over `descriptors` (each version also lists the other, so
/// `grpcurl list` and v1 clients see the same services).
pub(crate) fn services(descriptors: Vec<&'static [u8]>) -> (impl GrpcService, impl GrpcService) {
    let descriptors: Descriptors = Arc::new(descriptors);
    (
        Lazy::new(descriptors.clone(), |d| builder(d).build_v1()),
        Lazy::new(descriptors, |d| builder(d).build_v1alpha()),
    )
}

fn builder(descriptors: &Descriptors) -> Builder<'static> {
    let own = [v1::FILE_DESCRIPTOR_SET, v1alpha::FILE_DESCRIPTOR_SET];
    descriptors.iter().chain(&own).fold(
        Builder::configure().include_reflection_service(false),
        |b, fds| b.register_encoded_file_descriptor_set(fds),
    )
}

type Init<S> = fn(&Descriptors) -> Result<S, tonic_reflection::server::Error>;

/// A service built on its first call. A build failure (a broken compiled-in descriptor, which
/// the runtime's tests rule out) answers INTERNAL instead of stopping start-up.
struct Lazy<S> {
    cell: Arc<OnceLock<Result<S, String>>>,
    descriptors: Descriptors,
    init: Init<S>,
}

impl<S> Lazy<S> {
    fn new(descriptors: Descriptors, init: Init<S>) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            descriptors,
            init,
        }
    }
}

impl<S> Clone for Lazy<S> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
            descriptors: self.descriptors.clone(),
            init: self.init,
        }
    }
}

impl<S: NamedService> NamedService for Lazy<S> {
    const NAME: &'static str = S::NAME;
}

impl<S: GrpcService> Service<Request<Body>> for Lazy<S> {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let built = self
            .cell
            .get_or_init(|| (self.init)(&self.descriptors).map_err(|e| e.to_string()));
        match built {
            Ok(service) => service.clone().oneshot(req).boxed(),
            Err(e) => {
                let status = tonic::Status::internal(format!("reflection unavailable: {e}"));
                std::future::ready(Ok(status.into_http())).boxed()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtimes_descriptors_build_in_both_versions() {
        let d: Descriptors = Arc::new(vec![tonic_health::pb::FILE_DESCRIPTOR_SET]);
        assert!(builder(&d).build_v1().is_ok());
        assert!(builder(&d).build_v1alpha().is_ok());
    }
}
