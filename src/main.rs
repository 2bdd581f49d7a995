//! Entry point: parse the command line, start logging, dispatch the subcommand.

use std::io::{BufReader, BufWriter, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use crypto_report::config::{Cli, Command, ConfigError, HttpArgs, ServeArgs, StoreArgs};
use crypto_report::import::{ImportError, export_jsonl, import_jsonl};
use crypto_report::store::{self, Store, StoreError};
use crypto_report::{AppState, Settings, demo, live, market, serve, shutdown_signal};
use tracing_subscriber::EnvFilter;

/// Allocation-heavy request handling spent about 14% of its CPU in glibc malloc (perf, warm
/// report page); mimalloc's per-thread heaps cut that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread exists: the environment may be modified here only.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        None => run_serve(cli.serve),
        Some(Command::Serve(args)) => run_serve(args),
        Some(Command::Demo(args)) => run_demo(
            args.http,
            std::time::Duration::from_millis(args.demo_interval_ms),
        ),
        Some(Command::Import(args)) => run_import(&args.from, &args.store),
        Some(Command::Export(args)) => run_export(&args.to, &args.store),
        Some(Command::Check(args)) => run_check(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn settings(http: &HttpArgs, listen: std::net::SocketAddr, demo: bool) -> Settings {
    Settings {
        admin_token: http.admin_token.clone(),
        cache_bytes: http.cache_mb << 20,
        request_timeout: http.request_timeout(),
        max_connections: usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        demo,
        ..Settings::new(http.public_url_or(listen))
    }
}

fn hub(http: &HttpArgs) -> live::HubSettings {
    live::HubSettings {
        max_clients: usize::try_from(http.ws_max_clients).unwrap_or(usize::MAX),
        ..live::HubSettings::default()
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    args.http.validate()?;
    let listen = args.http.listen_addr()?;
    let market = args
        .market
        .clone()
        .with_upstream_fallbacks()
        .market_config();
    let path = args.store.store_path();
    let store = Store::open(&path)?;
    tracing::info!(store = %path.display(), "store open");
    let state =
        AppState::new(store, settings(&args.http, listen, false))?.with_hub(hub(&args.http));
    run_server(state, listen, args.http.metrics_listen, move |state| {
        market::Market::start(market, state.store.clone(), state.background())
    })
}

fn run_demo(http: HttpArgs, tick: std::time::Duration) -> anyhow::Result<()> {
    http.validate()?;
    let listen = http.listen_addr()?;
    let (dir, store, summary) = demo::open_seeded()?;
    tracing::info!(store = %dir.path().display(), %summary, "demo store seeded with the sample reports");
    let state = AppState::new(store, settings(&http, listen, true))?.with_hub(hub(&http));
    let result = run_server(state, listen, http.metrics_listen, |state| {
        market::Market::demo(market::DEMO_SEED, tick, state.background())
    });
    drop(dir);
    result
}

/// Serves `state` until a shutdown signal; `market` starts the market feed inside the runtime,
/// in the state's background scope, which `serve` stops at the end.
fn run_server(
    state: AppState,
    listen: std::net::SocketAddr,
    metrics_listen: Option<std::net::SocketAddr>,
    market: impl FnOnce(&AppState) -> market::Market,
) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let market = market(&state);
        let state = state.with_market(market);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listener.local_addr()?, "listening");
        if let Some(addr) = metrics_listen {
            serve_metrics(&state, addr).await?;
        }
        // Tell systemd (Type=notify) we are ready: the store is open and the socket bound.
        // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        crypto_report::systemd::start(&state);
        let shutdown = async {
            shutdown_signal().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        };
        serve(listener, state, shutdown).await?;
        tracing::info!("stopped cleanly");
        Ok(())
    })
}

/// The `--metrics-listen` socket: only `GET /metrics`, stopped with every other task.
async fn serve_metrics(state: &AppState, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    let app = crypto_report::routes::metrics_app(state.clone());
    state
        .background()
        .spawn("metrics listener", |stop| async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    Ok(())
}

fn run_import(from: &str, store_args: &StoreArgs) -> anyhow::Result<()> {
    if from.starts_with("postgres://") || from.starts_with("postgresql://") {
        anyhow::bail!(
            "importing from PostgreSQL is not available in this build; export the table to JSONL and import that file"
        );
    }
    let file = std::fs::File::open(from).with_context(|| format!("cannot open {from}"))?;
    let store = Store::open(&store_args.store_path())?;
    let summary = import_jsonl(&store, BufReader::new(file), |_, _| {})?;
    for s in &summary.skipped {
        match s.id {
            Some(id) => eprintln!("skipped line {} (id {id}): {}", s.line, s.reason),
            None => eprintln!("skipped line {}: {}", s.line, s.reason),
        }
    }
    println!("{summary}");
    Ok(())
}

fn run_export(to: &std::path::Path, store_args: &StoreArgs) -> anyhow::Result<()> {
    let store = Store::open(&store_args.store_path())?;
    let count = if to.as_os_str() == "-" {
        export_jsonl(&store, BufWriter::new(std::io::stdout().lock()))?
    } else {
        // Write beside the target and rename, so a failure never leaves half a backup.
        let tmp = to.with_extension("jsonl.partial");
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let count = export_jsonl(&store, BufWriter::new(file)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        std::fs::rename(&tmp, to).with_context(|| format!("cannot write {}", to.display()))?;
        count
    };
    eprintln!("exported {count} reports");
    Ok(())
}

fn run_check(store_args: &StoreArgs) -> anyhow::Result<()> {
    let path = store_args.store_path();
    let summary = store::check(&path)?;
    println!("store: {}", path.display());
    println!("schema version: {}", summary.schema_version);
    println!("reports: {}", summary.reports);
    println!("date index entries: {}", summary.index_entries);
    println!("cache entries: {}", summary.cache_entries);
    println!("market fields: {}", summary.market_fields);
    println!("history points: {}", summary.history_points);
    if summary.problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        for p in &summary.problems {
            println!("problem: {p}");
        }
        anyhow::bail!("{} problem(s) found in the store", summary.problems.len())
    }
}
