//! A run's budget as it is spent: wall time (a deadline), tokens, model calls and tool calls.
//! Every model and tool call asks the meter first; the first limit reached ends the run with the
//! output it has.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::state::{Status, Usage};
use crate::config::Budget;

/// Why a run, or one step, must stop early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A token, model-call, tool-call or wall-time limit: which one, and whose (`None`: the
    /// run's; an agent's name: that agent's own `budget`).
    Budget {
        /// What ran out.
        what: String,
        /// The agent whose budget it was.
        agent: Option<String>,
    },
    /// Out of time.
    Deadline,
    /// The caller went away.
    Cancelled,
    /// SIGTERM.
    Interrupted,
    /// Tool calls wait for approval: the run pauses.
    Paused(Vec<super::state::PendingApproval>),
}

impl Stop {
    /// The run's budget ran out.
    pub fn budget(what: impl Into<String>) -> Self {
        Self::Budget {
            what: what.into(),
            agent: None,
        }
    }

    /// The message for the `error` field.
    pub fn message(&self) -> String {
        match self {
            Self::Budget { what, agent: None } => format!("budget exhausted: {what}"),
            Self::Budget {
                what,
                agent: Some(agent),
            } => format!("agent {agent}'s budget exhausted: {what}"),
            Self::Deadline => "the run's time ran out".to_owned(),
            Self::Cancelled => "the caller cancelled the run".to_owned(),
            Self::Interrupted => "the instance is shutting down".to_owned(),
            Self::Paused(pending) => format!(
                "waiting for approval of {}",
                pending
                    .iter()
                    .map(|p| format!("{} ({})", p.tool, p.approval_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Whether it stops the whole run (not one agent's own budget).
    pub fn stops_the_run(&self) -> bool {
        !matches!(self, Self::Budget { agent: Some(_), .. })
    }

    /// Whether it stops `agent` too (the run's stop, or `agent`'s own budget spent by one of
    /// its workers).
    pub fn stops(&self, agent: &str) -> bool {
        match self {
            Self::Budget {
                agent: Some(owner), ..
            } => owner == agent,
            _ => true,
        }
    }

    /// The run or step status it ends with.
    pub fn status(&self) -> Status {
        match self {
            Self::Budget { .. } => Status::BudgetExhausted,
            Self::Deadline => Status::Deadline,
            Self::Cancelled => Status::Cancelled,
            Self::Interrupted => Status::Interrupted,
            Self::Paused(_) => Status::InputRequired,
        }
    }
}

/// What a run, or one step of it, may still spend. A step's meter has a parent (the run's, or
/// its planner's or supervisor's step): every call is taken from the whole chain, so an
/// agent's own `budget` stops that agent while the run's limits still bound all.
#[derive(Debug)]
pub struct Meter {
    budget: Budget,
    deadline: Instant,
    used: Mutex<Usage>,
    /// The agent whose budget this is (`None`: the run's, or a step without one of its own).
    owner: Option<String>,
    parent: Option<Arc<Meter>>,
}

impl Meter {
    /// The run's meter for `budget`, ending at `deadline`.
    pub fn new(budget: Budget, deadline: Instant) -> Arc<Self> {
        Arc::new(Self {
            budget,
            deadline,
            used: Mutex::new(Usage::default()),
            owner: None,
            parent: None,
        })
    }

    /// A step's meter under `parent`: `agent`'s own budget when it has one (its wall time
    /// from now), else only the parent's limits.
    pub fn child(parent: &Arc<Meter>, agent: &str, budget: Option<Budget>) -> Arc<Self> {
        let (budget, deadline, owner) = match budget {
            Some(b) => (
                b,
                parent.deadline.min(Instant::now() + b.wall_time),
                Some(agent.to_owned()),
            ),
            None => (Budget::UNLIMITED, parent.deadline, None),
        };
        Arc::new(Self {
            budget,
            deadline,
            used: Mutex::new(Usage::default()),
            owner,
            parent: Some(Arc::clone(parent)),
        })
    }

    fn chain(&self) -> impl Iterator<Item = &Meter> {
        std::iter::successors(Some(self), |m| m.parent.as_deref())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When this meter's time ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether this meter's deadline is an agent's own, before the run's.
    pub fn owns_deadline(&self) -> Option<&str> {
        let run = self.chain().last().map_or(self.deadline, |m| m.deadline);
        (self.deadline < run)
            .then(|| self.chain().find(|m| m.deadline == self.deadline))
            .flatten()
            .and_then(|m| m.owner.as_deref())
    }

    /// Time left.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// What has been spent under this meter.
    pub fn used(&self) -> Usage {
        *self.lock()
    }

    /// The stop for running out of time here.
    pub fn out_of_time(&self) -> Stop {
        match self.owns_deadline() {
            Some(agent) => Stop::Budget {
                what: "its wall time ran out".to_owned(),
                agent: Some(agent.to_owned()),
            },
            None => Stop::Deadline,
        }
    }

    /// The first limit `over` finds spent, the run's first.
    fn check(&self, over: impl Fn(&Usage, &Budget) -> Option<String>) -> Result<(), Stop> {
        let chain: Vec<&Meter> = self.chain().collect();
        for m in chain.into_iter().rev() {
            if let Some(what) = over(&m.lock(), &m.budget) {
                return Err(Stop::Budget {
                    what,
                    agent: m.owner.clone(),
                });
            }
        }
        Ok(())
    }

    /// Takes one model call, if every budget above has one left and tokens remain.
    pub fn take_model_call(&self) -> Result<(), Stop> {
        if self.remaining().is_zero() {
            return Err(self.out_of_time());
        }
        self.check(|used, budget| {
            if used.input_tokens >= budget.input_tokens {
                Some(format!(
                    "{} input tokens used (limit {})",
                    used.input_tokens, budget.input_tokens
                ))
            } else if used.output_tokens >= budget.output_tokens {
                Some(format!(
                    "{} output tokens used (limit {})",
                    used.output_tokens, budget.output_tokens
                ))
            } else if used.model_calls >= budget.model_calls {
                Some(format!(
                    "{} model calls made (limit {})",
                    used.model_calls, budget.model_calls
                ))
            } else {
                None
            }
        })?;
        for m in self.chain() {
            m.lock().model_calls += 1;
        }
        Ok(())
    }

    /// The most output tokens the next model call may produce under every budget above.
    pub fn output_tokens_left(&self) -> u64 {
        self.chain()
            .map(|m| {
                m.budget
                    .output_tokens
                    .saturating_sub(m.lock().output_tokens)
            })
            .min()
            .unwrap_or(0)
    }

    /// Records the tokens a model call used, here and above.
    pub fn add_tokens(&self, input: u64, output: u64) {
        for m in self.chain() {
            let mut used = m.lock();
            used.input_tokens += input;
            used.output_tokens += output;
        }
    }

    /// Charges what a step spent in an earlier attempt of the run, here and above, without
    /// checking limits: it was spent already.
    pub fn charge(&self, spent: &Usage) {
        for m in self.chain() {
            let mut used = m.lock();
            used.input_tokens += spent.input_tokens;
            used.output_tokens += spent.output_tokens;
            used.model_calls += spent.model_calls;
            used.tool_calls += spent.tool_calls;
        }
    }

    /// Takes one tool call, if every budget above has one left.
    pub fn take_tool_call(&self) -> Result<(), Stop> {
        if self.remaining().is_zero() {
            return Err(self.out_of_time());
        }
        self.check(|used, budget| {
            (used.tool_calls >= budget.tool_calls).then(|| {
                format!(
                    "{} tool calls made (limit {})",
                    used.tool_calls, budget.tool_calls
                )
            })
        })?;
        for m in self.chain() {
            m.lock().tool_calls += 1;
        }
        Ok(())
    }

    /// Whether a token limit has been passed (checked after each model call).
    pub fn over_tokens(&self) -> Option<Stop> {
        self.check(|used, budget| {
            if used.output_tokens > budget.output_tokens {
                Some(format!(
                    "{} output tokens used (limit {})",
                    used.output_tokens, budget.output_tokens
                ))
            } else if used.input_tokens > budget.input_tokens {
                Some(format!(
                    "{} input tokens used (limit {})",
                    used.input_tokens, budget.input_tokens
                ))
            } else {
                None
            }
        })
        .err()
    }
}

/// The budget a request asks for, each field at most the configured one (a request may lower
/// a limit, never raise it). Unknown fields and values above the configured ones are errors.
pub fn lowered(configured: Budget, asked: &serde_json::Value) -> Result<Budget, String> {
    let Some(fields) = asked.as_object() else {
        return Err("budget must be an object".into());
    };
    let mut budget = configured;
    for (key, value) in fields {
        let over = |limit: String| format!("budget.{key} is above the configured limit {limit}");
        match key.as_str() {
            "wall_time_ms" => {
                let ms = value
                    .as_u64()
                    .ok_or("budget.wall_time_ms must be a whole number")?;
                let asked = Duration::from_millis(ms);
                if asked > configured.wall_time {
                    return Err(over(format!("{} ms", configured.wall_time.as_millis())));
                }
                budget.wall_time = asked;
            }
            "input_tokens" | "output_tokens" => {
                let n = value
                    .as_u64()
                    .ok_or_else(|| format!("budget.{key} must be a whole number"))?;
                let slot = if key == "input_tokens" {
                    &mut budget.input_tokens
                } else {
                    &mut budget.output_tokens
                };
                if n > *slot {
                    return Err(over(slot.to_string()));
                }
                *slot = n;
            }
            "model_calls" | "tool_calls" => {
                let n = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("budget.{key} must be a whole number"))?;
                let slot = if key == "model_calls" {
                    &mut budget.model_calls
                } else {
                    &mut budget.tool_calls
                };
                if n > *slot {
                    return Err(over(slot.to_string()));
                }
                *slot = n;
            }
            other => {
                return Err(format!(
                    "unknown budget field {other:?}; expected wall_time_ms, input_tokens, \
                     output_tokens, model_calls, tool_calls"
                ));
            }
        }
    }
    Ok(budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn calls_stop_at_their_limits() {
        let budget = Budget {
            model_calls: 1,
            tool_calls: 1,
            ..Budget::default()
        };
        let meter = Meter::new(budget, Instant::now() + Duration::from_secs(60));
        assert!(meter.take_model_call().is_ok());
        assert!(matches!(
            meter.take_model_call(),
            Err(Stop::Budget { agent: None, .. })
        ));
        assert!(meter.take_tool_call().is_ok());
        assert!(matches!(
            meter.take_tool_call(),
            Err(Stop::Budget { agent: None, .. })
        ));
        let late = Meter::new(budget, Instant::now());
        assert_eq!(late.take_model_call(), Err(Stop::Deadline));
    }

    #[tokio::test]
    async fn an_agents_budget_stops_it_and_charges_the_run() {
        let run = Meter::new(
            Budget {
                model_calls: 3,
                ..Budget::default()
            },
            Instant::now() + Duration::from_secs(60),
        );
        let agent = Meter::child(
            &run,
            "a",
            Some(Budget {
                model_calls: 1,
                ..Budget::default()
            }),
        );
        assert!(agent.take_model_call().is_ok());
        let stop = agent.take_model_call().unwrap_err();
        assert_eq!(
            stop,
            Stop::Budget {
                what: "1 model calls made (limit 1)".into(),
                agent: Some("a".into())
            }
        );
        assert!(!stop.stops_the_run());
        let other = Meter::child(&run, "b", None);
        assert!(other.take_model_call().is_ok());
        assert!(other.take_model_call().is_ok());
        assert_eq!(run.used().model_calls, 3);
        assert!(other.take_model_call().unwrap_err().stops_the_run());
    }

    #[test]
    fn a_request_may_lower_limits_never_raise_them() {
        let configured = Budget::default();
        let b = lowered(
            configured,
            &json!({"output_tokens": 10, "wall_time_ms": 500}),
        )
        .unwrap();
        assert_eq!(b.output_tokens, 10);
        assert_eq!(b.wall_time, Duration::from_millis(500));
        let e = lowered(configured, &json!({"model_calls": 10_000})).unwrap_err();
        assert!(e.contains("above the configured limit"), "{e}");
        assert!(
            lowered(configured, &json!({"tokens": 1}))
                .unwrap_err()
                .contains("unknown")
        );
    }
}
