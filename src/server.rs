//! The accept loop: a cap on open connections (the one idle the longest makes room for a new
//! one), deadlines for connections that ask for nothing, and a graceful drain on shutdown
//! bounded in time.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::{TowerToHyperService, TowerToHyperServiceFuture};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connections::{Connections, Limits, Registered, Tracked, TrackedBody};
use crate::{AppState, routes};

/// How long shutdown waits for in-flight requests and background tasks, together.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a connection closed for idling or to make room may take to go, when it has
/// nothing in flight: a half-sent request head is not waited for.
const IDLE_CLOSE_GRACE: Duration = Duration::from_millis(50);

/// Serves `state` on `listener` until `shutdown` completes or the state's background scope is
/// cancelled; then cancels that scope (WebSocket clients, market feed, every other task) and
/// waits, at most [`SHUTDOWN_GRACE`], for in-flight requests and those tasks.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(state.settings.max_connections.max(1)));
    let conns = Arc::new(Connections::new(Limits {
        header_timeout: state.settings.header_timeout,
        idle_timeout: state.settings.idle_timeout,
    }));
    let background = state.background().clone();
    let stop = background.token().clone();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Also bounds the wait for the next request of a kept-alive connection: hyper starts
        // this timer when it begins to wait for a head.
        .header_read_timeout(state.settings.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let builder = Arc::new(builder);
    let service = TowerToHyperService::new(routes::app(state));
    let tasks = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
            () = stop.cancelled() => break,
        };
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Full: the connection idle the longest makes room. When every connection is
                // busy, this one waits and the next ones wait in the kernel's backlog.
                conns.evict_oldest_idle();
                tokio::select! {
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                    () = stop.cancelled() => break,
                }
            }
        };
        let registered = Arc::new(conns.open());
        let (builder, service, stop) = (Arc::clone(&builder), service.clone(), stop.clone());
        tasks.spawn(async move {
            connection(&builder, stream, peer, service, registered, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutdown: no longer accepting, draining connections and stopping tasks");
    // Connections see the cancelled token and finish their requests; upgraded ones
    // (WebSockets) are tasks of the background scope.
    background.cancel();
    tasks.close();
    let connections = async {
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, open = conns.len(), "connections still open after the grace period; closing them");
        }
    };
    tokio::join!(connections, background.shutdown(SHUTDOWN_GRACE));
    Ok(())
}

/// Serves one connection until it ends, is closed for idling, is evicted or the server stops.
/// Once asked to close, it gets a bounded time to finish what it is doing, then is dropped.
async fn connection(
    builder: &Builder<TokioExecutor>,
    stream: TcpStream,
    peer: SocketAddr,
    service: TowerToHyperService<Router>,
    registered: Arc<Registered>,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let service = Service {
        inner: service,
        registered: Arc::clone(&registered),
        peer,
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let header_timeout = registered.limits().header_timeout;
    // Set once the connection was asked to close: the moment it is dropped regardless.
    let mut cutoff: Option<Instant> = None;
    loop {
        let wake = cutoff.unwrap_or_else(|| registered.deadline());
        let why = tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if cutoff.is_none() => Close::Shutdown,
            () = registered.evicted(), if cutoff.is_none() => Close::Evicted,
            () = tokio::time::sleep_until(wake) => match cutoff {
                Some(_) => return,
                None if registered.expired() => Close::Idle,
                None => continue,
            },
        };
        tracing::debug!(reason = ?why, "closing a connection");
        conn.as_mut().graceful_shutdown();
        let bound = match why {
            Close::Shutdown => SHUTDOWN_GRACE,
            // A request that began meanwhile may finish, within the header allowance.
            Close::Evicted | Close::Idle if registered.busy() => header_timeout,
            Close::Evicted | Close::Idle => IDLE_CLOSE_GRACE,
        };
        cutoff = Some(Instant::now() + bound);
    }
}

#[derive(Debug, Clone, Copy)]
enum Close {
    Shutdown,
    Evicted,
    Idle,
}

/// The router as hyper calls it, counting each request as in flight on its connection until
/// the response head is ready.
#[derive(Clone)]
struct Service {
    inner: TowerToHyperService<Router>,
    registered: Arc<Registered>,
    peer: SocketAddr,
}

type Request = hyper::Request<Incoming>;

impl hyper::service::Service<Request> for Service {
    type Response = hyper::Response<TrackedBody<axum::body::Body>>;
    type Error = std::convert::Infallible;
    type Future = Tracked<TowerToHyperServiceFuture<Router, Request>>;

    fn call(&self, mut req: Request) -> Self::Future {
        // Only `/metrics` asks who is calling; other requests skip the extension map's
        // allocation.
        if req.uri().path() == "/metrics" {
            req.extensions_mut().insert(ConnectInfo(self.peer));
        }
        Tracked {
            in_flight: Some(self.registered.request()),
            future: self.inner.call(req),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, draining connections");
}
