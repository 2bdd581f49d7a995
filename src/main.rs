//! Entry point: parse the command line, start logging, dispatch the subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use crypto_report::commands;
use crypto_report::config::{Cli, Command, ConfigError};
use crypto_report::import::ImportError;
use crypto_report::store::{self, StoreError};
use tracing_subscriber::EnvFilter;

/// Allocation-heavy request handling spent about 14% of its CPU in glibc malloc (perf, warm
/// report page); mimalloc's per-thread heaps cut that. (Its v2 line, tried for the importer's
/// peak RSS, held 238 MiB instead of 187 MiB with 10,000 WebSocket clients: scripts/bench-ws.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    crypto_report::allocator::with_options();
    // Before any thread exists: the environment may be modified here only.
    if let Err(e) = crypto_report::config::load_env_files() {
        eprintln!("error: {e}");
        return ExitCode::from(78);
    }
    let cli = Cli::parse_args();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    // A panic is a bug: one line in the log, not a backtrace on a reader's terminal.
    std::panic::set_hook(Box::new(|info| {
        if store::panic_is_handled() {
            return; // a damaged store, reported as such by the caller
        }
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!("internal error: {what}{location}");
    }));
    let result = std::panic::catch_unwind(move || dispatch(cli)).unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "internal error (a bug): the command stopped"
        ))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => commands::serve(cli.serve),
        Some(Command::Serve(args)) => commands::serve(args),
        Some(Command::Demo(args)) => commands::demo(
            args.http,
            std::time::Duration::from_millis(args.demo_interval_ms),
            &args.cluster,
        ),
        Some(Command::Import(args)) => commands::import(&args),
        Some(Command::Export(args)) => commands::export(&args.to, &args.store),
        Some(Command::Check(args)) => commands::check(&args),
        Some(Command::Backup(args)) => commands::backup(&args),
        Some(Command::Doctor(args)) => commands::doctor(&args),
        Some(Command::Announce(args)) => commands::announce(args),
        Some(Command::Systemd(args)) => Ok(crypto_report::systemd::install::run(
            &args,
            &mut std::io::stdout().lock(),
        )?),
    }
}

/// 75 when the store is held by another process, 78 for configuration errors, else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return s.exit_code();
        }
        if let Some(ImportError::Store(s)) = cause.downcast_ref::<ImportError>() {
            return s.exit_code();
        }
        if cause.downcast_ref::<ConfigError>().is_some() {
            return 78;
        }
    }
    1
}
