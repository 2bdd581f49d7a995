//! Build facts for `--version`, `/health` and `/metrics`: the git commit (with `-dirty` when
//! a file that goes into the binary differs from it), the build date and the target.
//!
//! The script reruns only when HEAD moves or an input of the binary changes, so an edit to a
//! test never recompiles the crate for a new date. `SOURCE_DATE_EPOCH` fixes the date.

use std::path::Path;
use std::process::Command;

/// What goes into the binary: a change here makes the build `-dirty`.
const INPUTS: [&str; 9] = [
    "src",
    "templates",
    "assets",
    "data/sample-reports.jsonl",
    "systemd",
    "README.md",
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
];

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // HEAD, the branch it names and packed refs: a commit or a checkout changes one of them.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }

    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let mut status = vec!["status", "--porcelain", "--"];
    status.extend(INPUTS);
    let dirty = commit != "unknown" && git(&status).is_some();
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=CR_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=CR_BUILD_DIRTY={dirty}");
    println!("cargo:rustc-env=CR_BUILD_DATE={}", utc_date(seconds));
    println!("cargo:rustc-env=CR_BUILD_TARGET={target}");
}

/// `2026-12-06T21:50:07Z` for unix `seconds` (proleptic Gregorian, UTC).
fn utc_date(seconds: i64) -> String {
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}
