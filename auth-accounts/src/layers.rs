//! A test of the module structure: engines never import the layers above them, and no module
//! imports a module that imports it back.
//!
//! It reads the crate's sources and takes every `crate::a::b` path in them (in `use` lines and in
//! code), mapping each to the module file that defines it. A reference from a module to itself or
//! to its own parent (`routes::login` naming `crate::routes::ErrorBody`) is structural and allowed;
//! a cycle between any two other modules fails the test and names the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules below the state: they may import each other, never a layer above.
const ENGINES: &[&str] = &[
    "cleanup",
    "clock",
    "config",
    "crypto",
    "domain",
    "email",
    "events",
    "kafka",
    "keys",
    "leases",
    "legacy",
    "metrics",
    "otlp",
    "outbox",
    "probe",
    "ratelimit",
    "revocations",
    "smtp",
    "store",
    "tasks",
    "trace",
];
const ABOVE: &[&str] = &[
    "state",
    "unit_of_work",
    "sessions",
    "error",
    "http",
    "routes",
    "startup",
    "commands",
];

/// Module path (`routes::login`) -> source text, for every file under `src/`.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut p = prefix.to_vec();
                if !matches!(stem, "mod" | "lib" | "main") {
                    p.push(stem.to_string());
                }
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.entry(p.join("::")).or_default().push_str(&text);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out.remove("");
    out
}

/// The modules each module names through `crate::` paths (also inside `use crate::{a, b::c}`).
fn edges(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (module, text) in modules {
        let mut targets = BTreeSet::new();
        // Drop comments (doc links are not imports) and test modules' own helpers are still code.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            for path in expand(rest) {
                if let Some(target) = resolve(modules, &path) {
                    targets.insert(target);
                }
            }
        }
        out.insert(module.clone(), targets);
    }
    out
}

/// The paths a `crate::` reference names: `a::b::C` -> [a::b::C]; `{a, b::{c, d}}` -> [a, b::c, b::d].
fn expand(rest: &str) -> Vec<String> {
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let inner = &group[..end];
        let mut parts = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&inner[start..]);
        return parts.into_iter().flat_map(|p| expand(p.trim())).collect();
    }
    let path: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '{')
        .collect();
    if let Some((head, _)) = path.split_once("::{") {
        let brace = rest.find("::{").map(|i| &rest[i + 2..]).unwrap_or("");
        return expand(brace)
            .into_iter()
            .map(|p| format!("{head}::{p}"))
            .collect();
    }
    vec![path.trim_end_matches(':').to_string()]
}

/// The longest module prefix of a path (`routes::issue::respond` -> `routes::issue`).
fn resolve(modules: &BTreeMap<String, String>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains_key(candidate))
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn engines_do_not_import_the_layers_above() {
    let modules = modules();
    assert!(modules.contains_key("routes::login"), "sources found");
    let mut wrong = Vec::new();
    for (module, targets) in edges(&modules) {
        if !ENGINES.contains(&top(&module)) {
            continue;
        }
        for target in targets {
            if ABOVE.contains(&top(&target)) {
                wrong.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "engines importing upper layers: {wrong:?}"
    );
}

#[test]
fn no_import_cycles() {
    let modules = modules();
    let graph = edges(&modules);
    // Structural references (to itself or an ancestor) are not dependencies.
    let graph: BTreeMap<&str, Vec<&str>> = graph
        .iter()
        .map(|(m, ts)| {
            let deps = ts
                .iter()
                .filter(|t| *t != m && !m.starts_with(&format!("{t}::")))
                .map(String::as_str)
                .collect();
            (m.as_str(), deps)
        })
        .collect();
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap_or_default().join(" -> ")
        );
    }
}

#[test]
fn the_parser_sees_grouped_and_nested_imports() {
    assert_eq!(
        expand("store::{sessions, users};"),
        ["store::sessions", "store::users"]
    );
    assert_eq!(expand("{a::b, c::{d, e}}"), ["a::b", "c::d", "c::e"]);
    assert_eq!(expand("state::AppState;"), ["state::AppState"]);
}
