//! The open connections of the server: what each is doing, the deadline that closes it while
//! it asks for nothing, and which one makes room when the connection cap is reached.
//!
//! A connection is *idle* while no request of it is being handled and no response body of it
//! is being sent: from the accept until its first request head is complete, and between two
//! requests. An idle connection is closed when it stays idle too long: `header_timeout` before
//! its first request (a client that never sends a byte, or never finishes its first head),
//! `idle_timeout` after one. A response body being sent keeps its connection busy while it
//! moves (a slow download is not idle); one that stops moving for `idle_timeout` (a client
//! that stopped reading) counts as idle again. At the cap, the connection idle the longest is
//! closed to make room for a new one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::lock::lock;
use axum::http;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The deadlines of idle connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Every open connection, for eviction at the cap.
pub struct Connections {
    limits: Limits,
    /// Time zero of the `idle_since` stamps.
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
}

/// One connection's activity, shared by its task and the requests it serves.
pub struct Conn {
    id: u64,
    /// The registry's time zero (copied, so a request needs no handle on the registry).
    epoch: Instant,
    /// Requests whose response head is not out yet.
    in_flight: AtomicU32,
    /// Response bodies still being sent.
    streaming: AtomicU32,
    /// Milliseconds after `epoch` when a body being sent last moved.
    moved_at: AtomicU64,
    /// Whether a first request has arrived (its idle limit changes then).
    served: AtomicBool,
    /// Milliseconds after `epoch` when the connection last became idle.
    idle_since: AtomicU64,
    /// Chosen for eviction: never chosen twice.
    evicted: AtomicBool,
    close: Notify,
}

