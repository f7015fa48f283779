//! The deployment files agree with the code and with each other (`.ci/manifests.sh` checks each
//! file against its own format; this checks what no schema knows):
//! - every variable a manifest sets is one the function reads (a `pub const NAME: &str = "NAME"`
//!   of the runtime or that function, or a `${NAME}` of the orchestrate configuration it
//!   mounts), the platform's own are left to the platform, and each function's real
//!   configuration loaders accept what is set, so every required variable is there;
//! - one port each, `h2c` exactly for the function that serves gRPC, probes on that port, with
//!   that port's protocol, on routes the runtime serves;
//! - the Cloud Run services of `cloudbuild.yaml` and `service.yaml` are the same services
//!   (variables, secrets, mounts, accounts, limits, scaling, VPC access);
//! - image names, service accounts and secret names match across `cloudbuild.yaml`,
//!   `service.yaml`, `service.prometheus.yaml` and `knative/`; the addresses functions are
//!   given point at the other functions on the same platform (and namespace);
//! - Ollama's claim is where OLLAMA_MODELS points and only orchestrate may reach it; the
//!   PodMonitoring scrapes the metrics route of every function.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use aixrun::{Env, RuntimeConfig};
use serde_yaml_ng::Value;

const FUNCTIONS: [&str; 3] = ["mcp-tool", "orchestrate", "health"];
/// The image of each function, as every manifest names it (placeholders as in service.yaml).
const IMAGE_PREFIX: &str = "REGION-docker.pkg.dev/PROJECT_ID/REPOSITORY/";
/// Variables the platform sets: a manifest must not (Cloud Run refuses PORT, and K_* are its).
const PLATFORM_VARS: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The YAML documents of a file (separated by `---` lines).
fn documents(rel: &str) -> Vec<Value> {
    let text = read(rel);
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line == "---" {
            let doc: Value =
                serde_yaml_ng::from_str(&current).unwrap_or_else(|e| panic!("{rel}: {e}"));
            if !doc.is_null() {
                docs.push(doc);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

fn opt<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = match (cur, key.parse::<usize>()) {
            (Value::Sequence(seq), Ok(i)) => seq.get(i)?,
            _ => cur.get(*key)?,
        };
    }
    Some(cur)
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    opt(v, path).unwrap_or_else(|| panic!("no {} in {v:?}", path.join(".")))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[], Vec::as_slice)
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Plain(String),
    /// A Secret Manager secret injected by the platform (Cloud Run), name and version.
    Secret(String, String),
}

/// A file the container sees.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mounted {
    /// A Secret Manager secret's version (Cloud Run).
    Secret(String, String),
    /// A key of a ConfigMap (Knative), with the repository file it is generated from.
    ConfigMap(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    Http(String, u16),
    Grpc(u16),
    Tcp(u16),
}

/// One deployed function, as one manifest describes it.
#[derive(Debug, Clone)]
struct Deployed {
    file: String,
    platform: Platform,
    function: String,
    image: String,
    port_name: String,
    port: u16,
    env: BTreeMap<String, Source>,
    mounts: BTreeMap<String, Mounted>,
    /// (startupProbe, readinessProbe or livenessProbe, the probe).
    probes: Vec<(&'static str, Probe)>,
    service_account: String,
    timeout_secs: u64,
    concurrency: u64,
    min_scale: u64,
    max_scale: u64,
    cpu_boost: bool,
    cpu: String,
    memory: String,
    vpc: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    CloudRun,
    Knative,
}

impl Deployed {
    fn what(&self) -> String {
        format!("{}: {}", self.file, self.function)
    }

    fn plain(&self, var: &str) -> Option<&str> {
        match self.env.get(var)? {
            Source::Plain(v) => Some(v),
            Source::Secret(..) => None,
        }
    }

    /// The environment the function would start with: the platform's variables, secrets as
    /// placeholder values, `sm://` references as resolved, placeholders of the project filled.
    fn runtime_env(&self) -> Env {
        let mut pairs: Vec<(String, String)> = vec![
            ("PORT".into(), self.port.to_string()),
            ("K_SERVICE".into(), self.function.clone()),
            ("K_REVISION".into(), format!("{}-00001-abc", self.function)),
            ("K_CONFIGURATION".into(), self.function.clone()),
        ];
        for (name, source) in &self.env {
            let value = match source {
                Source::Plain(v) if v.starts_with("sm://") => "resolved-secret".to_owned(),
                Source::Plain(v) => fill(v),
                Source::Secret(..) => "injected-secret".to_owned(),
            };
            pairs.push((name.clone(), value));
        }
        Env::from_pairs(pairs)
    }
}

/// Placeholders replaced by plausible values, for the configuration loaders.
fn fill(v: &str) -> String {
    v.replace("PROJECT_NUMBER", "123456789")
        .replace("PROJECT_ID", "my-project")
        .replace("REGION", "europe-west1")
        .replace("REPOSITORY", "aixrun")
}

fn strip_tag(image: &str) -> String {
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => image[..i].to_owned(),
        _ => image.to_owned(),
    }
}

