//! A session's turns as the model sees them, and a finished run as the session's next turn.

use aixrun::llm::Message;

use crate::run::step_text;
use crate::run::{RunSummary, Status, now};
use crate::store::{Session, SessionTurn};

/// The session's last `max_turns` turns as messages: each user input, then the final answer
/// (with the tools the run called, summarised in a line).
pub fn history(session: &Session, max_turns: usize) -> Vec<Message> {
    let skip = session.turns.len().saturating_sub(max_turns);
    session.turns[skip..]
        .iter()
        .flat_map(|turn| {
            let answer = if turn.tools.is_empty() {
                turn.output.clone()
            } else {
                format!(
                    "{}\n\n(tools called: {})",
                    turn.output,
                    turn.tools.join(", ")
                )
            };
            [
                Message::User(turn.input.clone()),
                Message::Assistant {
                    content: answer,
                    tool_calls: Vec::new(),
                },
            ]
        })
        .collect()
}

/// The turn a finished run adds to its session: only a completed run adds one.
pub fn turn(run_id: &str, input: &serde_json::Value, summary: &RunSummary) -> Option<SessionTurn> {
    if summary.status != Status::Completed {
        return None;
    }
    let mut tools: Vec<String> = Vec::new();
    for step in &summary.steps {
        for call in &step.summary.tool_calls {
            if !tools.contains(&call.name) {
                tools.push(call.name.clone());
            }
        }
    }
    Some(SessionTurn {
        run_id: run_id.to_owned(),
        input: step_text(input),
        output: step_text(&summary.output),
        tools,
        at: now(),
    })
}