impl Connections {
    pub fn new(limits: Limits) -> Connections {
        Connections {
            limits,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::default(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a new connection, idle from now; it is forgotten when the guard drops.
    pub fn open(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            epoch: self.epoch,
            in_flight: AtomicU32::new(0),
            streaming: AtomicU32::new(0),
            moved_at: AtomicU64::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(self.now_ms()),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        lock(&self.open).insert(id, Arc::clone(&conn));
        Registered {
            conns: Arc::clone(self),
            conn,
        }
    }

    pub fn len(&self) -> usize {
        lock(&self.open).len()
    }

    /// Asks the connection idle the longest to close; false when every one is busy.
    pub fn evict_oldest_idle(&self) -> bool {
        let open = lock(&self.open);
        let oldest = open
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .filter(|c| c.streaming.load(Ordering::Acquire) == 0)
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            // Ties (same millisecond) go to the older connection.
            .min_by_key(|c| (c.idle_since.load(Ordering::Relaxed), c.id));
        match oldest {
            Some(conn) => {
                conn.evicted.store(true, Ordering::Relaxed);
                // Stored as a permit if its task is not waiting right now.
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's registration: its activity, and its removal when the connection ends.
pub struct Registered {
    conns: Arc<Connections>,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.conns.open).remove(&self.conn.id);
    }
}

impl Registered {
    /// Marks a request as being handled until the returned guard drops.
    pub fn request(&self) -> InFlight {
        self.conn.in_flight.fetch_add(1, Ordering::AcqRel);
        self.conn.served.store(true, Ordering::Relaxed);
        InFlight {
            conn: Arc::clone(&self.conn),
        }
    }

    /// Resolves when the connection was chosen to make room.
    pub async fn evicted(&self) {
        self.conn.close.notified().await;
    }

    /// When the connection should next be looked at: the end of its idle allowance, or (a
    /// request being handled) one allowance from now, or (a body being sent) one allowance
    /// after the body last moved.
    pub fn deadline(&self) -> Instant {
        let limit = self.limit();
        if self.conn.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + limit;
        }
        if self.conn.streaming.load(Ordering::Acquire) > 0 {
            let moved = Duration::from_millis(self.conn.moved_at.load(Ordering::Acquire));
            return self.conns.epoch + moved + self.conns.limits.idle_timeout;
        }
        let since = Duration::from_millis(self.conn.idle_since.load(Ordering::Acquire));
        self.conns.epoch + since + limit
    }

    /// A request is being handled or a body sent (moving or not).
    pub fn busy(&self) -> bool {
        self.conn.in_flight.load(Ordering::Acquire) > 0
            || self.conn.streaming.load(Ordering::Acquire) > 0
    }

    /// Idle for longer than it may be.
    pub fn expired(&self) -> bool {
        self.conn.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.deadline()
    }

    pub fn limits(&self) -> Limits {
        self.conns.limits
    }

    fn limit(&self) -> Duration {
        let limits = self.conns.limits;
        if self.conn.served.load(Ordering::Relaxed) {
            limits.idle_timeout
        } else {
            limits.header_timeout
        }
    }
}

/// One request being handled; the connection is idle again from the drop of the last one.
pub struct InFlight {
    conn: Arc<Conn>,
}

impl InFlight {
    /// The request is answered and its body is being sent: the connection stays busy while
    /// the body moves.
    pub fn sending(self) -> Sending {
        // Counted as sending before it stops counting as in flight: never idle in between.
        self.conn.streaming.fetch_add(1, Ordering::AcqRel);
        let sending = Sending {
            conn: Arc::clone(&self.conn),
        };
        sending.moved();
        sending
    }
}

/// A response body being sent; the connection is idle again from the drop of the last one.
pub struct Sending {
    conn: Arc<Conn>,
}

impl Sending {
    fn moved(&self) {
        let now = u64::try_from(self.conn.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.conn.moved_at.store(now, Ordering::Release);
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        let now = u64::try_from(self.conn.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.conn.idle_since.store(now, Ordering::Release);
        self.conn.streaming.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Stamp first: a deadline computed right after the count drops must see the new stamp.
        let now = u64::try_from(self.conn.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.conn.idle_since.store(now, Ordering::Release);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A service future that holds its request's [`InFlight`] until the response head is ready,
/// then hands it to the response's body, which holds it (as [`Sending`]) until it is sent.
pub struct Tracked<F> {
    pub future: F,
    pub in_flight: Option<InFlight>,
}

impl<F, B, E> Future for Tracked<F>
where
    F: Future<Output = Result<http::Response<B>, E>> + Unpin,
{
    type Output = Result<http::Response<TrackedBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(Pin::new(&mut self.future).poll(cx));
        let sending = self.in_flight.take().map(InFlight::sending);
        Poll::Ready(out.map(|response| response.map(|inner| TrackedBody { inner, sending })))
    }
}

/// A response body that keeps its connection busy while it moves, and lets it go once sent
/// (or dropped).
pub struct TrackedBody<B> {
    inner: B,
    sending: Option<Sending>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let out = Pin::new(&mut self.inner).poll_frame(cx);
        match &out {
            Poll::Ready(Some(Ok(_))) => {
                if let Some(s) = &self.sending {
                    s.moved();
                }
            }
            Poll::Ready(None | Some(Err(_))) => self.sending = None,
            Poll::Pending => {}
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns() -> Arc<Connections> {
        Arc::new(Connections::new(Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_request_has_the_header_deadline_then_the_idle_one() {
        let conns = conns();
        let c = conns.open();
        let opened = Instant::now();
        assert_eq!(c.deadline(), opened + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(4)).await;
        let request = c.request();
        assert!(!c.expired());
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(!c.expired(), "a busy connection never expires");
        drop(request);
        let idle = Instant::now();
        // Millisecond stamps: the deadline is within a millisecond of the drop.
        let deadline = c.deadline();
        assert!(
            deadline <= idle + Duration::from_secs(30)
                && deadline + Duration::from_millis(1) >= idle + Duration::from_secs(30)
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(c.expired());
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_picks_the_longest_idle_and_never_a_busy_one() {
        let conns = conns();
        let old = conns.open();
        tokio::time::advance(Duration::from_secs(1)).await;
        let busy = conns.open();
        let _request = busy.request();
        tokio::time::advance(Duration::from_secs(1)).await;
        let young = conns.open();
        assert_eq!(conns.len(), 3);

        assert!(conns.evict_oldest_idle());
        tokio::time::timeout(Duration::from_millis(10), old.evicted())
            .await
            .expect("the oldest idle connection is told to close");
        assert!(conns.evict_oldest_idle(), "then the next idle one");
        tokio::time::timeout(Duration::from_millis(10), young.evicted())
            .await
            .expect("the younger idle connection is next");
        assert!(!conns.evict_oldest_idle(), "the busy one is never chosen");
        drop(old);
        assert_eq!(conns.len(), 2);
    }
}
