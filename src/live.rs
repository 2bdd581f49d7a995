//! Live updates over WebSocket: one hub fans market snapshots and report announcements out
//! to every connected browser.
//!
//! Memory stays bounded per client whatever the client does:
//! - snapshots go through one `watch` channel: a client that falls behind skips straight to
//!   the newest snapshot, which is serialized once per update and written to every socket
//!   from that one shared buffer (see `wire`: no per-client copy, no per-client queue);
//! - other messages (`report_published`) go through one small `broadcast` ring shared by all
//!   clients; a client that lags past it loses the oldest announcements, never buffers them;
//! - a send that does not complete within the idle timeout drops the client, so a peer that
//!   stops reading holds at most the kernel's socket buffers.

mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior};

use self::wire::{Incoming, Refusal, Socket, WireError, close};
use crate::AppState;
use crate::error::ErrorMarker;
use crate::market::{Market, Snapshot};

/// Clients only ever send pings: a bigger message closes the connection (1009).
const MAX_INCOMING: usize = 4 * 1024;
/// Announcements a lagging client may still catch up on.
const EVENT_BACKLOG: usize = 16;
/// How long a client gets to answer our close frame at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long shutdown waits for every client to be closed.
pub const CLOSE_DRAIN: Duration = Duration::from_secs(3);

/// Limits and timers of the hub.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Most simultaneous WebSocket clients; further upgrades are answered with 503.
    pub max_clients: usize,
    /// How often the server pings each client.
    pub ping_interval: Duration,
    /// A client silent for this long (no pong, no frame) is dropped; a send blocked for this
    /// long drops the client too.
    pub idle_timeout: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            max_clients: 10_000,
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// One serialized snapshot, shared by every client.
#[derive(Debug)]
struct Frame {
    /// The `dashboard_data` message that greets a new client.
    data: String,
    /// The `dashboard_update` message pushed to connected clients.
    update: String,
}

struct Inner {
    settings: HubSettings,
    clients: AtomicUsize,
    seq: AtomicU64,
    started: AtomicBool,
    frames: watch::Sender<Option<Arc<Frame>>>,
    events: broadcast::Sender<Arc<str>>,
    shutdown: watch::Sender<bool>,
}

