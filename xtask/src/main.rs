//! Chores of the workspace, run as `cargo xtask <task>`.
//!
//! Tasks:
//! - `test [--quick] [--no-fuzz]`: everything CI checks (formatting, lints,
//!   every test, rustdoc, the dependency invariants, the benchmarks' build,
//!   the fuzz targets' smoke run), after setting up what the tests need
//!   (see `setup.rs`); ends with a line that counts the tests and steps.
//!   `--quick`: no benchmarks build, no browser test, no fuzzing.
//! - `setup [--quick]`: only the setup.
//! - `fuzz [--smoke | --minutes N] [TARGET...]`: run the cargo-fuzz targets.
//! - `bench [--quick] [--parsers | --servers] [--only SCENARIOS] [--with SERVERS]`:
//!   run the benchmarks, ours and the competitors side by side: the parsers'
//!   criterion benchmarks, then the servers under load (see `bench/`).
//!   `bench --instructions [--quick] [--runs N] [--only SCENARIOS]`: user-space
//!   instructions, system calls and heap allocations per operation, ours beside
//!   socketioxide, counted under callgrind, strace and dhat (`bench_instructions.rs`).
//!   `bench --faults [--quick] [--only drops,halfopen,slow,storm,soak] [--with SERVERS]
//!   [--storm-clients N] [--soak-secs N] [--probe CMD]`:
//!   only the fault scenarios (`bench/faults`, `docs/reliability.md`).
//! - `invariants`: check that the protocol crates depend on no async runtime
//!   and no HTTP stack, and that no crate's modules import each other in a
//!   cycle (`socketio-tokio`'s go down its layers).

use std::env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

mod bench_instructions;
mod bench_servers;
mod invariants;
mod layers;
mod setup;

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((task, rest)) => (task.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match task {
        "test" => test(rest),
        "setup" => {
            let quick = rest.iter().any(|a| a == "--quick");
            setup::setup(
                &root(),
                setup::Needs {
                    fuzz: !quick,
                    browser: !quick,
                },
            )
        }
        "fuzz" => fuzz(rest),
        "bench" => bench(rest),
        "invariants" => invariants::check(&root()),
        "help" | "--help" | "-h" => {
            print_help();
            Ok(())
        }
        other => Err(format!("unknown task `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    println!(
        "cargo xtask <task>\n\n\
         tasks:\n  \
         test                          set up, then formatting, lints, all tests, invariants, fuzz smoke run\n  \
         test --quick                  the same without the browser test, benchmarks build and fuzzing\n  \
         test --no-fuzz                the same without the fuzz smoke run\n  \
         setup [--quick]               only install what the tests need (npm, Python venv, cargo-fuzz, system packages)\n  \
         fuzz --smoke [TARGET...]      run each fuzz target briefly\n  \
         fuzz --minutes N [TARGET...]  run each fuzz target for N minutes\n  \
         fuzz --build                  build every fuzz target\n  \
         bench [--quick]               benchmarks, ours beside the competitors\n  \
         bench --parsers | --servers   only the parser or only the server benchmarks\n  \
         bench --servers --only echo,rate,broadcast,idle,poll --with ours,socketioxide,node,raw\n  \
         bench --instructions [--quick] [--runs N] [--only echo,burst,broadcast,broadcast_burst,broadcast10k,poll,connect,connect_poll]\n  \
                                       instructions, system calls, allocations per operation, ours and socketioxide\n  \
         bench --faults [--quick] [--only drops,halfopen,slow,storm,soak] [--with ours,socketioxide,node]\n      \
         [--storm-clients N] [--soak-secs N] [--probe CMD]\n  \
         invariants                    check the protocol crates' dependency invariants"
    );
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    let manifest = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&manifest);
    dir.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf())
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command, echoing it first, and fails if it fails.
fn run(step: &str, cmd: &mut Command) -> Result<()> {
    println!("\n==> {step}");
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: could not start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        println!("==> {step}: ok ({:.1}s)", start.elapsed().as_secs_f64());
        Ok(())
    } else {
        Err(format!("{step}: failed ({status})"))
    }
}

/// The name prefix of the tests that drive a browser (left out by
/// `test --quick`).
const BROWSER_TESTS: &str = "browser_";

/// What a test run did: the steps, and the tests `cargo test` ran.
#[derive(Debug, Default)]
struct Tally {
    steps_ok: usize,
    steps_failed: Vec<String>,
    passed: u64,
    failed: u64,
    ignored: u64,
    /// What the harness printed for each failed test (its name, then the
    /// first lines of its output), repeated at the end of the run.
    failures: Vec<Vec<String>>,
    /// Whether the lines being read belong to a failed test's output.
    in_failure: bool,
}

