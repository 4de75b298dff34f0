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
    // Foundations: errors, the clock, limits, small containers.
    &["error", "clock", "limits", "request_head", "handler_map"],
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
pub(crate) fn graph(src: &Path) -> Result<Graph, String> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files)?;
            modules.insert(file, files);
        } else if let Some(stem) = file.strip_suffix(".rs")
            && stem != "lib"
            && stem != "main"
        {
            modules.insert(stem.to_owned(), vec![path]);
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, files) in &modules {
        let mut deps = BTreeSet::new();
        for file in files {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            deps.extend(imports(&text).into_iter().filter(|d| names.contains(d)));
        }
        deps.remove(module);
        graph.insert(module.clone(), deps);
    }
    Ok(graph)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The first segments of the `crate::` paths that `text` names, its
/// comments and its `#[cfg(test)]` part left out.
pub(crate) fn imports(text: &str) -> BTreeSet<String> {
    let text = match text.find("#[cfg(test)]") {
        Some(cut) => &text[..cut],
        None => text,
    };
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        rest = &rest[i + "crate::".len()..];
        if !boundary {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group));
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                found.insert(ident);
            }
        }
    }
    found
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
        let found: Vec<String> = imports(text).into_iter().collect();
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
