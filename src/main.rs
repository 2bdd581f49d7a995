//! Entry point: parse the command line, start logging, dispatch the subcommand.

use std::io::{BufReader, BufWriter, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use crypto_report::cluster::Cluster;
use crypto_report::config::{
    BackupArgs, CheckArgs, Cli, ClusterArgs, Command, ConfigError, HttpArgs, ImportArgs, ServeArgs,
    StoreArgs, SyncArgs,
};
use crypto_report::import::postgres::{self, Source};
use crypto_report::import::{
    ImportError, ImportSummary, export_jsonl, export_jsonl_read_only, import_jsonl,
};
use crypto_report::reports::Publisher;
use crypto_report::store::{self, ReadOnlyStore, Store, StoreError};
use crypto_report::{AppState, Settings, demo, live, market, serve, shutdown_signal, sync};
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
        None => run_serve(cli.serve),
        Some(Command::Serve(args)) => run_serve(args),
        Some(Command::Demo(args)) => run_demo(
            args.http,
            std::time::Duration::from_millis(args.demo_interval_ms),
            &args.cluster,
        ),
        Some(Command::Import(args)) => run_import(&args),
        Some(Command::Export(args)) => run_export(&args.to, &args.store),
        Some(Command::Check(args)) => run_check(&args),
        Some(Command::Backup(args)) => run_backup(&args),
        Some(Command::Doctor(args)) => run_doctor(&args),
        Some(Command::Systemd(args)) => Ok(crypto_report::systemd::install::run(
            &args,
            &mut std::io::stdout().lock(),
        )?),
    }
}

