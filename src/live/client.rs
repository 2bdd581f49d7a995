//! Each client's side of the hub: `GET /ws` admits it (or refuses it while the hub is full),
//! and its loop sends what the hub shares, answers pings, and drops the client when it stops
//! reading, breaks the protocol or the server stops.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::patch::Arrays;
use super::socket::{self, Message, SendError, Socket, Utf8Bytes};
use super::{CLOSE_GRACE, Drops, Hub, Slot, envelope, now};
use crate::AppState;
use crate::error::ErrorMarker;

/// `GET /ws`: upgrades to a live-update socket, or 503 when the hub is full or closing.
/// `?v=2` says the client merges arrays sent as splices (see `patch`).
pub async fn ws(State(state): State<AppState>, mut request: Request) -> Response {
    let arrays = arrays_of(request.uri().query());
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
            run_client(socket, hub, slot, stop, arrays).await;
        }
    });
    response
}

/// What a client's `?v=` says it merges: splices from version 2 on.
fn arrays_of(query: Option<&str>) -> Arrays {
    let version = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("v="))
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(v) if v >= 2 => Arrays::Spliced,
        _ => Arrays::Whole,
    }
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

async fn run_client(
    mut socket: Socket,
    hub: Hub,
    _slot: Slot,
    stop: CancellationToken,
    arrays: Arrays,
) {
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
        let data = frame.message_after(seen, arrays).clone();
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
                    let update = frame.message_after(seen, arrays).clone();
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
    fn splices_go_to_clients_from_version_2() {
        assert_eq!(arrays_of(None), Arrays::Whole);
        assert_eq!(arrays_of(Some("v=1")), Arrays::Whole);
        assert_eq!(arrays_of(Some("v=x")), Arrays::Whole);
        assert_eq!(arrays_of(Some("lang=vi&v=2")), Arrays::Spliced);
        assert_eq!(arrays_of(Some("v=3")), Arrays::Spliced);
    }
}
