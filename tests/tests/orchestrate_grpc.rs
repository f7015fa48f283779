//! orchestrate's gRPC run API (`aixrun.orchestrate.v1.Orchestrator`) on the real binary, on
//! the one port beside the HTTP API, with a loopback model (`e2e::model`): through orchestrate's
//! generated tonic client over a real h2c connection (Run, RunStream, GetRun, CancelRun from a
//! second call, StreamRunEvents after a seq, bad input, unknown runs, the call's deadline as
//! the run's, a dropped call cancelling its run; on the Firestore emulator, a second instance
//! getting, following and cancelling the run), and through the command-line clients people
//! use: `grpcurl` (reflection, describe, the same calls, a client killed mid-stream) and
//! `buf curl`. The ones needing a peer are `#[ignore]`d by default and fail without it.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ::orchestrate::grpc::convert::{from_json, struct_to_json, to_json};
use ::orchestrate::grpc::pb;
use ::orchestrate::grpc::pb::orchestrator_client::OrchestratorClient;
use e2e::clients::grpc_channel;
use e2e::model::{FakeModel, Reply};
use e2e::orchestrate::{self, openai_service, react_yaml, wait_until};
use e2e::{TempDir, TestApp};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

const SERVICE: &str = "aixrun.orchestrate.v1.Orchestrator";

/// One react agent (no tools) on the fake model.
fn spawn(dir: &TempDir, model: &FakeModel) -> TestApp {
    let yaml = react_yaml(&openai_service(model), None, "    prompt: Be brief.\n");
    orchestrate::spawn(dir, &yaml, &[])
}

async fn client(app: &TestApp) -> OrchestratorClient<Channel> {
    OrchestratorClient::new(grpc_channel(app.addr).await)
}

/// A request with `input` and the other fields as in JSON (`{"on_disconnect": "continue"}`).
fn request(input: &str, rest: &Value) -> pb::RunRequest {
    let text = |k: &str| rest[k].as_str().unwrap_or_default().to_owned();
    pb::RunRequest {
        input: Some(from_json(json!(input))),
        workflow: text("workflow"),
        session_id: text("session_id"),
        on_disconnect: text("on_disconnect"),
        ..Default::default()
    }
}

/// Every event of a stream, until it ends (failing on an error status).
async fn all_events(mut events: tonic::Streaming<pb::RunEvent>) -> Vec<pb::RunEvent> {
    let mut all = Vec::new();
    while let Some(event) = events.next().await {
        all.push(event.expect("an event"));
    }
    all
}

/// Reads `events` up to and including the first of type `kind`.
async fn until(events: &mut tonic::Streaming<pb::RunEvent>, kind: &str) -> Vec<pb::RunEvent> {
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        let event = event.expect("an event");
        let done = event.r#type == kind;
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("the stream ended before a {kind}: {seen:?}");
}