/// A Knative Service document (Cloud Run's or Knative's), its serving container.
fn from_ksvc(file: &str, platform: Platform, doc: &Value, knative_dir: Option<&Path>) -> Deployed {
    let function = text(at(doc, &["metadata", "name"]));
    let spec = at(doc, &["spec", "template", "spec"]);
    let annotations = opt(doc, &["spec", "template", "metadata", "annotations"]);
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).map(text);
    let containers = seq(at(spec, &["containers"]));
    let serving: Vec<&Value> = containers
        .iter()
        .filter(|c| c.get("ports").is_some())
        .collect();
    assert_eq!(
        serving.len(),
        1,
        "{file}: {function}: exactly one container has ports"
    );
    let c = serving[0];
    let ports = seq(at(c, &["ports"]));
    assert_eq!(ports.len(), 1, "{file}: {function}: exactly one port");
    let port_name = text(at(&ports[0], &["name"]));
    let port: u16 = text(at(&ports[0], &["containerPort"])).parse().unwrap();

    let mut env = BTreeMap::new();
    for e in seq(opt(c, &["env"]).unwrap_or(&Value::Null)) {
        let name = text(at(e, &["name"]));
        let source = match (e.get("value"), opt(e, &["valueFrom", "secretKeyRef"])) {
            (Some(v), None) => Source::Plain(text(v)),
            (None, Some(r)) => Source::Secret(text(at(r, &["name"])), text(at(r, &["key"]))),
            _ => panic!("{file}: {function}: {name}: a value or a secretKeyRef"),
        };
        assert!(
            env.insert(name.clone(), source).is_none(),
            "{file}: {function}: {name} set twice"
        );
    }

    let volumes: BTreeMap<String, &Value> = seq(opt(spec, &["volumes"]).unwrap_or(&Value::Null))
        .iter()
        .map(|v| (text(at(v, &["name"])), v))
        .collect();
    let mut mounts = BTreeMap::new();
    for m in seq(opt(c, &["volumeMounts"]).unwrap_or(&Value::Null)) {
        let dir = text(at(m, &["mountPath"]));
        let volume = volumes[&text(at(m, &["name"]))];
        if let Some(secret) = volume.get("secret") {
            let name = text(at(secret, &["secretName"]));
            for item in seq(at(secret, &["items"])) {
                mounts.insert(
                    format!("{dir}/{}", text(at(item, &["path"]))),
                    Mounted::Secret(name.clone(), text(at(item, &["key"]))),
                );
            }
        } else if let Some(cm) = volume.get("configMap") {
            let name = text(at(cm, &["name"]));
            let dir_of_kustomization = knative_dir.expect("ConfigMaps only on Knative");
            for (key, file) in config_map_files(dir_of_kustomization, &name) {
                mounts.insert(
                    format!("{dir}/{key}"),
                    Mounted::ConfigMap(name.clone(), file),
                );
            }
        } else {
            panic!("{file}: {function}: volume {volume:?} is neither a secret nor a ConfigMap");
        }
    }

    let mut probes = Vec::new();
    for kind in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let Some(p) = c.get(kind) else { continue };
        let port_of = |v: &Value| -> u16 { text(at(v, &["port"])).parse().unwrap() };
        let probe = if let Some(h) = p.get("httpGet") {
            Probe::Http(text(at(h, &["path"])), port_of(h))
        } else if let Some(g) = p.get("grpc") {
            Probe::Grpc(port_of(g))
        } else if let Some(t) = p.get("tcpSocket") {
            Probe::Tcp(port_of(t))
        } else {
            panic!("{file}: {function}: {kind}: httpGet, grpc or tcpSocket")
        };
        probes.push((kind, probe));
    }
    let (min_key, max_key) = match platform {
        Platform::CloudRun => (
            "autoscaling.knative.dev/minScale",
            "autoscaling.knative.dev/maxScale",
        ),
        Platform::Knative => (
            "autoscaling.knative.dev/min-scale",
            "autoscaling.knative.dev/max-scale",
        ),
    };
    let limits = |k: &str| text(at(c, &["resources", "limits", k]));
    Deployed {
        file: file.to_owned(),
        platform,
        image: strip_tag(&text(at(c, &["image"]))),
        port_name,
        port,
        env,
        mounts,
        probes,
        service_account: text(at(spec, &["serviceAccountName"])),
        timeout_secs: text(at(spec, &["timeoutSeconds"])).parse().unwrap(),
        concurrency: text(at(spec, &["containerConcurrency"])).parse().unwrap(),
        min_scale: annotation(min_key).expect("min scale").parse().unwrap(),
        max_scale: annotation(max_key).expect("max scale").parse().unwrap(),
        cpu_boost: annotation("run.googleapis.com/startup-cpu-boost").as_deref() == Some("true"),
        cpu: limits("cpu"),
        memory: limits("memory"),
        vpc: annotation("run.googleapis.com/vpc-access-connector").map(|c| {
            (
                c,
                annotation("run.googleapis.com/vpc-access-egress").expect("egress with connector"),
            )
        }),
        function,
    }
}