fn run_doctor(args: &crypto_report::config::DoctorArgs) -> anyhow::Result<()> {
    if crypto_report::doctor::run(args, &mut std::io::stdout().lock())? {
        Ok(())
    } else {
        anyhow::bail!("doctor: at least one check failed")
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

/// Threads of the blocking pool (store reads and writes, the second cache tier, imports):
/// Tokio's default is 512, and every one of them keeps an allocator heap of its own.
const BLOCKING_THREADS: usize = 32;
/// An idle blocking thread exits after this long, and the memory its heap kept goes with it.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("cannot start the async runtime")
}

fn settings(http: &HttpArgs, listen: std::net::SocketAddr, demo: bool) -> Settings {
    Settings {
        admin_token: http.admin_token.clone(),
        cache_bytes: http.cache_mb << 20,
        l2_cache_bytes: http.l2_cache_mb << 20,
        request_timeout: http.request_timeout(),
        max_connections: usize::try_from(http.max_connections).unwrap_or(usize::MAX),
        demo,
        search: http.search_pool(),
        render: http.render_pool(),
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
    let source = sync_source(&args.sync)?;
    let path = args.store.store_path();
    let store = Store::open(&path)?;
    tracing::info!(store = %path.display(), "store open");
    let state =
        AppState::new(store, settings(&args.http, listen, false))?.with_hub(hub(&args.http));
    let redis = args.cluster.url();
    let prefix = args.cluster.redis_prefix.clone();
    let sync_every = args.sync.sync_every;
    run_server(state, listen, args.http.metrics_listen, move |state| {
        // Inside the runtime: the Redis connection and the tasks need it.
        state.start_market_history(&market);
        let store = state.store.clone();
        let start: market::elected::Start =
            Box::new(move |scope| market::Market::start(market.clone(), store.clone(), scope));
        let mut state = match redis {
            Some(url) => join_cluster(state, &url, &prefix, start)?,
            None => {
                let live = start(state.background());
                state.with_market(live)
            }
        };
        // Last: the sync publishes through everything set up above.
        if let Some(source) = source {
            tracing::info!(source = source.at(), every = ?sync_every, "syncing reports from PostgreSQL");
            let sync = sync::Sync::new(source, state.publisher.clone(), sync_every);
            state = state.with_sync(sync);
        }
        Ok(state)
    })
}

/// `state` as one of several instances sharing the Redis at `url`: the shared L2, the bus, and
/// the market feed `start` makes, run only while this instance holds the lease.
fn join_cluster(
    state: AppState,
    url: &crypto_report::secret::Secret,
    prefix: &str,
    start: market::elected::Start,
) -> anyhow::Result<AppState> {
    let cluster = Cluster::new(url, prefix).map_err(|reason| ConfigError {
        option: "--redis-url / CR_REDIS_URL / REDIS_URL",
        reason,
    })?;
    tracing::info!(redis = %cluster.health()["redis"]["at"], "one of several instances sharing Redis");
    let elected = market::Market::elected(start, state.background());
    let state = state
        .with_l2(cluster.l2())
        .with_market(elected)
        .with_cluster(cluster.clone());
    cluster.start(&state.cluster_parts(), state.background());
    Ok(state)
}

/// Why a password belongs outside a URL given on the command line, and where to put it.
fn password_advice(option: &str) -> String {
    format!(
        "the password in the {option} URL can be read by every user of this machine (ps, /proc); leave it out of the URL and set PGPASSWORD, or put it in a password file (passfile=/path in the URL, PGPASSFILE, or ~/.pgpass, mode 0600)"
    )
}

/// Whether `value` was given on this process's command line (where `ps` shows it), not in
/// the environment.
fn on_command_line(value: &str) -> bool {
    std::env::args_os().any(|a| a.to_string_lossy().contains(value))
}

/// The PostgreSQL source of `serve --sync-from` (or `CR_PG_URL`, or `DATABASE_URL`).
fn sync_source(args: &SyncArgs) -> Result<Option<Source>, ConfigError> {
    let Some(url) = args.source() else {
        return Ok(None);
    };
    let source = Source::parse(url.expose(), args.pg_timeout()).map_err(|e| ConfigError {
        option: "--sync-from / CR_PG_URL / DATABASE_URL",
        reason: e.to_string(),
    })?;
    if source.password_in_url() && on_command_line(url.expose()) {
        tracing::warn!("{}", password_advice("--sync-from"));
    }
    Ok(Some(source))
}

fn run_demo(
    http: HttpArgs,
    tick: std::time::Duration,
    cluster: &ClusterArgs,
) -> anyhow::Result<()> {
    http.validate()?;
    let listen = http.listen_addr()?;
    let (dir, store) = demo::open()?;
    let state = AppState::new(store, settings(&http, listen, true))?.with_hub(hub(&http));
    let summary = demo::seed(&state.publisher)?;
    tracing::info!(store = %dir.path().display(), %summary, "demo store seeded with the sample reports");
    let redis = cluster.url();
    let prefix = cluster.redis_prefix.clone();
    let result = run_server(state, listen, http.metrics_listen, move |state| {
        let start: market::elected::Start =
            Box::new(move |scope| market::Market::demo(market::DEMO_SEED, tick, scope));
        match redis {
            Some(url) => join_cluster(state, &url, &prefix, start),
            None => {
                let feed = start(state.background());
                Ok(state.with_market(feed))
            }
        }
    });
    drop(dir);
    result
}

/// Serves `state` until a shutdown signal; `setup` finishes the state inside the runtime
/// (market feed, Redis, sync), in the state's background scope, which `serve` stops at the end.
fn run_server(
    state: AppState,
    listen: std::net::SocketAddr,
    metrics_listen: Option<std::net::SocketAddr>,
    setup: impl FnOnce(AppState) -> anyhow::Result<AppState>,
) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let state = setup(state)?;
        state.search.start(state.background());
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
        let l2 = std::sync::Arc::clone(state.pages.l2());
        state.background().spawn("l2 purge", |stop| async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(crypto_report::cache::l2::PURGE_EVERY) => {}
                }
                match l2.purge_expired().await {
                    Ok(n) if n > 0 => tracing::debug!(purged = n, "expired L2 entries dropped"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot purge the L2 tier"),
                }
            }
        });
        if let Some(sync) = state.sync.clone() {
            state
                .background()
                .spawn("sync", |stop| async move { sync.run(stop).await });
        }
        let l2 = std::sync::Arc::clone(state.pages.l2());
        serve(listener, state, shutdown).await?;
        // Second-tier writes are not durable one by one: one durable commit keeps them.
        if let Err(e) = l2.flush().await {
            tracing::warn!(error = %e, "cannot flush the page cache at shutdown");
        }
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

