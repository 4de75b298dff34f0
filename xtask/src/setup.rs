//! What the test run needs beside Rust, set up on a fresh machine.
//!
//! - the packages of `interop/` (`npm ci` from the lockfile), when
//!   `interop/node_modules` is missing or was installed from another lockfile;
//! - the Python virtual environment `interop/.venv` with python-socketio,
//!   when missing or installed from other requirements;
//! - cargo-fuzz (unless the run does no fuzzing), clippy and rustfmt;
//! - the system packages (Node.js and npm, Redis and its command-line client,
//!   PostgreSQL, and Chromium unless the run has no browser test): installed with apt-get when running as root on a
//!   machine that has it, otherwise the setup fails saying how to install
//!   them.
//!
//! Each installed copy of a lockfile or requirements file is remembered
//! next to what it installed (`interop/node_modules/.xtask-package-lock.json`,
//! `interop/.venv/.xtask-requirements.txt`), so a changed file installs again.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Result, cargo, run};

/// The path Chromium is expected at (Debian's package), as the browser test
/// looks for it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// What a run needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    /// cargo-fuzz, for the fuzz targets.
    pub(crate) fuzz: bool,
    /// Chromium, for the browser test.
    pub(crate) browser: bool,
}

/// Sets up what is missing or stale.
pub(crate) fn setup(root: &Path, needs: Needs) -> Result<()> {
    println!("\n==> setup: what the tests need beside Rust");
    rust_components();
    system_packages(needs)?;
    node_packages(root)?;
    python_venv(root)?;
    if needs.fuzz {
        cargo_fuzz()?;
    }
    println!("==> setup: ok");
    Ok(())
}

/// Whether `program args...` runs and succeeds.
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn rust_components() {
    let clippy = cargo()
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let fmt = cargo()
        .args(["fmt", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !(clippy && fmt) && succeeds("rustup", &["--version"]) {
        // A failure shows in the lints or formatting step, with cargo's message.
        let _ = run(
            "rustup component add clippy rustfmt",
            Command::new("rustup").args(["component", "add", "clippy", "rustfmt"]),
        );
    }
}

/// Whether this process may install system packages: root, with apt-get.
fn can_apt() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.trim_ascii() == b"0");
    root && succeeds("apt-get", &["--version"])
}

fn apt_install(packages: &[&str]) -> Result<()> {
    run("apt-get update", Command::new("apt-get").arg("update"))?;
    run(
        &format!("apt-get install {}", packages.join(" ")),
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y"])
            .args(packages),
    )
}

fn system_packages(needs: Needs) -> Result<()> {
    let mut missing = Vec::new();
    if !succeeds("node", &["--version"]) {
        missing.push("nodejs");
    }
    if !succeeds("npm", &["--version"]) {
        missing.push("npm");
    }
    if !succeeds("redis-server", &["--version"]) {
        missing.push("redis-server");
    }
    // The sharded adapter's tests make a Redis Cluster with redis-cli.
    if !succeeds("redis-cli", &["--version"]) {
        missing.push("redis-tools");
    }
    // The Postgres adapter's tests start Debian's server in a directory of
    // their own.
    if !has_postgres() {
        missing.push("postgresql");
    }
    if needs.browser && !Path::new(CHROMIUM).exists() {
        missing.push("chromium");
    }
    if missing.is_empty() {
        return Ok(());
    }
    if can_apt() {
        println!(
            "installing the missing system packages: {}",
            missing.join(" ")
        );
        return apt_install(&missing);
    }
    Err(format!(
        "missing system packages: {list}. Install them (on Debian or Ubuntu: \
         `sudo apt-get update && sudo apt-get install -y {list}`; Chromium is expected \
         at {CHROMIUM}), then run this again{quick}",
        list = missing.join(" "),
        quick = if missing.contains(&"chromium") {
            ", or run `cargo xtask test --quick`, which needs no browser"
        } else {
            ""
        },
    ))
}

/// Whether Debian's PostgreSQL server is installed (`/usr/lib/postgresql/<version>/bin/postgres`).
fn has_postgres() -> bool {
    fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
        versions
            .flatten()
            .any(|v| v.path().join("bin/postgres").exists() && v.path().join("bin/initdb").exists())
    })
}

/// Whether `installed` holds the same bytes as `source` (false when either
/// is missing).
fn same_file(source: &Path, installed: &Path) -> bool {
    match (fs::read(source), fs::read(installed)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn node_packages(root: &Path) -> Result<()> {
    let interop = root.join("interop");
    let lock = interop.join("package-lock.json");
    let stamp = interop.join("node_modules/.xtask-package-lock.json");
    if same_file(&lock, &stamp) {
        return Ok(());
    }
    run(
        "npm ci --prefix interop (the packages of interop/package-lock.json)",
        Command::new("npm").current_dir(root).args([
            "ci",
            "--prefix",
            "interop",
            "--no-audit",
            "--no-fund",
        ]),
    )?;
    fs::copy(&lock, &stamp).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(())
}

fn python_venv(root: &Path) -> Result<()> {
    let interop = root.join("interop");
    let venv = interop.join(".venv");
    let python = venv.join("bin/python");
    let requirements = interop.join("python/requirements.txt");
    let stamp = venv.join(".xtask-requirements.txt");
    if python.exists() && same_file(&requirements, &stamp) {
        return Ok(());
    }
    if !python.exists() {
        let create = |step: &str| {
            run(
                step,
                Command::new("python3")
                    .current_dir(root)
                    .args(["-m", "venv", "interop/.venv"]),
            )
        };
        if create("python3 -m venv interop/.venv").is_err() {
            // A half-made environment would stop the next attempt.
            let _ = fs::remove_dir_all(&venv);
            if !can_apt() {
                return Err("could not create the Python virtual environment: install \
                     Python 3 with its venv module (on Debian or Ubuntu: \
                     `sudo apt-get install -y python3 python3-venv`), then run this again"
                    .into());
            }
            apt_install(&["python3", "python3-venv"])?;
            create("python3 -m venv interop/.venv (again)")?;
        }
    }
    run(
        "pip install -r interop/python/requirements.txt (python-socketio)",
        Command::new(&python).current_dir(root).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "interop/python/requirements.txt",
        ]),
    )?;
    fs::copy(&requirements, &stamp).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(())
}

fn cargo_fuzz() -> Result<()> {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    run(
        "cargo install cargo-fuzz --locked",
        cargo().args(["install", "cargo-fuzz", "--locked"]),
    )
}
