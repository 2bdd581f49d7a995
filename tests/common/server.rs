//! A real server on 127.0.0.1:0 with a shutdown the test triggers, and raw HTTP/1.1 over TCP.

use std::net::SocketAddr;
use std::time::Duration;

use crypto_report::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for a response or a shutdown before it fails.
pub const LIMIT: Duration = Duration::from_secs(15);

pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Serves `state` on a fresh loopback port.
    pub async fn start(state: AppState) -> RunningServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crypto_report::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        RunningServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Starts the shutdown without waiting for it.
    pub fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits for `serve` to return; fails the test past [`LIMIT`].
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.signal();
        tokio::time::timeout(LIMIT, &mut self.task)
            .await
            .expect("the server stops within the limit")
            .expect("the server task does not panic")
    }

    /// `GET path` on a new connection that closes after the response.
    pub async fn get(&self, path: &str) -> String {
        raw_get(self.addr, path).await
    }
}

/// One `GET path` over a new connection; the whole response as text.
pub async fn raw_get(addr: SocketAddr, path: &str) -> String {
    raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Sends `request` as it is over a new connection and reads until the server closes it.
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}
