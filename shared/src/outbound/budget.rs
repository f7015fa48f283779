//! A budget of response bytes in flight, shared by the calls of one tool: each body read
//! draws its bytes from it chunk by chunk and gives them back when the read and decode end.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Bytes that the calls of one tool may hold at once (a semaphore of bytes). Cloning shares
/// the budget. A read that finds it empty waits, within its deadline, for others to finish.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    total: usize,
}

impl ByteBudget {
    /// A budget of `total` bytes (at least 1).
    pub fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The size of the budget.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not drawn at the moment.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// Bytes drawn from a budget (none without one), given back on drop.
#[derive(Debug, Default)]
pub(super) struct Drawn {
    budget: Option<ByteBudget>,
    bytes: usize,
}

impl Drawn {
    pub(super) fn from(budget: Option<&ByteBudget>) -> Self {
        Self {
            budget: budget.cloned(),
            bytes: 0,
        }
    }

    /// Draws `bytes` more, waiting until `deadline`; `false` when the budget stayed full.
    pub(super) async fn draw(&mut self, bytes: usize, deadline: Instant) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        // One read may hold the whole budget but never more, or it would wait for itself.
        let wanted = bytes.min(budget.total - self.bytes.min(budget.total));
        if wanted == 0 {
            return true;
        }
        let permits = u32::try_from(wanted).unwrap_or(u32::MAX);
        match tokio::time::timeout_at(deadline, budget.semaphore.acquire_many(permits)).await {
            Ok(Ok(permit)) => {
                permit.forget();
                self.bytes += permits as usize;
                true
            }
            _ => false,
        }
    }

    /// Gives back everything drawn so far.
    pub(super) fn release(&mut self) {
        if let Some(budget) = &self.budget
            && self.bytes > 0
        {
            budget.semaphore.add_permits(self.bytes);
        }
        self.bytes = 0;
    }
}

impl Drop for Drawn {
    fn drop(&mut self) {
        self.release();
    }
}