/// The WebSocket hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(HubSettings::default())
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("settings", &self.inner.settings)
            .field("clients", &self.clients())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub fn new(settings: HubSettings) -> Hub {
        let (frames, _) = watch::channel(None);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        let (shutdown, _) = watch::channel(false);
        Hub {
            inner: Arc::new(Inner {
                settings,
                clients: AtomicUsize::new(0),
                seq: AtomicU64::new(0),
                started: AtomicBool::new(false),
                frames,
                events,
                shutdown,
            }),
        }
    }

    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    /// Connected WebSocket clients.
    pub fn clients(&self) -> usize {
        self.inner.clients.load(Ordering::Relaxed)
    }

    /// Follows `market` from now on: every new snapshot is serialized once and pushed to all
    /// clients. Idempotent; the first call must run inside the Tokio runtime.
    pub fn start(&self, market: &Market) {
        if !self.inner.started.load(Ordering::Acquire) {
            self.follow(market.subscribe());
        }
    }

    /// [`Hub::start`] on any snapshot channel (tests feed their own).
    pub fn follow(&self, mut snapshots: watch::Receiver<Arc<Snapshot>>) {
        if self.inner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let first = snapshots.borrow_and_update().clone();
        self.publish(&*first, source_of(first.demo));
        let hub = self.clone();
        let mut shutdown = self.inner.shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let snapshot = snapshots.borrow_and_update().clone();
                        hub.publish(&*snapshot, source_of(snapshot.demo));
                    }
                    () = stopped(&mut shutdown) => break,
                }
            }
        });
    }

    /// Pushes `data` to every client as `dashboard_update`, serialized once; a client still
    /// busy with an older snapshot gets only this one.
    pub fn publish<T: Serialize + ?Sized>(&self, data: &T, source: &'static str) {
        let data = match serde_json::to_string(data) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize the market snapshot");
                return;
            }
        };
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let frame = Frame {
            data: envelope("dashboard_data", Some(&data), seq, source),
            update: envelope("dashboard_update", Some(&data), seq, source),
        };
        self.inner.frames.send_replace(Some(Arc::new(frame)));
    }

    /// Announces a newly imported report to every client (`report_published`).
    pub fn report_published(&self, id: u64, created_at: DateTime<Utc>) {
        let data = serde_json::json!({
            "id": id,
            "created_at": created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        });
        let message = serde_json::json!({
            "type": "report_published",
            "data": data,
            "timestamp": now(),
        });
        // No receiver simply means nobody is connected.
        let _ = self.inner.events.send(message.to_string().into());
    }

    /// Asks every client to close (close frame 1001) and refuses new ones.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Waits until every client is gone, at most `limit`; returns whether they all left.
    pub async fn drained(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.clients() > 0 {
            if Instant::now() >= deadline {
                tracing::warn!(
                    clients = self.clients(),
                    "WebSocket clients still open at shutdown"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Takes one client slot, unless the hub is full or closing.
    fn admit(&self) -> Option<Slot> {
        if self.is_shutting_down() {
            return None;
        }
        let max = self.inner.settings.max_clients;
        self.inner
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.inner.clone()))
    }
}

/// A client's place in the hub, returned when the connection ends however it ends.
struct Slot(Arc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

fn source_of(demo: bool) -> &'static str {
    if demo { "demo" } else { "live" }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `{type, data?, timestamp, seq?, source?}` around an already serialized `data`.
fn envelope(kind: &str, data: Option<&str>, seq: u64, source: &str) -> String {
    let mut out = String::with_capacity(data.map_or(0, str::len) + 128);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(data) = data {
        out.push_str(",\"data\":");
        out.push_str(data);
    }
    out.push_str(",\"timestamp\":\"");
    out.push_str(&now());
    out.push('"');
    if seq > 0 {
        out.push_str(",\"seq\":");
        out.push_str(&seq.to_string());
    }
    if !source.is_empty() {
        out.push_str(",\"source\":\"");
        out.push_str(source);
        out.push('"');
    }
    out.push('}');
    out
}

/// `GET /ws`: upgrades to a live-update socket, or 503 when the hub is full or closing.
pub async fn ws(State(state): State<AppState>, mut req: Request) -> Response {
    let accept = match wire::accept(req.version(), req.headers()) {
        Ok(accept) => accept,
        Err(Refusal::Version) => {
            let mut response =
                (StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only").into_response();
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return response;
        }
        Err(Refusal::NotUpgrade) => {
            return (StatusCode::BAD_REQUEST, "expected a WebSocket upgrade").into_response();
        }
    };
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return (
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded",
        )
            .into_response();
    };
    let hub = state.live.clone();
    let Some(slot) = hub.admit() else {
        return refuse();
    };
    hub.start(&state.market);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => run_client(Socket::new(io, MAX_INCOMING), hub, slot).await,
            Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

fn refuse() -> Response {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let message = "too many live connections, try again later";
    let mut response = (status, message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
    response.extensions_mut().insert(ErrorMarker {
        status,
        message: message.to_owned(),
    });
    response
}

#[derive(Deserialize)]
struct Command<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

fn is_ping(text: &str) -> bool {
    let text = text.trim();
    text.eq_ignore_ascii_case("ping")
        || serde_json::from_str::<Command<'_>>(text).is_ok_and(|m| m.kind == "ping")
}

/// Why a client's loop ended.
enum End {
    /// The peer vanished, went silent or stopped reading: nothing more to say.
    Gone,
    /// The peer sent a close frame (its code, if any): answer it.
    ClosedByPeer(Option<u16>),
    /// The peer broke the protocol: close with this code.
    Violation(u16),
    /// The server is shutting down.
    Shutdown,
}

async fn run_client(mut socket: Socket, hub: Hub, _slot: Slot) {
    let settings = hub.inner.settings.clone();
    let mut frames = hub.inner.frames.subscribe();
    let mut events = hub.inner.events.subscribe();
    let mut shutdown = hub.inner.shutdown.subscribe();
    let limit = settings.idle_timeout;

    let greeting = format!(
        "{{\"type\":\"connected\",\"data\":{{\"ping_interval_ms\":{}}},\"timestamp\":\"{}\"}}",
        settings.ping_interval.as_millis(),
        now()
    );
    if !send(socket.send_text(&greeting), limit).await {
        return;
    }
    let first = frames.borrow_and_update().clone();
    if let Some(frame) = first
        && !send(socket.send_text(&frame.data), limit).await
    {
        return;
    }

    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();

    let end = loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break End::Shutdown,
            incoming = socket.recv() => {
                last_seen = Instant::now();
                let sent = match incoming {
                    Ok(Incoming::Text(text)) if is_ping(&text) => {
                        let pong = envelope("pong", None, 0, "");
                        send(socket.send_text(&pong), limit).await
                    }
                    Ok(Incoming::Ping(payload)) => send(socket.send_pong(&payload), limit).await,
                    Ok(Incoming::Close(code)) => break End::ClosedByPeer(code),
                    // Pongs and anything else only prove the client is alive.
                    Ok(_) => true,
                    Err(WireError::Protocol { code, reason }) => {
                        tracing::debug!(code, reason, "closing a WebSocket client");
                        break End::Violation(code);
                    }
                    Err(_) => break End::Gone,
                };
                if !sent {
                    break End::Gone;
                }
            }
            changed = frames.changed() => {
                if changed.is_err() {
                    break End::Gone;
                }
                let frame = frames.borrow_and_update().clone();
                if let Some(frame) = frame
                    && !send(socket.send_text(&frame.update), limit).await
                {
                    break End::Gone;
                }
            }
            event = events.recv() => match event {
                Ok(text) => {
                    if !send(socket.send_text(&text), limit).await {
                        break End::Gone;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "slow WebSocket client skipped announcements");
                }
                Err(broadcast::error::RecvError::Closed) => break End::Gone,
            },
            _ = ping.tick() => {
                if last_seen.elapsed() >= settings.idle_timeout {
                    tracing::debug!("dropping a silent WebSocket client");
                    break End::Gone;
                }
                if !send(socket.send_ping(), limit).await {
                    break End::Gone;
                }
            }
        }
    };
    match end {
        End::Gone => {}
        End::ClosedByPeer(code) => {
            // Echo the peer's code when it is one we may send back (RFC 6455 §5.5.1).
            let code = code.filter(|c| {
                (1000..=1003).contains(c) || (1007..=1014).contains(c) || (3000..5000).contains(c)
            });
            let _ = send(
                socket.send_close(code.unwrap_or(close::NORMAL), ""),
                CLOSE_GRACE,
            )
            .await;
            socket.shutdown().await;
        }
        End::Violation(code) => {
            let _ = send(socket.send_close(code, ""), CLOSE_GRACE).await;
            socket.shutdown().await;
        }
        End::Shutdown => close_for_shutdown(&mut socket).await,
    }
}

/// Resolves once the hub is shutting down (or gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Sends a close frame (1001) and waits briefly for the peer's answer.
async fn close_for_shutdown(socket: &mut Socket) {
    if !send(
        socket.send_close(close::AWAY, "server shutting down"),
        CLOSE_GRACE,
    )
    .await
    {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        loop {
            match socket.recv().await {
                Ok(Incoming::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    socket.shutdown().await;
}

/// Runs one send; false when the peer is gone or has not taken it within `limit`.
async fn send(
    sending: impl std::future::Future<Output = std::io::Result<()>>,
    limit: Duration,
) -> bool {
    matches!(tokio::time::timeout(limit, sending).await, Ok(Ok(())))
}