impl Tally {
    /// Records a step's outcome; goes on either way.
    fn step(&mut self, outcome: Result<()>) {
        match outcome {
            Ok(()) => self.steps_ok += 1,
            Err(e) => {
                eprintln!("xtask: {e}");
                self.steps_failed.push(e);
            }
        }
    }

    /// Most lines of one failed test's output kept for the end of the run.
    const FAILURE_LINES: usize = 40;

    /// Reads one line of the test harness: counts its `test result: ...`
    /// lines and keeps what it prints for failed tests.
    fn add_harness_line(&mut self, line: &str) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            self.failures.push(vec![format!("test {name}")]);
            self.in_failure = true;
            return;
        }
        // A backtrace is left in the log above, the panic's message kept.
        if line == "failures:" || line.starts_with("test result:") || line == "stack backtrace:" {
            self.in_failure = false;
        }
        if self.in_failure
            && let Some(kept) = self.failures.last_mut()
            && kept.len() <= Self::FAILURE_LINES
        {
            kept.push(line.to_string());
        }
        self.add_result_line(line);
    }

    /// Adds the counts of a `test result: ...` line of the test harness.
    fn add_result_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        for part in rest.split([';', '.']) {
            let mut words = part.split_whitespace();
            if let (Some(n), Some(what)) = (words.next(), words.next())
                && let Ok(n) = n.parse::<u64>()
            {
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        }
    }

    fn summary(&self) -> String {
        let steps = self.steps_ok + self.steps_failed.len();
        format!(
            "{} passed, {} failed, {} ignored; {} of {steps} steps ok",
            self.passed, self.failed, self.ignored, self.steps_ok
        )
    }
}

/// Runs `cargo test` with its harness output shown as it comes and counted.
fn cargo_test(tally: &mut Tally, quick: bool) -> Result<()> {
    let step = "tests (cargo test)";
    println!("\n==> {step}");
    let start = Instant::now();
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--all-features", "--no-fail-fast"]);
    if quick {
        cmd.args(["--", "--skip", BROWSER_TESTS]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{step}: could not start cargo: {e}"))?;
    if let Some(stdout) = child.stdout.take() {
        // Read to the end whatever the tests print (bytes that are not
        // UTF-8 too), so that no test finds its output closed.
        let mut reader = BufReader::new(stdout);
        let mut raw = Vec::new();
        while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            println!("{line}");
            tally.add_harness_line(line);
            raw.clear();
        }
    }
    let status = child.wait().map_err(|e| format!("{step}: {e}"))?;
    if status.success() {
        println!("==> {step}: ok ({:.1}s)", start.elapsed().as_secs_f64());
        Ok(())
    } else {
        Err(format!("{step}: failed ({status})"))
    }
}

fn test(args: &[String]) -> Result<()> {
    let mut quick = false;
    let mut no_fuzz = false;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--no-fuzz" => no_fuzz = true,
            other => return Err(format!("unknown test flag `{other}`")),
        }
    }
    let fuzz_run = !(quick || no_fuzz);
    setup::setup(
        &root(),
        setup::Needs {
            fuzz: fuzz_run,
            browser: !quick,
        },
    )?;
    let mut tally = Tally::default();
    tally.step(run(
        "formatting (cargo fmt --check)",
        cargo().args(["fmt", "--all", "--check"]),
    ));
    tally.step(run(
        "lints (cargo clippy)",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    ));
    let outcome = cargo_test(&mut tally, quick);
    tally.step(outcome);
    tally.step(run(
        "doc tests and rustdoc warnings",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    ));
    println!("\n==> dependency invariants");
    tally.step(invariants::check(&root()));
    if quick {
        println!("\n==> benchmarks build, browser test and fuzz smoke run skipped (--quick)");
    } else {
        tally.step(run(
            "benchmarks compile",
            cargo().args(["bench", "--workspace", "--no-run"]),
        ));
        if fuzz_run {
            tally.step(fuzz(&["--smoke".to_string()]));
        } else {
            println!("\n==> fuzz smoke run skipped (--no-fuzz)");
        }
    }
    println!();
    for failure in &tally.failures {
        println!("xtask test: FAILED: {}", failure[0]);
        for line in failure[1..].iter().filter(|l| !l.is_empty()) {
            println!("    {line}");
        }
    }
    for failed in &tally.steps_failed {
        println!("xtask test: FAILED: {failed}");
    }
    println!("xtask test: {}", tally.summary());
    if tally.steps_failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{} step(s) failed", tally.steps_failed.len()))
    }
}

