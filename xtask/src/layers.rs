//! The module layers, checked: no crate's top-level modules import each
//! other in a cycle, and the modules of `socketio-tokio` import only from
//! the layers below them (ARCHITECTURE.md, "Layers of socketio-tokio").
//!
//! A module depends on another when its code (comments and `#[cfg(test)]`
//! parts left out) names `crate::other`, directly or inside a
//! `use crate::{...}` group, as rust-analyzer's tidy tests read sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of `socketio-tokio`, lowest first: a module may import the
/// modules of the layers below its own, and no other. A module missing
/// here fails the check, so a new one is placed on purpose.
pub(crate) const TOKIO_LAYERS: &[&[&str]] = &[
    // Foundations: errors, the clock, limits, small containers, the
    // argument convention, the counters.
    &[
        "error",
        "clock",
        "limits",
        "request_head",
        "handler_map",
        "args",
        "stats",
        "lock_profile",
    ],
    // Options.
    &["config"],
    // Boundaries: WebSocket I/O, the cluster adapter.
    &["ws", "cluster"],
    // The HTTP side's channel to a connection's task.
    &["mailbox"],
    // The application API.
    &["api"],
    // The connection task: runs the core and the handlers.
    &["conn"],
    // HTTP: the tower service and the standalone server.
    &["http"],
];

/// A crate's top-level modules and, for each, the others it imports.
pub(crate) type Graph = BTreeMap<String, BTreeSet<String>>;

/// Checks every crate under `crates/`: no cycles anywhere, and
/// `socketio-tokio`'s imports within its layers.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    let crates = root.join("crates");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .map_err(|e| format!("{}: {e}", crates.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("src").is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let graph = graph(&dir.join("src"))?;
        let found = problems.len();
        for cycle in cycles(&graph) {
            problems.push(format!("{name}: modules in a cycle: {}", cycle.join(", ")));
        }
        if name == "socketio-tokio" {
            problems.extend(
                layer_violations(&graph, TOKIO_LAYERS)
                    .into_iter()
                    .map(|v| format!("{name}: {v}")),
            );
        }
        if problems.len() == found {
            let edges: usize = graph.values().map(BTreeSet::len).sum();
            println!(
                "{name}: {} modules, {edges} imports between them, no cycle{}",
                graph.len(),
                if name == "socketio-tokio" {
                    ", every import goes down the layers"
                } else {
                    ""
                }
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "module layers broken:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// The import graph of the top-level modules under `src`.
///
/// A module depends on another when one of its files names it through
/// `crate::`, through `super::` reaching out of its own tree, or through a
/// name that the crate root re-exports from it (`crate::Name`). Aliasing
/// the crate (`use crate as ...`) would hide imports, so it is an error.
pub(crate) fn graph(src: &Path) -> Result<Graph, String> {
    // Each top-level module with its files, and each file's module path.
    let mut modules: BTreeMap<String, Vec<(PathBuf, Vec<String>)>> = BTreeMap::new();
    let mut root_text = String::new();
    for entry in std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, std::slice::from_ref(&file), &mut files)?;
            modules.entry(file).or_default().extend(files);
        } else if let Some(stem) = file.strip_suffix(".rs") {
            if stem == "lib" || stem == "main" {
                root_text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            } else {
                modules
                    .entry(stem.to_owned())
                    .or_default()
                    .push((path, vec![stem.to_owned()]));
            }
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let exports = reexports(&code(&root_text), &names);
    let mut graph = Graph::new();
    for (module, files) in &modules {
        let mut deps = BTreeSet::new();
        for (file, path) in files {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let code = code(&text);
            if code
                .match_indices("crate as ")
                .any(|(i, _)| starts_word(&code, i))
            {
                return Err(format!(
                    "{}: `crate` is aliased, which hides imports from the layer check",
                    file.display()
                ));
            }
            for name in imports_at(&code, path) {
                match exports.get(&name) {
                    Some(owner) => {
                        deps.insert(owner.clone());
                    }
                    None if names.contains(&name) => {
                        deps.insert(name);
                    }
                    None => {}
                }
            }
        }
        deps.remove(module);
        graph.insert(module.clone(), deps);
    }
    Ok(graph)
}

/// Every `.rs` file under `dir`, with its module path (`module_path` is
/// the directory's own).
fn rust_files(
    dir: &Path,
    module_path: &[String],
    out: &mut Vec<(PathBuf, Vec<String>)>,
) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut inner = module_path.to_vec();
        if path.is_dir() {
            inner.push(name);
            rust_files(&path, &inner, out)?;
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "mod" {
                inner.push(stem.to_owned());
            }
            out.push((path, inner));
        }
    }
    Ok(())
}

