//! WebSocket fan-out benchmark client: opens N connections to `/ws?v=2` (as the page does),
//! waits until every one has its `dashboard_data`, then times how long each of the next K
//! `dashboard_update`s takes to reach every client. Run by `scripts/bench-ws`; everything is bounded by `--time-limit`.
//!
//! Latency of one delivery = arrival wall clock - the update's server `timestamp` (same
//! machine, so one clock). Prints one line of `key=value` pairs for the script to tabulate.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::StreamExt;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser, Debug)]
#[command(about = "Opens many WebSocket clients and measures update fan-out latency")]
struct Args {
    /// Server address (the client connects to ws://ADDR/ws?v=2).
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Simultaneous clients.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Updates to measure once every client is connected.
    #[arg(long, default_value_t = 10)]
    updates: u64,
    /// Local addresses to connect from, round robin (more ephemeral ports).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    sources: Vec<IpAddr>,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Hard limit on the whole run, in seconds.
    #[arg(long, default_value_t = 180)]
    time_limit: u64,
    /// Extra clients that connect and then never read, held open for the whole run: the
    /// server must not buffer for them (`scripts/bench-ws` checks its memory).
    #[arg(long, default_value_t = 0)]
    stuck: usize,
}

/// A client that completes the handshake, then reads nothing until `stop`.
async fn stuck_client(
    addr: SocketAddr,
    source: IpAddr,
    mut stop: watch::Receiver<bool>,
    connected: Arc<AtomicUsize>,
) -> Result<(), String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    // A small window, so what the server sends backs up into its own buffers quickly.
    socket
        .set_recv_buffer_size(4096)
        .map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws?v=2"), stream)
        .await
        .map_err(|e| e.to_string())?;
    connected.fetch_add(1, Ordering::Relaxed);
    let _ = stop.wait_for(|s| *s).await;
    drop(ws);
    Ok(())
}

/// Shared progress between the clients and the coordinator.
struct Progress {
    /// Clients that have received `dashboard_data`.
    ready: AtomicUsize,
    /// Connections that failed before `dashboard_data`.
    failed: AtomicUsize,
    /// Highest update sequence any client has seen.
    newest: AtomicU64,
}

/// What one client saw of the measured window: (seq, latency in µs).
type Samples = Vec<(u64, i64)>;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn server_time_us(stamp: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.timestamp_micros())
}

