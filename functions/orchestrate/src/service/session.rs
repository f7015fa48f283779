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

#[cfg(test)]
mod tests {
    use super::*;

    fn session(turns: usize) -> Session {
        Session {
            session_id: "s".to_owned(),
            turns: (1..=turns)
                .map(|n| SessionTurn {
                    run_id: format!("run-{n}"),
                    input: format!("question {n}"),
                    output: format!("answer {n}"),
                    tools: if n == turns {
                        vec!["echo".to_owned()]
                    } else {
                        Vec::new()
                    },
                    at: now(),
                })
                .collect(),
            active_run: None,
            updated_at: now(),
        }
    }

    #[test]
    fn the_model_sees_only_the_latest_max_turns_in_order_with_tools_summarised() {
        let messages = history(&session(5), 2);
        let texts: Vec<String> = messages
            .iter()
            .map(|m| match m {
                Message::User(text) => format!("user: {text}"),
                Message::Assistant { content, .. } => format!("assistant: {content}"),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [
                "user: question 4",
                "assistant: answer 4",
                "user: question 5",
                "assistant: answer 5\n\n(tools called: echo)",
            ]
        );
        assert_eq!(history(&session(1), 20).len(), 2);
        assert!(history(&session(0), 20).is_empty());
    }
}
