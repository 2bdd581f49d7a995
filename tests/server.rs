//! A real server on 127.0.0.1:0: requests over TCP, graceful shutdown, the connection cap.

mod common;

use std::time::Duration;

use common::server::{RunningServer, raw_get};
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
    let mut app = common::TestApp::with_reports(1);
    app.set_settings(|s| s.header_timeout = Duration::from_millis(500));
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

#[tokio::test]
async fn connections_past_the_cap_wait_instead_of_being_served() {
    let mut app = common::TestApp::with_reports(1);
    app.set_settings(|s| s.max_connections = 1);
    let server = RunningServer::start(app.state.clone()).await;
    let addr = server.addr;
    // The only slot is held by an idle keep-alive connection.
    let mut first = TcpStream::connect(addr).await.expect("connect");
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 12];
    first.read_exact(&mut buf).await.expect("first answered");
    let waiting = tokio::time::timeout(Duration::from_millis(500), raw_get(addr, "/health")).await;
    assert!(
        waiting.is_err(),
        "a second connection is not served while the slot is taken"
    );
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(5), raw_get(addr, "/health")).await;
    assert!(
        served
            .expect("served once the slot frees")
            .starts_with("HTTP/1.1 200")
    );
    server.stop().await.expect("clean stop");
}

#[tokio::test]
async fn one_shutdown_stops_every_background_task() {
    let app = common::TestApp::with_reports(1);
    let state = app.state.clone();
    let market = crypto_report::market::Market::demo(
        crypto_report::market::DEMO_SEED,
        Duration::from_millis(20),
        state.background(),
    );
    let state = state.with_market(market.clone());
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
