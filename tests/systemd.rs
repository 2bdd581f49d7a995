//! `crypto-report systemd …` as a real process: what it prints is the repository's unit and
//! environment example; `install` writes each file once, never replaces one that is there,
//! changes nothing with `--dry-run`, refuses to touch / without root; the unit it installs
//! passes `systemd-analyze verify` and keeps its exposure score.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::process::{bin, unprivileged};

const UNIT: &str = "etc/systemd/system/crypto-report.service";
const ENV: &str = "etc/crypto-report/crypto-report.env";
const BINARY: &str = "usr/local/bin/crypto-report";
const README: &str = "usr/local/share/doc/crypto-report/README.md";

fn repo(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("repository file")
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run")
}

fn install(root: &Path, extra: &[&str]) -> String {
    let mut args = vec!["systemd", "install", "--root", root.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf8")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn prints_the_repositorys_unit_and_environment_example() {
    let unit = run(&["systemd", "print-unit"]);
    assert!(unit.status.success(), "{unit:?}");
    assert_eq!(unit.stdout, repo("systemd/crypto-report.service"));
    let env = run(&["systemd", "print-env"]);
    assert!(env.status.success(), "{env:?}");
    assert_eq!(env.stdout, repo("systemd/crypto-report.env.example"));
}

#[test]
fn install_writes_each_file_once_and_never_replaces_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let said = install(root, &[]);
    for path in [BINARY, UNIT, ENV, README] {
        assert!(
            said.contains(&format!("wrote {}", root.join(path).display())),
            "{said}"
        );
    }
    assert!(
        said.contains("systemctl enable --now crypto-report"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(root.join(UNIT)).expect("unit"),
        repo("systemd/crypto-report.service")
    );
    assert_eq!(
        std::fs::read(root.join(ENV)).expect("env"),
        repo("systemd/crypto-report.env.example")
    );
    assert_eq!(
        std::fs::read(root.join(README)).expect("readme"),
        repo("README.md")
    );
    assert_eq!(
        std::fs::read(root.join(BINARY)).expect("binary"),
        std::fs::read(bin()).expect("the program")
    );
    assert_eq!(mode(&root.join(BINARY)), 0o755);
    assert_eq!(mode(&root.join(UNIT)), 0o644);
    assert_eq!(mode(&root.join(ENV)), 0o640);
    assert_eq!(mode(&root.join("etc/crypto-report")), 0o750);

    // Again: everything is the same, so everything is kept.
    let again = install(root, &[]);
    assert!(!again.contains("wrote"), "{again}");
    assert_eq!(
        again.matches("(the same as this release's)").count(),
        4,
        "{again}"
    );

    // The operator's edits survive another install, and the output says how to compare.
    let edited_env =
        "CR_PUBLIC_URL=https://news.example.org\nCR_ADMIN_TOKEN=0123456789abcdef-operator\n";
    std::fs::write(root.join(ENV), edited_env).expect("edit env");
    let mut unit = std::fs::read_to_string(root.join(UNIT)).expect("unit");
    unit.push_str("# local change\n");
    std::fs::write(root.join(UNIT), &unit).expect("edit unit");
    std::fs::write(root.join(BINARY), b"#!/bin/sh\necho older build\n").expect("older binary");
    let third = install(root, &[]);
    assert_eq!(
        std::fs::read_to_string(root.join(ENV)).expect("env"),
        edited_env
    );
    assert_eq!(
        std::fs::read_to_string(root.join(UNIT)).expect("unit"),
        unit
    );
    assert_eq!(
        std::fs::read(root.join(BINARY)).expect("binary"),
        b"#!/bin/sh\necho older build\n"
    );
    assert_eq!(third.matches("never replaced").count(), 3, "{third}");
    assert!(third.contains("systemd print-unit | diff"), "{third}");
    assert!(third.contains("systemd print-env | diff"), "{third}");
    assert!(third.contains("install -m 0755"), "{third}");
    // What the operator wrote is never repeated (the token is a secret).
    assert!(!third.contains("operator"), "{third}");
}

#[test]
fn dry_run_says_what_it_would_do_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let said = install(dir.path(), &["--dry-run"]);
    for path in [BINARY, UNIT, ENV, README] {
        assert!(
            said.contains(&format!("would write {}", dir.path().join(path).display())),
            "{said}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list").count(),
        0,
        "a dry run wrote something"
    );
}

#[test]
fn installing_into_the_system_needs_root() {
    let out = unprivileged(&["systemd", "install"]).output().expect("run");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs root"), "{stderr}");
    // A dry run needs nothing.
    let dry = unprivileged(&["systemd", "install", "--dry-run"])
        .output()
        .expect("run");
    assert!(dry.status.success(), "{dry:?}");
}

/// `systemd-analyze` from Debian's `systemd` package; skipped without it, except in CI.
fn systemd_analyze() -> Option<&'static str> {
    let path = "/usr/bin/systemd-analyze";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false"),
        "systemd-analyze is missing: in CI the unit must be verified (scripts/install-test-deps installs systemd)"
    );
    eprintln!("skipped: no systemd-analyze (apt-get install systemd)");
    None
}

#[test]
fn the_installed_unit_verifies_and_keeps_its_exposure_score() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    install(root, &[]);
    // The targets the unit orders itself against, as on any systemd machine.
    let units = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).expect("mkdir");
    let copied = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(&units)
        .status()
        .expect("cp");
    assert!(copied.success());
    let root_arg = format!("--root={}", root.display());
    let verify = Command::new(analyze)
        .args(["verify", &root_arg, &format!("/{UNIT}")])
        .output()
        .expect("systemd-analyze verify");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {verify:?}"
    );
    let security = Command::new(analyze)
        .args([
            "security",
            "--offline=true",
            &root_arg,
            "--threshold=14",
            "crypto-report.service",
        ])
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&security.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("crypto-report.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(score <= 1.4, "exposure {score} > 1.4:\n{text}");
    assert!(security.status.success(), "{security:?}");
}
