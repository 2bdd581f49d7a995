//! The WebSocket handshake and each client's socket, on tokio-tungstenite directly rather than
//! through axum's `WebSocket`, for one reason: the messages every client shares are written
//! straight from their shared bytes.
//!
//! The socket copies each frame it sends into a write buffer that keeps its largest size for
//! the connection's life: through it, every client would hold a copy of the largest snapshot
//! it was ever sent (several KiB each, the main cost of a connected client), and one that stops
//! reading would hold the message it is stuck on. Instead a text message is written here as
//! one frame, its header and the shared payload in one vectored write, once whatever the
//! socket had queued (a pong) is out; the socket itself only writes control frames (pings,
//! pongs, close), so its buffer stays at a control frame's size.
use std::io::IoSlice;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

pub use tungstenite::{Bytes, Message, Utf8Bytes};

/// Clients only ever send pings: a bigger message closes the connection (1009).
pub const MAX_INCOMING: usize = 4 * 1024;
/// Read buffer of each socket, held by every connected client: clients send only pings, a
/// frame of a few dozen bytes; a bigger frame is read in several passes.
const READ_BUFFER: usize = 64;
/// Most bytes the socket may hold unsent. Only control frames (at most 127 bytes each) go
/// through it; sends are awaited one at a time, so this is a ceiling, not a queue.
const MAX_WRITE_BUFFER: usize = 4 * 1024;

/// A live client's socket.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A request that asked for a WebSocket and can get one.
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Checks the handshake of RFC 6455 §4.2.1 on an HTTP/1.1 request.
    pub fn from_request(request: &mut Request) -> Result<Upgrade, Refusal> {
        let headers = request.headers();
        if !has_token(headers, header::CONNECTION, "upgrade")
            || !has_token(headers, header::UPGRADE, "websocket")
        {
            return Err(Refusal::NotWebSocket);
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes().trim_ascii() != b"13")
        {
            return Err(Refusal::Version);
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(Refusal::NoKey);
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes().trim_ascii());
        let accept = HeaderValue::try_from(accept).map_err(|_| Refusal::NotWebSocket)?;
        let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
            return Err(Refusal::NotUpgradable);
        };
        Ok(Upgrade { accept, on_upgrade })
    }

    /// The `101 Switching Protocols` answer, and what yields the socket once it is sent.
    pub fn accept(self) -> (Response, Pending) {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        (response, Pending(self.on_upgrade))
    }
}

/// Why a request gets no socket.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// Not a WebSocket handshake.
    NotWebSocket,
    /// A WebSocket version other than 13.
    Version,
    /// No `Sec-WebSocket-Key`.
    NoKey,
    /// The connection cannot switch protocols (HTTP/2, or not from hyper).
    NotUpgradable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = match self {
            Refusal::NotWebSocket => "expected a WebSocket upgrade",
            Refusal::NoKey => "Sec-WebSocket-Key is missing",
            Refusal::NotUpgradable => "this connection cannot be upgraded",
            Refusal::Version => {
                // RFC 6455 §4.4: name the version we speak.
                let mut response =
                    (StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only").into_response();
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                return response;
            }
        };
        (StatusCode::BAD_REQUEST, message).into_response()
    }
}

/// The socket to be, once the `101` has gone out.
pub struct Pending(OnUpgrade);

impl Pending {
    /// The socket, or `None` when the connection went before the switch.
    pub async fn socket(self) -> Option<Socket> {
        match self.0.await {
            Ok(upgraded) => Some(
                WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config()),
                )
                .await,
            ),
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                None
            }
        }
    }
}

/// Buffers for a server that writes shared messages and reads only pings: a small read buffer,
/// no write batching (each frame goes straight to the kernel), a hard ceiling on what may wait
/// unsent, and client messages capped at [`MAX_INCOMING`].
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_INCOMING))
        .max_frame_size(Some(MAX_INCOMING))
        .accept_unmasked_frames(false)
}

/// Whether a comma-separated header holds `token`, in any case.
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Why a send failed.
pub enum SendError {
    /// The peer did not take it within the time allowed.
    Slow,
    /// The connection failed or is closed.
    Gone,
}

/// Sends `text` as one text frame written straight from its bytes (see the module's notes),
/// within `limit`.
pub async fn send_text(
    socket: &mut Socket,
    text: Utf8Bytes,
    limit: Duration,
) -> Result<(), SendError> {
    let sending = async {
        // What the socket queued goes first, so frames never interleave.
        socket.flush().await?;
        let payload = Bytes::from(text);
        let (head, head_len) = text_header(payload.len());
        let io = socket.get_mut();
        let (mut head_at, mut body_at) = (0, 0);
        while head_at < head_len || body_at < payload.len() {
            let parts = [
                IoSlice::new(&head[head_at..head_len]),
                IoSlice::new(&payload[body_at..]),
            ];
            let mut written = io.write_vectored(&parts).await?;
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            let from_head = written.min(head_len - head_at);
            head_at += from_head;
            written -= from_head;
            body_at += written;
        }
        Ok::<(), tungstenite::Error>(())
    };
    settle(tokio::time::timeout(limit, sending).await)
}

/// Sends a control message (ping, close) within `limit`.
pub async fn send(socket: &mut Socket, message: Message, limit: Duration) -> Result<(), SendError> {
    settle(tokio::time::timeout(limit, socket.send(message)).await)
}

fn settle(
    result: Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>,
) -> Result<(), SendError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Gone),
        Err(_) => Err(SendError::Slow),
    }
}

/// The next message from the peer; `None` once the stream has ended.
pub async fn recv(socket: &mut Socket) -> Option<Result<Message, tungstenite::Error>> {
    socket.next().await
}

/// The header of an unmasked, final text frame of `len` bytes (RFC 6455 §5.2), and its
/// length.
fn text_header(len: usize) -> ([u8; 10], usize) {
    let mut head = [0u8; 10];
    head[0] = 0x80 | 0x1;
    let used = match len {
        0..=125 => {
            head[1] = len as u8;
            2
        }
        126..=0xFFFF => {
            head[1] = 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        _ => {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (head, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_length_in_the_shortest_form() {
        assert_eq!(text_header(0), ([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2));
        assert_eq!(text_header(125).0[..2], [0x81, 125]);
        assert_eq!(text_header(126), ([0x81, 126, 0, 126, 0, 0, 0, 0, 0, 0], 4));
        assert_eq!(text_header(0xFFFF).0[..4], [0x81, 126, 0xFF, 0xFF]);
        assert_eq!(
            text_header(0x1_0000),
            ([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0], 10)
        );
    }
}
