//! The checks of this machine: the data directory, the store in it, the listening ports, the
//! admin token and the public URL.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::Check;
use crate::config::HttpArgs;
use crate::store::{self, Inspection, SCHEMA_VERSION, StoreError};

/// Below this much free space the store cannot be relied on to commit.
pub const FAIL_BELOW_BYTES: u64 = 64 << 20;
/// Below this much (or twice the store, if more) a backup or the store's growth can fill the
/// disk.
pub const WARN_BELOW_BYTES: u64 = 1 << 30;
/// How long the holder of a busy port has to answer.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(3);

fn mib(bytes: u64) -> String {
    if bytes >= 10 << 30 {
        format!("{:.0} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// Writable (a file made, written, synced and removed), and room on its filesystem.
pub fn data_dir(dir: &Path) -> Check {
    const NAME: &str = "data directory";
    let shown = dir.display();
    if let Err(e) = dir.try_exists() {
        return unreadable(NAME, dir, &e);
    }
    if !dir.exists() {
        // serve creates it: the nearest existing folder above must let it.
        let parent = dir.ancestors().skip(1).find(|a| a.is_dir());
        return match parent.map(|p| (p, probe_write(p))) {
            Some((_, Ok(()))) => Check::ok(
                NAME,
                format!("{shown} does not exist yet; serve creates it"),
            ),
            Some((p, Err(e))) => Check::fail(
                NAME,
                format!(
                    "{shown} does not exist and cannot be created in {}: {e}",
                    p.display()
                ),
                "create it for the service's user, or point CR_DATA_DIR at a writable folder",
            ),
            None => Check::fail(
                NAME,
                format!("{shown} cannot be created"),
                "point CR_DATA_DIR at a writable folder",
            ),
        };
    }
    if !dir.is_dir() {
        return Check::fail(
            NAME,
            format!("{shown} is not a directory"),
            "point CR_DATA_DIR at a folder",
        );
    }
    if let Err(e) = probe_write(dir) {
        let advice = if e.raw_os_error() == Some(30) {
            "its filesystem is mounted read-only: remount it read-write, or point CR_DATA_DIR elsewhere"
        } else {
            "give the service's user write access (under systemd the unit's StateDirectory= owns /var/lib/crypto-report), or point CR_DATA_DIR at a writable folder"
        };
        return Check::fail(NAME, format!("cannot write in {shown}: {e}"), advice);
    }
    let stat = match rustix::fs::statvfs(dir) {
        Ok(s) => s,
        Err(e) => {
            return Check::warn(
                NAME,
                format!("{shown} is writable; its free space is unknown ({e})"),
                "check it with df",
            );
        }
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let store = std::fs::metadata(dir.join(store::FILE_NAME)).map_or(0, |m| m.len());
    let want = WARN_BELOW_BYTES.max(store.saturating_mul(2));
    if stat.f_files > 0 && stat.f_favail == 0 {
        return Check::fail(
            NAME,
            format!("{shown} is on a filesystem with no free inodes"),
            "delete files on it or move the data directory",
        );
    }
    if free < FAIL_BELOW_BYTES {
        Check::fail(
            NAME,
            format!("{shown}: only {} free", mib(free)),
            "free space on that filesystem: the store cannot commit reliably",
        )
    } else if free < want {
        Check::warn(
            NAME,
            format!(
                "{shown}: writable, {} free (store {})",
                mib(free),
                mib(store)
            ),
            format!(
                "keep at least {} free: a backup is as large as the store, and the store grows",
                mib(want)
            ),
        )
    } else {
        Check::ok(NAME, format!("{shown}: writable, {} free", mib(free)))
    }
}

/// A path this user may not even look at (the service's state directory is 0700).
fn unreadable(name: &str, path: &Path, e: &std::io::Error) -> Check {
    Check::fail(
        name,
        format!("cannot look at {}: {e}", path.display()),
        "run doctor as root (sudo), or as the user the service runs as",
    )
}

/// A file made, written, synced and removed in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let mut file = tempfile::Builder::new()
        .prefix(".doctor-")
        .tempfile_in(dir)?;
    file.write_all(&[0u8; 4096])?;
    file.as_file().sync_all()?;
    file.close()
}

/// The store's schema against this release's, read without changing the file.
pub fn store(path: &Path) -> Check {
    const NAME: &str = "store";
    let shown = path.display();
    if let Err(e) = path.try_exists() {
        return unreadable(NAME, path, &e);
    }
    match store::inspect(path) {
        Ok(Inspection::Missing) => Check::ok(
            NAME,
            format!("{shown} does not exist yet; serve creates it"),
        ),
        Ok(Inspection::Unclean) => Check::warn(
            NAME,
            format!("{shown} was not closed cleanly (a server or import was killed); not damage"),
            "the next serve or import repairs it on open; `crypto-report check --repair` does it now",
        ),
        Ok(Inspection::Found {
            schema,
            reports,
            written_by,
        }) => {
            let by = written_by
                .map(|v| format!(", last written by {v}"))
                .unwrap_or_default();
            if schema == SCHEMA_VERSION {
                let reports = reports.unwrap_or(0);
                Check::ok(
                    NAME,
                    format!("{shown}: schema {schema} (current), {reports} reports{by}"),
                )
            } else if schema < SCHEMA_VERSION {
                Check::warn(
                    NAME,
                    format!("{shown}: schema {schema}, from an earlier release{by}"),
                    format!(
                        "serve upgrades it in place to schema {SCHEMA_VERSION} at the next start; take a backup first (crypto-report backup --to FILE)"
                    ),
                )
            } else {
                Check::fail(
                    NAME,
                    format!(
                        "{shown}: schema {schema}, written by a newer release{by}; this release reads up to schema {SCHEMA_VERSION}"
                    ),
                    "run that release or a newer one: a store is never downgraded",
                )
            }
        }
        Err(StoreError::Locked(_)) => Check::ok(
            NAME,
            format!("{shown} is in use by a running crypto-report (it opened it)"),
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "restore a backup, or point CR_DATA_DIR elsewhere",
        ),
    }
}

/// Free to bind, or held by a crypto-report that answers `probe_path` (this service).
pub async fn port(name: &str, addr: SocketAddr, probe_path: &str) -> Check {
    match std::net::TcpListener::bind(addr) {
        Ok(listener) => {
            drop(listener);
            if addr.port() < 1024 {
                return Check::warn(
                    name,
                    format!("{addr} is free"),
                    "the systemd unit runs without capabilities and cannot bind a port below 1024: listen on 8000 behind a reverse proxy",
                );
            }
            Check::ok(name, format!("{addr} is free"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match holder(addr, probe_path).await
        {
            Some(version) => Check::ok(
                name,
                format!("{addr} is held by crypto-report {version} (this service, running)"),
            ),
            None => Check::fail(
                name,
                format!("{addr} is held by another program"),
                "stop it, or choose another address (CR_LISTEN / CR_METRICS_LISTEN); `ss -ltnp` names the holder",
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Check::fail(
            name,
            format!("{addr}: {e}"),
            "ports below 1024 need privileges the service does not have: listen on 8000 behind a reverse proxy",
        ),
        Err(e) => Check::fail(
            name,
            format!("cannot listen on {addr}: {e}"),
            "use an address of this machine (127.0.0.1 behind a proxy, or 0.0.0.0)",
        ),
    }
}

/// The version of the crypto-report listening at `addr`, if that is what answers.
async fn holder(mut addr: SocketAddr, path: &str) -> Option<String> {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = reqwest::Client::builder()
        .timeout(HOLDER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    let body = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    if path == "/health" {
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v.get("store")?;
        v.get("version")?.as_str().map(str::to_owned)
    } else {
        body.lines()
            .find(|l| l.starts_with(crate::metrics::names::BUILD_INFO))
            .and_then(|l| l.split("version=\"").nth(1))
            .and_then(|v| v.split('"').next())
            .map(str::to_owned)
    }
}

/// Set and at least as long as `serve` requires.
pub fn admin_token(http: &HttpArgs) -> Check {
    const NAME: &str = "admin token";
    match &http.admin_token {
        None => Check::warn(
            NAME,
            "not set: the admin endpoints (cache, backups through the server, sync now, /metrics from afar) are refused",
            "set CR_ADMIN_TOKEN (openssl rand -hex 32)",
        ),
        Some(t) if t.expose().len() < 16 => Check::fail(
            NAME,
            "CR_ADMIN_TOKEN is shorter than 16 characters: serve refuses to start",
            "use a longer one (openssl rand -hex 32)",
        ),
        Some(_) => Check::ok(NAME, "set (16 characters or more)"),
    }
}

/// Absolute (the parser saw to that), reachable by readers, not the example's placeholder.
pub fn public_url(http: &HttpArgs, listen: Option<SocketAddr>) -> Check {
    const NAME: &str = "public URL";
    let Some(url) = &http.public_url else {
        let fallback = listen.map_or_else(
            || "the listen address".to_owned(),
            |l| format!("http://{l}"),
        );
        return Check::warn(
            NAME,
            format!(
                "CR_PUBLIC_URL is not set: feeds, the sitemap and share cards link to {fallback}"
            ),
            "set CR_PUBLIC_URL to the address readers use (https://reports.example.org)",
        );
    };
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("")
        .to_ascii_lowercase();
    let reserved = ["example.com", "example.org", "example.net"]
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
        || [".example", ".test", ".invalid", ".localhost"]
            .iter()
            .any(|t| host.ends_with(t));
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if reserved {
        Check::warn(
            NAME,
            format!("{url} is a placeholder (a reserved example domain)"),
            "set CR_PUBLIC_URL to the address readers use",
        )
    } else if local {
        Check::warn(
            NAME,
            format!(
                "{url} is this machine's own address: readers elsewhere cannot follow its links"
            ),
            "set CR_PUBLIC_URL to the address readers use",
        )
    } else {
        Check::ok(NAME, format!("{url} (absolute)"))
    }
}
