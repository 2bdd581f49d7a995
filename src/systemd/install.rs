//! `crypto-report systemd …`: the hardened unit and the environment example travel inside the
//! binary (the same bytes as `systemd/` in the repository), are printed on request, and are
//! installed where systemd reads them without ever replacing a file that is already there.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

/// `systemd/crypto-report.service`.
pub const UNIT: &str = include_str!("../../systemd/crypto-report.service");
/// `systemd/crypto-report.env.example`.
pub const ENV_EXAMPLE: &str = include_str!("../../systemd/crypto-report.env.example");
/// The README, installed where the unit's `Documentation=` points.
const README: &str = include_str!("../../README.md");

/// Where `install` puts each file (under `--root`).
pub const BINARY_PATH: &str = "usr/local/bin/crypto-report";
pub const UNIT_PATH: &str = "etc/systemd/system/crypto-report.service";
pub const ENV_PATH: &str = "etc/crypto-report/crypto-report.env";
pub const README_PATH: &str = "usr/local/share/doc/crypto-report/README.md";

#[derive(Args, Debug, Clone)]
pub struct SystemdArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Action {
    /// Print the hardened unit file (what `install` writes to
    /// /etc/systemd/system/crypto-report.service).
    PrintUnit,
    /// Print the environment file example (what `install` writes to
    /// /etc/crypto-report/crypto-report.env).
    PrintEnv,
    /// Install the unit, the environment file, this binary as /usr/local/bin/crypto-report
    /// and the README, each only where no file is yet (an existing one is never replaced);
    /// then print the commands that start the service. Needs root unless --root is given.
    Install(InstallArgs),
}

