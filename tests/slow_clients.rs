//! Slow and stalled clients against a real server on 127.0.0.1:0: a response body that is
//! still moving keeps its connection (a backup downloaded slowly is not cut off), and
//! connections that sent half a request head and stopped make room at once for new clients
//! when the connection cap is reached.

mod common;

use std::time::Duration;

use common::server::{RunningServer, raw_get};
use common::{ADMIN_TOKEN, noisy_report, publish};
use crypto_report::secret::Secret;
use crypto_report::store::{FILE_NAME, Store};
use crypto_report::{AppState, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A store of about 12 MB: reports whose text barely compresses.
async fn big_store(settings: Settings) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
    let state = AppState::new(store, settings).expect("state");
    let mut noise = 0x2545_F491_4F6C_DD1D_u64;
    for batch in 0..4u64 {
        let reports = (1..=25u64)
            .map(|n| noisy_report(batch * 25 + n, 18_000, 0xFFF_FFFF, &mut noise))
            .collect();
        publish(&state, reports).await;
    }
    (state, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_read_slowly_is_sent_whole() {
    let mut settings = Settings::new("https://reports.example");
    settings.admin_token = Some(Secret::new(ADMIN_TOKEN));
    // Short allowances: a body that moves must outlast them many times over.
    settings.idle_timeout = Duration::from_secs(2);
    settings.header_timeout = Duration::from_secs(1);
    let (state, _dir) = big_store(settings).await;
    let server = RunningServer::start(state).await;
    // A small receive window, so the server's writes wait for this reader.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
    let mut stream = socket.connect(server.addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "POST /admin/backup HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    // About 1 MB/s: 16 KiB every 16 ms.
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let started = std::time::Instant::now();
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("the server keeps sending")
            .expect("read");
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
        tokio::time::sleep(Duration::from_millis(16)).await;
        assert!(started.elapsed() < Duration::from_secs(120), "bounded");
    }
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert!(
        length > 8 << 20,
        "a backup large enough to be slow: {length}"
    );
    assert_eq!(
        received.len() - head_end,
        length,
        "the whole backup arrived (after {:?})",
        started.elapsed()
    );
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "it was read slowly: {:?}",
        started.elapsed()
    );
    server.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_at_the_cap_make_room_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join(FILE_NAME)).expect("store");
    let mut settings = Settings::new("https://reports.example");
    settings.max_connections = 16;
    // Longer than the wait a new client tolerates below.
    settings.header_timeout = Duration::from_secs(20);
    let state = AppState::new(store, settings).expect("state");
    let server = RunningServer::start(state).await;
    let half = |addr| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        s
    };
    let mut stalled = Vec::new();
    for _ in 0..16 {
        stalled.push(half(server.addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for round in 0..5 {
        let answer = tokio::time::timeout(Duration::from_secs(5), raw_get(server.addr, "/health"))
            .await
            .unwrap_or_else(|_| panic!("round {round}: a new client waited on half-sent heads"));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The attacker refills the slot it lost.
        stalled.push(half(server.addr).await);
    }
    drop(stalled);
    server.stop().await.expect("stop");
}
