//! Loading and every rejection, each one line naming file:line:column.

use std::time::Duration;

use aixrun::llm::Provider;

use super::*;

const OLLAMA: &str =
    "model_services:\n  - name: local\n    provider: ollama\n    model: qwen3:0.6b\n";

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().copied())
}

fn ok(text: &str) -> Orchestration {
    match parse("t.yaml", text, &env(&[])) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    }
}

/// The error line, checked to be one line starting with the variable and the file.
fn err(text: &str) -> String {
    err_with(text, &[])
}

fn err_with(text: &str, pairs: &[(&str, &str)]) -> String {
    let line = match parse("t.yaml", text, &env(pairs)) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    };
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with("ORCHESTRATE_CONFIG=\"t.yaml\": t.yaml:"),
        "{line}"
    );
    line
}

/// `t.yaml:L:C:` of the first occurrence of `needle` (the nth, from 1).
fn at(text: &str, needle: &str, nth: usize) -> String {
    let (index, _) = text.match_indices(needle).nth(nth - 1).unwrap();
    let before = &text[..index];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    format!("t.yaml:{line}:{column}: ")
}

fn assert_at(line: &str, text: &str, needle: &str, nth: usize, says: &str) {
    let position = at(text, needle, nth);
    assert!(line.contains(&position), "expected {position} in: {line}");
    assert!(line.contains(says), "expected {says:?} in: {line}");
}

#[test]
fn the_bundled_example_loads_one_react_agent_on_ollama_with_local_tools() {
    let o = load(&env(&[])).unwrap();
    assert_eq!(o.source, BUNDLED_NAME);
    let w = &o.workflows["default"];
    assert_eq!(w.steps.len(), 1);
    let agent = &w.steps[0];
    assert_eq!(
        (agent.name.as_str(), agent.role),
        ("assistant", Role::React)
    );
    let model = agent.model.as_ref().unwrap();
    assert_eq!(model.model, "qwen3:0.6b");
    assert_eq!(model.endpoint.provider(), Provider::Ollama);
    assert_eq!(model.endpoint.base().as_str(), "http://localhost:11434/");
    let tools = &agent.mcp_servers[0];
    assert_eq!(tools.transport, Transport::Local);
    assert_eq!(
        tools.tools.as_deref(),
        Some(&["echo".to_owned(), "get_weather".to_owned()][..])
    );
    assert_eq!(agent.max_iterations, 10);
    assert_eq!(o.defaults.tool_concurrency, 4);
    assert_eq!(o.defaults.budget.wall_time, Duration::from_secs(240));

    let o = load(&env(&[
        (ORCHESTRATE_MODEL, "ollama:llama3.2:1b"),
        (OLLAMA_HOST, "ollama"),
    ]))
    .unwrap();
    let model = o.workflows["default"].steps[0].model.clone().unwrap();
    assert_eq!(model.model, "llama3.2:1b");
    assert_eq!(model.endpoint.base().as_str(), "http://ollama:11434/");
}

#[test]
fn interpolation_fills_any_scalar_and_keys_stay_out_of_debug() {
    let text = "model_services:\n  - name: gpt\n    provider: openai\n    model: ${MODEL:-gpt-4o-mini}\n    config: {api_key: \"${KEY}\"}\nagents:\n  - name: a\n    role: react\n    model: gpt\n    max_iterations: ${N}\n";
    let o = parse(
        "t.yaml",
        text,
        &env(&[("KEY", "sk-very-secret"), ("N", "3")]),
    )
    .unwrap();
    let agent = &o.workflows["default"].steps[0];
    assert_eq!(agent.max_iterations, 3);
    let model = agent.model.as_ref().unwrap();
    assert_eq!(model.model, "gpt-4o-mini");
    assert!(model.endpoint.has_key());
    assert!(!format!("{o:?}").contains("sk-very-secret"));
}

#[test]
fn an_unset_variable_is_named_where_it_is_used() {
    let text = format!("{OLLAMA}    config: {{address: \"${{OLLAMA_ADDR}}\"}}\nagents: []\n");
    let line = err(&text);
    assert_at(&line, &text, "${OLLAMA_ADDR}", 1, "OLLAMA_ADDR is not set");
}

#[test]
fn an_unknown_key_is_refused_where_it_is_even_after_a_substitution() {
    let text = format!(
        "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n    colour: blue\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "colour",
        1,
        "agents[0]: unknown field `colour`",
    );

    // The substituted value is longer than `${M}`: the column is still the file's.
    let text = format!("{OLLAMA}agents:\n  - {{name: a, role: react, model: ${{M}}, colour: 1}}\n");
    let line = err_with(&text, &[("M", "local-but-longer")]);
    assert_at(&line, &text, "colour", 1, "unknown field `colour`");
}