#[derive(Args, Debug, Clone)]
pub struct InstallArgs {
    /// Say what would be written and kept; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Install under this directory instead of / (an image being built, a test).
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "installing into {0} needs root: run `sudo crypto-report systemd install` (or add --dry-run to see what it would do)"
    )]
    NotRoot(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs `crypto-report systemd <action>`, writing what it does to `out`.
pub fn run(args: &SystemdArgs, out: &mut impl Write) -> Result<(), InstallError> {
    let written = match &args.action {
        Action::PrintUnit => out.write_all(UNIT.as_bytes()),
        Action::PrintEnv => out.write_all(ENV_EXAMPLE.as_bytes()),
        Action::Install(install) => return run_install(install, out),
    };
    written.map_err(|source| InstallError::Write {
        path: "standard output".into(),
        source,
    })
}

/// One file `install` is responsible for.
struct Item {
    path: PathBuf,
    mode: u32,
    dir_mode: u32,
    contents: Contents,
    /// Replaced when it differs (the README describes the binary; nobody edits it).
    refresh: bool,
}

enum Contents {
    Text(&'static str),
    /// The running program's file.
    Program(PathBuf),
}

/// What `install` did (or would do) with one item.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Written,
    Same,
    /// Kept as it is, though this release's file differs.
    KeptDifferent,
    Updated,
}

fn run_install(args: &InstallArgs, out: &mut impl Write) -> Result<(), InstallError> {
    let root = &args.root;
    if !args.dry_run && root == Path::new("/") && !rustix::process::geteuid().is_root() {
        return Err(InstallError::NotRoot(root.clone()));
    }
    let program = std::env::current_exe().map_err(|source| InstallError::Read {
        path: "the running program".into(),
        source,
    })?;
    let items = [
        Item {
            path: root.join(BINARY_PATH),
            mode: 0o755,
            dir_mode: 0o755,
            contents: Contents::Program(program.clone()),
            refresh: false,
        },
        Item {
            path: root.join(UNIT_PATH),
            mode: 0o644,
            dir_mode: 0o755,
            contents: Contents::Text(UNIT),
            refresh: false,
        },
        Item {
            path: root.join(ENV_PATH),
            mode: 0o640,
            dir_mode: 0o750,
            contents: Contents::Text(ENV_EXAMPLE),
            refresh: false,
        },
        Item {
            path: root.join(README_PATH),
            mode: 0o644,
            dir_mode: 0o755,
            contents: Contents::Text(README),
            refresh: true,
        },
    ];
    let say = |out: &mut dyn Write, line: String| {
        writeln!(out, "{line}").map_err(|source| InstallError::Write {
            path: "standard output".into(),
            source,
        })
    };
    let mut kept_different = Vec::new();
    for item in &items {
        let outcome = install(item, args.dry_run)?;
        let path = item.path.display();
        let line = match (&outcome, args.dry_run) {
            (Outcome::Written, false) => format!("wrote {path}"),
            (Outcome::Written, true) => format!("would write {path}"),
            (Outcome::Updated, false) => format!("updated {path}"),
            (Outcome::Updated, true) => format!("would update {path}"),
            (Outcome::Same, _) => format!("kept {path} (the same as this release's)"),
            (Outcome::KeptDifferent, _) => {
                kept_different.push(item);
                format!("kept {path} (yours: it differs from this release's; never replaced)")
            }
        };
        say(out, line)?;
    }
    for item in kept_different {
        let path = item.path.display();
        let hint = match &item.contents {
            Contents::Program(program) => format!(
                "  to run this build instead: install -m 0755 {} {path} && systemctl restart crypto-report",
                program.display()
            ),
            Contents::Text(text) if std::ptr::eq(*text, UNIT) => {
                format!("  compare: crypto-report systemd print-unit | diff {path} -")
            }
            Contents::Text(_) => {
                format!("  compare: crypto-report systemd print-env | diff {path} -")
            }
        };
        say(out, hint)?;
    }
    let env = root.join(ENV_PATH);
    let next = [
        String::new(),
        "next:".into(),
        format!(
            "  edit {} (CR_PUBLIC_URL, CR_ADMIN_TOKEN, provider keys)",
            env.display()
        ),
        format!("  crypto-report doctor --env-file {}", env.display()),
        "  systemctl daemon-reload".into(),
        "  systemctl enable --now crypto-report".into(),
    ];
    for line in next {
        say(out, line)?;
    }
    Ok(())
}

/// Writes `item` unless a file is there already (a refreshable one when it differs).
fn install(item: &Item, dry_run: bool) -> Result<Outcome, InstallError> {
    let path = &item.path;
    let read_err = |source| InstallError::Read {
        path: path.clone(),
        source,
    };
    let existing = match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(read_err(e)),
    };
    let wanted = match &item.contents {
        Contents::Text(text) => text.as_bytes().to_vec(),
        Contents::Program(program) => {
            std::fs::read(program).map_err(|source| InstallError::Read {
                path: program.clone(),
                source,
            })?
        }
    };
    let outcome = match existing {
        None => Outcome::Written,
        Some(bytes) if bytes == wanted => return Ok(Outcome::Same),
        Some(_) if item.refresh => Outcome::Updated,
        Some(_) => return Ok(Outcome::KeptDifferent),
    };
    if dry_run {
        return Ok(outcome);
    }
    let write_err = |source| InstallError::Write {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(item.dir_mode)
            .create(dir)
            .map_err(write_err)?;
    }
    // Written beside the target, then moved into place: a reader (or a crash) never sees
    // half a file. A new file is linked, so a file that appeared meanwhile is not replaced.
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(item.mode)
            .open(&partial)?;
        file.set_permissions(std::fs::Permissions::from_mode(item.mode))?;
        file.write_all(&wanted)?;
        file.sync_all()?;
        if outcome == Outcome::Updated {
            std::fs::rename(&partial, path)
        } else {
            std::fs::hard_link(&partial, path).and_then(|()| std::fs::remove_file(&partial))
        }
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map_err(write_err)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_files_are_the_repositorys() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd");
        let unit = std::fs::read_to_string(format!("{dir}/crypto-report.service")).expect("unit");
        let env = std::fs::read_to_string(format!("{dir}/crypto-report.env.example")).expect("env");
        assert_eq!(UNIT, unit);
        assert_eq!(ENV_EXAMPLE, env);
        // The unit reads the file where install puts it and runs the binary it installs.
        assert!(UNIT.contains(&format!("EnvironmentFile=-/{ENV_PATH}\n")));
        assert!(UNIT.contains(&format!("ExecStart=/{BINARY_PATH} serve\n")));
        assert!(UNIT.contains(&format!("Documentation=file:///{README_PATH}\n")));
    }
}
