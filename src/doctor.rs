//! `crypto-report doctor`: checks what an operator gets wrong, with the configuration `serve`
//! would use, and says for each check ok, warn or fail and what to do. Local checks are in
//! doctor/local.rs, the ones that reach another server in doctor/remote.rs. Nothing here
//! prints a secret: messages name options, hosts and providers, never a value of a key.

mod local;
mod remote;

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::config::ServeArgs;

#[derive(Args, Debug, Clone)]
pub struct DoctorArgs {
    /// One JSON object on standard output instead of the table (for scripts).
    #[arg(long)]
    pub json: bool,
    /// The configuration to check: the same options as `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One check's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Level,
    pub message: String,
    /// What to do about a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl Check {
    pub fn ok(check: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            status: Level::Ok,
            message: message.into(),
            advice: None,
        }
    }

    pub fn warn(
        check: impl Into<String>,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) -> Check {
        Check {
            status: Level::Warn,
            advice: Some(advice.into()),
            ..Check::ok(check, message)
        }
    }

    pub fn fail(
        check: impl Into<String>,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) -> Check {
        Check {
            status: Level::Fail,
            advice: Some(advice.into()),
            ..Check::ok(check, message)
        }
    }
}

/// Every check, in the order they are shown.
pub async fn run_checks(args: &DoctorArgs) -> Vec<Check> {
    let serve = &args.serve;
    let mut checks = Vec::new();
    let dir = &serve.store.data_dir;
    checks.push(local::data_dir(dir));
    checks.push(local::store(&serve.store.store_path()));
    let listen = serve.http.listen_addr();
    match &listen {
        Ok(addr) => checks.push(local::port("port", *addr, "/health").await),
        Err(e) => checks.push(Check::fail(
            "port",
            e.to_string(),
            "set CR_LISTEN to an address such as 127.0.0.1:8000",
        )),
    }
    if let Some(addr) = serve.http.metrics_listen {
        checks.push(local::port("metrics port", addr, "/metrics").await);
    }
    checks.push(local::admin_token(&serve.http));
    checks.push(local::public_url(&serve.http, listen.ok()));
    checks.extend(remote::all(serve).await);
    checks
}

/// Runs `doctor`, writes its table (or JSON) to `out`; true when no check failed.
pub fn run(args: &DoctorArgs, out: &mut impl Write) -> std::io::Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let checks = runtime.block_on(run_checks(args));
    let failed = checks.iter().any(|c| c.status == Level::Fail);
    if args.json {
        let count = |l| checks.iter().filter(|c| c.status == l).count();
        let body = serde_json::json!({
            "ok": !failed,
            "build": crate::build_info::BuildInfo::get().json(),
            "counts": {
                "ok": count(Level::Ok),
                "warn": count(Level::Warn),
                "fail": count(Level::Fail),
            },
            "checks": checks,
        });
        writeln!(out, "{body}")?;
    } else {
        write_table(&checks, out)?;
    }
    Ok(!failed)
}

/// `ok    name        message` with the advice indented under it.
fn write_table(checks: &[Check], out: &mut impl Write) -> std::io::Result<()> {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    for c in checks {
        let status = match c.status {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        writeln!(out, "{status:<5} {:<width$}  {}", c.check, c.message)?;
        if let Some(advice) = &c.advice {
            writeln!(out, "{:<5} {:<width$}  -> {advice}", "", "")?;
        }
    }
    let count = |l| checks.iter().filter(|c| c.status == l).count();
    writeln!(
        out,
        "\n{} ok, {} warning(s), {} failure(s)",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_advice_under_its_check() {
        let checks = [
            Check::ok("store", "schema 2"),
            Check::fail("admin token", "too short", "make it longer"),
        ];
        let mut out = Vec::new();
        write_table(&checks, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "ok    store        schema 2\nFAIL  admin token  too short\n                   -> make it longer\n\n1 ok, 0 warning(s), 1 failure(s)\n"
        );
    }
}
