//! The bodies of the commands: `main.rs` parses the command line, starts logging and calls
//! one of these.

pub mod serve;
pub mod store;

use anyhow::Context;

pub use self::serve::{demo, serve};
pub use self::store::{backup, check, export, import};
use crate::config::{AnnounceAction, AnnounceCommand, DoctorArgs};

/// Threads of the blocking pool (store reads and writes, the second cache tier, imports):
/// Tokio's default is 512, and every one of them keeps an allocator heap of its own.
const BLOCKING_THREADS: usize = 32;
/// An idle blocking thread exits after this long, and the memory its heap kept goes with it.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// The multi-thread runtime of the commands that serve or ask a server.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("cannot start the async runtime")
}

/// Why a password belongs outside a URL given on the command line, and where to put it.
fn password_advice(option: &str) -> String {
    format!(
        "the password in the {option} URL can be read by every user of this machine (ps, /proc); leave it out of the URL and set PGPASSWORD, or put it in a password file (passfile=/path in the URL, PGPASSFILE, or ~/.pgpass, mode 0600)"
    )
}

/// `crypto-report doctor`: fails when a check fails.
pub fn doctor(args: &DoctorArgs) -> anyhow::Result<()> {
    if crate::doctor::run(args, &mut std::io::stdout().lock())? {
        Ok(())
    } else {
        anyhow::bail!("doctor: at least one check failed")
    }
}

/// `crypto-report announce test --target NAME`: one test message, the target's answer printed.
pub fn announce(args: AnnounceCommand) -> anyhow::Result<()> {
    let AnnounceAction::Test {
        target,
        announce,
        public_url,
    } = args.action;
    let settings = announce.settings()?;
    let public_url = public_url.unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let line = runtime()?.block_on(crate::announce::send_test(&settings, &target, &public_url))?;
    println!("{line}");
    Ok(())
}
