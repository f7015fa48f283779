//! The `logger` agent: records its input and passes it on.

use crate::run::step::{Input, Step, StepEnd};

/// Logs `input` (its payload only with `LOG_PAYLOADS`) and passes it on.
pub(crate) fn run(step: &Step<'_>, input: &Input) -> StepEnd {
    let recorder = step.run.recorder;
    let (run_id, agent) = (recorder.run_id(), step.agent.name.as_str());
    let value = input.value();
    if recorder.log_payloads() {
        tracing::info!(run_id, agent, input = %value, "logger");
    } else {
        tracing::info!(run_id, agent, "logger");
    }
    StepEnd::done(value)
}
