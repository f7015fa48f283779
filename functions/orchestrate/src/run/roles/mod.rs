//! The roles, one module each: what a step does with its input, by its agent's role.

mod aggregator;
mod classifier;
mod logger;
mod planner;
mod react;
mod supervisor;

use super::step::{Input, Step, StepEnd};
use crate::config::Role;

/// Runs `step`'s agent on `input`.
pub(crate) async fn run(step: &Step<'_>, input: &Input) -> StepEnd {
    let agent = step.agent;
    if step.as_react {
        return react::run(step, agent, input.text()).await;
    }
    match &agent.role {
        Role::React => react::run(step, agent, input.text()).await,
        Role::Logger => logger::run(step, input),
        Role::Classifier(c) => classifier::run(step, c, input).await,
        Role::Aggregator(a) => aggregator::run(step, a, input).await,
        Role::Planner(p) => planner::run(step, p, input).await,
        Role::Supervisor(s) => supervisor::run(step, s, input).await,
    }
}
