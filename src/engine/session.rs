//! The session handle shared by the transports, the heartbeat driver and
//! the application.
//!
//! Concurrency: all session state lives in one [`Machine`] behind a mutex
//! held only for short, non-async sections. Two [`Notify`]s wake the parties
//! that wait: `outbound` the transport that drains the queue (a pending
//! poll or the WebSocket writer), `timers` the heartbeat driver. Waiters
//! register with `enable()` *before* checking the machine, so a wake-up
//! between the check and the wait cannot be lost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use http::{HeaderMap, Uri};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::EngineInner;
use super::machine::{CloseReason, Machine, SendError, TransportKind};
use super::packet::Message;
use super::sid::Sid;

/// What the client's handshake request carried.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// The handshake URI (path and query).
    pub uri: Uri,
    /// The handshake headers.
    pub headers: HeaderMap,
    /// The peer's address, when the server records it (axum's
    /// `ConnectInfo<SocketAddr>`).
    pub remote_addr: Option<SocketAddr>,
}

impl RequestInfo {
    /// The first value of a query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.uri.query()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

/// A handle to one engine.io session. Cheap to clone.
#[derive(Clone)]
pub struct Session(Arc<Shared>);

pub(crate) struct Shared {
    sid: Sid,
    engine: Weak<EngineInner>,
    counters: Arc<super::Counters>,
    machine: Mutex<Machine>,
    outbound: Notify,
    timers: Notify,
    /// The transport took frames from the queue: room for waiting senders.
    drained: Notify,
    /// Senders waiting on `drained`: the transport wakes them only when
    /// there are some (a `Notify` locks its waiter list on every call).
    drain_waiters: AtomicUsize,
    terminated: CancellationToken,
    request: RequestInfo,
    /// The last poll's answer, with the request's cache-buster `t`: see
    /// [`Session::replay_poll`].
    last_poll: Mutex<Option<(Box<str>, Vec<super::packet::Frame>)>>,
}

impl Session {
    pub(crate) fn new(
        sid: Sid,
        engine: Weak<EngineInner>,
        counters: Arc<super::Counters>,
        machine: Machine,
        request: RequestInfo,
    ) -> Self {
        Session(Arc::new(Shared {
            sid,
            engine,
            counters,
            machine: Mutex::new(machine),
            outbound: Notify::new(),
            timers: Notify::new(),
            drained: Notify::new(),
            drain_waiters: AtomicUsize::new(0),
            terminated: CancellationToken::new(),
            request,
            last_poll: Mutex::new(None),
        }))
    }

    /// Keeps what a poll answered, under its cache-buster `t` (or forgets
    /// the last one, without `t`), until the next poll.
    pub(crate) fn remember_poll(&self, t: Option<&str>, frames: Vec<super::packet::Frame>) {
        let mut last = self.0.last_poll.lock().unwrap_or_else(|e| e.into_inner());
        *last = t.map(|t| (Box::from(t), frames));
    }

    /// What the last poll answered, when this poll is that one again: the
    /// same request (same `t`) resent by a proxy that never got the answer
    /// (a node between it and this one died while passing it on). Without
    /// this the answer, taken from the queue, would be lost.
    pub(crate) fn replay_poll(&self, t: &str) -> Option<Vec<super::packet::Frame>> {
        let last = self.0.last_poll.lock().unwrap_or_else(|e| e.into_inner());
        match &*last {
            Some((seen, frames)) if &**seen == t => Some(frames.clone()),
            _ => None,
        }
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.0.sid
    }

    /// The engine.io protocol revision of this session.
    pub fn protocol(&self) -> super::Protocol {
        self.machine().protocol()
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        self.machine().transport()
    }

    /// The handshake request.
    pub fn request(&self) -> &RequestInfo {
        &self.0.request
    }

    /// Queues a message for the client. Fails when the session is closing
    /// or when its outbound queue is full (nothing is queued then).
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        self.machine().push(message.frame().clone())?;
        self.0.outbound.notify_waiters();
        Ok(())
    }

    /// Queues several messages back to back, all or none (see
    /// [`send`](Self::send)); nothing else is queued between them.
    pub fn send_all(&self, messages: &[Message]) -> Result<(), SendError> {
        self.machine()
            .push_all(messages.iter().map(Message::frame))?;
        self.0.outbound.notify_waiters();
        Ok(())
    }