#[test]
fn an_unknown_role_is_refused_with_the_known_ones() {
    let text = format!("{OLLAMA}agents:\n  - name: a\n    role: wizard\n");
    let line = err(&text);
    assert_at(&line, &text, "wizard", 1, "unknown variant `wizard`");
    assert!(line.contains("react"), "{line}");
}

#[test]
fn a_role_this_release_does_not_run_is_refused_not_ignored() {
    let text = format!(
        "{OLLAMA}agents:\n  - name: sort\n    role: classifier\n    model: local\n    classifier_config: {{categories: [{{name: billing}}]}}\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "classifier",
        1,
        "agents[0].role: role classifier is not run by this release: it runs react and logger",
    );
}

#[test]
fn unknown_models_servers_and_agents_are_named() {
    let text = format!("{OLLAMA}agents:\n  - name: a\n    role: react\n    model: locl\n");
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "locl",
        1,
        "agents[0].model: unknown model \"locl\"",
    );
    assert!(line.contains("model_services name (local)"), "{line}");

    let text = format!(
        "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n    mcp_servers: [weather]\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "weather",
        1,
        "agents[0].mcp_servers[0]: unknown MCP server \"weather\" (declared: none)",
    );

    let text = format!(
        "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n    depends_on: [b]\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "b]",
        1,
        "agents[0].depends_on[0]: unknown agent \"b\" (declared: a)",
    );

    let text = format!("{OLLAMA}agents:\n  - name: a\n    role: react\n    model: mistral:7b\n");
    let line = err(&text);
    assert!(line.contains("unknown model \"mistral:7b\""), "{line}");
}

#[test]
fn a_model_named_in_place_resolves_to_its_provider() {
    let o = ok("agents:\n  - name: a\n    role: react\n    model: ollama:qwen3:0.6b\n");
    let m = o.workflows["default"].steps[0].model.clone().unwrap();
    assert_eq!(
        (m.model.as_str(), m.endpoint.provider()),
        ("qwen3:0.6b", Provider::Ollama)
    );
    let text = "agents:\n  - name: a\n    role: react\n    model: openai:gpt-4o\n";
    let line = err(text);
    assert_at(&line, text, "openai:gpt-4o", 1, "openai needs an API key");
}

#[test]
fn a_dependency_cycle_is_named_at_the_edge_that_closes_it() {
    let text = format!(
        "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n    depends_on: [c]\n  - name: b\n    role: react\n    model: local\n    depends_on: [a]\n  - name: c\n    role: react\n    model: local\n    inputs: [{{source: b}}]\n"
    );
    let line = err(&text);
    assert_at(&line, &text, "c]", 1, "dependency cycle: a -> b -> c -> a");
}

#[test]
fn fan_out_and_fan_in_are_refused_until_the_engine_runs_them() {
    let three = |extra_a: &str, extra_c: &str| {
        format!(
            "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n{extra_a}  - name: b\n    role: react\n    model: local\n  - name: c\n    role: react\n    model: local\n{extra_c}"
        )
    };
    let text = three("    outputs: [{target: b}, {target: c}]\n", "");
    let line = err(&text);
    assert_at(&line, &text, "c}", 1, "a feeds both b and c (fan-out)");

    let text = three("", "    depends_on: [a, b]\n");
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "b]",
        1,
        "c takes input from both a and b (fan-in)",
    );
}

#[test]
fn chains_run_in_order_and_separate_chains_need_workflows() {
    let agents = format!(
        "{OLLAMA}agents:\n  - name: log\n    role: logger\n    inputs: [{{source: answer}}]\n  - name: answer\n    role: react\n    model: local\n  - name: other\n    role: react\n    model: local\n"
    );
    let line = err(&agents);
    assert!(
        line.contains("workflow default has 2 separate chains, starting at answer, other"),
        "{line}"
    );
    let o = ok(&format!(
        "{agents}workflows:\n  - name: main\n    agents: [log, answer]\n  - name: solo\n    agents: [other]\n"
    ));
    let steps: Vec<&str> = o.workflows["main"]
        .steps
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(steps, ["answer", "log"]);
    assert_eq!(o.workflows["main"].steps[1].role, Role::Logger);
    assert_eq!(o.workflows["solo"].steps.len(), 1);

    let text = format!("{agents}workflows:\n  - name: main\n    agents: [log, other]\n");
    let line = err(&text);
    assert!(
        line.contains("answer -> log leaves workflow main"),
        "{line}"
    );
}