fn run_import(args: &ImportArgs) -> anyhow::Result<()> {
    let from = args.from.expose();
    let mut summary = ImportSummary::default();
    let result = if postgres::is_postgres_url(from) {
        // Parsed before the store is opened: a bad URL changes nothing.
        let source =
            Source::parse(from, std::time::Duration::from_secs(args.pg_timeout)).map_err(|e| {
                ConfigError {
                    option: "--from",
                    reason: e.to_string(),
                }
            })?;
        if source.password_in_url() {
            eprintln!("warning: {}", password_advice("--from"));
        }
        let publisher = Publisher::new(std::sync::Arc::new(Store::open(&args.store.store_path())?));
        // One thread runs the connection and the walk, the blocking pool commits: a
        // multi-thread runtime only adds heaps that hold freed rows.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(import_postgres(&source, &publisher, &mut summary))
    } else {
        // A value that looks like a URL may hold a password: never repeat it.
        let file = std::fs::File::open(from).with_context(|| {
            if from.contains("://") || from.contains('@') {
                "--from is neither a postgres:// URL nor a file that can be read".to_owned()
            } else {
                format!("cannot open {from}")
            }
        })?;
        let publisher = Publisher::new(std::sync::Arc::new(Store::open(&args.store.store_path())?));
        import_jsonl(&publisher, BufReader::new(file), &mut summary)
    };
    for s in &summary.skipped {
        eprintln!("{s}");
    }
    match result {
        Ok(()) => {
            println!("{summary}");
            Ok(())
        }
        Err(e) => {
            // What landed before the error stays landed: say what it was.
            println!("{summary} (committed before the error)");
            Err(e.into())
        }
    }
}

/// One import pass from PostgreSQL, with a progress bar on a terminal.
async fn import_postgres(
    source: &Source,
    publisher: &Publisher,
    summary: &mut ImportSummary,
) -> Result<(), ImportError> {
    let conn = source.connect().await?;
    let table = conn.table();
    let tls = if conn.encrypted().await? {
        "over TLS"
    } else {
        "unencrypted"
    };
    let english = if table.html_en {
        ""
    } else {
        ", no English columns"
    };
    eprintln!(
        "importing from table {} at {} ({tls}{english})",
        table.name,
        source.at()
    );
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr())
            .with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
    let mut progress = |p: postgres::Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let result = conn.import(publisher, summary, &mut progress).await;
    bar.finish_and_clear();
    result
}