    /// Queues messages that may be dropped: they are sent only when the
    /// client is keeping up (nothing else waiting, no upgrade under way).
    /// Returns whether they were queued.
    pub fn send_volatile(&self, messages: &[Message]) -> bool {
        let queued = self
            .machine()
            .push_volatile(messages.iter().map(Message::frame));
        if queued {
            self.0.outbound.notify_waiters();
        } else if let Some(engine) = self.0.engine.upgrade() {
            engine
                .counters
                .volatile_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Queues messages back to back like [`send_all`](Self::send_all), but
    /// waits for room when the queue is full instead of failing:
    /// backpressure for producers that can slow down. Fails when the
    /// session closes, or at once ([`SendError::MessageTooLarge`]) when the
    /// messages alone are larger than the whole queue.
    pub async fn send_all_wait(&self, messages: &[Message]) -> Result<(), SendError> {
        let pushed = self
            .until_room(|m| match m.push_all(messages.iter().map(Message::frame)) {
                Err(SendError::QueueFull) => None,
                done => Some(done),
            })
            .await;
        if pushed.is_ok() {
            self.0.outbound.notify_waiters();
        }
        pushed
    }

    /// Tries `attempt` on the machine until it has an answer (`Some`),
    /// waiting for the transport to drain between tries; a close ends the
    /// wait with [`SendError::Closed`].
    async fn until_room(
        &self,
        mut attempt: impl FnMut(&mut Machine) -> Option<Result<(), SendError>>,
    ) -> Result<(), SendError> {
        // Counted before registering, so the transport that drains after
        // our look at the queue sees us (the machine's mutex orders both).
        self.0.drain_waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = DrainWaiter(&self.0.drain_waiters);
        loop {
            let drained = self.0.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if let Some(answer) = attempt(&mut self.machine()) {
                return answer;
            }
            tokio::select! {
                _ = &mut drained => {}
                _ = self.0.terminated.cancelled() => return Err(SendError::Closed),
            }
        }
    }

    /// Counts a message dropped under the drop policy for full queues.
    pub(crate) fn count_dropped(&self) {
        if let Some(engine) = self.0.engine.upgrade() {
            engine.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The transport took frames: wake senders waiting for room.
    pub(crate) fn wake_drained(&self) {
        if self.0.drain_waiters.load(Ordering::SeqCst) > 0 {
            self.0.drained.notify_waiters();
        }
    }

    /// Closes the session at once, dropping what is queued, with `reason`
    /// (for example [`CloseReason::SlowConsumer`]).
    ///
    /// The handler's [`on_close`](super::EngineHandler::on_close) does not
    /// run inside this call but right after it, on a task of its own: a
    /// caller holding its own lock (or in the middle of a broadcast) is
    /// never re-entered by the close it caused.
    pub fn close_now(&self, reason: CloseReason) {
        self.close_impl(reason, false, Notice::Deferred);
    }

    /// Closes the session after what is already queued has been delivered
    /// (within `ping_timeout`). Like [`close_now`](Self::close_now), the
    /// handler hears of it after this call returns.
    pub fn close(&self) {
        self.close_impl(CloseReason::ServerClose, true, Notice::Deferred);
    }

    /// Whether the session is closing or closed.
    pub fn is_closed(&self) -> bool {
        !self.machine().is_open()
    }

    /// Bytes waiting in the outbound queue.
    pub fn queued_bytes(&self) -> usize {
        self.machine().queued_bytes()
    }

    /// Bytes the session holds for its client: the queue plus what the
    /// WebSocket writer took and has not written yet. Never more than
    /// `max_queue_bytes` (control packets aside, which may pass it).
    pub fn held_bytes(&self) -> usize {
        self.machine().held_bytes()
    }

    /// The most [`held_bytes`](Self::held_bytes) ever reached: what a
    /// client that stopped reading cost at worst.
    pub fn held_bytes_peak(&self) -> usize {
        self.machine().held_peak()
    }

    /// Waits until `bytes` more fit in the outbound queue (see
    /// [`send_all_wait`](Self::send_all_wait)); nothing is queued. Fails when
    /// the session closes, or at once when `bytes` alone pass the bound.
    pub async fn wait_room(&self, bytes: usize) -> Result<(), SendError> {
        self.until_room(|m| {
            if !m.is_open() {
                Some(Err(SendError::Closed))
            } else if bytes > m.max_queue_bytes() {
                Some(Err(SendError::MessageTooLarge))
            } else {
                (m.held_bytes() + bytes <= m.max_queue_bytes()).then_some(Ok(()))
            }
        })
        .await
    }

    /// Whether a polling GET and a polling POST are in progress, in that
    /// order (a diagnostic: a long poll is normally pending).
    pub fn pending_requests(&self) -> (bool, bool) {
        self.machine().pending_requests()
    }

    /// Completes when the session has fully closed.
    pub async fn closed(&self) {
        self.0.terminated.cancelled().await
    }

    // ---- crate internals ---------------------------------------------

    pub(crate) fn machine(&self) -> MutexGuard<'_, Machine> {
        // A panic while holding the lock would be a bug in this crate; the
        // state it guards is still consistent, so carry on rather than
        // poison every later request.
        self.0.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn outbound_notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.outbound.notified()
    }

    pub(crate) fn wake_outbound(&self) {
        self.0.outbound.notify_waiters();
    }

    pub(crate) fn wake_timers(&self) {
        self.0.timers.notify_one();
    }

    pub(crate) fn terminated(&self) -> &CancellationToken {
        &self.0.terminated
    }

    /// Closes the session (see [`Machine::close`]), tells the handler once
    /// and leaves the registry when fully closed. For the session's own
    /// paths (its transport, its heartbeat driver): the handler runs inline,
    /// in order after the messages this path delivered.
    pub(crate) fn close_with(&self, reason: CloseReason, graceful: bool) {
        self.close_impl(reason, graceful, Notice::Inline);
    }

    /// [`close_with`](Self::close_with) for a close requested from outside
    /// the session's own paths (an emit that found the queue full, the
    /// application, a shutdown): the handler runs after the caller returns.
    pub(crate) fn close_deferred(&self, reason: CloseReason, graceful: bool) {
        self.close_impl(reason, graceful, Notice::Deferred);
    }

    fn close_impl(&self, reason: CloseReason, graceful: bool, notice: Notice) {
        let closed = self.machine().close(reason, graceful, Instant::now());
        if closed.first {
            tracing::debug!(sid = %self.sid(), %reason, "session closing");
            if let Some(engine) = self.0.engine.upgrade() {
                super::Counters::add(&engine.counters.closes[reason.index()], 1);
                if reason == CloseReason::SlowConsumer {
                    engine
                        .counters
                        .slow_consumer_closes
                        .fetch_add(1, Ordering::Relaxed);
                }
                match notice {
                    Notice::Inline => engine.handler.on_close(self, reason),
                    Notice::Deferred => engine.notify_close_later(self.clone(), reason),
                }
            }
        }
        if closed.finished {
            self.terminate();
        }
        self.wake_outbound();
        self.wake_timers();
    }

    /// A graceful close delivered its last frame.
    pub(crate) fn finished(&self) {
        self.terminate();
        self.wake_outbound();
    }

    /// The engine is gone (every handle and service dropped): the session
    /// closes without a handler to tell, and its tasks end.
    /// Returns whether this closed it (the handler is still to be told).
    pub(crate) fn orphan(&self) -> bool {
        let closed = self
            .machine()
            .close(CloseReason::ServerShutdown, false, Instant::now());
        self.0.terminated.cancel();
        self.wake_outbound();
        self.wake_timers();
        closed.first
    }

    fn terminate(&self) {
        if let Some(engine) = self.0.engine.upgrade() {
            engine.sessions.remove(&self.0.sid);
        }
        self.0.terminated.cancel();
    }

    /// Hands a decoded client message to the handler.
    pub(crate) fn deliver(&self, message: Message) {
        if let Some(engine) = self.0.engine.upgrade() {
            super::Counters::add(&self.0.counters.messages_in, 1);
            super::Counters::add(&self.0.counters.bytes_in, message.len() as u64);
            engine.handler.on_message(self, message);
        }
    }

    /// Counts frames the WebSocket writer sent.
    pub(crate) fn count_sent(&self, frames: usize, bytes: usize) {
        super::Counters::add(&self.0.counters.frames_out, frames as u64);
        super::Counters::add(&self.0.counters.bytes_out, bytes as u64);
    }

    /// Counts an upgrade to WebSocket, and tells the handler.
    pub(crate) fn upgraded(&self) {
        if let Some(engine) = self.0.engine.upgrade() {
            super::Counters::add(&engine.counters.upgrades, 1);
            engine.handler.on_upgrade(self);
        }
    }

    /// Applies the deadlines due by now, as the heartbeat driver will when
    /// its timer fires: a request that arrives after the pong deadline finds
    /// the session timed out, whichever of the two tasks runs first.
    /// Returns whether the session is closed.
    pub(crate) fn apply_deadlines(&self) -> bool {
        let tick = self.machine().tick(Instant::now());
        if tick.pinged {
            self.wake_outbound();
        }
        if tick.timed_out {
            self.close_with(CloseReason::PingTimeout, false);
        }
        if tick.finished {
            self.finished();
        }
        tick.timed_out
    }

    /// Runs the heartbeat and close deadlines until the session is gone.
    pub(crate) async fn drive(self) {
        loop {
            let notified = self.0.timers.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let m = self.machine();
                if m.is_closed() {
                    return;
                }
                m.next_deadline()
            };
            let Some(deadline) = deadline else { return };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    self.apply_deadlines();
                }
                _ = &mut notified => {}
            }
        }
    }

    /// Waits until `step` has something other than "wait" to say about the
    /// machine, re-checking on every outbound wake-up.
    pub(crate) async fn wait_outbound<T>(
        &self,
        mut step: impl FnMut(&mut Machine) -> Option<T>,
    ) -> T {
        loop {
            let notified = self.0.outbound.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = step(&mut self.machine()) {
                return v;
            }
            notified.await;
        }
    }
}

/// When the handler hears of a close.
#[derive(Clone, Copy)]
enum Notice {
    Inline,
    Deferred,
}

/// One sender in [`Session::send_all_wait`], however its future ends.
struct DrainWaiter<'a>(&'a AtomicUsize);

impl Drop for DrainWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.0.sid)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Session {}
