//! A fake Telegram Bot API, Discord webhook and signed-webhook receiver on loopback, in one
//! plain HTTP/1.1 server so that it can fail the way real services do: 500, 429 with
//! `retry_after`, a request that is never answered, a connection closed mid-response.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crypto_report::announce::send::{SIGNATURE_HEADER, verify};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Status(u16),
    /// 429 with `retry_after` (seconds) in the JSON body and the header.
    TooMany(f64),
    /// Reads the request and never answers.
    Hang,
    /// Starts a 200 answer and closes the connection before its body (the message is not
    /// posted).
    CloseMid,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
    /// Answered 2xx in full: posted (for the webhook, signature valid and not a repeat).
    pub posted: bool,
    /// A webhook delivery whose idempotency key was seen before (dropped, answered 200).
    pub repeat: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("json body")
    }
}

/// Every request any receiver got, as "path status", for the message of a failed wait.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn log() -> Vec<String> {
    LOG.lock().expect("log").clone()
}

#[derive(Default)]
struct State {
    once: VecDeque<(String, Fault)>,
    sticky: Vec<(String, Fault)>,
    received: Vec<Received>,
    keys: HashSet<String>,
    refused: Vec<String>,
    /// How long each answer waits (a slow target).
    delay: std::time::Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub secret: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let r = Receiver {
            addr: listener.local_addr().expect("addr"),
            secret: secret.to_owned(),
            state: Arc::default(),
        };
        let this = r.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let this = this.clone();
                tokio::spawn(async move { this.handle(conn).await });
            }
        });
        r
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests whose path contains `key` meet `fault` until [`Receiver::heal`].
    pub fn sticky(&self, key: &str, fault: Fault) {
        self.lock().sticky.push((key.to_owned(), fault));
    }

    /// The next request whose path contains `key` meets `fault`.
    pub fn once(&self, key: &str, fault: Fault) {
        self.lock().once.push_back((key.to_owned(), fault));
    }

    /// Every answer from now on waits `delay`.
    pub fn slow(&self, delay: std::time::Duration) {
        self.lock().delay = delay;
    }

    pub fn heal(&self, key: &str) {
        self.lock().sticky.retain(|(k, _)| k != key);
    }

    /// Every request whose path contains `key`, in arrival order.
    pub fn received(&self, key: &str) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.path.contains(key))
            .cloned()
            .collect()
    }

    pub fn posted(&self, key: &str) -> Vec<Received> {
        self.received(key)
            .into_iter()
            .filter(|r| r.posted)
            .collect()
    }

    /// Why webhook deliveries were refused (bad or stale signature).
    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("receiver state")
    }

    async fn handle(&self, mut conn: TcpStream) {
        let Some((path, headers, body)) = read_request(&mut conn).await else {
            return;
        };
        let delay = self.lock().delay;
        tokio::time::sleep(delay).await;
        let fault = {
            let mut s = self.lock();
            let once = s.once.iter().position(|(k, _)| path.contains(k.as_str()));
            match once {
                Some(i) => s.once.remove(i).map(|(_, f)| f),
                None => s
                    .sticky
                    .iter()
                    .find(|(k, _)| path.contains(k.as_str()))
                    .map(|(_, f)| f.clone()),
            }
        };
        let mut received = Received {
            path: path.clone(),
            headers,
            body,
            at: Instant::now(),
            posted: false,
            repeat: false,
        };
        let (status, answer) = match fault {
            Some(Fault::Hang) => {
                self.lock().received.push(received);
                // Held open until the client gives up.
                let mut sink = [0u8; 64];
                while matches!(conn.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Some(Fault::CloseMid) => {
                self.lock().received.push(received);
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\n{\"ok\":")
                    .await;
                return;
            }
            Some(Fault::Status(code)) => (code, "{\"ok\":false}".to_owned()),
            Some(Fault::TooMany(secs)) => (
                429,
                format!(
                    "{{\"ok\":false,\"error_code\":429,\"retry_after\":{secs},\"parameters\":{{\"retry_after\":{secs}}}}}"
                ),
            ),
            None => self.accept(&mut received),
        };
        if (200..300).contains(&status) {
            received.posted = !received.repeat;
        }
        LOG.lock()
            .expect("log")
            .push(format!("{} {status} {answer}", received.path));
        self.lock().received.push(received);
        let retry = if status == 429 {
            "retry-after: 1\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry}connection: close\r\n\r\n",
            answer.len()
        );
        let _ = conn.write_all(head.as_bytes()).await;
        let _ = conn.write_all(answer.as_bytes()).await;
        let _ = conn.shutdown().await;
    }

    /// A request that meets no fault: the webhook checks its signature and drops a repeat.
    fn accept(&self, r: &mut Received) -> (u16, String) {
        if !r.path.starts_with("/hook") {
            return (
                200,
                "{\"ok\":true,\"result\":{\"message_id\":1},\"id\":\"1\"}".into(),
            );
        }
        let now = chrono::Utc::now().timestamp();
        let header = r.header(SIGNATURE_HEADER).unwrap_or_default().to_owned();
        if let Err(e) = verify(self.secret.as_bytes(), &header, &r.body, now, 300) {
            self.lock().refused.push(e.to_string());
            return (400, format!("{{\"error\":\"{e}\"}}"));
        }
        let key = r.header("idempotency-key").unwrap_or_default().to_owned();
        r.repeat = !self.lock().keys.insert(key);
        (200, "{\"ok\":true}".into())
    }
}

/// Reads one request: (path, headers, body).
async fn read_request(conn: &mut TcpStream) -> Option<(String, Vec<(String, String)>, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, String::from_utf8_lossy(&body).to_string()))
}
