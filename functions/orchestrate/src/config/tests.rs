//! Loading and every rejection, each one line naming file:line:column.

use std::time::Duration;

use aixrun::llm::{Provider, ToolChoice};

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
    assert_eq!(w.nodes.len(), 1);
    let agent = &w.nodes[0];
    assert_eq!(
        (agent.name.as_str(), agent.role.clone()),
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
    let model = o.workflows["default"].nodes[0].model.clone().unwrap();
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
    let agent = &o.workflows["default"].nodes[0];
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
fn role_settings_are_checked_against_the_role() {
    let text = format!(
        "{OLLAMA}agents:\n  - name: sort\n    role: classifier\n    model: local\n    classifier_config: {{categories: [{{name: billing}}]}}\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "[{name: billing}]",
        1,
        "agents[0].classifier_config.categories: a classifier needs at least two categories",
    );
    let text = format!(
        "{OLLAMA}agents:\n  - name: r\n    role: react\n    model: local\n    planner_config: {{max_steps: 2}}\n"
    );
    let line = err(&text);
    assert!(
        line.contains("planner_config is for planner agents, and this agent's role is react"),
        "{line}"
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
    let m = o.workflows["default"].nodes[0].model.clone().unwrap();
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
fn fan_out_fan_in_and_routes_make_a_graph() {
    let text = format!(
        "{OLLAMA}agents:\n  - name: router\n    role: classifier\n    model: local\n    classifier_config:\n      categories: [{{name: billing}}, {{name: tech}}]\n      fallback: tech\n    outputs: [{{target: b, when: billing}}, {{target: t, when: tech}}]\n  - {{name: b, role: react, model: local}}\n  - {{name: t, role: react, model: local}}\n  - name: both\n    role: aggregator\n    inputs: [{{source: b}}, {{source: t}}]\n    join: any\n    aggregator_config: {{strategy: first}}\n"
    );
    let o = ok(&text);
    let w = &o.workflows["default"];
    let edges: Vec<(&str, &str, Option<&str>)> = w
        .edges
        .iter()
        .map(|e| {
            (
                w.nodes[e.from].name.as_str(),
                w.nodes[e.to].name.as_str(),
                e.when.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        [
            ("router", "b", Some("billing")),
            ("router", "t", Some("tech")),
            ("b", "both", None),
            ("t", "both", None)
        ]
    );
    assert_eq!(w.exit.map(|i| w.nodes[i].name.as_str()), Some("both"));
    assert_eq!(w.nodes[3].join, Join::Any);
    let Role::Classifier(c) = &w.nodes[0].role else {
        panic!("{:?}", w.nodes[0].role)
    };
    assert_eq!(c.confidence_threshold, 0.7);
    assert_eq!(c.fallback.as_deref(), Some("tech"));
}

#[test]
fn graph_mistakes_are_one_line_each_at_their_entry() {
    let classifier = |outputs: &str| {
        format!(
            "{OLLAMA}agents:\n  - name: router\n    role: classifier\n    model: local\n    classifier_config:\n      categories: [{{name: billing}}, {{name: tech}}]\n    outputs: [{outputs}]\n  - {{name: b, role: react, model: local}}\n  - {{name: t, role: react, model: local}}\n"
        )
    };
    let text = classifier("{target: b, when: billing}, {target: t, when: sales}");
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "t, when: sales",
        1,
        "unknown category \"sales\" (declared: billing, tech)",
    );
    let text = classifier("{target: b, when: billing}, {target: x, when: tech}");
    let line = err(&text);
    assert_at(&line, &text, "x, when", 1, "unknown agent \"x\"");
    let text = classifier("{target: b, when: billing}");
    let line = err(&text);
    assert!(line.contains("category tech has no route"), "{line}");

    // Fan-in of an agent outside the workflow, which never runs there.
    let text = format!(
        "{OLLAMA}agents:\n  - {{name: a, role: react, model: local}}\n  - {{name: b, role: react, model: local}}\n  - name: j\n    role: aggregator\n    aggregator_config: {{strategy: concat}}\n    inputs: [{{source: a}}, {{source: b}}]\nworkflows:\n  - {{name: w, agents: [a, j]}}\n"
    );
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "b}]",
        1,
        "j takes input from b, which is not in workflow w and so never runs there",
    );

    let text = format!(
        "{OLLAMA}agents:\n  - {{name: a, role: react, model: local, outputs: [{{target: b, when: x}}]}}\n  - {{name: b, role: react, model: local}}\n"
    );
    let line = err(&text);
    assert!(
        line.contains("`when` routes a classifier's output, and a is a react agent"),
        "{line}"
    );

    let text = format!("{OLLAMA}agents:\n  - {{name: p, role: producer}}\n");
    let line = err(&text);
    assert_at(
        &line,
        &text,
        "producer",
        1,
        "role producer (the seed's ticker) does not run on a serverless platform",
    );

    let text = format!(
        "{OLLAMA}agents:\n  - {{name: s, role: supervisor, model: local, workers: [w]}}\n  - {{name: w, role: react, model: local, outputs: [{{target: s}}]}}\n"
    );
    let line = err(&text);
    assert!(
        line.contains("w is a worker of s, which gives it its tasks"),
        "{line}"
    );

    let text = format!(
        "{OLLAMA}agents:\n  - name: v\n    role: aggregator\n    model: local\n    aggregator_config: {{strategy: voting_majority}}\n"
    );
    let line = err(&text);
    assert!(
        line.contains("aggregator strategy voting_majority uses no model"),
        "{line}"
    );
}

#[test]
fn the_seeds_top_level_supervisor_delegates_to_every_react_agent() {
    let text = format!(
        "{OLLAMA}agents:\n  - {{name: r, role: react, model: local}}\n  - {{name: w, role: react, model: local}}\nsupervisor: {{name: boss, model: local, max_rounds: 3}}\n"
    );
    let o = ok(&text);
    let w = &o.workflows["default"];
    assert_eq!(w.nodes.len(), 1);
    assert_eq!(
        w.nodes[0].role,
        Role::Supervisor(Supervisor {
            workers: vec!["r".into(), "w".into()],
            max_rounds: 3
        })
    );
    assert_eq!(w.agents(&o).len(), 3);
}

#[test]
fn chains_run_in_order_and_separate_parts_need_workflows() {
    let agents = format!(
        "{OLLAMA}agents:\n  - name: log\n    role: logger\n    inputs: [{{source: answer}}]\n  - name: answer\n    role: react\n    model: local\n  - name: other\n    role: react\n    model: local\n"
    );
    let line = err(&agents);
    assert!(
        line.contains("workflow default has 2 separate parts, starting at log, other"),
        "{line}"
    );
    let o = ok(&format!(
        "{agents}workflows:\n  - name: main\n    agents: [log, answer]\n  - name: solo\n    agents: [other]\n"
    ));
    let main = &o.workflows["main"];
    let nodes: Vec<&str> = main.nodes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(nodes, ["log", "answer"]);
    assert_eq!(main.edges[0].from, 1);
    assert_eq!(main.nodes[0].role, Role::Logger);
    assert_eq!(main.exit, Some(0));
    assert_eq!(o.workflows["solo"].nodes.len(), 1);

    let text = format!("{agents}workflows:\n  - name: main\n    agents: [log, other]\n");
    let line = err(&text);
    assert!(
        line.contains("log takes input from answer, which is not in workflow main"),
        "{line}"
    );
    let text = format!("{agents}workflows:\n  - name: main\n    agents: [answer, other]\n");
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
    let agent = &o.workflows["default"].nodes[0];
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

#[test]
fn every_example_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.display().to_string();
            if let Err(e) = parse(&name, &text, &env(&[])) {
                panic!("{e}");
            }
            loaded += 1;
        }
    }
    assert!(loaded >= 5, "{loaded} examples in {}", dir.display());
}

#[test]
fn a_model_named_in_place_is_served_where_orchestrate_model_url_or_openai_base_url_says() {
    let model = |pairs: &[(&str, &str)]| {
        let o = load(&env(pairs)).unwrap();
        o.workflows["default"].nodes[0].model.clone().unwrap()
    };
    let m = model(&[
        (ORCHESTRATE_MODEL, "openai_compatible:smollm2"),
        (ORCHESTRATE_MODEL_URL, "http://127.0.0.1:8090/v1"),
    ]);
    assert_eq!(m.endpoint.provider(), Provider::OpenAiCompatible);
    assert_eq!(m.endpoint.base().as_str(), "http://127.0.0.1:8090/v1");
    let m = model(&[
        (ORCHESTRATE_MODEL, "openai_compatible:smollm2"),
        (OPENAI_BASE_URL, "http://127.0.0.1:8091/v1"),
    ]);
    assert_eq!(m.endpoint.base().as_str(), "http://127.0.0.1:8091/v1");
    // The openai provider honours OPENAI_BASE_URL too, and needs no key there.
    let m = model(&[
        (ORCHESTRATE_MODEL, "openai:smollm2"),
        (OPENAI_BASE_URL, "http://127.0.0.1:8091/v1"),
    ]);
    assert_eq!(m.endpoint.provider(), Provider::OpenAi);
    assert_eq!(m.endpoint.base().as_str(), "http://127.0.0.1:8091/v1");
    let e = load(&env(&[(ORCHESTRATE_MODEL, "openai_compatible:smollm2")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("set ORCHESTRATE_MODEL_URL or OPENAI_BASE_URL"),
        "{e}"
    );
}

#[test]
fn tool_choice_is_auto_required_none_or_a_tool_the_agent_may_call() {
    let with = |choice: &str, servers: &str| {
        format!(
            "{OLLAMA}mcp_servers:\n  - name: tools\n    transport: local\n    tools: [echo]\n\
             agents:\n  - name: a\n    role: react\n    model: local\n{servers}    \
             tool_choice: {choice}\n"
        )
    };
    let uses = "    mcp_servers: [tools]\n";
    for (raw, choice) in [
        ("auto", ToolChoice::Auto),
        ("required", ToolChoice::Required),
        ("none", ToolChoice::None),
        ("echo", ToolChoice::Tool("echo".into())),
    ] {
        let o = ok(&with(raw, uses));
        assert_eq!(o.agents["a"].tool_choice, Some(choice));
    }
    let text = with("get_weather", uses);
    assert_at(
        &err(&text),
        &text,
        "get_weather",
        1,
        "\"get_weather\" is neither auto, required, none nor a tool its mcp_servers offer (echo)",
    );
    let text = with("required", "");
    assert_at(
        &err(&text),
        &text,
        "required",
        1,
        "asks for a tool call, but the agent has no mcp_servers",
    );
}

#[test]
fn session_max_turns_is_read_and_zero_is_refused() {
    let agent = "agents:\n  - name: a\n    role: react\n    model: local\n";
    let o = ok(&format!("{OLLAMA}{agent}"));
    assert_eq!(o.session_max_turns, DEFAULT_SESSION_MAX_TURNS);
    let o = ok(&format!("{OLLAMA}{agent}session:\n  max_turns: 3\n"));
    assert_eq!(o.session_max_turns, 3);
    let line = err(&format!("{OLLAMA}{agent}session:\n  max_turns: 0\n"));
    assert!(line.contains("session.max_turns"), "{line}");
    assert!(line.contains("at least 1"), "{line}");
    let line = err(&format!("{OLLAMA}{agent}session:\n  turns: 3\n"));
    assert!(line.contains("turns"), "{line}");
}