/// The text of a source file without its comments, the text of its string
/// literals, and its test modules (from a `#[cfg(test)]` that opens a
/// `mod` on).
pub(crate) fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            // A string's text names nothing: blanked, its lines kept.
            match c {
                '\\' => {
                    chars.next();
                    out.push(' ');
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '\n' => out.push(c),
                _ => out.push(' '),
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                // A line comment (doc comments too): to the end of the line.
                for next in chars.by_ref() {
                    if next == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut last = ' ';
                for next in chars.by_ref() {
                    if last == '*' && next == '/' {
                        break;
                    }
                    last = next;
                }
            }
            _ => out.push(c),
        }
    }
    let mut rest = out.as_str();
    let mut kept = 0;
    while let Some(i) = rest.find("#[cfg(test)]") {
        let after = rest[i + "#[cfg(test)]".len()..].trim_start();
        let after = after
            .strip_prefix("pub(crate)")
            .or_else(|| after.strip_prefix("pub"))
            .unwrap_or(after)
            .trim_start();
        if after.starts_with("mod ") {
            return out[..kept + i].to_owned();
        }
        kept += i + 1;
        rest = &rest[i + 1..];
    }
    out
}

/// The names that a crate root's `use` items bring in from its modules:
/// each name (or its alias) with the module it comes from.
pub(crate) fn reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in root.split(';') {
        let Some(start) = item.find("use ") else {
            continue;
        };
        let path = item[start + "use ".len()..].trim();
        let path = path.strip_prefix("crate::").unwrap_or(path);
        let Some(module) = path.split("::").next().map(str::trim) else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        for name in leaf_names(path) {
            out.insert(name, module.to_owned());
        }
    }
    out
}

/// The names a `use` path brings in: `a::B`, `a::B as C`, `a::{B, c::D}`.
fn leaf_names(path: &str) -> Vec<String> {
    let path = path.trim();
    if let Some(open) = path.find('{') {
        let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
        let mut names = Vec::new();
        let mut depth = 0usize;
        let mut item = String::new();
        for c in inner.chars().chain([',']) {
            match c {
                '{' => {
                    depth += 1;
                    item.push(c);
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    item.push(c);
                }
                ',' if depth == 0 => {
                    if !item.trim().is_empty() {
                        names.extend(leaf_names(&item));
                    }
                    item.clear();
                }
                _ => item.push(c),
            }
        }
        return names;
    }
    let name = match path.split_once(" as ") {
        Some((_, alias)) => alias.trim(),
        None => path.rsplit("::").next().unwrap_or(path).trim(),
    };
    if name.is_empty() || name == "self" || name == "*" {
        Vec::new()
    } else {
        vec![name.to_owned()]
    }
}

/// The top-level modules (or crate-root names) that `code`, the code of a
/// file at module path `here`, names through `crate::` or `super::`.
fn imports_at(code: &str, here: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if !starts_word(code, i) {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group));
        } else if let Some(ident) = ident_at(rest) {
            found.insert(ident);
        }
    }
    for (i, _) in code.match_indices("super::") {
        if !starts_word(code, i) || code[..i].ends_with("super::") {
            continue;
        }
        // How many levels up, then the module it names.
        let mut rest = &code[i..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        let base = here.len().saturating_sub(up);
        match here.get(..base).and_then(|p| p.first()) {
            // Still inside the file's own top-level module.
            Some(top) => {
                found.insert(top.clone());
            }
            None => {
                if let Some(group) = rest.strip_prefix('{') {
                    found.extend(group_heads(group));
                } else if let Some(ident) = ident_at(rest) {
                    found.insert(ident);
                }
            }
        }
    }
    found
}

fn starts_word(code: &str, i: usize) -> bool {
    code[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
}

fn ident_at(rest: &str) -> Option<String> {
    let ident: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

/// The first segment of each item of a `use crate::{a::b, c, d::{e, f}}`
/// group, `group` starting after the opening brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut item = String::new();
    for c in group.chars() {
        match c {
            '{' => {
                depth += 1;
                item.push(c);
            }
            '}' if depth == 0 => break,
            '}' => {
                depth -= 1;
                item.push(c);
            }
            ',' if depth == 0 => {
                heads.push(std::mem::take(&mut item));
            }
            _ => item.push(c),
        }
    }
    heads.push(item);
    heads
        .iter()
        .filter_map(|item| {
            let head = item.trim().split("::").next()?.trim();
            (!head.is_empty()).then(|| head.to_owned())
        })
        .collect()
}

/// The strongly connected groups of two or more modules.
pub(crate) fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut placed = BTreeSet::new();
    let mut out = Vec::new();
    for m in graph.keys() {
        if placed.contains(m) || !reaches[m].contains(m) {
            continue;
        }
        let group: Vec<String> = graph
            .keys()
            .filter(|o| reaches[m].contains(*o) && reaches[*o].contains(m))
            .cloned()
            .collect();
        placed.extend(group.iter().cloned());
        out.push(group);
    }
    out
}