fn fuzz_targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz").join("fuzz_targets");
    let mut targets = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem()
        {
            targets.push(stem.to_string_lossy().into_owned());
        }
    }
    targets.sort();
    Ok(targets)
}

fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = None;
    let mut build_only = false;
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => seconds = Some(15),
            "--build" => build_only = true,
            "--minutes" => {
                let n: u64 = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--minutes takes a whole number")?;
                seconds = Some(n * 60);
            }
            other if other.starts_with('-') => return Err(format!("unknown fuzz flag `{other}`")),
            target => chosen.push(target.to_string()),
        }
    }
    if seconds.is_none() && !build_only {
        return Err("fuzz needs --smoke, --minutes N or --build".into());
    }
    if !cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`".into());
    }
    let targets = if chosen.is_empty() {
        fuzz_targets()?
    } else {
        chosen
    };
    let fuzz_dir = root().join("fuzz");
    // cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP.
    run(
        "fuzz targets build",
        cargo()
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "build", "--fuzz-dir", "."]),
    )?;
    let Some(seconds) = seconds else {
        return Ok(());
    };
    for target in &targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
        let seeds = fuzz_dir.join("seeds").join(target);
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "--fuzz-dir", ".", target])
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=2048",
        ]);
        run(&format!("fuzz {target} for {seconds}s"), &mut cmd)?;
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let parsers_only = args.iter().any(|a| a == "--parsers");
    let servers_only = args.iter().any(|a| a == "--servers");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    if args.iter().any(|a| a == "--instructions") {
        let runs = match value("--runs") {
            Some(n) => Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("--runs takes a whole number above 0")?,
            ),
            None => None,
        };
        return bench_instructions::bench(quick, runs, value("--only"));
    }
    if args.iter().any(|a| a == "--faults") {
        return bench_servers::faults(quick, value("--only"), value("--with"));
    }
    if !servers_only {
        let mut cmd = cargo();
        cmd.args(["bench", "--workspace"]);
        if quick {
            cmd.args(["--", "--warm-up-time", "0.5", "--measurement-time", "1"]);
        }
        run("parser benchmarks (criterion)", &mut cmd)?;
    }
    if !parsers_only {
        bench_servers::bench(quick, value("--only"), value("--with"))?;
    }
    if !parsers_only && !servers_only {
        // One broadcast's fan-out on one node and across three nodes through
        // Redis (needs redis-server), side by side in one run.
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--release",
            "-p",
            "socketio-redis",
            "--example",
            "fanout",
            "--",
        ]);
        if quick {
            cmd.args(["--clients", "300", "--emits", "100", "--rate", "20"]);
        } else {
            cmd.args(["--clients", "3000", "--emits", "200", "--rate", "50"]);
        }
        run(
            "cluster fan-out: one node against three through Redis",
            &mut cmd,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn result_lines_are_counted() {
        let mut tally = Tally::default();
        tally.add_result_line(
            "test result: ok. 18 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.74s",
        );
        tally.add_result_line(
            "test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 5 filtered out; finished in 12.00s",
        );
        tally.add_result_line("running 4 tests");
        tally.add_result_line("test a::b ... ok");
        assert_eq!((tally.passed, tally.failed, tally.ignored), (19, 3, 2));
        tally.step(Ok(()));
        tally.step(Err("lints: failed".into()));
        assert!(tally.failures.is_empty());
        assert_eq!(
            tally.summary(),
            "19 passed, 3 failed, 2 ignored; 1 of 2 steps ok"
        );
    }

    #[test]
    fn failed_tests_output_is_kept() {
        let mut tally = Tally::default();
        for line in [
            "test a::fine ... ok",
            "test a::broken ... FAILED",
            "",
            "failures:",
            "",
            "---- a::broken stdout ----",
            "",
            "thread 'a::broken' panicked at src/a.rs:3:5:",
            "boom",
            "stack backtrace:",
            "   0: std::panicking::begin_panic",
            "",
            "failures:",
            "    a::broken",
            "",
            "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s",
        ] {
            tally.add_harness_line(line);
        }
        assert_eq!(tally.failures.len(), 1);
        assert_eq!(tally.failures[0][0], "test a::broken");
        assert!(tally.failures[0].iter().any(|l| l == "boom"));
        assert!(!tally.failures[0].iter().any(|l| l.contains("a::fine")));
        assert!(!tally.failures[0].iter().any(|l| l.contains("begin_panic")));
        assert_eq!((tally.passed, tally.failed), (1, 1));
    }
}
