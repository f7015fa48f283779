//! A run's budget as it is spent: wall time (a deadline), tokens, model calls and tool calls.
//! Every model and tool call asks the meter first; the first limit reached ends the run with the
//! output it has.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::report::Usage;
use crate::config::Budget;

/// Why a run must stop early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A token, model-call or tool-call limit: which one.
    Budget(String),
    /// Out of time.
    Deadline,
    /// The caller went away.
    Cancelled,
    /// SIGTERM.
    Interrupted,
}

impl Stop {
    /// The message for the run's `error` field.
    pub fn message(&self) -> String {
        match self {
            Self::Budget(what) => format!("budget exhausted: {what}"),
            Self::Deadline => "the run's time ran out".to_owned(),
            Self::Cancelled => "the caller cancelled the run".to_owned(),
            Self::Interrupted => "the instance is shutting down".to_owned(),
        }
    }
}

/// What a run may still spend.
#[derive(Debug)]
pub struct Meter {
    budget: Budget,
    deadline: Instant,
    used: Mutex<Usage>,
}

impl Meter {
    /// A meter for `budget`, ending at `deadline`.
    pub fn new(budget: Budget, deadline: Instant) -> Self {
        Self {
            budget,
            deadline,
            used: Mutex::new(Usage::default()),
        }
    }

    /// When the run must end.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// What has been spent.
    pub fn used(&self) -> Usage {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one model call, if the budget has one left and tokens remain.
    pub fn take_model_call(&self) -> Result<(), Stop> {
        if self.remaining().is_zero() {
            return Err(Stop::Deadline);
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.input_tokens >= self.budget.input_tokens {
            return Err(Stop::Budget(format!(
                "{} input tokens used (limit {})",
                used.input_tokens, self.budget.input_tokens
            )));
        }
        if used.output_tokens >= self.budget.output_tokens {
            return Err(Stop::Budget(format!(
                "{} output tokens used (limit {})",
                used.output_tokens, self.budget.output_tokens
            )));
        }
        if used.model_calls >= self.budget.model_calls {
            return Err(Stop::Budget(format!(
                "{} model calls made (limit {})",
                used.model_calls, self.budget.model_calls
            )));
        }
        used.model_calls += 1;
        Ok(())
    }

    /// The most output tokens the next model call may produce.
    pub fn output_tokens_left(&self) -> u64 {
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        self.budget.output_tokens.saturating_sub(used.output_tokens)
    }

    /// Records the tokens a model call used.
    pub fn add_tokens(&self, input: u64, output: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        used.input_tokens += input;
        used.output_tokens += output;
    }

    /// Takes one tool call, if the budget has one left.
    pub fn take_tool_call(&self) -> Result<(), Stop> {
        if self.remaining().is_zero() {
            return Err(Stop::Deadline);
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.tool_calls >= self.budget.tool_calls {
            return Err(Stop::Budget(format!(
                "{} tool calls made (limit {})",
                used.tool_calls, self.budget.tool_calls
            )));
        }
        used.tool_calls += 1;
        Ok(())
    }

    /// Whether a token limit has been passed (checked after each model call).
    pub fn over_tokens(&self) -> Option<Stop> {
        let used = self.used();
        if used.output_tokens > self.budget.output_tokens {
            return Some(Stop::Budget(format!(
                "{} output tokens used (limit {})",
                used.output_tokens, self.budget.output_tokens
            )));
        }
        if used.input_tokens > self.budget.input_tokens {
            return Some(Stop::Budget(format!(
                "{} input tokens used (limit {})",
                used.input_tokens, self.budget.input_tokens
            )));
        }
        None
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
        assert!(matches!(meter.take_model_call(), Err(Stop::Budget(_))));
        assert!(meter.take_tool_call().is_ok());
        assert!(matches!(meter.take_tool_call(), Err(Stop::Budget(_))));
        let late = Meter::new(budget, Instant::now());
        assert_eq!(late.take_model_call(), Err(Stop::Deadline));
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
