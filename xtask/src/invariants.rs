//! Architecture invariants that are checked, not just stated.
//!
//! The protocol crates perform no I/O: nothing under them may pull in an
//! async runtime, an event loop or an HTTP stack.

use std::path::Path;
use std::process::Command;

/// Crates that hold no runtime and no HTTP stack, whatever features are on.
pub(crate) const SANS_IO_CRATES: &[&str] = &[
    "engineio-packet",
    "socketio-packet",
    "socketio-client-proto",
    "socketio-proto",
    "websocket-frame",
];

/// Dependencies that none of [`SANS_IO_CRATES`] may have, directly or not.
pub(crate) const FORBIDDEN: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "async-io",
    "async-executor",
    "mio",
    "futures-executor",
    "hyper",
    "http",
    "http-body",
    "h2",
    "tungstenite",
    "tokio-tungstenite",
];

/// The names of every package in `krate`'s normal and build dependency tree.
pub(crate) fn dependency_names(root: &Path, krate: &str) -> Result<Vec<String>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "--quiet",
            "--package",
            krate,
            "--all-features",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .map_err(|e| format!("cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree -p {krate} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Checks every invariant, printing what it found.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let mut violations = Vec::new();
    for krate in SANS_IO_CRATES {
        let names = dependency_names(root, krate)?;
        let bad: Vec<&String> = names
            .iter()
            .filter(|n| FORBIDDEN.contains(&n.as_str()))
            .collect();
        if bad.is_empty() {
            println!(
                "{krate}: {} dependencies, no async runtime, no HTTP stack",
                names.len().saturating_sub(1)
            );
        } else {
            violations.push(format!("{krate} depends on {bad:?}"));
        }
    }
    if let Err(e) = crate::layers::check(root) {
        violations.push(e);
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "architecture invariant broken: {}",
            violations.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace")
            .to_path_buf()
    }

    #[test]
    fn protocol_crates_have_no_runtime_and_no_http_stack() {
        check(&root()).expect("invariant holds");
    }

    #[test]
    fn the_tree_reader_sees_transitive_dependencies() {
        // If the reader saw nothing, the check above would prove nothing:
        // socket.io packets reach serde_json only through their own crate.
        let names = dependency_names(&root(), "socketio-packet").expect("cargo tree runs");
        assert!(names.iter().any(|n| n == "engineio-packet"), "{names:?}");
        assert!(names.iter().any(|n| n == "serde_json"), "{names:?}");
        assert!(names.iter().any(|n| n == "bytes"), "{names:?}");
    }
}
