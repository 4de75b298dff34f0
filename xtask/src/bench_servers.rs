//! The server part of `cargo xtask bench`: builds the benchmark servers and
//! the load generator (`bench/`), then runs `bench-run`, which sets ours
//! beside socketioxide, the Node.js reference and a raw ceiling (a WebSocket
//! echo server; for long-polling, a minimal Engine.IO polling server).

use std::path::PathBuf;
use std::process::Command;

use crate::{Result, cargo, root, run};

/// Checks that `taskset` is there (every benchmark pins its processes to
/// cores), builds `packages` in release mode, and gives the target
/// directory.
pub(crate) fn build_release(what: &str, packages: &[&str]) -> Result<PathBuf> {
    if Command::new("taskset").arg("-V").output().is_err() {
        return Err("taskset is missing (util-linux): the servers are pinned to one core".into());
    }
    let mut build = cargo();
    build.args(["build", "--release"]);
    for p in packages {
        build.args(["-p", p]);
    }
    run(what, &mut build)?;
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target")))
}

/// Builds and runs the server scenarios; `only` picks some of them
/// (`echo,rate,broadcast,idle,poll`), `servers` some of the servers.
pub(crate) fn bench(quick: bool, only: Option<&str>, servers: Option<&str>) -> Result<()> {
    let target = build_release(
        "build the benchmark servers and the load generator",
        &["bench-loadgen", "bench-servers"],
    )?;
    let mut cmd = Command::new(target.join("release").join("bench-run"));
    cmd.current_dir(root()).arg("--root").arg(root());
    if quick {
        cmd.arg("--quick");
    }
    if let Some(only) = only {
        cmd.args(["--only", only]);
    }
    if let Some(servers) = servers {
        cmd.args(["--servers", servers]);
    }
    run(
        "server benchmarks (ours, socketioxide, Node, raw WebSocket)",
        &mut cmd,
    )
}

/// The flags of `faults-run` that `bench --faults` passes on as they come, each with its
/// value: the storm's fleet, the soak's length, the storm's memory probe.
const FAULTS_RUN_FLAGS: [&str; 3] = ["--storm-clients", "--soak-secs", "--probe"];

/// Of `args` (the command line), the flags of [`FAULTS_RUN_FLAGS`] after `--faults`, each
/// with its value, in their order.
fn faults_run_args(args: &[String]) -> Vec<String> {
    let mut after = args.iter().skip_while(|a| *a != "--faults").skip(1);
    let mut out = Vec::new();
    while let Some(arg) = after.next() {
        if FAULTS_RUN_FLAGS.contains(&arg.as_str()) {
            out.push(arg.clone());
            out.extend(after.next().cloned());
        }
    }
    out
}

/// Builds and runs the fault scenarios (`bench/faults`): delivery under drops, half-open
/// peers, the reconnect storm and the soak, ours beside socketioxide and Node; `only`
/// picks some of them (`drops,halfopen,slow,storm,soak`), `servers` some of the servers.
/// `--storm-clients N`, `--soak-secs N` and `--probe CMD` after `--faults` on the command
/// line go to `faults-run` as they are.
pub(crate) fn faults(quick: bool, only: Option<&str>, servers: Option<&str>) -> Result<()> {
    let target = build_release(
        "build the benchmark servers, the fault proxy and the fault scenarios",
        &["bench-servers", "faultproxy", "bench-faults"],
    )?;
    let mut cmd = Command::new(target.join("release").join("faults-run"));
    cmd.current_dir(root()).arg("--root").arg(root());
    if quick {
        cmd.arg("--quick");
    }
    if let Some(only) = only {
        cmd.args(["--only", only]);
    }
    if let Some(servers) = servers {
        cmd.args(["--servers", servers]);
    }
    cmd.args(faults_run_args(&std::env::args().collect::<Vec<_>>()));
    run("fault scenarios (ours, socketioxide, Node)", &mut cmd)
}

#[cfg(test)]
mod tests {
    use super::faults_run_args;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_flags_of_faults_run_after_faults_are_passed_on_with_their_values() {
        let line = args(
            "xtask bench --quick --soak-secs 5 --faults --soak-secs 60 --only storm \
             --storm-clients 500 --with ours --probe bench/faults/probe-malloc.sh",
        );
        assert_eq!(
            faults_run_args(&line),
            args("--soak-secs 60 --storm-clients 500 --probe bench/faults/probe-malloc.sh")
        );
        assert!(faults_run_args(&args("xtask bench --faults --quick")).is_empty());
        assert!(faults_run_args(&args("xtask bench --soak-secs 60")).is_empty());
    }
}
