//! Live updates over WebSocket: one hub fans market snapshots and report announcements out
//! to every connected browser.
//!
//! Memory stays bounded per client whatever the client does:
//! - snapshots go through one `watch` channel: a client that falls behind skips straight to
//!   the newest snapshot, which is serialized once per update into shared buffers that every
//!   client's message points at (no per-client serialization, no per-client queue);
//! - a market update carries only what changed since the previous snapshot (see `patch`); a
//!   client that skipped snapshots gets the whole newest one instead, so what a browser
//!   merges always adds up to the current snapshot;
//! - other messages (`report_published`) go through one small `broadcast` ring shared by all
//!   clients; a client that lags past it loses the oldest announcements, never buffers them;
//! - a send that does not complete within the idle timeout drops the client, so a peer that
//!   stops reading holds a reference to one shared message and the kernel's socket buffers;
//! - the socket's own buffers are sized for a server that mostly writes, and the shared
//!   messages are written straight from their shared bytes, not copied into a buffer of each
//!   socket (see `socket`).

mod patch;
mod socket;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use self::patch::merge_patch;
use self::socket::{Message, SendError, Socket, Utf8Bytes};
use crate::AppState;
use crate::error::ErrorMarker;
use crate::market::{Market, Snapshot};
use crate::tasks::Background;

/// Announcements a lagging client may still catch up on.
const EVENT_BACKLOG: usize = 16;
/// How long a client gets to answer our close frame at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

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

/// One serialized snapshot, shared by every client: cloning a message is a reference count.
#[derive(Debug)]
struct Frame {
    /// Position in the hub's sequence of snapshots, from 1.
    seq: u64,
    /// The `dashboard_data` message that greets a new client.
    data: Utf8Bytes,
    /// `dashboard_update` with the whole snapshot, for a client that skipped snapshots.
    update: Utf8Bytes,
    /// `dashboard_update` with what changed since snapshot `seq - 1`; `None` when the frame
    /// only exists whole.
    patch: Option<Utf8Bytes>,
}

impl Frame {
    /// The message for a client whose last snapshot was `seen`: the greeting for one that has
    /// none yet (it connected before the first snapshot), the patch for one that has the
    /// snapshot before, the whole update for one that skipped some.
    fn message_after(&self, seen: u64) -> &Utf8Bytes {
        match &self.patch {
            _ if seen == 0 => &self.data,
            Some(patch) if seen + 1 == self.seq => patch,
            _ => &self.update,
        }
    }
}

/// The last published snapshot, which the next patch is computed against.
#[derive(Default)]
struct Chain {
    seq: u64,
    last: Option<Value>,
}

struct Inner {
    settings: HubSettings,
    clients: AtomicUsize,
    chain: Mutex<Chain>,
    started: AtomicBool,
    frames: watch::Sender<Option<Arc<Frame>>>,
    events: broadcast::Sender<Utf8Bytes>,
    /// The follower and every client run here; its cancellation closes them all.
    tasks: Background,
    drops: Drops,
}

/// What slow clients cost them, counted since start (for `/metrics`).
#[derive(Debug, Default)]
struct Drops {
    slow_clients: AtomicU64,
    skipped_snapshots: AtomicU64,
    missed_announcements: AtomicU64,
}

/// Messages and clients dropped because a client did not keep up.
#[derive(Debug, Clone, Copy, Default)]
pub struct DropCounts {
    /// Clients dropped because a send did not complete within the idle timeout.
    pub slow_clients: u64,
    /// Snapshots a client skipped because it was still busy with an older one.
    pub skipped_snapshots: u64,
    /// Announcements a client lagged past and never got.
    pub missed_announcements: u64,
}