fn data(event: &pb::RunEvent) -> Value {
    struct_to_json(event.data.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_answers_the_result_as_post_v1_run_does() {
    let model = FakeModel::openai(vec![Reply::text("Hello there")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let run = client(&app)
        .await
        .run(request("hi", &json!({})))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.status, "completed", "{run:?}");
    assert!(run.run_id.starts_with("run-"), "{run:?}");
    assert_eq!(to_json(run.output.clone().unwrap()), json!("Hello there"));
    let usage = run.usage.unwrap();
    assert_eq!((usage.model_calls, usage.input_tokens), (1, 12), "{run:?}");
    assert_eq!(run.steps.len(), 1, "{run:?}");
    assert_eq!(model.requests()[0]["messages"][1]["content"], "hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stream_sends_the_sse_events_in_order_ending_with_run_finished() {
    let model = FakeModel::openai(vec![Reply::text("one two three")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let stream = client(&app)
        .await
        .run_stream(request("count", &json!({})))
        .await
        .unwrap()
        .into_inner();
    let events = all_events(stream).await;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(types.first(), Some(&"run.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"run.finished"), "{types:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    let deltas: String = events
        .iter()
        .filter(|e| e.r#type == "message.delta")
        .map(|e| data(e)["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, "one two three");
    let started = events.iter().find(|e| e.r#type == "agent.started").unwrap();
    assert!(!started.step_id.is_empty(), "{started:?}");
    assert_eq!(data(started)["agent"], "assistant");
    let finished = data(events.last().unwrap());
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["output"], "one two three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_unknown_runs_get_the_status_naming_the_problem() {
    let model = FakeModel::openai(vec![]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let mut client = client(&app).await;
    let budget = pb::RunRequest {
        budget: Some(pb::Budget {
            model_calls: Some(100_000),
            ..Default::default()
        }),
        ..request("x", &json!({}))
    };
    for (req, code, says) in [
        (
            pb::RunRequest::default(),
            Code::InvalidArgument,
            "input is required",
        ),
        (
            pb::RunRequest {
                input: Some(from_json(json!(3))),
                ..Default::default()
            },
            Code::InvalidArgument,
            "input must be",
        ),
        (budget, Code::InvalidArgument, "budget.model_calls"),
        (
            request("x", &json!({"on_disconnect": "later"})),
            Code::InvalidArgument,
            "on_disconnect",
        ),
        (
            request("x", &json!({"session_id": "no/slash"})),
            Code::InvalidArgument,
            "session_id",
        ),
        (
            request("x", &json!({"workflow": "nope"})),
            Code::NotFound,
            "unknown workflow",
        ),
    ] {
        let unary = client.run(req.clone()).await.unwrap_err();
        assert_eq!(unary.code(), code, "{req:?}: {unary:?}");
        assert!(unary.message().contains(says), "{req:?}: {unary:?}");
        // A stream is refused with the same status, before any event.
        let stream = client.run_stream(req.clone()).await.unwrap_err();
        assert_eq!((stream.code(), stream.message()), (code, unary.message()));
    }
    assert!(model.requests().is_empty(), "nothing reached the model");

    let id = |run_id: &str| pb::GetRunRequest {
        run_id: run_id.to_owned(),
    };
    let unknown = client.get_run(id("run-nope")).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(unknown.message().contains("run-nope"), "{unknown:?}");
    for bad in ["", "a/b"] {
        let e = client.get_run(id(bad)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad:?}: {e:?}");
        assert!(e.message().contains("run_id"), "{e:?}");
    }
    let cancel = pb::CancelRunRequest {
        run_id: "run-nope".into(),
    };
    let e = client.cancel_run(cancel).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let follow = pb::StreamRunEventsRequest {
        run_id: "run-nope".into(),
        after_seq: None,
    };
    let e = client.stream_run_events(follow).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calls_deadline_is_the_runs_and_it_answers_before_it() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let mut call = tonic::Request::new(request("x", &json!({})));
    call.set_timeout(Duration::from_millis(1500));
    let started = Instant::now();
    let run = client(&app).await.run(call).await.unwrap().into_inner();
    let took = started.elapsed();
    assert_eq!(run.status, "deadline", "{run:?}");
    assert!(took < Duration::from_millis(1500), "answered in {took:?}");
    assert!(took >= Duration::from_millis(1200), "answered in {took:?}");
    let output = to_json(run.output.unwrap());
    assert!(output.as_str().unwrap().starts_with("more "), "{output}");
    wait_until(|| model.hung_up() == 1, "the model stream was never closed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_cancels_its_run() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let mut events = client(&app)
        .await
        .run_stream(request("x", &json!({})))
        .await
        .unwrap()
        .into_inner();
    until(&mut events, "message.delta").await;
    drop(events);
    wait_until(
        || model.hung_up() == 1,
        "the model stream outlived its call",
    )
    .await;
    let line = tokio::task::block_in_place(|| {
        app.wait_for_log("the run's end", |v| v["message"] == "run finished")
    });
    assert_eq!(line["status"], "cancelled", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_run_is_got_cancelled_from_a_second_call_and_followed_after_a_seq() {
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let mut first = client(&app).await;
    let mut events = first
        .run_stream(request("x", &json!({"on_disconnect": "continue"})))
        .await
        .unwrap()
        .into_inner();
    let seen = until(&mut events, "message.delta").await;
    let run_id = seen[0].run_id.clone();

    // A second connection sees the run going, then cancels it.
    let mut second = client(&app).await;
    let got = second
        .get_run(pb::GetRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, "running", "{got:?}");
    assert_eq!(struct_to_json(got.request.unwrap())["input"], "x");
    let cancelled = second
        .cancel_run(pb::CancelRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cancelled.cancel_requested, "{cancelled:?}");
    let mut rest = seen;
    rest.extend(all_events(events).await);
    let finished = rest.last().unwrap();
    assert_eq!(finished.r#type, "run.finished", "{rest:?}");
    assert_eq!(data(finished)["status"], "cancelled", "{finished:?}");
    wait_until(
        || model.hung_up() == 1,
        "the model stream outlived the cancel",
    )
    .await;

    // Followed again from the store after a seq: the events after it, none repeated.
    let after = rest.len() as u64 / 2;
    let followed = second
        .stream_run_events(pb::StreamRunEventsRequest {
            run_id: run_id.clone(),
            after_seq: Some(after),
        })
        .await
        .unwrap()
        .into_inner();
    let followed = all_events(followed).await;
    let seqs: Vec<u64> = followed.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = rest.iter().map(|e| e.seq).filter(|s| *s > after).collect();
    assert_eq!(seqs, expected);
    assert_eq!(followed, rest[rest.len() - followed.len()..].to_vec());
    // The record ends its attempt just after its run.finished is stored.
    let mut got = pb::RunSummary::default();
    for _ in 0..50 {
        let request = pb::GetRunRequest {
            run_id: run_id.clone(),
        };
        got = second.get_run(request).await.unwrap().into_inner();
        if got.status == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.status, "cancelled", "{got:?}");
    assert_eq!(got.last_seq, Some(finished.seq), "{got:?}");
    let again = second
        .cancel_run(pb::CancelRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::Aborted, "{again:?}");
}

/// The emulators' variables, which `scripts/emulators.sh` exports, with `RUN_STORE=firestore`:
/// a test without them fails naming the command, never passes by skipping.
fn on_firestore() -> Vec<(String, String)> {
    let mut vars = e2e::orchestrate::emulator_vars();
    vars.push(("RUN_STORE".into(), "firestore".into()));
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Firestore and Pub/Sub emulators: eval \"$(bash scripts/emulators.sh)\""]
async fn another_instance_gets_follows_and_cancels_a_run_through_the_store() {
    let vars = on_firestore();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let model = FakeModel::openai(vec![Reply::Endless(Duration::from_millis(20))]);
    let yaml = react_yaml(&openai_service(&model), None, "    prompt: Be brief.\n");
    let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
    let a = orchestrate::spawn(&dir_a, &yaml, &vars);
    let b = orchestrate::spawn(&dir_b, &yaml, &vars);
    let mut events = client(&a)
        .await
        .run_stream(request("x", &json!({"on_disconnect": "continue"})))
        .await
        .unwrap()
        .into_inner();
    let mut on_a = until(&mut events, "message.delta").await;
    let (run_id, after) = (on_a[0].run_id.clone(), on_a.last().unwrap().seq);

    let mut other = client(&b).await;
    let got = other
        .get_run(pb::GetRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.status, "running", "{got:?}");
    let followed = other
        .stream_run_events(pb::StreamRunEventsRequest {
            run_id: run_id.clone(),
            after_seq: Some(after),
        })
        .await
        .unwrap()
        .into_inner();
    other
        .cancel_run(pb::CancelRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .unwrap();
    let followed = all_events(followed).await;
    on_a.extend(all_events(events).await);
    let finished = on_a.last().unwrap();
    assert_eq!(data(finished)["status"], "cancelled", "{finished:?}");
    // B saw every event after the seq it asked from, once, as A did.
    assert_eq!(followed, on_a[on_a.len() - followed.len()..].to_vec());
    assert_eq!(followed[0].seq, after + 1, "{followed:?}");
    wait_until(
        || model.hung_up() == 1,
        "the model stream outlived the cancel",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// The command-line clients: grpcurl and buf curl, over reflection.

/// `tool ARGS` to completion; panics when the tool is nowhere (the tests asking for it run only
/// on purpose: they are ignored by default).
fn run_tool(tool: &str, args: &[&str]) -> Output {
    match Command::new(e2e::python::peer_tool(tool))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{tool} is neither on PATH nor installed: run scripts/test-peers.sh")
        }
        Err(e) => panic!("run {tool}: {e}"),
    }
}

/// `grpcurl -plaintext -max-time 20 FLAGS ADDR REST` (a later `-max-time` in FLAGS wins).
fn grpcurl(app: &TestApp, flags: &[&str], rest: &[&str]) -> Output {
    let addr = app.addr.to_string();
    let mut args = vec!["-plaintext", "-max-time", "20"];
    args.extend_from_slice(flags);
    args.push(&addr);
    args.extend_from_slice(rest);
    tokio::task::block_in_place(|| run_tool("grpcurl", &args))
}

/// The JSON messages a client printed, one after another.
fn messages(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{out:?}");
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON messages ({e}): {out:?}"))
}

fn method(name: &str) -> String {
    format!("{SERVICE}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs grpcurl: run scripts/test-peers.sh"]
async fn grpcurl_lists_describes_runs_streams_and_follows() {
    let model = FakeModel::openai(vec![
        Reply::text("Hello there"),
        Reply::text("one two three"),
        Reply::text("kept"),
    ]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);

    let list = grpcurl(&app, &[], &["list"]);
    let stdout = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{list:?}");
    for service in [SERVICE, "grpc.health.v1.Health"] {
        assert!(stdout.lines().any(|l| l.trim() == service), "{stdout}");
    }
    let described = grpcurl(&app, &[], &["describe", SERVICE]);
    let text = String::from_utf8_lossy(&described.stdout);
    assert!(described.status.success(), "{described:?}");
    for rpc in ["Run", "RunStream", "GetRun", "CancelRun", "StreamRunEvents"] {
        assert!(text.contains(&format!("rpc {rpc} (")), "{rpc}: {text}");
    }
    assert!(
        text.contains("returns ( stream .aixrun.orchestrate.v1.RunEvent )"),
        "{text}"
    );
    let request = grpcurl(&app, &[], &["describe", "aixrun.orchestrate.v1.RunRequest"]);
    let text = String::from_utf8_lossy(&request.stdout);
    assert!(text.contains(".google.protobuf.Value input = 1;"), "{text}");

    let run = grpcurl(&app, &["-d", r#"{"input": "hi"}"#], &[&method("Run")]);
    let run = &messages(&run)[0];
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], "Hello there", "{run}");
    assert_eq!(run["usage"]["modelCalls"], 1, "{run}");

    let stream = grpcurl(
        &app,
        &["-emit-defaults", "-d", r#"{"input": "count"}"#],
        &[&method("RunStream")],
    );
    let events = messages(&stream);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"run.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"run.finished"), "{types:?}");
    // uint64 is a JSON string in proto3's JSON mapping.
    let seqs: Vec<&str> = events.iter().map(|e| e["seq"].as_str().unwrap()).collect();
    assert_eq!(seqs[..3], ["0", "1", "2"], "{events:?}");
    let deltas: String = events
        .iter()
        .filter_map(|e| e["data"]["delta"].as_str())
        .collect();
    assert_eq!(deltas, "one two three");

    // A stored run, then its events after a seq, and the run itself.
    let stored = grpcurl(
        &app,
        &["-d", r#"{"input": "keep", "on_disconnect": "continue"}"#],
        &[&method("Run")],
    );
    let stored = &messages(&stored)[0];
    assert_eq!(stored["status"], "completed", "{stored}");
    let run_id = stored["runId"].as_str().unwrap();
    let follow = format!(r#"{{"run_id": "{run_id}", "after_seq": 1}}"#);
    let followed = grpcurl(&app, &["-d", &follow], &[&method("StreamRunEvents")]);
    let followed = messages(&followed);
    assert_eq!(followed[0]["seq"], "2", "{followed:?}");
    assert_eq!(followed.last().unwrap()["type"], "run.finished");
    // The record ends its attempt just after its run.finished is stored.
    let get = format!(r#"{{"run_id": "{run_id}"}}"#);
    let mut got = Value::Null;
    for _ in 0..50 {
        got = messages(&grpcurl(&app, &["-d", &get], &[&method("GetRun")])).remove(0);
        if got["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got["status"], "completed", "{got}");
    assert_eq!(got["request"]["input"], "keep", "{got}");

    // Errors, as grpcurl prints them.
    for (body, name, code, says) in [
        ("{}", "Run", "InvalidArgument", "input is required"),
        (
            r#"{"input": "x", "budget": {"model_calls": 100000}}"#,
            "RunStream",
            "InvalidArgument",
            "budget.model_calls",
        ),
        (
            r#"{"run_id": "run-nope"}"#,
            "GetRun",
            "NotFound",
            "run-nope",
        ),
        (&get, "CancelRun", "Aborted", "has ended"),
    ] {
        let out = grpcurl(&app, &["-d", body], &[&method(name)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} {body}: {out:?}");
        assert!(
            stderr.contains(&format!("Code: {code}")),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs grpcurl: run scripts/test-peers.sh"]
async fn grpcurl_max_time_is_the_runs_deadline_and_a_killed_client_cancels_its_run() {
    let gap = Duration::from_millis(20);
    let model = FakeModel::openai(vec![Reply::Endless(gap), Reply::Endless(gap)]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);

    // -max-time is the call's deadline (grpc-timeout): the run answers before it.
    let run = grpcurl(
        &app,
        &["-max-time", "3", "-d", r#"{"input": "x"}"#],
        &[&method("Run")],
    );
    let run = &messages(&run)[0];
    assert_eq!(run["status"], "deadline", "{run}");
    assert!(
        run["output"].as_str().unwrap().starts_with("more "),
        "{run}"
    );
    wait_until(|| model.hung_up() == 1, "the model stream was never closed").await;

    // A client killed mid-stream: its run is cancelled, and the model hears it.
    let mut child = Command::new(e2e::python::peer_tool("grpcurl"))
        .args([
            "-plaintext",
            "-d",
            r#"{"input": "y"}"#,
            &app.addr.to_string(),
        ])
        .arg(method("RunStream"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("grpcurl is there: it ran a moment ago");
    let stdout = child.stdout.take().unwrap();
    tokio::task::block_in_place(|| {
        let mut lines = BufReader::new(stdout).lines();
        let delta = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains("message.delta")));
        assert!(delta.is_some(), "grpcurl printed no message.delta");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(
        || model.hung_up() == 2,
        "the model stream outlived its client",
    )
    .await;
    let lines = tokio::task::block_in_place(|| {
        app.wait_for_logs("the runs' ends", 2, |v| v["message"] == "run finished")
    });
    assert_eq!(lines[1]["status"], "cancelled", "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs buf: run scripts/test-peers.sh"]
async fn buf_curl_lists_runs_and_streams_over_reflection() {
    let model = FakeModel::openai(vec![Reply::text("Hello there"), Reply::text("a b")]);
    let dir = TempDir::new();
    let app = spawn(&dir, &model);
    let base = format!("http://{}", app.addr);
    let buf = |args: &[&str]| {
        let mut all = vec!["curl", "--protocol", "grpc", "--http2-prior-knowledge"];
        all.extend_from_slice(args);
        tokio::task::block_in_place(|| run_tool("buf", &all))
    };
    let listed = buf(&["--list-methods", &base]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(text.lines().any(|l| l == method("RunStream")), "{text}");

    let run = buf(&[
        "-d",
        r#"{"input": "hi"}"#,
        &format!("{base}/{}", method("Run")),
    ]);
    let run = &messages(&run)[0];
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], "Hello there", "{run}");

    let stream = buf(&[
        "-d",
        r#"{"input": "go"}"#,
        &format!("{base}/{}", method("RunStream")),
    ]);
    let events = messages(&stream);
    assert_eq!(events.first().unwrap()["type"], "run.started", "{events:?}");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "run.finished", "{events:?}");
    assert_eq!(last["data"]["output"], "a b", "{last}");
}
