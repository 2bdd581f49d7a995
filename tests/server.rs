//! A real server on 127.0.0.1:0: requests over TCP, graceful shutdown, the connection cap.

mod common;

use std::time::Duration;

use common::server::{RunningServer, raw, raw_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn serves_over_tcp_and_stops_gracefully() {
    let app = common::TestApp::with_reports(3);
    let server = RunningServer::start(app.state.clone()).await;
    let addr = server.addr;
    let response = raw_get(addr, "/crypto_report/2").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-security-policy:")
    );

    // A connection that is open but idle when shutdown starts must not hold the server.
    let idle = TcpStream::connect(addr).await.expect("connect");
    let result = server.stop().await;
    assert!(result.is_ok(), "{result:?}");
    drop(idle);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn in_flight_requests_finish_during_shutdown() {
    let app = common::TestApp::with_reports(2);
    let server = RunningServer::start(app.state.clone()).await;
    let addr = server.addr;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // Send the request head in two parts so it is in flight when shutdown begins.
    stream
        .write_all(b"GET /crypto_report/1 HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut server = server;
    server.signal();
    stream
        .write_all(b"Connection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn malformed_http_gets_an_error_not_a_hang() {
    let app = common::TestApp::with_reports(1);
    let server = RunningServer::start(app.state.clone()).await;
    let addr = server.addr;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GARBAGE \x00\x01\x02 nonsense\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "connection closed or answered in time");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    // The server is still healthy afterwards.
    assert!(raw_get(addr, "/health").await.starts_with("HTTP/1.1 200"));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = common::TestApp::build_with(1, true, |p| {
        p.settings.header_timeout = Duration::from_millis(500);
    });
    let server = RunningServer::start(app.state.clone()).await;
    let addr = server.addr;
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "the server closed the connection");
    assert!(raw_get(addr, "/health").await.starts_with("HTTP/1.1 200"));
    server.stop().await.expect("clean stop");
}

/// Reads until the server closes the connection; fails the test past `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection in time")
        .ok();
    out
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_at_the_header_deadline() {
    let app = common::TestApp::build_with(1, true, |p| {
        p.settings.header_timeout = Duration::from_millis(300);
    });
    let server = RunningServer::start(app.state.clone()).await;
    let started = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    // Three bytes of the HTTP/2 preface: not enough to choose a protocol.
    let mut sniffing = TcpStream::connect(server.addr).await.expect("connect");
    sniffing.write_all(b"PRI").await.expect("write");
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_empty()
    );
    assert!(
        closed_within(&mut sniffing, Duration::from_secs(5))
            .await
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await.expect("clean stop");
}

/// An HTTP/2 frame header: length, type, flags, stream.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small");
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let app = common::TestApp::build_with(1, true, |p| {
        let s = &mut p.settings;
        s.header_timeout = Duration::from_millis(300);
        s.idle_timeout = Duration::from_millis(600);
    });
    let server = RunningServer::start(app.state.clone()).await;
    let mut h2 = TcpStream::connect(server.addr).await.expect("connect");
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(0x4, 0, 0, &[]));
    // GET /health, http, authority x: HPACK static-table indices and literals.
    let mut block = vec![0x82, 0x86, 0x44, 7];
    block.extend(b"/health");
    block.extend([0x41, 1, b'x']);
    hello.extend(h2_frame(0x1, 0x5, 1, &block));
    h2.write_all(&hello).await.expect("write");
    let started = tokio::time::Instant::now();
    let out = closed_within(&mut h2, Duration::from_secs(5)).await;
    // The request was answered (a HEADERS frame on stream 1), then the idle connection closed.
    let answered = out
        .windows(9)
        .any(|w| w[3] == 0x1 && w[5..9] == 1u32.to_be_bytes());
    assert!(answered, "no response headers in {out:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_full_cap_of_silent_or_idle_connections_still_answers_health_at_once() {
    const CAP: usize = 8;
    let app = common::TestApp::build_with(1, true, |p| {
        let s = &mut p.settings;
        s.max_connections = CAP;
        s.header_timeout = Duration::from_secs(60);
        s.idle_timeout = Duration::from_secs(60);
    });
    let server = RunningServer::start(app.state.clone()).await;
    let mut held = Vec::new();
    for i in 0..CAP {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        if i % 2 == 0 {
            // Idle keep-alive: one request answered, then nothing.
            stream
                .write_all(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0u8; 12];
            stream.read_exact(&mut buf).await.expect("answered");
        }
        held.push(stream);
    }
    for _ in 0..3 {
        let health = tokio::time::timeout(Duration::from_secs(1), server.get("/health")).await;
        assert!(
            health
                .expect("/health answered within a second at a full cap")
                .starts_with("HTTP/1.1 200"),
        );
    }
    // The oldest idle connection made room: it was closed.
    let first = held.first_mut().expect("held");
    closed_within(first, Duration::from_secs(2)).await;
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn one_shutdown_stops_every_background_task() {
    let app = common::TestApp::build_with(1, true, |p| {
        p.feed = crypto_report::Feed::Start(Box::new(|| {
            crypto_report::market::Source::demo(
                crypto_report::market::DEMO_SEED,
                Duration::from_millis(20),
            )
        }));
    });
    let state = app.state.clone();
    let market = state.market.clone();
    // A task of the kind later features add (sync, subscriber, lease renewal).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    state.background().spawn("test sync", |stop| async move {
        stop.cancelled().await;
        // Cleanup that takes a moment is waited for.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = done_tx.send(());
    });
    let server = RunningServer::start(state.clone()).await;
    // A WebSocket client and the hub's follower are tasks of the same scope.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .expect("connect");
    let running = state.background().running();
    for name in ["market demo", "live hub", "websocket client", "test sync"] {
        assert!(
            running.contains_key(name),
            "{name} not running: {running:?}"
        );
    }
    server.stop().await.expect("clean stop");
    assert!(
        state.background().running().is_empty(),
        "still running after shutdown: {:?}",
        state.background().running()
    );
    assert!(done_rx.await.is_ok(), "the task finished its cleanup");
    assert_eq!(market.health()["running"], false);
    use futures_util::StreamExt;
    let mut closed = false;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        if matches!(
            message,
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)
        ) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the WebSocket client got a close frame");
}

#[tokio::test]
async fn http11_requests_need_exactly_one_valid_host() {
    let app = common::TestApp::with_reports(1);
    let server = RunningServer::start(app.state.clone()).await;
    for (request, status) in [
        ("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", "400"),
        (
            "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            "GET /crypto_report/1 HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
            "400",
        ),
        ("GET /health HTTP/1.0\r\n\r\n", "200"),
        (
            "GET /health HTTP/1.1\r\nHost: example.org:8000\r\nConnection: close\r\n\r\n",
            "200",
        ),
    ] {
        let response = raw(server.addr, request).await;
        let line = response.lines().next().unwrap_or_default().to_owned();
        assert!(
            line.split(' ').nth(1) == Some(status),
            "{request:?} answered {line:?}"
        );
        if status == "400" {
            let lower = response.to_ascii_lowercase();
            assert!(
                lower.contains("x-content-type-options: nosniff"),
                "{response}"
            );
        }
    }
    server.stop().await.expect("clean stop");
}
