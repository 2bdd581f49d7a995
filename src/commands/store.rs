//! The commands on a store: `import`, `export`, `check` and `backup`.

use std::io::{BufReader, BufWriter};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use super::{password_advice, runtime};
use crate::config::{BackupArgs, CheckArgs, Cli, ConfigError, ImportArgs, StoreArgs};
use crate::import::postgres::{self, Source};
use crate::import::{
    ImportError, ImportSummary, export_jsonl, export_jsonl_read_only, import_jsonl,
};
use crate::reports::Publisher;
use crate::reports::outbox::Announcing;
use crate::store::{self, ReadOnlyStore, Store, StoreError};

/// How long `backup` waits for the server to accept its connection.
const BACKUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `backup` waits for the server's answer, and then for each part of the copy: the
/// server takes the copy before it answers (one read transaction of the whole store), and a
/// download that stops moving this long is broken off.
const BACKUP_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// The import's publisher: with `--announce-new`, queueing announcements of new reports.
fn import_publisher(args: &ImportArgs) -> anyhow::Result<Publisher> {
    let targets = if args.announce_new {
        let names = args.announce.settings()?.names();
        if names.is_empty() {
            return Err(ConfigError {
                option: "--announce-new",
                reason: "needs at least one target (--announce URL or CR_ANNOUNCE)".into(),
            }
            .into());
        }
        names
    } else {
        Vec::new()
    };
    let store = std::sync::Arc::new(Store::open(&args.store.store_path())?);
    Ok(Publisher::new(store).announcing(Announcing::new(targets, true)))
}

pub fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let from = args.from.expose();
    let mut summary = ImportSummary::default();
    let result =
        if postgres::is_postgres_url(from) {
            // Parsed before the store is opened: a bad URL changes nothing.
            let source = Source::parse(from, std::time::Duration::from_secs(args.pg_timeout))
                .map_err(|e| ConfigError {
                    option: "--from",
                    reason: e.to_string(),
                })?;
            if source.password_in_url() {
                eprintln!("warning: {}", password_advice("--from"));
            }
            let publisher = import_publisher(args)?;
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
            let publisher = import_publisher(args)?;
            import_jsonl(&publisher, BufReader::new(file), &mut summary)
        };
    for s in summary.skipped.named() {
        eprintln!("{s}");
    }
    if summary.skipped.unnamed() > 0 {
        eprintln!("… and {} more skipped records", summary.skipped.unnamed());
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

pub fn export(to: &std::path::Path, store_args: &StoreArgs) -> anyhow::Result<()> {
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
    if !summary.gaps.is_empty() {
        // Reports on a damaged page of both tables are named by neither: the export may lack
        // some, and cannot say which.
        anyhow::bail!(
            "the store is damaged where reports are listed: {} report(s) exported, every one it still names; reports on the damaged pages may be missing (see `crypto-report check`)",
            summary.written
        );
    }
    Ok(())
}

pub fn check(args: &CheckArgs) -> anyhow::Result<()> {
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
pub fn backup(args: &BackupArgs) -> anyhow::Result<()> {
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
    let client = reqwest::Client::builder()
        .connect_timeout(BACKUP_CONNECT_TIMEOUT)
        .read_timeout(BACKUP_READ_TIMEOUT)
        .build()
        .context("cannot make the HTTP client")?;
    let response = client
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