#[test]
fn values_are_checked_where_they_are() {
    let text = format!(
        "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n    budget: {{wall_time: soon}}\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "soon",
        1,
        "agents[0].budget.wall_time: \"soon\"",
    );

    let text = format!(
        "{OLLAMA}agents:\n  - name: a\n    role: react\n    model: local\n    output_schema: {{type: 12}}\n"
    );
    let line = err(&text);
    assert!(
        line.contains("agents[0].output_schema: not a usable JSON Schema"),
        "{line}"
    );

    let text = "mcp_servers:\n  - name: remote\n    transport: grpc\nagents:\n  - name: a\n    role: logger\n";
    let line = err(text);
    assert_at(
        &line,
        text,
        "remote",
        1,
        "a grpc MCP server needs `address`",
    );

    let text = "mcp_servers:\n  - name: remote\n    transport: http\n    url: https://mcp.example.com/mcp\n    auth: {type: bearer, token_env: MCP_TOKEN}\nagents:\n  - name: a\n    role: logger\n";
    let line = err(text);
    assert_at(&line, text, "MCP_TOKEN", 1, "MCP_TOKEN is not set");
    assert!(parse("t.yaml", text, &env(&[("MCP_TOKEN", "tok")])).is_ok());

    let text = format!("{OLLAMA}agents:\n  - name: l\n    role: logger\n    model: local\n");
    let line = err(&text);
    assert!(line.contains("a logger agent uses no model"), "{line}");
}

/// The model service's endpoint identity, when `text` loads under `pairs`.
fn model_identity(text: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let o = parse("t.yaml", text, &env(pairs)).unwrap_or_else(|e| panic!("{e}"));
    let agent = &o.workflows["default"].steps[0];
    let endpoint = &agent.model.as_ref().unwrap().endpoint;
    endpoint.auth().map(|a| format!("{a:?}"))
}

#[test]
fn model_services_get_id_tokens_as_configured_or_by_the_mcp_servers_default_rule() {
    let agent = "agents:\n  - {name: a, role: react, model: m}\n";
    let service = |address: &str, extra: &str| {
        format!(
            "model_services:\n  - name: m\n    provider: ollama\n    model: x\n{extra}    config: {{address: {address}}}\n{agent}"
        )
    };
    let platform = [("K_SERVICE", "orchestrate")];
    // Explicit: the address's origin, or the audience given.
    let text = service("http://10.0.0.5:11434/base", "    auth: {type: id_token}\n");
    assert_eq!(
        model_identity(&text, &[]).as_deref(),
        Some("IdTokenAuth(http://10.0.0.5:11434)")
    );
    let text = service(
        "https://ollama-x.a.run.app",
        "    auth: {type: id_token, audience: 'https://custom'}\n",
    );
    assert_eq!(
        model_identity(&text, &[]).as_deref(),
        Some("IdTokenAuth(https://custom)")
    );
    // Default: https:// on Google Cloud only, and not with an API key; `none` turns it off.
    let https = service("https://ollama-x.a.run.app", "");
    assert_eq!(
        model_identity(&https, &platform).as_deref(),
        Some("IdTokenAuth(https://ollama-x.a.run.app)")
    );
    assert_eq!(model_identity(&https, &[]), None);
    assert_eq!(
        model_identity(&service("http://ollama:11434", ""), &platform),
        None
    );
    let off = service("https://ollama-x.a.run.app", "    auth: {type: none}\n");
    assert_eq!(model_identity(&off, &platform), None);
    let keyed = "model_services:\n  - name: m\n    provider: openai\n    model: gpt\n    \
                 config: {api_key: sk-1}\nagents:\n  - {name: a, role: react, model: m}\n";
    assert_eq!(model_identity(keyed, &platform), None);
    // In place (`provider:model`), the same rule on the provider's address.
    let in_place = "agents:\n  - {name: a, role: react, model: 'ollama:x'}\n";
    assert_eq!(
        model_identity(
            in_place,
            &[("K_SERVICE", "o"), ("OLLAMA_URL", "https://o.a.run.app")]
        )
        .as_deref(),
        Some("IdTokenAuth(https://o.a.run.app)")
    );
    // A bearer auth on a model service is its api_key.
    let bearer = service("http://o:1", "    auth: {type: bearer, token: x}\n");
    let line = err(&bearer);
    assert!(line.contains("config.api_key"), "{line}");
}