/// `configMapGenerator` entries of the kustomization in `dir`: (key, repository file).
fn config_map_files(dir: &Path, name: &str) -> Vec<(String, String)> {
    let rel = dir.join("kustomization.yaml");
    let k = &documents(rel.to_str().unwrap())[0];
    let generator = seq(at(k, &["configMapGenerator"]))
        .iter()
        .find(|g| text(at(g, &["name"])) == name)
        .unwrap_or_else(|| panic!("{}: no configMapGenerator {name}", rel.display()));
    seq(at(generator, &["files"]))
        .iter()
        .map(|f| {
            let f = text(f);
            let (key, file) = f.split_once('=').unwrap_or((&f, &f));
            let key = Path::new(key)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            (key, dir.join(file).to_str().unwrap().to_owned())
        })
        .collect()
}

fn cloud_run_yaml() -> Vec<Deployed> {
    let mut all: Vec<Deployed> = documents("service.yaml")
        .iter()
        .map(|d| from_ksvc("service.yaml", Platform::CloudRun, d, None))
        .collect();
    for d in documents("service.prometheus.yaml") {
        all.push(from_ksvc(
            "service.prometheus.yaml",
            Platform::CloudRun,
            &d,
            None,
        ));
    }
    all
}

fn knative() -> Vec<Deployed> {
    FUNCTIONS
        .iter()
        .map(|f| {
            let file = format!("knative/base/{f}.yaml");
            let docs = documents(&file);
            assert_eq!(docs.len(), 1, "{file}: one document");
            from_ksvc(
                &file,
                Platform::Knative,
                &docs[0],
                Some(Path::new("knative/base")),
            )
        })
        .collect()
}

/// cloudbuild.yaml with its substitutions applied: the project's and the image's as the
/// placeholders of service.yaml, the others at their defaults.
struct CloudBuild {
    steps: Vec<Value>,
    images: Vec<String>,
}

fn cloudbuild() -> CloudBuild {
    let raw = read("cloudbuild.yaml");
    let doc: Value = serde_yaml_ng::from_str(&raw).unwrap();
    let mut subs: BTreeMap<String, String> = at(&doc, &["substitutions"])
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    for (k, v) in [
        ("_REGION", "REGION"),
        ("_REPOSITORY", "REPOSITORY"),
        ("_TAG", "TAG"),
    ] {
        subs.insert(k.into(), v.into());
    }
    let mut s = raw.clone();
    for (k, v) in &subs {
        s = s.replace(&format!("${{{k}}}"), v);
    }
    let s = s
        .replace("$PROJECT_ID", "PROJECT_ID")
        .replace("$PROJECT_NUMBER", "PROJECT_NUMBER")
        .replace("$$", "$");
    assert!(
        !s.contains("${_"),
        "cloudbuild.yaml uses a substitution it does not define"
    );
    let doc: Value = serde_yaml_ng::from_str(&s).unwrap();
    CloudBuild {
        steps: seq(at(&doc, &["steps"])).to_vec(),
        images: seq(at(&doc, &["images"])).iter().map(text).collect(),
    }
}

fn args_of(step: &Value) -> Vec<String> {
    seq(at(step, &["args"])).iter().map(text).collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter().find_map(|a| a.strip_prefix(&prefix))
}

fn has(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == &format!("--{name}"))
}

/// gcloud's list form: `^D^` first picks the delimiter D instead of `,`.
fn gcloud_list(raw: &str) -> Vec<String> {
    let (delim, rest) = match raw.strip_prefix('^').and_then(|r| r.split_once('^')) {
        Some((d, rest)) => (d.to_owned(), rest),
        None => (",".to_owned(), raw),
    };
    rest.split(delim.as_str()).map(str::to_owned).collect()
}

fn cloudbuild_deployed() -> Vec<Deployed> {
    let cb = cloudbuild();
    let mut out = Vec::new();
    for step in &cb.steps {
        let args = args_of(step);
        if args.len() < 3 || args[0] != "run" || args[1] != "deploy" {
            continue;
        }
        let function = args[2].clone();
        let mut env = BTreeMap::new();
        for pair in flag(&args, "set-env-vars")
            .map(gcloud_list)
            .unwrap_or_default()
        {
            let (k, v) = pair.split_once('=').unwrap();
            env.insert(k.to_owned(), Source::Plain(v.to_owned()));
        }
        let mut mounts = BTreeMap::new();
        for pair in flag(&args, "set-secrets")
            .map(gcloud_list)
            .unwrap_or_default()
        {
            let (k, v) = pair.split_once('=').unwrap();
            let (secret, version) = v.split_once(':').unwrap();
            if k.starts_with('/') {
                mounts.insert(k.to_owned(), Mounted::Secret(secret.into(), version.into()));
            } else {
                env.insert(k.to_owned(), Source::Secret(secret.into(), version.into()));
            }
        }
        let number = |name: &str| -> u64 {
            flag(&args, name)
                .unwrap_or_else(|| panic!("cloudbuild.yaml: {function}: --{name}"))
                .parse()
                .unwrap()
        };
        out.push(Deployed {
            file: "cloudbuild.yaml".into(),
            platform: Platform::CloudRun,
            image: strip_tag(flag(&args, "image").unwrap()),
            port_name: if has(&args, "use-http2") {
                "h2c"
            } else {
                "http1"
            }
            .into(),
            port: 8080,
            env,
            mounts,
            probes: Vec::new(),
            service_account: flag(&args, "service-account").unwrap().into(),
            timeout_secs: number("timeout"),
            concurrency: number("concurrency"),
            min_scale: number("min-instances"),
            max_scale: number("max-instances"),
            cpu_boost: has(&args, "cpu-boost"),
            cpu: flag(&args, "cpu").unwrap().into(),
            memory: flag(&args, "memory").unwrap().into(),
            vpc: flag(&args, "vpc-connector").map(|c| {
                (
                    c.to_owned(),
                    flag(&args, "vpc-egress").expect("--vpc-egress").to_owned(),
                )
            }),
            function,
        });
        assert!(
            has(&args, "no-allow-unauthenticated"),
            "cloudbuild.yaml: {}: --no-allow-unauthenticated",
            out.last().unwrap().function
        );
    }
    out
}

