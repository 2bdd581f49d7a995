//! `GET /ws` on a real server bound to 127.0.0.1:0: greeting, snapshots, updates, pings,
//! announcements, slow and silent clients, the connection cap and shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::server::RunningServer;
use common::{TestApp, publish};
use crypto_report::Feed;
use crypto_report::live::{Hub, HubSettings};
use crypto_report::market::{DEMO_SEED, Snapshot, Source};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    app: TestApp,
    snapshots: watch::Sender<Arc<Snapshot>>,
    running: RunningServer,
}

impl Server {
    /// A server whose hub follows a snapshot channel the test drives.
    async fn start(settings: HubSettings) -> Server {
        Self::build(settings, None).await
    }

    /// A server on the demo feed (in the state's task scope): the hub finds it on the first
    /// connection.
    async fn with_demo_market(tick: Duration) -> Server {
        Self::build(HubSettings::default(), Some(tick)).await
    }

    async fn build(settings: HubSettings, demo_tick: Option<Duration>) -> Server {
        let app = TestApp::build_with(2, true, |p| {
            p.hub = settings;
            if let Some(tick) = demo_tick {
                p.feed = Feed::Start(Box::new(move || Source::demo(DEMO_SEED, tick)));
            }
        });
        let (snapshots, rx) = watch::channel(Arc::new(snapshot(true)));
        if demo_tick.is_none() {
            app.state.live.follow(rx);
        }
        let running = RunningServer::start(app.state.clone()).await;
        Server {
            addr: running.addr,
            app,
            snapshots,
            running,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn hub(&self) -> &Hub {
        &self.app.state.live
    }

    async fn connect(&self) -> Client {
        let (ws, _) = timeout(WAIT, connect_async(self.url()))
            .await
            .expect("connect in time")
            .expect("connect");
        ws
    }

    /// Connects and consumes the greeting: `connected`, then `dashboard_data`.
    async fn client(&self) -> (Client, Value) {
        let mut ws = self.connect().await;
        let hello = next_json(&mut ws).await;
        assert_eq!(hello["type"], "connected", "{hello}");
        let data = next_json(&mut ws).await;
        assert_eq!(data["type"], "dashboard_data", "{data}");
        (ws, data)
    }

    async fn wait_clients(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.hub().clients() != n {
            assert!(
                Instant::now() < deadline,
                "expected {n} clients, have {}",
                self.hub().clients()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.running.stop().await.expect("clean stop");
    }
}

/// A snapshot told apart by its `demo` flag, the one field every shape of it has.
fn snapshot(demo: bool) -> Snapshot {
    Snapshot {
        demo,
        ..Snapshot::default()
    }
}

fn quick() -> HubSettings {
    HubSettings::default()
}

/// The next text frame as JSON, skipping control frames; fails after `WAIT`.
async fn next_json(ws: &mut Client) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = timeout(left, ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads until the stream ends; returns the close frame if one came. Bounded by `WAIT`.
async fn read_to_end(ws: &mut Client) -> (Vec<Value>, Option<Message>) {
    let mut texts = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await.expect("stream ends in time") {
            Some(Ok(Message::Text(text))) => {
                texts.push(serde_json::from_str(text.as_str()).expect("json"))
            }
            Some(Ok(message @ Message::Close(_))) => return (texts, Some(message)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (texts, None),
        }
    }
}

#[tokio::test]
async fn connect_sends_connected_then_the_snapshot() {
    let server = Server::start(quick()).await;
    let (_ws, data) = server.client().await;
    assert_eq!(data["data"]["demo"], true);
    assert_eq!(data["source"], "demo");
    assert!(data["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    server.wait_clients(1).await;
    server.stop().await;
}

#[tokio::test]
async fn a_changed_snapshot_reaches_the_client() {
    let server = Server::start(quick()).await;
    let (mut ws, first) = server.client().await;
    server.snapshots.send_replace(Arc::new(snapshot(false)));
    let update = next_json(&mut ws).await;
    assert_eq!(update["type"], "dashboard_update", "{update}");
    assert_eq!(update["data"]["demo"], false);
    assert_eq!(update["source"], "live");
    assert!(update["seq"].as_u64() > first["seq"].as_u64());
    server.stop().await;
}

#[tokio::test]
async fn the_demo_market_feeds_the_hub() {
    let server = Server::with_demo_market(Duration::from_millis(50)).await;
    let (mut ws, first) = server.client().await;
    assert_eq!(first["data"]["demo"], true);
    assert!(
        first["data"]["btc_price_usd"]
            .as_f64()
            .is_some_and(|p| p > 0.0),
        "{first}"
    );
    let update = next_json(&mut ws).await;
    assert_eq!(update["type"], "dashboard_update", "{update}");
    assert!(update["seq"].as_u64() > first["seq"].as_u64());
    assert!(update["data"]["btc_price_usd"].is_number());
    server.stop().await;
}

#[tokio::test]
async fn both_ping_forms_get_a_pong() {
    let server = Server::start(quick()).await;
    let (mut ws, _) = server.client().await;
    for ping in ["ping", r#"{"type":"ping"}"#] {
        ws.send(Message::text(ping)).await.expect("send");
        let pong = next_json(&mut ws).await;
        assert_eq!(pong["type"], "pong", "{pong}");
        assert!(pong["timestamp"].is_string());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_new_report_is_announced() {
    let server = Server::start(quick()).await;
    let (mut ws, _) = server.client().await;
    let report = common::report(99, "2026-11-21T08:00:00Z");
    publish(&server.app.state, vec![report.clone()]).await;
    let message = next_json(&mut ws).await;
    assert_eq!(message["type"], "report_published", "{message}");
    assert_eq!(message["data"]["id"], 99);
    assert_eq!(message["data"]["created_at"], "2026-11-21T08:00:00Z");
    // Publishing the same report again is no news.
    publish(&server.app.state, vec![report]).await;
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    server.stop().await;
}

#[tokio::test]
async fn oversized_client_messages_are_closed_with_1009() {
    let server = Server::start(quick()).await;
    let (mut ws, _) = server.client().await;
    server.wait_clients(1).await;
    let _ = ws.send(Message::text("x".repeat(64 * 1024))).await;
    let (_, close) = read_to_end(&mut ws).await;
    match close {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("expected a close frame, got {other:?}"),
    }
    server.wait_clients(0).await;
    server.stop().await;
}

#[tokio::test]
async fn protocol_pings_and_client_closes_are_answered() {
    let server = Server::start(quick()).await;
    let (mut ws, _) = server.client().await;
    ws.send(Message::Ping(b"abc".to_vec().into()))
        .await
        .expect("ping");
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, ws.next()).await.expect("pong in time") {
            Some(Ok(Message::Pong(payload))) => {
                assert_eq!(&payload[..], b"abc");
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    ws.close(None).await.expect("close");
    let (_, close) = read_to_end(&mut ws).await;
    assert!(matches!(close, Some(Message::Close(_))), "{close:?}");
    server.wait_clients(0).await;
    server.stop().await;
}

#[tokio::test]
async fn a_plain_request_is_not_upgraded() {
    let server = Server::start(quick()).await;
    let reply = server.app.get("/ws").await;
    assert_eq!(reply.status, 400);
    assert_eq!(server.hub().clients(), 0);
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_refuses_with_503() {
    let server = Server::start(HubSettings {
        max_clients: 2,
        ..quick()
    })
    .await;
    let (_a, _) = server.client().await;
    let (b, _) = server.client().await;
    match connect_async(server.url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        Err(e) => panic!("expected 503, got {e}"),
        Ok(_) => panic!("a third client got in past a cap of 2"),
    }
    assert_eq!(server.hub().clients(), 2);
    // A slot frees up when a client leaves.
    drop(b);
    server.wait_clients(1).await;
    let (_c, _) = server.client().await;
    server.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_and_a_live_one_kept() {
    let server = Server::start(HubSettings {
        ping_interval: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(300),
        ..quick()
    })
    .await;
    // Reading keeps answering the server's pings (tungstenite pongs automatically).
    let (mut live, _) = server.client().await;
    // Never read again after the greeting: no pongs.
    let (mut silent, _) = server.client().await;
    server.wait_clients(2).await;
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        let until = Instant::now() + Duration::from_millis(1200);
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(until, live.next()).await {
            if matches!(message, Message::Ping(_)) {
                pings += 1;
            }
        }
        (live, pings)
    });
    server.wait_clients(1).await;
    let (texts, _) = read_to_end(&mut silent).await;
    assert!(texts.is_empty(), "{texts:?}");
    let (_live, pings) = reader.await.expect("reader");
    assert!(pings >= 3, "only {pings} pings");
    assert_eq!(server.hub().clients(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_gets_only_the_newest_snapshot() {
    const UPDATES: u64 = 2000;
    const PAYLOAD: usize = 64 * 1024;
    let server = Server::start(quick()).await;
    let (mut stuck, first) = server.client().await;
    let base = first["seq"].as_u64().expect("seq");
    let (mut reader, _) = server.client().await;

    // 2000 × 64 KiB = 125 MiB offered to a client that reads nothing, in lockstep with a
    // client that reads everything, so the stuck client's task is offered every update too.
    let filler = "x".repeat(PAYLOAD);
    let mut delivered = 0;
    for i in 1..=UPDATES {
        let data = serde_json::json!({ "n": i, "filler": filler });
        server.hub().publish(&data, "test");
        let m = next_json(&mut reader).await;
        if m["seq"].as_u64() == Some(base + i) {
            delivered += 1;
        }
    }
    let last = base + UPDATES;
    assert!(delivered > UPDATES / 2, "the reader got only {delivered}");
    // What this costs the server's memory is checked by scripts/bench-ws, alone in its
    // process; here other tests share the process.

    // The stuck client resumes: what sat in the socket buffers, then the newest, no backlog.
    let mut received = 0;
    let mut newest = 0;
    while newest != last {
        let m = next_json(&mut stuck).await;
        assert_eq!(m["type"], "dashboard_update");
        newest = m["seq"].as_u64().expect("seq");
        received += 1;
    }
    assert!(
        received < UPDATES / 2,
        "{received} of {UPDATES} updates were queued for a client that was not reading"
    );
    assert_eq!(server.hub().clients(), 2);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_sends_a_close_frame() {
    let server = Server::start(quick()).await;
    let (mut ws, _) = server.client().await;
    server.wait_clients(1).await;
    let hub = server.hub().clone();
    let stopping = tokio::spawn(server.stop());
    let (_, close) = read_to_end(&mut ws).await;
    match close {
        Some(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    timeout(Duration::from_secs(15), stopping)
        .await
        .expect("stopped in time")
        .expect("stop task");
    assert_eq!(hub.clients(), 0);
}

/// What a browser does with an update: objects merge member by member, the rest replaces.
fn merge(base: &Value, patch: &Value) -> Value {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            let mut out = base.clone();
            for (key, value) in patch {
                let merged = merge(base.get(key).unwrap_or(&Value::Null), value);
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        _ => patch.clone(),
    }
}

#[tokio::test]
async fn a_market_update_carries_only_what_changed() {
    let server = Server::start(quick()).await;
    let (mut ws, first) = server.client().await;
    // The same snapshot again is no news.
    server.snapshots.send_replace(Arc::new(snapshot(true)));
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    let newer = Snapshot {
        btc_sparkline: vec![(1, 84_000.0), (2, 84_100.5)],
        ..snapshot(false)
    };
    server.snapshots.send_replace(Arc::new(newer.clone()));
    let update = next_json(&mut ws).await;
    assert_eq!(update["type"], "dashboard_update", "{update}");
    assert_eq!(update["seq"].as_u64(), first["seq"].as_u64().map(|s| s + 1));
    let changed: Vec<&str> = update["data"]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(changed, ["btc_sparkline", "demo"], "{update}");
    let whole = serde_json::to_value(&newer).expect("json");
    assert_eq!(merge(&first["data"], &update["data"]), whole);

    // A client arriving now gets the whole snapshot.
    let (_late, data) = server.client().await;
    assert_eq!(data["data"], whole);
    server.stop().await;
}

#[tokio::test]
async fn a_message_at_the_limit_still_gets_an_answer() {
    let server = Server::start(quick()).await;
    let (mut ws, _) = server.client().await;
    // 4 KiB in all: four times the socket's read buffer, within the message limit.
    let ping = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(4096 - 24));
    assert_eq!(ping.len(), 4096);
    ws.send(Message::text(ping)).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    ws.send(Message::text("ping")).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    server.stop().await;
}

/// One message read off a raw socket: each frame's (opcode, FIN, payload length), and the
/// payload joined.
async fn raw_message(stream: &mut TcpStream) -> (Vec<(u8, bool, usize)>, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut frames = Vec::new();
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 2];
        timeout(WAIT, stream.read_exact(&mut head))
            .await
            .expect("a frame in time")
            .expect("frame head");
        assert_eq!(head[1] & 0x80, 0, "a server frame is never masked");
        let len = match head[1] & 0x7f {
            126 => {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).await.expect("length");
                usize::from(u16::from_be_bytes(ext))
            }
            127 => {
                let mut ext = [0u8; 8];
                stream.read_exact(&mut ext).await.expect("length");
                usize::try_from(u64::from_be_bytes(ext)).expect("length")
            }
            n => usize::from(n),
        };
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.expect("payload");
        let (opcode, fin) = (head[0] & 0x0f, head[0] & 0x80 != 0);
        frames.push((opcode, fin, len));
        payload.extend_from_slice(&body);
        if fin {
            return (frames, payload);
        }
    }
}

#[tokio::test]
async fn a_long_message_is_one_frame_from_the_handshake_on() {
    let server = Server::start(quick()).await;
    let filler = "é".repeat(3000);
    server
        .hub()
        .publish(&serde_json::json!({ "filler": filler }), "test");

    // The handshake by hand, with the key of RFC 6455's example.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    );
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        timeout(WAIT, stream.read_exact(&mut byte))
            .await
            .expect("answer in time")
            .expect("answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head)
        .expect("ascii head")
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );

    let (frames, hello) = raw_message(&mut stream).await;
    assert_eq!(
        frames,
        [(1, true, hello.len())],
        "a short message is one frame"
    );
    let (frames, data) = raw_message(&mut stream).await;
    assert_eq!(frames, [(1, true, data.len())], "one text frame");
    assert!(data.len() > 6000);
    let data: Value = serde_json::from_slice(&data).expect("JSON");
    assert_eq!(data["type"], "dashboard_data");
    assert_eq!(data["data"]["filler"].as_str(), Some(filler.as_str()));
    server.stop().await;
}