/// The WebSocket hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
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
    /// A hub whose follower and clients run in `tasks` and close when it is cancelled.
    pub fn new(settings: HubSettings, tasks: &Background) -> Hub {
        let (frames, _) = watch::channel(None);
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        Hub {
            inner: Arc::new(Inner {
                settings,
                clients: AtomicUsize::new(0),
                chain: Mutex::default(),
                started: AtomicBool::new(false),
                frames,
                events,
                tasks: tasks.clone(),
                drops: Drops::default(),
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

    pub fn drops(&self) -> DropCounts {
        let d = &self.inner.drops;
        DropCounts {
            slow_clients: d.slow_clients.load(Ordering::Relaxed),
            skipped_snapshots: d.skipped_snapshots.load(Ordering::Relaxed),
            missed_announcements: d.missed_announcements.load(Ordering::Relaxed),
        }
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
        self.push(&*first, source_of(first.demo), true, made_at(&first));
        let hub = self.clone();
        self.inner.tasks.spawn("live hub", |stop| async move {
            loop {
                tokio::select! {
                    changed = snapshots.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let snapshot = snapshots.borrow_and_update().clone();
                        hub.push(&*snapshot, source_of(snapshot.demo), true, made_at(&snapshot));
                    }
                    () = stop.cancelled() => break,
                }
            }
        });
    }

    /// Pushes `data` to every client as a whole `dashboard_update`, serialized once; a client
    /// still busy with an older snapshot gets only this one.
    pub fn publish<T: Serialize + ?Sized>(&self, data: &T, source: &'static str) {
        self.push(data, source, false, now());
    }

    /// Publishes `data` as the next snapshot; with `diff`, clients that have the previous one
    /// get only the changes, and an unchanged snapshot is not published at all.
    fn push<T: Serialize + ?Sized>(
        &self,
        data: &T,
        source: &'static str,
        diff: bool,
        stamp: String,
    ) {
        // The value to diff against the next snapshot, and the text in its own field order.
        let serialized =
            serde_json::to_value(data).and_then(|v| Ok((serde_json::to_string(data)?, v)));
        let (whole, value) = match serialized {
            Ok(both) => both,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize the market snapshot");
                return;
            }
        };
        // Held until the frame is out, so frames leave in sequence and each patch is against
        // the frame before it.
        let mut chain = self
            .inner
            .chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let patch = match (&chain.last, diff) {
            (Some(last), true) => match merge_patch(last, &value) {
                Some(patch) => Some(patch.to_string()),
                None => return,
            },
            _ => None,
        };
        chain.seq += 1;
        chain.last = Some(value);
        let seq = chain.seq;
        let frame = Frame {
            seq,
            data: envelope("dashboard_data", Some(&whole), seq, source, &stamp).into(),
            update: envelope("dashboard_update", Some(&whole), seq, source, &stamp).into(),
            patch: patch
                .map(|p| envelope("dashboard_update", Some(&p), seq, source, &stamp).into()),
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

    fn is_shutting_down(&self) -> bool {
        self.inner.tasks.is_cancelled()
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

/// New reports stored here are announced to every client (a report another instance
/// published is announced here once this instance's own sync stores it).
impl crate::reports::publish::Subscriber for Hub {
    fn changed(
        &self,
        change: &crate::reports::publish::Change,
        origin: crate::reports::publish::Origin,
    ) {
        if let (
            crate::reports::publish::Change::Published(p),
            crate::reports::publish::Origin::Local,
        ) = (change, origin)
        {
            for report in &p.new {
                self.report_published(report.id, report.created_at);
            }
        }
    }
}

fn source_of(demo: bool) -> &'static str {
    if demo { "demo" } else { "live" }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// When a snapshot was made (on the instance that polled it): its updates' `timestamp`.
fn made_at(snapshot: &Snapshot) -> String {
    match DateTime::from_timestamp_millis(snapshot.produced_at_ms) {
        Some(at) if snapshot.produced_at_ms > 0 => at.to_rfc3339_opts(SecondsFormat::Micros, true),
        _ => now(),
    }
}

/// `{type, data?, timestamp, seq?, source?}` around an already serialized `data`.
fn envelope(kind: &str, data: Option<&str>, seq: u64, source: &str, stamp: &str) -> String {
    let mut out = String::with_capacity(data.map_or(0, str::len) + 128);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push('"');
    if let Some(data) = data {
        out.push_str(",\"data\":");
        out.push_str(data);
    }
    out.push_str(",\"timestamp\":\"");
    out.push_str(stamp);
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
pub async fn ws(State(state): State<AppState>, mut request: Request) -> Response {
    let upgrade = match socket::Upgrade::from_request(&mut request) {
        Ok(upgrade) => upgrade,
        Err(refusal) => return refusal.into_response(),
    };
    let hub = state.live.clone();
    // Before the upgrade: a refused client gets a plain 503, not a socket to close.
    let Some(slot) = hub.admit() else {
        return refuse();
    };
    hub.start(&state.market);
    let (response, pending) = upgrade.accept();
    // A task of the hub's scope, so shutdown closes it and waits for it.
    let tasks = hub.inner.tasks.clone();
    tasks.spawn("websocket client", move |stop| async move {
        let socket = tokio::select! {
            socket = pending.socket() => socket,
            () = stop.cancelled() => None,
        };
        if let Some(socket) = socket {
            run_client(socket, hub, slot, stop).await;
        }
    });
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
    /// The peer sent a close frame; the socket has queued the answer.
    ClosedByPeer,
    /// The peer broke the protocol: close with this code.
    Violation(CloseCode),
    /// The server is shutting down.
    Shutdown,
}

async fn run_client(mut socket: Socket, hub: Hub, _slot: Slot, stop: CancellationToken) {
    let settings = hub.inner.settings.clone();
    let mut frames = hub.inner.frames.subscribe();
    let mut events = hub.inner.events.subscribe();
    let limit = settings.idle_timeout;
    let drops = &hub.inner.drops;
    // Made once: a fresh one per turn of the loop would register with the token each time.
    let cancelled = stop.cancelled();
    tokio::pin!(cancelled);

    let greeting = format!(
        "{{\"type\":\"connected\",\"data\":{{\"ping_interval_ms\":{}}},\"timestamp\":\"{}\"}}",
        settings.ping_interval.as_millis(),
        now()
    );
    if !send_text(&mut socket, greeting.into(), limit, drops).await {
        return;
    }
    // The sequence number of the last snapshot this client was sent.
    let mut seen = 0;
    let first = frames.borrow_and_update().clone();
    if let Some(frame) = first {
        let data = frame.message_after(seen).clone();
        if !send_text(&mut socket, data, limit, drops).await {
            return;
        }
        seen = frame.seq;
    }

    let mut ping = tokio::time::interval_at(
        Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();

    let end = loop {
        tokio::select! {
            () = &mut cancelled => break End::Shutdown,
            incoming = socket::recv(&mut socket) => {
                last_seen = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) if is_ping(text.as_str()) => {
                        let pong = envelope("pong", None, 0, "", &now());
                        if !send_text(&mut socket, pong.into(), limit, drops).await {
                            break End::Gone;
                        }
                    }
                    Some(Ok(Message::Close(_))) => break End::ClosedByPeer,
                    // Protocol pings are answered by the socket itself; pongs and anything
                    // else only prove the client is alive.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => match violation(&e) {
                        Some(code) => {
                            tracing::debug!(code = u16::from(code), error = %e, "closing a WebSocket client");
                            break End::Violation(code);
                        }
                        None => break End::Gone,
                    },
                    None => break End::Gone,
                }
            }
            changed = frames.changed() => {
                if changed.is_err() {
                    break End::Gone;
                }
                let frame = frames.borrow_and_update().clone();
                if let Some(frame) = frame {
                    if seen > 0 && frame.seq > seen + 1 {
                        drops.skipped_snapshots.fetch_add(frame.seq - seen - 1, Ordering::Relaxed);
                    }
                    let update = frame.message_after(seen).clone();
                    seen = frame.seq;
                    if !send_text(&mut socket, update, limit, drops).await {
                        break End::Gone;
                    }
                }
            }
            event = events.recv() => match event {
                Ok(text) => {
                    if !send_text(&mut socket, text, limit, drops).await {
                        break End::Gone;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    drops.missed_announcements.fetch_add(missed, Ordering::Relaxed);
                    tracing::debug!(missed, "slow WebSocket client skipped announcements");
                }
                Err(broadcast::error::RecvError::Closed) => break End::Gone,
            },
            _ = ping.tick() => {
                if last_seen.elapsed() >= settings.idle_timeout {
                    tracing::debug!("dropping a silent WebSocket client");
                    break End::Gone;
                }
                if !send(&mut socket, Message::Ping(Default::default()), limit, drops).await {
                    break End::Gone;
                }
            }
        }
    };
    match end {
        End::Gone => {}
        // Reading on sends the queued answer and ends the stream.
        End::ClosedByPeer => drain(&mut socket).await,
        // The stream is unusable after the error: say why and hang up.
        End::Violation(code) => {
            let _ = send(&mut socket, close(code, ""), CLOSE_GRACE, drops).await;
        }
        End::Shutdown => {
            if send(
                &mut socket,
                close(CloseCode::Away, "server shutting down"),
                CLOSE_GRACE,
                drops,
            )
            .await
            {
                drain(&mut socket).await;
            }
        }
    }
}

/// The close code for a read error that is the client's fault; `None` when the connection
/// simply failed.
fn violation(error: &tungstenite::Error) -> Option<CloseCode> {
    use tungstenite::Error as E;
    match error {
        E::Capacity(_) => Some(CloseCode::Size),
        E::Utf8(_) => Some(CloseCode::Invalid),
        E::Protocol(_) | E::AttackAttempt => Some(CloseCode::Protocol),
        _ => None,
    }
}

fn close(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Reads until the close handshake completes or the peer goes, at most [`CLOSE_GRACE`].
async fn drain(socket: &mut Socket) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = socket::recv(socket).await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Sends one text message; false when the peer is gone or has not taken it within `limit`
/// (then it counts as a slow client in `drops`).
async fn send_text(socket: &mut Socket, text: Utf8Bytes, limit: Duration, drops: &Drops) -> bool {
    counted(socket::send_text(socket, text, limit).await, drops)
}

/// [`send_text`] for a control message.
async fn send(socket: &mut Socket, message: Message, limit: Duration, drops: &Drops) -> bool {
    counted(socket::send(socket, message, limit).await, drops)
}

fn counted(result: Result<(), SendError>, drops: &Drops) -> bool {
    match result {
        Ok(()) => true,
        Err(SendError::Gone) => false,
        Err(SendError::Slow) => {
            drops.slow_clients.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_gets_what_it_lacks() {
        let frame = Frame {
            seq: 5,
            data: Utf8Bytes::from_static("data"),
            update: Utf8Bytes::from_static("whole"),
            patch: Some(Utf8Bytes::from_static("patch")),
        };
        assert_eq!(frame.message_after(4).as_str(), "patch");
        // Skipped snapshot 4.
        assert_eq!(frame.message_after(3).as_str(), "whole");
        // Connected before there was any snapshot.
        assert_eq!(frame.message_after(0).as_str(), "data");
        let whole_only = Frame {
            patch: None,
            ..frame
        };
        assert_eq!(whole_only.message_after(4).as_str(), "whole");
    }

    #[test]
    fn only_market_snapshots_that_changed_are_published_as_patches() {
        let hub = Hub::new(HubSettings::default(), &Background::new());
        let mut frames = hub.inner.frames.subscribe();
        hub.push(
            &serde_json::json!({ "a": 1, "b": [1] }),
            "demo",
            true,
            now(),
        );
        let first = frames.borrow_and_update().clone().expect("frame");
        assert_eq!((first.seq, first.patch.is_none()), (1, true));

        hub.push(
            &serde_json::json!({ "a": 1, "b": [1] }),
            "demo",
            true,
            now(),
        );
        assert!(
            !frames.has_changed().expect("open"),
            "unchanged, yet published"
        );

        hub.push(
            &serde_json::json!({ "a": 2, "b": [1] }),
            "demo",
            true,
            now(),
        );
        let second = frames.borrow_and_update().clone().expect("frame");
        let patch: Value = serde_json::from_str(second.message_after(1).as_str()).expect("json");
        assert_eq!(patch["type"], "dashboard_update");
        assert_eq!(patch["data"], serde_json::json!({ "a": 2 }));
        assert_eq!(patch["seq"], 2);

        // `publish` sends the whole value, and the next patch is against it.
        hub.publish(&serde_json::json!({ "a": 3, "b": [1] }), "test");
        let third = frames.borrow_and_update().clone().expect("frame");
        assert!(third.patch.is_none());
        hub.push(
            &serde_json::json!({ "a": 3, "b": [2] }),
            "demo",
            true,
            now(),
        );
        let fourth = frames.borrow_and_update().clone().expect("frame");
        let patch: Value = serde_json::from_str(fourth.message_after(3).as_str()).expect("json");
        assert_eq!(patch["data"], serde_json::json!({ "b": [2] }));
    }
}