fn all_deployed() -> Vec<Deployed> {
    let mut all = cloudbuild_deployed();
    all.extend(cloud_run_yaml());
    all.extend(knative());
    all
}

/// Every `pub const NAME: &str = "NAME";` in a source file: the variables it reads.
fn consts_in(rel: &str) -> BTreeSet<String> {
    read(rel)
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str = ")?;
            let value = value.strip_suffix(';')?.trim_matches('"');
            (name == value).then(|| name.to_owned())
        })
        .collect()
}

/// The runtime's sources but its model clients (`shared/src/llm/`, which only orchestrate
/// uses): each subsystem's variables are constants beside it.
fn runtime_sources() -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("shared/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            let rel = path.strip_prefix(root()).unwrap().display().to_string();
            if path.is_dir() && rel != "shared/src/llm" {
                dirs.push(path);
            } else if rel.ends_with(".rs") {
                out.push(rel);
            }
        }
    }
    out
}

/// The variables each function reads, from its sources and the runtime's.
fn read_by(function: &str) -> BTreeSet<String> {
    let mut files = runtime_sources();
    files.extend(
        match function {
            "mcp-tool" => vec![
                "functions/mcp-tool/src/config.rs",
                "functions/mcp-tool/src/tools/huggingface/mod.rs",
            ],
            "orchestrate" => vec![
                "functions/orchestrate/src/config/mod.rs",
                "functions/orchestrate/src/lib.rs",
                "functions/orchestrate/src/store/config.rs",
                "functions/orchestrate/src/service/queue.rs",
                // Re-exported by orchestrate's config (`pub use aixrun::llm::config::{...}`).
                "shared/src/llm/config.rs",
            ],
            "health" => vec!["functions/health/src/config.rs"],
            other => panic!("unknown function {other}"),
        }
        .into_iter()
        .map(str::to_owned),
    );
    files
        .iter()
        .map(String::as_str)
        .flat_map(consts_in)
        .collect()
}

/// `${NAME}` and `${NAME:-default}` in a configuration file: (name, has a default).
fn interpolated(text: &str) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let end = after.find('}').expect("closed ${");
        let inner = &after[..end];
        match inner.split_once(":-") {
            Some((name, _)) => out.insert(name.to_owned(), true),
            None => out.insert(inner.to_owned(), false),
        };
        rest = &after[end..];
    }
    out
}

/// The orchestrate configuration a deployment gives ORCHESTRATE_CONFIG: (path, text).
fn orchestrate_config(d: &Deployed) -> (String, String) {
    let path = d
        .plain("ORCHESTRATE_CONFIG")
        .unwrap_or_else(|| panic!("{}: ORCHESTRATE_CONFIG", d.what()));
    let file = match d.mounts.get(path) {
        Some(Mounted::ConfigMap(_, file)) => file.clone(),
        // The secret's content is what cloudbuild.yaml uploads.
        Some(Mounted::Secret(name, _)) => uploaded_secret(name),
        None => panic!(
            "{}: ORCHESTRATE_CONFIG={path} is not a mounted file",
            d.what()
        ),
    };
    (path.to_owned(), read(&file))
}

/// The repository file cloudbuild.yaml adds as a version of the secret `name`.
fn uploaded_secret(name: &str) -> String {
    cloudbuild()
        .steps
        .iter()
        .map(args_of)
        .find(|a| a.len() > 3 && a[..3] == ["secrets", "versions", "add"] && a[3] == name)
        .and_then(|a| flag(&a, "data-file").map(str::to_owned))
        .unwrap_or_else(|| panic!("cloudbuild.yaml adds no version of the secret {name}"))
}

#[test]
fn every_variable_a_manifest_sets_is_read_by_its_function() {
    for d in all_deployed() {
        let mut known = read_by(&d.function);
        if d.function == "orchestrate" {
            known.extend(interpolated(&orchestrate_config(&d).1).into_keys());
        }
        for var in d.env.keys() {
            assert!(
                !PLATFORM_VARS.contains(&var.as_str()),
                "{}: {var} is the platform's to set",
                d.what()
            );
            assert!(
                known.contains(var),
                "{}: {var} is read by no code of {} (nor its configuration file)",
                d.what(),
                d.function
            );
        }
    }
}

