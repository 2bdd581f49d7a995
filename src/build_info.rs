//! What this binary is: version, git commit, build date, target and the oldest glibc it runs
//! on, for `--version`, `/health` and `/metrics`. The commit, date and target come from
//! build.rs; the glibc floor is read from the program file itself (build_info/elf.rs), so it
//! is true of whatever linked it, a portable release or a developer's `cargo build`.

pub mod elf;

use std::sync::OnceLock;

/// The facts of this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: &'static str,
    /// Short git commit, `unknown` when built outside a git checkout.
    pub commit: &'static str,
    /// A file that goes into the binary differed from the commit.
    pub dirty: bool,
    /// UTC, RFC 3339 (`SOURCE_DATE_EPOCH` when it was set).
    pub date: &'static str,
    pub target: &'static str,
    pub glibc: Glibc,
}

/// The newest glibc symbol version the program needs: the oldest glibc it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Glibc {
    Floor(String),
    /// Linked without glibc (statically, or against another C library).
    None,
    /// The program file could not be read.
    Unknown,
}

impl std::fmt::Display for Glibc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Glibc::Floor(v) => f.write_str(v),
            Glibc::None => f.write_str("none"),
            Glibc::Unknown => f.write_str("unknown"),
        }
    }
}

impl BuildInfo {
    /// This program's build facts, read once per process.
    pub fn get() -> &'static BuildInfo {
        static INFO: OnceLock<BuildInfo> = OnceLock::new();
        INFO.get_or_init(|| BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            commit: env!("CR_BUILD_COMMIT"),
            dirty: env!("CR_BUILD_DIRTY") == "true",
            date: env!("CR_BUILD_DATE"),
            target: env!("CR_BUILD_TARGET"),
            glibc: program_glibc(),
        })
    }

    /// `0123456789ab` or `0123456789ab-dirty`.
    pub fn commit_label(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.commit)
        } else {
            self.commit.to_owned()
        }
    }

    /// The text of `--version` (after the program name).
    pub fn long_version(&self) -> String {
        let glibc = match &self.glibc {
            Glibc::Floor(v) => format!("{v} or newer"),
            other => other.to_string(),
        };
        format!(
            "{}\ncommit: {}\nbuilt: {}\ntarget: {}\nglibc: {glibc}",
            self.version,
            self.commit_label(),
            self.date,
            self.target
        )
    }

    /// The `build` object of `/health`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "commit": self.commit_label(),
            "date": self.date,
            "target": self.target,
            "glibc": self.glibc.to_string(),
        })
    }
}

fn program_glibc() -> Glibc {
    let Ok(mut file) = std::env::current_exe().and_then(std::fs::File::open) else {
        return Glibc::Unknown;
    };
    match elf::glibc_floor(&mut file) {
        Ok(Some(v)) => Glibc::Floor(v),
        Ok(None) => Glibc::None,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the glibc floor of the program");
            Glibc::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_names_every_fact() {
        let info = BuildInfo {
            version: "1.2.3",
            commit: "0123456789ab",
            dirty: true,
            date: "2026-12-06T21:50:07Z",
            target: "x86_64-unknown-linux-gnu",
            glibc: Glibc::Floor("2.17".into()),
        };
        assert_eq!(
            info.long_version(),
            "1.2.3\ncommit: 0123456789ab-dirty\nbuilt: 2026-12-06T21:50:07Z\ntarget: x86_64-unknown-linux-gnu\nglibc: 2.17 or newer"
        );
        assert_eq!(info.json()["commit"], "0123456789ab-dirty");
        assert_eq!(info.json()["glibc"], "2.17");
    }

    #[test]
    fn this_build_knows_its_facts() {
        let info = BuildInfo::get();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(
            info.date.ends_with('Z') && info.date.len() == 20,
            "{}",
            info.date
        );
        assert!(info.target.contains("linux"), "{}", info.target);
        // A test binary on glibc Linux is dynamically linked against it.
        assert!(matches!(info.glibc, Glibc::Floor(_)), "{:?}", info.glibc);
    }
}