async fn client(
    addr: SocketAddr,
    source: IpAddr,
    progress: Arc<Progress>,
    window: watch::Receiver<Option<(u64, u64)>>,
    mut stop: watch::Receiver<bool>,
    handshakes: Arc<Semaphore>,
) -> Result<Samples, String> {
    // Held until the greeting arrives: it bounds handshakes in flight, not connections.
    let mut permit = Some(
        handshakes
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?,
    );
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(
        format!("ws://{addr}/ws?v=2"),
        stream,
        Some(config),
    )
    .await
    .map_err(|e| e.to_string())?;

    let mut ready = false;
    let mut samples = Samples::new();
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = stop.wait_for(|s| *s) => break,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed by the server".into()),
        };
        let arrived = now_us();
        let Some(msg) = Envelope::parse(text.as_str()) else {
            continue;
        };
        let seq = msg.seq;
        progress.newest.fetch_max(seq, Ordering::Relaxed);
        match msg.kind {
            Some("dashboard_data") if !ready => {
                ready = true;
                permit = None;
                progress.ready.fetch_add(1, Ordering::Relaxed);
            }
            Some("dashboard_update") => {
                let bounds = *window.borrow();
                if let Some((first, last)) = bounds {
                    if (first..=last).contains(&seq)
                        && let Some(sent) = msg.timestamp.and_then(server_time_us)
                    {
                        samples.push((seq, arrived - sent));
                    }
                    // A client that skipped to a newer snapshot is done too.
                    if seq >= last {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    drop(permit);
    Ok(samples)
}

/// The envelope fields of a server message, read without parsing the snapshot inside: the
/// server writes `{"type":…,"data":…,"timestamp":…,"seq":…,"source":…}`, so they are found
/// at the start and after the last `data` byte.
struct Envelope<'a> {
    kind: Option<&'a str>,
    timestamp: Option<&'a str>,
    seq: u64,
}

impl<'a> Envelope<'a> {
    fn parse(text: &'a str) -> Option<Envelope<'a>> {
        let kind = text
            .strip_prefix("{\"type\":\"")
            .and_then(|rest| rest.split('"').next());
        let field = |name: &str| {
            let at = text.rfind(name)? + name.len();
            Some(&text[at..])
        };
        let timestamp = field(",\"timestamp\":\"").and_then(|rest| rest.split('"').next());
        let seq = field(",\"seq\":")
            .map(|rest| rest.bytes().take_while(u8::is_ascii_digit).count())
            .zip(field(",\"seq\":"))
            .and_then(|(n, rest)| rest[..n].parse().ok())
            .unwrap_or(0);
        kind.map(|_| Envelope {
            kind,
            timestamp,
            seq,
        })
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(us: i64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let progress = Arc::new(Progress {
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        newest: AtomicU64::new(0),
    });
    let (window_tx, window) = watch::channel(None);
    let (stop_tx, stop) = watch::channel(false);
    let handshakes = Arc::new(Semaphore::new(args.concurrency.max(1)));

    let stuck_connected = Arc::new(AtomicUsize::new(0));
    let mut stuck = Vec::with_capacity(args.stuck);
    for i in 0..args.stuck {
        let source = args.sources[i % args.sources.len()];
        stuck.push(tokio::spawn(stuck_client(
            args.addr,
            source,
            stop.clone(),
            stuck_connected.clone(),
        )));
    }

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let source = args.sources[i % args.sources.len()];
        let progress = progress.clone();
        let task = tokio::spawn(client(
            args.addr,
            source,
            progress.clone(),
            window.clone(),
            stop.clone(),
            handshakes.clone(),
        ));
        tasks.push(tokio::spawn(async move {
            let result = task.await.map_err(|e| e.to_string()).and_then(|r| r);
            if result.is_err() {
                progress.failed.fetch_add(1, Ordering::Relaxed);
            }
            result
        }));
    }

    // Phase 1: everybody connected and greeted.
    loop {
        let ready = progress.ready.load(Ordering::Relaxed);
        let failed = progress.failed.load(Ordering::Relaxed);
        if ready + failed >= args.clients {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!("time limit reached while connecting ({ready} ready, {failed} failed)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let ready = progress.ready.load(Ordering::Relaxed);
    eprintln!(
        "{ready} clients ready in {connect_secs:.1} s ({} failed)",
        progress.failed.load(Ordering::Relaxed)
    );

    // Phase 2: measure the next K updates after the newest one anybody has seen.
    let first = progress.newest.load(Ordering::Relaxed) + 1;
    let last = first + args.updates.max(1) - 1;
    window_tx.send_replace(Some((first, last)));
    let measure_start = Instant::now();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, task).await {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => results.push(Err(e.to_string())),
            Err(_) => {
                // Out of time: tell the rest to stop and collect what they have.
                stop_tx.send_replace(true);
                results.push(Err("time limit".into()));
            }
        }
    }
    let measure_secs = measure_start.elapsed().as_secs_f64();
    let stuck_open = stuck.iter().filter(|t| !t.is_finished()).count();
    stop_tx.send_replace(true);
    for task in stuck {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }

    let mut all = Vec::new();
    let mut per_update: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
    let mut errors = 0usize;
    for r in &results {
        match r {
            Ok(samples) => {
                for (seq, lat) in samples {
                    all.push(*lat);
                    per_update.entry(*seq).or_default().push(*lat);
                }
            }
            Err(_) => errors += 1,
        }
    }
    all.sort_unstable();
    let expected = ready as u64 * (last - first + 1);
    let delivered = all.len() as u64;
    // Per update: the time until the last client had it, measured from the server's stamp.
    let mut completion: Vec<i64> = per_update
        .values()
        .map(|v| v.iter().copied().max().unwrap_or(0))
        .collect();
    completion.sort_unstable();
    let full = per_update.values().filter(|v| v.len() >= ready).count();
    println!(
        "stuck={stuck_open}/{} clients={ready} failed={errors} updates={} delivered={delivered}/{expected} fully_delivered_updates={full} p50_ms={} p99_ms={} max_ms={} all_delivered_p50_ms={} all_delivered_max_ms={} connect_s={connect_secs:.1} measure_s={measure_secs:.1}",
        args.stuck,
        last - first + 1,
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(all.last().copied().unwrap_or(0)),
        ms(percentile(&completion, 50.0)),
        ms(completion.last().copied().unwrap_or(0)),
    );
    Ok(())
}