#[test]
fn each_function_starts_with_what_its_manifests_set() {
    for d in all_deployed() {
        let env = d.runtime_env();
        let runtime = RuntimeConfig::from_env(&env, false)
            .unwrap_or_else(|e| panic!("{}: runtime configuration: {e}", d.what()));
        assert_eq!(
            runtime.limits.request_timeout.as_secs(),
            d.timeout_secs,
            "{}: REQUEST_TIMEOUT is the service's timeout",
            d.what()
        );
        match d.function.as_str() {
            "mcp-tool" => {
                let c = mcp_tool::config::McpToolConfig::load(&env)
                    .unwrap_or_else(|e| panic!("{}: {e}", d.what()));
                assert!(c.hf_token.is_some(), "{}: HF_TOKEN is set", d.what());
            }
            "health" => {
                let c = health::config::AggregatorConfig::from_env(&env)
                    .unwrap_or_else(|e| panic!("{}: {e}", d.what()));
                assert_eq!(c.targets.len(), 2, "{}: both other functions", d.what());
            }
            "orchestrate" => {
                let (path, config) = orchestrate_config(&d);
                for (var, has_default) in interpolated(&config) {
                    assert!(
                        has_default || d.env.contains_key(&var),
                        "{}: {path} needs {var}",
                        d.what()
                    );
                }
                orchestrate::config::parse(&path, &config, &env)
                    .unwrap_or_else(|e| panic!("{}: {e}", d.what()));
                let store = orchestrate::store::StoreConfig::from_env(&env)
                    .unwrap_or_else(|e| panic!("{}: {e}", d.what()));
                assert_eq!(
                    store.kind,
                    orchestrate::store::StoreKind::Firestore,
                    "{}: runs outlive instances on a deployment",
                    d.what()
                );
                let model = d.plain("ORCHESTRATE_MODEL").unwrap_or("ollama:qwen3:0.6b");
                if model.starts_with("ollama:") {
                    assert!(
                        d.env.contains_key("OLLAMA_URL"),
                        "{}: an Ollama model needs OLLAMA_URL",
                        d.what()
                    );
                }
            }
            other => panic!("unknown function {other}"),
        }
    }
}

