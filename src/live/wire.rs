//! The server half of RFC 6455 that the live hub needs: the upgrade handshake, whole frames
//! out (a shared payload is written straight from its buffer, never copied per client), and
//! small masked frames in. No extensions, no subprotocols, no fragmented client messages.

use std::io::{self, IoSlice};

use axum::http::{HeaderMap, HeaderValue, Version, header};
use base64::Engine;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Read-buffer growth step; client frames are tiny, so this is usually the whole buffer.
const READ_CHUNK: usize = 512;

/// Close codes of RFC 6455 §7.4.1 that the server sends.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID: u16 = 1007;
    pub const TOO_BIG: u16 = 1009;
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Why an upgrade request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not an HTTP/1.1 WebSocket upgrade at all.
    NotUpgrade,
    /// A WebSocket version other than 13.
    Version,
}

/// Checks an upgrade request and returns its `Sec-WebSocket-Accept` value.
pub fn accept(version: Version, headers: &HeaderMap) -> Result<HeaderValue, Refusal> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if version != Version::HTTP_11
        || !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
    {
        return Err(Refusal::NotUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Refusal::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .filter(|k| !k.is_empty())
        .ok_or(Refusal::NotUpgrade)?;
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    let encoded = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    HeaderValue::from_str(&encoded).map_err(|_| Refusal::NotUpgrade)
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("connection closed without a close frame")]
    Eof,
    /// The client broke the protocol; the connection is closed with `code`.
    #[error("protocol violation ({code}): {reason}")]
    Protocol { code: u16, reason: &'static str },
}

fn violation(code: u16, reason: &'static str) -> WireError {
    WireError::Protocol { code, reason }
}

/// One upgraded connection.
pub struct Socket {
    io: TokioIo<Upgraded>,
    /// Bytes read but not yet parsed; bounded by one frame of at most `max_message`.
    buf: Vec<u8>,
    max_message: usize,
}

impl Socket {
    pub fn new(io: Upgraded, max_message: usize) -> Socket {
        Socket {
            io: TokioIo::new(io),
            buf: Vec::new(),
            max_message,
        }
    }

    /// The next message. Cancel-safe: a partly read frame stays buffered.
    pub async fn recv(&mut self) -> Result<Incoming, WireError> {
        loop {
            if let Some((message, used)) = parse(&self.buf, self.max_message)? {
                self.buf.drain(..used);
                if self.buf.is_empty() && self.buf.capacity() > 2 * READ_CHUNK {
                    self.buf = Vec::new();
                }
                return Ok(message);
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(WireError::Eof);
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.send(OP_TEXT, text.as_bytes()).await
    }

    pub async fn send_ping(&mut self) -> io::Result<()> {
        self.send(OP_PING, &[]).await
    }

    pub async fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.send(OP_PONG, payload).await
    }

    pub async fn send_close(&mut self, code: u16, reason: &str) -> io::Result<()> {
        let mut payload = code.to_be_bytes().to_vec();
        // Control frames carry at most 125 bytes.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.send(OP_CLOSE, &payload).await
    }

    /// Ends the TCP stream after the close handshake.
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }

    /// Writes one whole frame: its header and the payload, in as few writes as the socket takes.
    async fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let (header, header_len) = frame_header(opcode, payload.len());
        let mut head = &header[..header_len];
        let mut body = payload;
        while !head.is_empty() || !body.is_empty() {
            let n = if head.is_empty() {
                self.io.write(body).await?
            } else {
                self.io
                    .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                    .await?
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let from_head = n.min(head.len());
            head = &head[from_head..];
            body = &body[n - from_head..];
        }
        self.io.flush().await
    }
}

/// An unmasked server frame header: FIN set, then the shortest length encoding.
fn frame_header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if let Ok(short) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&short.to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// Parses one client frame from the front of `buf`: `None` while incomplete, else the message
/// and the bytes it used. Frames longer than `max` are refused from their header alone.
fn parse(buf: &[u8], max: usize) -> Result<Option<(Incoming, usize)>, WireError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if b0 & 0x70 != 0 {
        return Err(violation(close::PROTOCOL, "reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(violation(close::PROTOCOL, "unmasked client frame"));
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let control = opcode & 0x08 != 0;
    if control && (!fin || len > 125) {
        return Err(violation(
            close::PROTOCOL,
            "fragmented or oversized control frame",
        ));
    }
    let len = match usize::try_from(len) {
        Ok(len) if len <= max => len,
        _ => return Err(violation(close::TOO_BIG, "message too big")),
    };
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let Some(masked) = buf.get(at..at + len) else {
        return Ok(None);
    };
    let payload: Vec<u8> = masked
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let message = match opcode {
        OP_TEXT | OP_BINARY | OP_CONTINUATION if !fin || opcode == OP_CONTINUATION => {
            return Err(violation(close::UNSUPPORTED, "fragmented messages"));
        }
        OP_TEXT => Incoming::Text(
            String::from_utf8(payload).map_err(|_| violation(close::INVALID, "invalid UTF-8"))?,
        ),
        OP_BINARY => Incoming::Binary,
        OP_CLOSE => Incoming::Close(
            payload
                .get(..2)
                .map(|code| u16::from_be_bytes([code[0], code[1]])),
        ),
        OP_PING => Incoming::Ping(payload),
        OP_PONG => Incoming::Pong,
        _ => return Err(violation(close::PROTOCOL, "unknown opcode")),
    };
    Ok(Some((message, at + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![b0];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        let key = accept(Version::HTTP_11, &headers).expect("valid");
        assert_eq!(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(accept(Version::HTTP_10, &headers), Err(Refusal::NotUpgrade));
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(accept(Version::HTTP_11, &headers), Err(Refusal::Version));
        headers.remove(header::UPGRADE);
        assert_eq!(accept(Version::HTTP_11, &headers), Err(Refusal::NotUpgrade));
    }

    #[test]
    fn parses_masked_frames_whole_or_not_at_all() {
        let frame = client_frame(0x81, b"{\"type\":\"ping\"}");
        for cut in 0..frame.len() {
            assert!(parse(&frame[..cut], 4096).expect("ok").is_none(), "{cut}");
        }
        let (msg, used) = parse(&frame, 4096).expect("ok").expect("whole");
        assert_eq!(msg, Incoming::Text("{\"type\":\"ping\"}".into()));
        assert_eq!(used, frame.len());

        let long = "x".repeat(300);
        let (msg, _) = parse(&client_frame(0x81, long.as_bytes()), 4096)
            .expect("ok")
            .expect("whole");
        assert_eq!(msg, Incoming::Text(long));
        let close = client_frame(0x88, &1000u16.to_be_bytes());
        assert_eq!(
            parse(&close, 4096).expect("ok").map(|m| m.0),
            Some(Incoming::Close(Some(1000)))
        );
        assert_eq!(
            parse(&client_frame(0x89, b"hi"), 4096)
                .expect("ok")
                .map(|m| m.0),
            Some(Incoming::Ping(b"hi".to_vec()))
        );
    }

    #[test]
    fn refuses_what_a_client_may_not_send() {
        let code = |bytes: &[u8]| match parse(bytes, 4096) {
            Err(WireError::Protocol { code, .. }) => code,
            other => panic!("expected a violation, got {other:?}"),
        };
        // Too big, judged from the header before the payload arrives.
        let big = client_frame(0x81, &vec![b'a'; 5000]);
        assert_eq!(code(&big[..8]), close::TOO_BIG);
        // Unmasked.
        assert_eq!(code(&[0x81, 0x02, b'h', b'i']), close::PROTOCOL);
        // Reserved bits (compression was never negotiated).
        assert_eq!(code(&client_frame(0xC1, b"hi")), close::PROTOCOL);
        // Fragments.
        assert_eq!(code(&client_frame(0x01, b"hi")), close::UNSUPPORTED);
        assert_eq!(code(&client_frame(0x80, b"hi")), close::UNSUPPORTED);
        // Invalid UTF-8 in a text frame.
        assert_eq!(code(&client_frame(0x81, &[0xff, 0xfe])), close::INVALID);
        // Oversized control frame.
        assert_eq!(code(&client_frame(0x89, &[0; 126])), close::PROTOCOL);
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(frame_header(OP_TEXT, 5).1, 2);
        let (h, n) = frame_header(OP_TEXT, 6_700);
        assert_eq!((n, h[0], h[1]), (4, 0x81, 126));
        assert_eq!(u16::from_be_bytes([h[2], h[3]]), 6_700);
        assert_eq!(frame_header(OP_TEXT, 70_000).1, 10);
    }
}
