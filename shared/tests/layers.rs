//! The library's shape, checked on its sources: its top-level modules import one another
//! without a circle (so each can be read knowing only the ones below it), and no source file
//! is longer than [`MAX_LINES`].
//!
//! A module's imports are the `crate::` paths in its files (`use` lines, paths in code,
//! groups such as `crate::{config::Env, error::ApiError}`), comments and string literals left out. A name the crate
//! root re-exports (`crate::Env`) counts as its defining module. `cargo test -p aixrun --test
//! layers -- --nocapture` prints the modules bottom-up with what each imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a file under `shared/src` may be.
const MAX_LINES: usize = 500;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code alone: comments (line, doc, block) dropped and string and character literals
/// emptied, so a `crate::` or `/*` inside either is not read as code.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| chars.get(i + k) == Some(&c))
    };
    while i < chars.len() {
        let c = chars[i];
        if at(i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(i, "/*") {
            let mut depth = 0;
            while i < chars.len() {
                if at(i, "/*") {
                    depth += 1;
                    i += 2;
                } else if at(i, "*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (at(i + 1, "\"") || at(i + 1, "#")) && !ident_char(i, &chars) {
            // r"...", r#"..."#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while j < chars.len() && !at(j, &close) {
                j += 1;
            }
            out.push_str("\"\"");
            i = j + close.chars().count();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), else a lifetime.
            if chars.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(i: usize, chars: &[char]) -> bool {
    i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_')
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segment of each path after `crate::` in `code`: `crate::config::Env` gives
/// `config`, `crate::{config::Env, error::{A, B}}` gives `config` and `error`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        // `aixrun::crate::` does not occur; a preceding identifier character means some
        // other name ending in `crate`.
        if code[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let after = code[i + "crate::".len()..].trim_start();
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        let name = ident(&group[j..]);
                        if !name.is_empty() {
                            out.push(name.to_owned());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// Names the crate root re-exports (`pub use config::{Env, ...};`), by their module.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for statement in code_only(lib).split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim_start_matches("crate::");
        let module = ident(path).to_owned();
        let names = match path.find('{') {
            Some(open) => path[open + 1..].trim_end_matches('}').to_owned(),
            None => path.rsplit("::").next().unwrap_or_default().to_owned(),
        };
        for name in names.split(',') {
            let name = name.trim();
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() {
                out.insert(name.to_owned(), module.clone());
            }
        }
    }
    out
}

/// The top-level module a file belongs to (`None` for the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(name) => Some(name.to_owned()),
        None => Some(first),
    }
}

/// module -> imported module -> the files that import it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn graph() -> Graph {
    let src = src();
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let reexports = root_reexports(&lib);
    let files = rust_files(&src);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(&src, f)).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    let mut unknown = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        for first in crate_paths(&code) {
            let target = if modules.contains(&first) {
                first
            } else if let Some(m) = reexports.get(&first) {
                m.clone()
            } else {
                // Defined in the crate root itself (such as `run`): the root stands on every
                // module, so no module may stand on it.
                unknown.push(format!("{rel}: crate::{first} is the crate root's"));
                continue;
            };
            if target != module {
                graph
                    .get_mut(&module)
                    .unwrap()
                    .entry(target)
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    assert!(unknown.is_empty(), "{}", unknown.join("\n"));
    graph
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("on the stack");
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// The modules in layers: each stands only on modules of the layers before it.
fn layers(graph: &Graph) -> Vec<Vec<String>> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while placed.len() < graph.len() {
        let layer: Vec<String> = graph
            .iter()
            .filter(|(m, deps)| {
                !placed.contains(m.as_str()) && deps.keys().all(|d| placed.contains(d.as_str()))
            })
            .map(|(m, _)| m.clone())
            .collect();
        assert!(
            !layer.is_empty(),
            "a circle is left: no module can be placed"
        );
        for m in &layer {
            placed.insert(graph.get_key_value(m).unwrap().0.as_str());
        }
        out.push(layer);
    }
    out
}

#[test]
fn modules_import_one_another_without_a_circle() {
    let graph = graph();
    let found = circles(&graph);
    let mut report = String::new();
    for component in &found {
        report.push_str(&format!("circle among {}:\n", component.join(", ")));
        for m in component {
            for (dep, files) in &graph[m] {
                if component.contains(dep) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    report.push_str(&format!("  {m} -> {dep} ({})\n", files.join(", ")));
                }
            }
        }
    }
    assert!(found.is_empty(), "{report}");
    for (i, layer) in layers(&graph).iter().enumerate() {
        for m in layer {
            let deps: Vec<&str> = graph[m].keys().map(String::as_str).collect();
            println!("{i}: {m} -> {}", deps.join(", "));
        }
    }
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let src = src();
    let long: Vec<String> = rust_files(&src)
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f)
                .expect("read source")
                .lines()
                .count();
            (lines > MAX_LINES)
                .then(|| format!("{}: {lines} lines", f.strip_prefix(&src).unwrap().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "longer than {MAX_LINES} lines (split by what the parts do):\n{}",
        long.join("\n")
    );
}

#[test]
fn paths_are_read_as_the_compiler_reads_them() {
    assert_eq!(
        crate_paths("use crate::{config::{Env, K}, error::ApiError};\nx = crate::outbound::Url;"),
        ["config", "error", "outbound"]
    );
    assert_eq!(
        code_only("a // crate::x\nb /* crate::y */ c \"/x/*\" '\"' r#\"crate::z\"# 'a"),
        "a \nb  c \"\" ' ' \"\" 'a"
    );
    let reexports = root_reexports("pub use config::{ConfigError, Env};\npub use server::App;");
    assert_eq!(reexports["Env"], "config");
    assert_eq!(reexports["App"], "server");
}