/// Each import that `layers` does not allow, and each module it does not place.
pub(crate) fn layer_violations(graph: &Graph, layers: &[&[&str]]) -> Vec<String> {
    let rank = |module: &str| layers.iter().position(|layer| layer.contains(&module));
    let mut out = Vec::new();
    for (module, deps) in graph {
        let Some(own) = rank(module) else {
            out.push(format!(
                "module `{module}` has no place in the layers (xtask/src/layers.rs)"
            ));
            continue;
        };
        for dep in deps {
            if rank(dep).is_none_or(|r| r >= own) {
                out.push(format!("`{module}` may not import `{dep}`"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf()
    }

    #[test]
    fn the_workspace_keeps_its_layers() {
        check(&root()).expect("layers hold");
    }

    #[test]
    fn imports_are_read_from_paths_and_groups_but_not_comments_or_tests() {
        let text = "use crate::api::server::Shared;\n\
                    use crate::{config::Options, error, mailbox::{Cmd, Offer}};\n\
                    fn f() { crate::ws::accept_key(b\"\"); }\n\
                    // crate::http is only mentioned\n\
                    #[cfg(test)]\nmod tests { use crate::conn; }\n";
        let found: Vec<String> = imports_at(&code(text), &[]).into_iter().collect();
        assert_eq!(found, ["api", "config", "error", "mailbox", "ws"]);
    }

    #[test]
    fn a_forbidden_import_fails_the_check() {
        // The tree as it is passes...
        let src = root().join("crates/socketio-tokio/src");
        let mut graph = graph(&src).expect("the sources are readable");
        assert_eq!(layer_violations(&graph, TOKIO_LAYERS), Vec::<String>::new());
        // ...and the API reaching into the HTTP layer does not.
        graph
            .get_mut("api")
            .expect("an api module")
            .insert("http".into());
        assert_eq!(
            layer_violations(&graph, TOKIO_LAYERS),
            ["`api` may not import `http`"]
        );
        // Nor a module placed nowhere.
        graph.insert("extra".into(), BTreeSet::new());
        assert_eq!(layer_violations(&graph, TOKIO_LAYERS).len(), 2);
    }

    #[test]
    fn re_exports_super_paths_test_uses_and_split_layouts_are_read() {
        let dir = std::env::temp_dir().join(format!("xtask-layers-read-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("api/deep")).expect("a temporary directory");
        let write = |path: &str, text: &str| std::fs::write(src.join(path), text).expect("write");
        write(
            "lib.rs",
            "mod api;\nmod http;\nmod low;\npub use http::{Service, inner::Layer as L};\npub use crate::low::Low;\n",
        );
        // A re-exported name used through the crate root.
        write(
            "low.rs",
            "pub struct Low;\nfn f() -> crate::Service { todo!() }\n",
        );
        // `api.rs` beside `api/`: both count; `super::super::` climbs out.
        write("api.rs", "mod deep;\n#[cfg(test)]\nuse crate::low::Low;\n");
        write("api/deep/mod.rs", "use super::super::http::Thing;\n");
        // A test-only `use` before the code does not hide the code.
        write(
            "http.rs",
            "#[cfg(test)]\nuse std::fmt;\nfn g() { crate::L; }\n// crate::api in a comment\nlet s = \"// crate::api in a string\";\n",
        );
        let read = graph(&src);
        write("low.rs", "use crate as root;\nfn f() { root::http::x() }\n");
        let aliased = graph(&src);
        let _ = std::fs::remove_dir_all(&dir);
        let graph = read.expect("the tree is readable");
        let deps = |m: &str| graph[m].iter().cloned().collect::<Vec<_>>();
        assert_eq!(deps("low"), ["http"]);
        assert_eq!(deps("api"), ["http", "low"]);
        assert_eq!(deps("http"), Vec::<String>::new(), "a re-export of its own");
        assert!(aliased.is_err(), "an aliased crate is refused");
    }

    #[test]
    fn a_cycle_is_found_in_a_tree_on_disk() {
        let dir = std::env::temp_dir().join(format!("xtask-layers-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("b")).expect("a temporary directory");
        std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\nmod c;\n").expect("write");
        std::fs::write(src.join("a.rs"), "use crate::b::B;\n").expect("write");
        std::fs::write(src.join("b/mod.rs"), "mod inner;\n").expect("write");
        std::fs::write(src.join("b/inner.rs"), "use crate::{c::C};\n").expect("write");
        std::fs::write(src.join("c.rs"), "pub fn f() { crate::a::g() }\n").expect("write");
        let graph = graph(&src);
        let _ = std::fs::remove_dir_all(&dir);
        let graph = graph.expect("the tree is readable");
        assert_eq!(cycles(&graph), [["a", "b", "c"]]);
    }
}
