//! Tests that call out through [`super`] from several `#[test]`s of one binary: the client's
//! connection pool is per process, and a pooled connection's task lives on the runtime that
//! opened it. With a runtime per test (`#[tokio::test]`), a later test can pick up a connection
//! whose task died with an earlier test's runtime ("runtime dropped the dispatch task"). A
//! service has one runtime; these tests get one too.

use std::future::Future;
use std::sync::OnceLock;

/// Runs `future` to its end on the one runtime of this process (two worker threads).
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime")
        })
        .block_on(future)
}