/// The runtime's routes (`.route("PATH", ...)` in its health module) and its metrics route.
fn routes(rel: &str) -> BTreeSet<String> {
    read(rel)
        .split(".route(\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().to_owned())
        .collect()
}

#[test]
fn one_port_each_and_probes_that_speak_its_protocol_on_served_routes() {
    let health_routes = routes("shared/src/health/routes.rs");
    assert!(health_routes.contains("/health/ready"), "{health_routes:?}");
    for d in all_deployed() {
        let grpc = root()
            .join(format!("functions/{}/src/grpc.rs", d.function))
            .exists();
        let expected = if grpc { "h2c" } else { "http1" };
        assert_eq!(d.port_name, expected, "{}: port name", d.what());
        assert_eq!(d.port, 8080, "{}: the runtime's default PORT", d.what());
        if d.file != "cloudbuild.yaml" {
            assert!(!d.probes.is_empty(), "{}: probes", d.what());
        }
        for (kind, p) in &d.probes {
            if d.platform == Platform::Knative && *kind == "readinessProbe" {
                // Knative's queue-proxy runs readiness probes: httpGet or tcpSocket only.
                assert!(
                    !matches!(p, Probe::Grpc(_)),
                    "{}: readiness by httpGet or tcpSocket",
                    d.what()
                );
            }
            match p {
                Probe::Http(path, port) => {
                    assert!(
                        d.port_name != "h2c",
                        "{}: an HTTP/1 probe on an h2c port",
                        d.what()
                    );
                    assert!(
                        health_routes.contains(path),
                        "{}: {path} is no route",
                        d.what()
                    );
                    assert_eq!(*port, d.port, "{}: probe port", d.what());
                }
                Probe::Grpc(port) => {
                    assert!(d.port_name == "h2c", "{}: gRPC probe on http1", d.what());
                    assert_eq!(*port, d.port, "{}: probe port", d.what());
                }
                Probe::Tcp(port) => assert_eq!(*port, d.port, "{}: probe port", d.what()),
            }
        }
    }
}

#[test]
fn cloudbuild_and_service_yaml_deploy_the_same_cloud_run_services() {
    let built = cloudbuild_deployed();
    let declared = cloud_run_yaml();
    assert_eq!(
        built
            .iter()
            .map(|d| d.function.as_str())
            .collect::<Vec<_>>(),
        FUNCTIONS,
        "cloudbuild.yaml deploys each function, mcp-tool first"
    );
    for d in &declared {
        let b = built.iter().find(|b| b.function == d.function).unwrap();
        let w = d.what();
        assert_eq!(
            d.env, b.env,
            "{w}: variables and secrets as cloudbuild.yaml's"
        );
        assert_eq!(d.mounts, b.mounts, "{w}: mounted secrets");
        assert_eq!(d.image, b.image, "{w}: image");
        assert_eq!(d.service_account, b.service_account, "{w}: service account");
        assert_eq!(d.port_name, b.port_name, "{w}: port (--use-http2)");
        assert_eq!(d.timeout_secs, b.timeout_secs, "{w}: --timeout");
        assert_eq!(d.concurrency, b.concurrency, "{w}: --concurrency");
        assert_eq!(d.min_scale, b.min_scale, "{w}: --min-instances");
        assert_eq!(d.max_scale, b.max_scale, "{w}: --max-instances");
        assert_eq!(d.cpu_boost, b.cpu_boost, "{w}: --cpu-boost");
        assert_eq!(d.cpu, b.cpu, "{w}: --cpu");
        assert_eq!(d.memory, b.memory, "{w}: --memory");
        assert_eq!(d.vpc, b.vpc, "{w}: VPC connector and egress");
        assert!(b.cpu_boost, "{w}: --cpu-boost");
        assert_eq!(
            b.vpc.is_some(),
            d.function == "orchestrate",
            "{w}: only orchestrate reaches Ollama through the connector"
        );
    }
}

#[test]
fn images_and_service_accounts_match_everywhere() {
    let cb = cloudbuild();
    for d in all_deployed() {
        assert_eq!(
            d.image,
            format!("{IMAGE_PREFIX}{}", d.function),
            "{}",
            d.what()
        );
        let account = match d.platform {
            Platform::CloudRun => d.service_account.clone(),
            Platform::Knative => {
                let accounts = documents("knative/base/serviceaccounts.yaml");
                let sa = accounts
                    .iter()
                    .find(|a| text(at(a, &["metadata", "name"])) == d.service_account)
                    .unwrap_or_else(|| panic!("{}: no ServiceAccount", d.what()));
                text(at(
                    sa,
                    &["metadata", "annotations", "iam.gke.io/gcp-service-account"],
                ))
            }
        };
        assert_eq!(
            account,
            format!("aixrun-{}@PROJECT_ID.iam.gserviceaccount.com", d.function),
            "{}: its own Google service account",
            d.what()
        );
    }
    // Built, pushed and listed: the three images, and the Dockerfile's prebuilt target.
    let built: BTreeSet<String> = cb.images.iter().map(|i| strip_tag(i)).collect();
    let expected: BTreeSet<String> = FUNCTIONS
        .iter()
        .map(|f| format!("{IMAGE_PREFIX}{f}"))
        .collect();
    assert_eq!(built, expected, "cloudbuild.yaml images");
    for f in FUNCTIONS {
        let step = cb
            .steps
            .iter()
            .find(|s| text(at(s, &["id"])) == format!("image-{f}"))
            .unwrap_or_else(|| panic!("cloudbuild.yaml: no image-{f} step"));
        let args = args_of(step);
        assert_eq!(flag(&args, "target"), Some("runtime-prebuilt"), "image-{f}");
        assert_eq!(
            flag(&args, "build-arg"),
            Some(format!("FUNCTION={f}").as_str())
        );
        assert!(
            args.contains(&format!("--tag={IMAGE_PREFIX}{f}:TAG")),
            "image-{f}: {args:?}"
        );
        assert!(
            args.contains(&format!("--tag={IMAGE_PREFIX}{f}:latest")),
            "image-{f}: {args:?}"
        );
    }
    for overlay in ["staging", "production"] {
        let k = &documents(&format!("knative/overlays/{overlay}/kustomization.yaml"))[0];
        let names: BTreeSet<String> = seq(at(k, &["images"]))
            .iter()
            .map(|i| text(at(i, &["name"])))
            .collect();
        assert_eq!(names, expected, "{overlay}: images");
    }
}

#[test]
fn cloudbuild_steps_wait_for_steps_that_exist_and_smoke_test_every_service() {
    let cb = cloudbuild();
    let ids: BTreeSet<String> = cb.steps.iter().map(|s| text(at(s, &["id"]))).collect();
    for s in &cb.steps {
        for w in seq(opt(s, &["waitFor"]).unwrap_or(&Value::Null)) {
            let w = text(w);
            assert!(w == "-" || ids.contains(&w), "waitFor {w}: no such step");
        }
    }
    for d in cloudbuild_deployed() {
        let url = format!("https://{}-PROJECT_NUMBER.REGION.run.app", d.function);
        let smoke = cb
            .steps
            .iter()
            .find(|s| text(at(s, &["id"])) == format!("smoke-{}", d.function))
            .unwrap_or_else(|| panic!("no smoke-{}", d.function));
        assert_eq!(
            text(at(smoke, &["name"])),
            format!("{IMAGE_PREFIX}health:TAG")
        );
        let args = args_of(smoke);
        assert_eq!(args[0], "probe");
        assert!(has(&args, "id-token"), "smoke-{}: an ID token", d.function);
        assert_eq!(
            has(&args, "grpc"),
            d.port_name == "h2c",
            "smoke-{}",
            d.function
        );
        assert_eq!(args.last(), Some(&url), "smoke-{}", d.function);
        let waits: Vec<String> = seq(at(smoke, &["waitFor"])).iter().map(text).collect();
        assert_eq!(waits, [format!("deploy-{}", d.function)]);
    }
}

#[test]
fn functions_are_pointed_at_each_other_on_the_same_platform() {
    let namespace = text(at(
        &documents("knative/base/kustomization.yaml")[0],
        &["namespace"],
    ));
    let address = |d: &Deployed, f: &str, grpc: bool| match (d.platform, grpc) {
        (Platform::CloudRun, false) => format!("https://{f}-PROJECT_NUMBER.REGION.run.app"),
        (Platform::CloudRun, true) => format!("grpcs://{f}-PROJECT_NUMBER.REGION.run.app:443"),
        (Platform::Knative, false) => format!("http://{f}.{namespace}.svc.cluster.local"),
        (Platform::Knative, true) => format!("grpc://{f}.{namespace}.svc.cluster.local:80"),
    };
    for d in all_deployed() {
        match d.function.as_str() {
            "orchestrate" => assert_eq!(
                d.plain("MCP_TOOL_URL"),
                Some(address(&d, "mcp-tool", false).as_str()),
                "{}",
                d.what()
            ),
            "health" => assert_eq!(
                d.plain("HEALTH_TARGETS").map(str::to_owned),
                Some(format!(
                    "mcp-tool={},orchestrate={}",
                    address(&d, "mcp-tool", true),
                    address(&d, "orchestrate", false)
                )),
                "{}",
                d.what()
            ),
            _ => {}
        }
    }
}

#[test]
fn overlays_rename_every_cluster_local_address_to_their_namespace() {
    let base_ns = text(at(
        &documents("knative/base/kustomization.yaml")[0],
        &["namespace"],
    ));
    let needle = format!(".{base_ns}.svc.cluster.local");
    for overlay in ["staging", "production"] {
        let k = &documents(&format!("knative/overlays/{overlay}/kustomization.yaml"))[0];
        let ns = text(at(k, &["namespace"]));
        let mut patched = BTreeSet::new();
        for p in seq(opt(k, &["patches"]).unwrap_or(&Value::Null)) {
            let target = at(p, &["target"]);
            if opt(target, &["group"]).map(text).as_deref() != Some("serving.knative.dev") {
                continue;
            }
            let name = text(at(target, &["name"]));
            let ops: Value = serde_yaml_ng::from_str(&text(at(p, &["patch"]))).unwrap();
            for op in seq(&ops) {
                let path = text(at(op, &["path"]));
                let Some(index) = path.strip_prefix("/spec/template/spec/containers/0/env/") else {
                    continue;
                };
                let index = index.strip_suffix("/value").unwrap();
                let base = &documents(&format!("knative/base/{name}.yaml"))[0];
                let entry = at(
                    base,
                    &["spec", "template", "spec", "containers", "0", "env", index],
                );
                let var = text(at(entry, &["name"]));
                let expected = text(at(entry, &["value"]))
                    .replace(&needle, &format!(".{ns}.svc.cluster.local"));
                assert_eq!(
                    text(at(op, &["value"])),
                    expected,
                    "{overlay}: {name} {var}"
                );
                patched.insert(format!("{name} {var}"));
            }
        }
        for d in knative() {
            for (var, source) in &d.env {
                if let Source::Plain(v) = source
                    && v.contains(&needle)
                    && ns != base_ns
                {
                    assert!(
                        patched.contains(&format!("{} {var}", d.function)),
                        "{overlay} (namespace {ns}) leaves {}'s {var} at {v}",
                        d.function
                    );
                }
            }
        }
    }
}

#[test]
fn secrets_have_one_name_everywhere_and_the_readme_creates_them() {
    let readme = read("README.md");
    let deploy = readme
        .split("\n## Deploy\n")
        .nth(1)
        .expect("README: ## Deploy")
        .split("\n## ")
        .next()
        .unwrap();
    let mut referenced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in all_deployed() {
        for (var, source) in &d.env {
            let name = match source {
                Source::Secret(name, _) => name.clone(),
                Source::Plain(v) => match v.strip_prefix("sm://") {
                    Some(name) => name.to_owned(),
                    None => continue,
                },
            };
            referenced
                .entry(format!("{} {var}", d.function))
                .or_default()
                .insert(name);
        }
        for m in d.mounts.values() {
            if let Mounted::Secret(name, version) = m {
                assert_eq!(version, "latest", "{}", d.what());
                assert_eq!(
                    uploaded_secret(name),
                    "knative/base/orchestrate-config.yaml"
                );
                referenced
                    .entry(format!("{} file", d.function))
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    for (what, names) in &referenced {
        assert_eq!(
            names.len(),
            1,
            "{what}: one secret name on every platform: {names:?}"
        );
        let name = names.first().unwrap();
        assert!(
            deploy.contains(&format!("gcloud secrets create {name}")),
            "README's Deploy creates the secret {name} ({what})"
        );
    }
    assert!(
        referenced.contains_key("mcp-tool HF_TOKEN"),
        "{referenced:?}"
    );
}

#[test]
fn ollama_keeps_its_models_on_the_claim_and_only_orchestrate_reaches_it() {
    let docs = documents("knative/base/ollama.yaml");
    let kind = |k: &str| {
        docs.iter()
            .find(|d| text(at(d, &["kind"])) == k)
            .unwrap_or_else(|| panic!("ollama.yaml: no {k}"))
    };
    let sts = kind("StatefulSet");
    let pod = at(sts, &["spec", "template"]);
    let c = at(pod, &["spec", "containers", "0"]);
    let env: BTreeMap<String, String> = seq(at(c, &["env"]))
        .iter()
        .map(|e| (text(at(e, &["name"])), text(at(e, &["value"]))))
        .collect();
    let claim = text(at(
        sts,
        &["spec", "volumeClaimTemplates", "0", "metadata", "name"],
    ));
    let mount = seq(at(c, &["volumeMounts"]))
        .iter()
        .find(|m| text(at(m, &["name"])) == claim)
        .expect("the claim is mounted");
    assert_eq!(env["OLLAMA_MODELS"], text(at(mount, &["mountPath"])));
    assert_eq!(env["OLLAMA_HOST"], "0.0.0.0:11434");

    let labels = at(pod, &["metadata", "labels"]);
    let service = kind("Service");
    assert_eq!(at(service, &["spec", "selector"]), labels);
    assert_eq!(
        at(
            kind("NetworkPolicy"),
            &["spec", "podSelector", "matchLabels"]
        ),
        labels
    );
    assert_eq!(
        at(
            kind("PodDisruptionBudget"),
            &["spec", "selector", "matchLabels"]
        ),
        labels
    );
    let port = text(at(service, &["spec", "ports", "0", "port"]));
    let name = text(at(service, &["metadata", "name"]));

    let orchestrate = knative()
        .into_iter()
        .find(|d| d.function == "orchestrate")
        .unwrap();
    assert_eq!(
        orchestrate.plain("OLLAMA_URL"),
        Some(format!("http://{name}:{port}").as_str())
    );
    let orchestrate_labels = at(
        &documents("knative/base/orchestrate.yaml")[0],
        &["spec", "template", "metadata", "labels"],
    )
    .clone();
    let job_labels = at(kind("Job"), &["spec", "template", "metadata", "labels"]).clone();
    let ingress = seq(at(kind("NetworkPolicy"), &["spec", "ingress"]));
    assert_eq!(ingress.len(), 1);
    let from: Vec<&Value> = seq(at(&ingress[0], &["from"]))
        .iter()
        .map(|f| at(f, &["podSelector", "matchLabels"]))
        .collect();
    assert_eq!(
        from,
        [&orchestrate_labels, &job_labels],
        "only orchestrate and the pull Job"
    );
    assert_eq!(text(at(&ingress[0], &["ports", "0", "port"])), port);
    let job_env = text(at(
        kind("Job"),
        &[
            "spec",
            "template",
            "spec",
            "containers",
            "0",
            "env",
            "0",
            "value",
        ],
    ));
    assert_eq!(
        job_env,
        format!("http://{name}:{port}"),
        "the pull Job's OLLAMA_HOST"
    );
}

#[test]
fn podmonitoring_scrapes_every_function_on_the_metrics_route() {
    assert!(routes("shared/src/metrics/mod.rs").contains("/metrics"));
    let pm = &documents("knative/base/podmonitoring.yaml")[0];
    let endpoint = at(pm, &["spec", "endpoints", "0"]);
    assert_eq!(text(at(endpoint, &["path"])), "/metrics");
    let selected: BTreeSet<String> = seq(at(
        pm,
        &["spec", "selector", "matchExpressions", "0", "values"],
    ))
    .iter()
    .map(text)
    .collect();
    let key = text(at(
        pm,
        &["spec", "selector", "matchExpressions", "0", "key"],
    ));
    for d in knative() {
        assert_eq!(
            text(at(endpoint, &["port"])),
            d.port.to_string(),
            "{}",
            d.what()
        );
        let doc = &documents(&d.file)[0];
        let label = text(at(
            doc,
            &["spec", "template", "metadata", "labels", key.as_str()],
        ));
        assert!(
            selected.contains(&label),
            "{}: {key}={label} not scraped",
            d.what()
        );
    }
    assert_eq!(selected.len(), FUNCTIONS.len());
}

#[test]
fn every_knative_container_runs_restricted() {
    for f in FUNCTIONS {
        let file = format!("knative/base/{f}.yaml");
        let docs = documents(&file);
        let c = at(&docs[0], &["spec", "template", "spec", "containers", "0"]);
        let sc = at(c, &["securityContext"]);
        assert_eq!(at(sc, &["runAsNonRoot"]).as_bool(), Some(true), "{file}");
        assert_eq!(
            at(sc, &["readOnlyRootFilesystem"]).as_bool(),
            Some(true),
            "{file}"
        );
        assert_eq!(
            at(sc, &["allowPrivilegeEscalation"]).as_bool(),
            Some(false),
            "{file}"
        );
        assert_eq!(
            text(at(sc, &["capabilities", "drop", "0"])),
            "ALL",
            "{file}"
        );
        assert_eq!(
            text(at(sc, &["seccompProfile", "type"])),
            "RuntimeDefault",
            "{file}"
        );
    }
}