fn run_export(to: &std::path::Path, store_args: &StoreArgs) -> anyhow::Result<()> {
    let path = store_args.store_path();
    // A store damaged where redb looks when opening for writing can still be read.
    let store = match Store::open_existing(&path) {
        Ok(store) => Ok(store),
        Err(StoreError::Unreadable(why)) => {
            eprintln!("{why}; exporting from a read-only view of it");
            Err(ReadOnlyStore::open(&path)?)
        }
        Err(e) => return Err(e.into()),
    };
    let export = |out: &mut dyn std::io::Write| match &store {
        Ok(store) => export_jsonl(store, out),
        Err(read_only) => export_jsonl_read_only(read_only, out),
    };
    let summary = if to.as_os_str() == "-" {
        export(&mut BufWriter::new(std::io::stdout().lock()))?
    } else {
        // Write beside the target and rename, so a failure never leaves half a backup.
        let tmp = to.with_extension("jsonl.partial");
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let summary = export(&mut BufWriter::new(file)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        std::fs::rename(&tmp, to).with_context(|| format!("cannot write {}", to.display()))?;
        summary
    };
    eprintln!("exported {} reports", summary.written);
    for gap in &summary.gaps {
        eprintln!("walked around damage: {gap}");
    }
    for (id, why) in &summary.unreadable {
        eprintln!("not exported: report {id}: {why}");
    }
    if !summary.unreadable.is_empty() {
        anyhow::bail!(
            "{} damaged report(s) could not be exported; every other report the store names was",
            summary.unreadable.len()
        );
    }
    Ok(())
}

fn run_check(args: &CheckArgs) -> anyhow::Result<()> {
    let path = args.store.store_path();
    let summary = store::check(&path, args.repair)?;
    println!("store: {}", path.display());
    println!("schema version: {}", summary.schema_version);
    println!("reports: {}", summary.reports);
    println!("date index entries: {}", summary.index_entries);
    println!("market fields: {}", summary.market_fields);
    println!("history points: {}", summary.history_points);
    for note in &summary.notes {
        println!("note: {note}");
    }
    if summary.problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        for p in &summary.problems {
            println!("problem: {p}");
        }
        anyhow::bail!(
            "{} problem(s) found in the store; re-import the damaged reports (or restore a backup)",
            summary.problems.len()
        )
    }
}

/// A consistent copy of the store in `args.to`, verified before it takes that name: taken
/// here when the store is free, by the running server when it holds the store.
fn run_backup(args: &BackupArgs) -> anyhow::Result<()> {
    let partial = args.to.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let how = match Store::open_existing(&args.store.store_path()) {
        Ok(store) => {
            store.backup_to(&partial)?;
            "taken from the store".to_owned()
        }
        Err(StoreError::Locked(_)) => {
            let server = backup_server(args)?;
            let token = args.admin_token.as_ref().ok_or_else(|| ConfigError {
                option: "--admin-token / CR_ADMIN_TOKEN",
                reason: "a running server holds the store; its admin token is needed to ask it for the copy".into(),
            })?;
            runtime()?.block_on(fetch_backup(&server, token.expose(), &partial))?;
            format!("taken by the server at {server}")
        }
        Err(e) => return Err(e.into()),
    };
    let verified = store::check(&partial, false).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    if !verified.problems.is_empty() {
        for p in &verified.problems {
            eprintln!("problem in the copy: {p}");
        }
        anyhow::bail!(
            "the copy in {} has {} problem(s); it was not renamed to {}",
            partial.display(),
            verified.problems.len(),
            args.to.display()
        );
    }
    std::fs::rename(&partial, &args.to)
        .with_context(|| format!("cannot write {}", args.to.display()))?;
    println!(
        "backup of {} reports {how}, verified: {}",
        verified.reports,
        args.to.display()
    );
    Ok(())
}

/// `--server`, else where `serve` listens by the same configuration (CR_LISTEN, HOST/PORT).
fn backup_server(args: &BackupArgs) -> Result<String, ConfigError> {
    if let Some(server) = &args.server {
        return Ok(server.clone());
    }
    let http = Cli::try_parse_from(["crypto-report"])
        .map(|cli| cli.serve.http)
        .map_err(|e| ConfigError {
            option: "--server",
            reason: e.to_string(),
        })?;
    let mut addr = http.listen_addr()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{addr}"))
}

async fn fetch_backup(server: &str, token: &str, to: &std::path::Path) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let response = reqwest::Client::new()
        .post(format!("{server}/admin/backup"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {server}"))?;
    if !response.status().is_success() {
        anyhow::bail!(
            "the server at {server} refused the backup: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    let mut file = tokio::fs::File::create(to)
        .await
        .with_context(|| format!("cannot create {}", to.display()))?;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("the download from {server} broke off"))?;
        file.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write {}", to.display()))?;
    }
    file.sync_all().await?;
    Ok(())
}
