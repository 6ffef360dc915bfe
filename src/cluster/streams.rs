//! Connection state recovery for a cluster: the packets sent to sockets
//! and rooms, and the sessions of sockets, kept in Redis where every node
//! reaches them, so a client recovers on whichever node it reconnects to.
//!
//! - Every recoverable packet (not volatile, not expecting acks) is added
//!   to one Redis stream, `<prefix>#stream`, capped at about
//!   [`ClusterStoreConfig::max_len`] entries (`XADD … MAXLEN ~`). The
//!   stream entry id is the packet's offset: one order for the whole
//!   cluster. Each node reads the stream in that order and delivers every
//!   entry to its own sockets, with the offset as the last argument; the
//!   node that emitted a packet delivers it the same way, so every client
//!   sees one order whatever node it is on.
//! - A socket's session (`<prefix>#session#<pid>`: its id, rooms, data and
//!   owning node) is written when it connects and when its rooms change,
//!   renewed while it lives, and kept for the recovery window once it is
//!   gone. A node killed outright leaves the live record behind; it lapses
//!   one window (plus a renewal period) after its last renewal.
//! - A client that comes back with its pid and last offset, on any node:
//!   that node claims the session (its owner becomes this node, so the old
//!   node, should it still think the socket alive, cannot overwrite it),
//!   waits until its reader has passed the offset, and replays every entry
//!   after the offset up to what the reader has delivered, with the reader
//!   held: the replay and the live packets meet without a gap or a
//!   duplicate. An offset no longer in the stream means the client starts
//!   afresh (`recovered` false), never a partial replay.
//!
//! Stream entries carry the broadcast in the Node Redis adapter's msgpack
//! format (field `m`). The layout differs from
//! `@socket.io/redis-streams-adapter`: socketgate nodes read each other,
//! not Node servers, through this stream.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{BusError, wire};
use crate::socketio::{
    BroadcastOptions, EmitError, Payload, PersistedSession, RecoveryConfig, RemoteBroadcast, Room,
    SocketId,
};

/// Settings of the cluster's recovery store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterStoreConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Key prefix; default `socket.io`.
    pub prefix: String,
    /// Entries the stream keeps, about (Redis trims in whole nodes of its
    /// radix tree): the recovery config's `max_packets`, default 10 000.
    pub max_len: usize,
    /// How long a disconnected socket's session is kept: the recovery
    /// window.
    pub window: Duration,
    /// Most sessions this node keeps for disconnected sockets within one
    /// window: the recovery config's `max_sessions`. Past it a socket that
    /// goes is not kept (its client starts afresh; counted).
    pub max_sessions: usize,
    /// Writes waiting for Redis, at most; default 10 000. Past it an emit
    /// fails with [`EmitError::Cluster`].
    pub write_queue: usize,
}

impl ClusterStoreConfig {
    /// The store for the Redis at `url`, bounded as `recovery` says.
    pub fn new(url: impl Into<String>, recovery: &RecoveryConfig) -> Self {
        ClusterStoreConfig {
            url: url.into(),
            prefix: "socket.io".to_owned(),
            max_len: recovery.max_packets,
            window: recovery.max_disconnection_duration,
            max_sessions: recovery.max_sessions,
            write_queue: 10_000,
        }
    }
}

/// What the store counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStoreStats {
    /// Packets added to the stream by this node.
    pub appended: u64,
    /// Stream entries this node read and delivered to its sockets.
    pub delivered: u64,
    /// Sockets recovered here.
    pub recovered: u64,
    /// Recoveries asked for here that failed (session unknown or expired,
    /// offset no longer in the stream, missed packets too large).
    pub not_recovered: u64,
    /// Sessions not kept: past `max_sessions` or the write queue full.
    pub sessions_dropped: u64,
    /// Stream entries that could not be decoded (skipped).
    pub malformed: u64,
}

/// Where the stream's entries go, and where live sockets come from: the
/// socket.io layer.
pub(crate) trait LogSink: Send + Sync {
    /// Delivers an entry to the local sockets `opts` selects in `nsp`.
    fn deliver(&self, nsp: &str, opts: &BroadcastOptions, data: &Payload, offset: &str);
    /// The sessions of this node's live sockets that can recover.
    fn live_sessions(&self) -> Vec<PersistedSession>;
}

/// A missed packet, to replay: its offset, target and data.
pub(crate) struct Missed {
    pub(crate) offset: String,
    pub(crate) data: Payload,
}

enum Write {
    Append(Bytes),
    Save {
        pid: String,
        record: String,
        ttl: Duration,
    },
    Forget {
        pid: String,
    },
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Counters {
    appended: AtomicU64,
    delivered: AtomicU64,
    recovered: AtomicU64,
    not_recovered: AtomicU64,
    sessions_dropped: AtomicU64,
    malformed: AtomicU64,
}

struct Inner {
    config: ClusterStoreConfig,
    uid: String,
    conn: ConnectionManager,
    writes: mpsc::Sender<Write>,
    /// The id of the last entry delivered here; held while a batch is
    /// delivered and while a recovery replays.
    cursor: tokio::sync::Mutex<Offset>,
    progress: watch::Sender<Offset>,
    sink: OnceLock<Arc<dyn LogSink>>,
    /// When this node kept each disconnected session of the last window.
    kept: Mutex<VecDeque<Instant>>,
    counters: Counters,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The recovery store of a cluster; see the module docs. Give it to
/// [`SocketIoBuilder::cluster_store`](crate::socketio::SocketIoBuilder::cluster_store).
/// Cheap to clone; its tasks stop with the last clone.
#[derive(Clone)]
pub struct ClusterStore(Arc<Inner>);

impl fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterStore")
            .field("uid", &self.0.uid)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A stream entry id, `<ms>-<seq>`: ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Offset(u64, u64);

impl Offset {
    fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-')?;
        Some(Offset(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// Writes a session unless another node has claimed it since.
const SAVE: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'rec', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1";

/// Removes a session unless another node has claimed it since.
const FORGET: &str = r"
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])";

/// Takes a session over: returns it, and makes this node its owner.
const CLAIM: &str = r"
local rec = redis.call('HGET', KEYS[1], 'rec')
if not rec then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return rec";

/// Entries read at once.
const READ_BATCH: usize = 512;
/// How long a recovery waits for this node's reader to reach the client's
/// offset.
const CATCH_UP: Duration = Duration::from_secs(2);

impl ClusterStore {
    /// Sets the store up. Redis must answer (it is retried for a few
    /// seconds): the node reads the stream from its current end, and a
    /// packet emitted before that point would never be delivered here.
    /// Later outages are ridden out (writes wait in the bounded queue, the
    /// reader retries).
    pub async fn new(config: ClusterStoreConfig) -> Result<Self, BusError> {
        let conn = super::manager(&config.url)?;
        let mut reader = super::manager(&config.url)?;
        let key = format!("{}#stream", config.prefix);
        let deadline = Instant::now() + Duration::from_secs(10);
        let start = loop {
            match newest(&mut reader, &key).await {
                Ok(at) => break at,
                Err(e) if Instant::now() >= deadline => {
                    return Err(BusError::Setup(format!(
                        "cannot read the recovery stream in Redis ({e}): the cluster needs Redis up when a node starts"
                    )));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        };
        let (writes, queued) = mpsc::channel(config.write_queue.max(1));
        let (progress, _) = watch::channel(start);
        let inner = Arc::new(Inner {
            uid: super::redis::node_uid(),
            conn,
            writes,
            cursor: tokio::sync::Mutex::new(start),
            progress,
            sink: OnceLock::new(),
            kept: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            stop: CancellationToken::new(),
            config,
        });
        tokio::spawn(write_loop(Arc::downgrade(&inner), queued));
        tokio::spawn(read_loop(Arc::downgrade(&inner), reader, start));
        tokio::spawn(renew_loop(Arc::downgrade(&inner)));
        Ok(ClusterStore(inner))
    }

    /// The counters.
    pub fn stats(&self) -> ClusterStoreStats {
        let c = &self.0.counters;
        ClusterStoreStats {
            appended: c.appended.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            recovered: c.recovered.load(Ordering::Relaxed),
            not_recovered: c.not_recovered.load(Ordering::Relaxed),
            sessions_dropped: c.sessions_dropped.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
        }
    }

    /// Waits (up to `deadline`) until every write queued so far reached
    /// Redis: a node that shuts down calls it before it exits, so the
    /// sessions it kept are there for the others. Returns whether they did.
    pub async fn flush(&self, deadline: Duration) -> bool {
        let (done, flushed) = oneshot::channel();
        let queued = tokio::time::timeout(deadline, self.0.writes.send(Write::Flush(done))).await;
        matches!(queued, Ok(Ok(())))
            && matches!(tokio::time::timeout(deadline, flushed).await, Ok(Ok(())))
    }

    /// Waits (up to `deadline`) until what was emitted so far is written
    /// and read back, so delivered here: a server that shuts down delivers
    /// what it emitted before closing its clients.
    pub(crate) async fn settle(&self, deadline: Duration) {
        let until = Instant::now() + deadline;
        if !self.flush(deadline).await {
            return;
        }
        let Ok(Ok(newest)) =
            tokio::time::timeout_at(until, newest(&mut self.0.conn.clone(), &self.stream_key()))
                .await
        else {
            return;
        };
        let mut progress = self.0.progress.subscribe();
        let _ = tokio::time::timeout_at(until, async {
            progress.wait_for(|at| *at >= newest).await.is_ok()
        })
        .await;
    }

    pub(crate) fn attach(&self, sink: Arc<dyn LogSink>) {
        if self.0.sink.set(sink).is_err() {
            tracing::error!("a ClusterStore serves one server: give each SocketIo its own");
        }
    }

    fn stream_key(&self) -> String {
        format!("{}#stream", self.0.config.prefix)
    }

    /// Adds a packet for the sockets `opts` selects in `nsp` to the stream;
    /// every node (this one too) delivers it when it reads it back.
    pub(crate) fn append(
        &self,
        nsp: &str,
        opts: &BroadcastOptions,
        data: Payload,
    ) -> Result<(), EmitError> {
        let mut message = super::redis::from_remote_broadcast(
            &self.0.uid,
            nsp,
            &RemoteBroadcast::new(opts.clone(), data),
        );
        if opts.local {
            message.flags.local = Some(true);
        }
        let bytes = wire::encode_broadcast(&message);
        match self.0.writes.try_send(Write::Append(bytes)) {
            Ok(()) => Ok(()),
            Err(_) => Err(EmitError::Cluster(
                "the cluster's recovery stream is not reachable (Redis down or too slow); the packet was not sent".into(),
            )),
        }
    }

    /// Writes the session of a live socket (renewed while it lives).
    pub(crate) fn save_live(&self, session: &PersistedSession) {
        let ttl = self.0.config.window + 2 * renew_period(self.0.config.window);
        self.save(session, ttl);
    }

    /// Keeps the session of a socket that went, for the window.
    pub(crate) fn save_disconnected(&self, session: &PersistedSession) {
        let window = self.0.config.window;
        {
            let mut kept = self.0.kept.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            while kept
                .front()
                .is_some_and(|at| now.duration_since(*at) > window)
            {
                kept.pop_front();
            }
            if kept.len() >= self.0.config.max_sessions {
                self.0
                    .counters
                    .sessions_dropped
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("max_sessions disconnected sessions kept: this one is not");
                // Its live record would outlast it and let it recover:
                // remove it, as for a socket that left on purpose.
                drop(kept);
                self.forget(&session.pid);
                return;
            }
            kept.push_back(now);
        }
        self.save(session, window);
    }

    /// Removes the session of a socket that left on purpose (it cannot be
    /// recovered).
    pub(crate) fn forget(&self, pid: &str) {
        let _ = self.0.writes.try_send(Write::Forget {
            pid: pid.to_owned(),
        });
    }

    fn save(&self, session: &PersistedSession, ttl: Duration) {
        let record = serde_json::json!({
            "ns": session.ns,
            "sid": session.sid.as_str(),
            "rooms": session.rooms.iter().map(|r| &**r).collect::<Vec<&str>>(),
            "data": session.data,
        })
        .to_string();
        let write = Write::Save {
            pid: session.pid.clone(),
            record,
            ttl,
        };
        if self.0.writes.try_send(write).is_err() {
            self.0
                .counters
                .sessions_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Recovers the session of `pid` in `ns` with every packet it missed
    /// after `offset`, and hands both to `finish`, which runs while this
    /// node delivers nothing else (it must register the socket before it
    /// returns, and not block). `finish` gets `None` when there is nothing
    /// to recover.
    pub(crate) async fn recover<T>(
        &self,
        ns: &str,
        pid: &str,
        offset: &str,
        finish: impl FnOnce(Option<(PersistedSession, Vec<Missed>)>) -> T,
    ) -> T {
        match self.claim_and_read(ns, pid, offset).await {
            // The cursor guard holds the reader until `finish` returned.
            Ok((session, missed, _cursor)) => finish(Some((session, missed))),
            Err(why) => {
                tracing::debug!(ns, why, "nothing to recover");
                finish(None)
            }
        }
    }

    /// Counts a recovery asked for here, and whether it succeeded.
    pub(crate) fn count_recovery(&self, recovered: bool) {
        let c = &self.0.counters;
        if recovered {
            c.recovered.fetch_add(1, Ordering::Relaxed);
        } else {
            c.not_recovered.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn claim_and_read(
        &self,
        ns: &str,
        pid: &str,
        offset: &str,
    ) -> Result<
        (
            PersistedSession,
            Vec<Missed>,
            tokio::sync::MutexGuard<'_, Offset>,
        ),
        &'static str,
    > {
        let from = Offset::parse(offset).ok_or("not an offset of this cluster")?;
        let mut conn = self.0.conn.clone();
        let record: Option<String> = redis::cmd("EVAL")
            .arg(CLAIM)
            .arg(1)
            .arg(session_key(&self.0.config.prefix, pid))
            .arg(&self.0.uid)
            .arg(self.0.config.window.as_millis().to_string())
            .query_async(&mut conn)
            .await
            .map_err(|_| "Redis did not answer")?;
        let session = parse_session(&record.ok_or("session unknown or expired")?, pid)
            .ok_or("malformed session record")?;
        if session.ns != ns {
            return Err("session of another namespace");
        }
        let mut progress = self.0.progress.subscribe();
        let caught_up = tokio::time::timeout(CATCH_UP, async {
            progress.wait_for(|at| *at >= from).await.is_ok()
        })
        .await;
        if caught_up != Ok(true) {
            return Err("this node's reader did not reach the offset");
        }
        let cursor = self.0.cursor.lock().await;
        let range: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.stream_key())
            .arg(from.to_string())
            .arg(cursor.to_string())
            .arg("COUNT")
            .arg(self.0.config.max_len.saturating_add(1))
            .query_async(&mut conn)
            .await
            .map_err(|_| "Redis did not answer")?;
        let mut ids = range.ids.into_iter();
        match ids.next() {
            Some(first) if Offset::parse(&first.id) == Some(from) => {}
            _ => return Err("the offset is no longer in the stream"),
        }
        let mut missed = Vec::new();
        for entry in ids {
            let Some(message) = self.decode(&entry) else {
                continue;
            };
            let nsp = message.nsp.clone();
            let (opts, data) = super::redis::into_remote_broadcast(message);
            if nsp == session.ns && crate::socketio::addressed_to(&opts, &session) {
                missed.push(Missed {
                    offset: entry.id,
                    data,
                });
            }
        }
        Ok((session, missed, cursor))
    }

    /// The broadcast an entry carries; `None` (counted, logged) when it
    /// cannot be read.
    fn decode(&self, entry: &StreamId) -> Option<wire::Broadcast> {
        let bytes: Option<Vec<u8>> = entry.get("m");
        let decoded = bytes.and_then(|b| wire::decode_broadcast(&Bytes::from(b)).ok());
        if decoded.is_none() {
            self.0.counters.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(id = %entry.id, "an undecodable entry in the recovery stream: skipped");
        }
        decoded
    }

    /// Delivers a batch read from the stream; the caller holds the cursor.
    fn deliver_batch(&self, entries: &[StreamId], cursor: &mut Offset) {
        let sink = self.0.sink.get();
        for entry in entries {
            let Some(id) = Offset::parse(&entry.id) else {
                continue;
            };
            *cursor = id;
            let Some(message) = self.decode(entry) else {
                continue;
            };
            // A local packet is for the sockets of the node that sent it.
            if message.flags.local == Some(true) && message.uid != self.0.uid {
                continue;
            }
            let nsp = message.nsp.clone();
            let (opts, data) = super::redis::into_remote_broadcast(message);
            if let Some(sink) = sink {
                sink.deliver(&nsp, &opts, &data, &entry.id);
                self.0.counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn session_key(prefix: &str, pid: &str) -> String {
    format!("{prefix}#session#{pid}")
}

fn parse_session(record: &str, pid: &str) -> Option<PersistedSession> {
    let v: serde_json::Value = serde_json::from_str(record).ok()?;
    Some(PersistedSession {
        ns: v.get("ns")?.as_str()?.to_owned(),
        sid: SocketId::from(v.get("sid")?.as_str()?),
        pid: pid.to_owned(),
        rooms: v
            .get("rooms")?
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str().map(Room::from))
            .collect(),
        data: v.get("data").cloned().unwrap_or_default(),
        extensions: http::Extensions::new(),
    })
}

/// How often live sessions are renewed.
fn renew_period(window: Duration) -> Duration {
    (window / 2).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

async fn write_loop(inner: Weak<Inner>, mut queued: mpsc::Receiver<Write>) {
    let mut down_since: Option<Instant> = None;
    while let Some(first) = queued.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match queued.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        loop {
            let Some(store) = inner.upgrade() else { return };
            let (key, prefix, uid, max_len) = (
                format!("{}#stream", store.config.prefix),
                store.config.prefix.clone(),
                store.uid.clone(),
                store.config.max_len,
            );
            // All or nothing: a batch retried after a failure is not added
            // twice (short of a failure between Redis applying it and us
            // hearing so).
            let mut pipe = redis::pipe();
            pipe.atomic();
            let mut appended = 0u64;
            for w in &batch {
                match w {
                    Write::Append(bytes) => {
                        appended += 1;
                        pipe.cmd("XADD")
                            .arg(&key)
                            .arg("MAXLEN")
                            .arg("~")
                            .arg(max_len)
                            .arg("*")
                            .arg("m")
                            .arg(bytes.as_ref())
                            .ignore();
                    }
                    Write::Save { pid, record, ttl } => {
                        pipe.cmd("EVAL")
                            .arg(SAVE)
                            .arg(1)
                            .arg(session_key(&prefix, pid))
                            .arg(&uid)
                            .arg(record)
                            .arg(ttl.as_millis().to_string())
                            .ignore();
                    }
                    Write::Forget { pid } => {
                        pipe.cmd("EVAL")
                            .arg(FORGET)
                            .arg(1)
                            .arg(session_key(&prefix, pid))
                            .arg(&uid)
                            .ignore();
                    }
                    Write::Flush(_) => {}
                }
            }
            let mut conn = store.conn.clone();
            let stop = store.stop.clone();
            drop(store);
            let done: Result<(), redis::RedisError> = tokio::select! {
                _ = stop.cancelled() => return,
                r = pipe.query_async(&mut conn) => r,
            };
            match done {
                Ok(()) => {
                    if let Some(since) = down_since.take() {
                        tracing::info!(
                            "recovery stream writable again after {:?}",
                            since.elapsed()
                        );
                    }
                    if let Some(store) = inner.upgrade() {
                        store
                            .counters
                            .appended
                            .fetch_add(appended, Ordering::Relaxed);
                    }
                    for w in batch {
                        if let Write::Flush(done) = w {
                            let _ = done.send(());
                        }
                    }
                    break;
                }
                Err(e) => {
                    if down_since.is_none() {
                        down_since = Some(Instant::now());
                        tracing::error!(
                            error = %e,
                            "cannot write to the recovery stream in Redis: packets wait (bounded) until it is back; check Redis"
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// The id of the newest entry of the stream (0-0 when it is empty).
async fn newest(conn: &mut ConnectionManager, key: &str) -> Result<Offset, redis::RedisError> {
    let newest: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(newest
        .ids
        .first()
        .and_then(|e| Offset::parse(&e.id))
        .unwrap_or_default())
}

/// Reads the stream from `last` on, in order, and delivers each batch with
/// the cursor held.
async fn read_loop(inner: Weak<Inner>, mut conn: ConnectionManager, mut last: Offset) {
    let Some((key, stop)) = inner
        .upgrade()
        .map(|s| (format!("{}#stream", s.config.prefix), s.stop.clone()))
    else {
        return;
    };
    let options = StreamReadOptions::default().count(READ_BATCH).block(1000);
    let mut failing = false;
    loop {
        let mut xread = redis::cmd("XREAD");
        xread
            .arg(&options)
            .arg("STREAMS")
            .arg(&key)
            .arg(last.to_string());
        let read: Result<Option<StreamReadReply>, redis::RedisError> = tokio::select! {
            _ = stop.cancelled() => return,
            r = xread.query_async(&mut conn) => r,
        };
        let entries = match read {
            Ok(reply) => {
                if failing {
                    failing = false;
                    tracing::info!("reading the recovery stream again");
                }
                reply
                    .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>())
                    .unwrap_or_default()
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::error!(error = %e, "cannot read the recovery stream from Redis: retrying; check Redis");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if entries.is_empty() {
            continue;
        }
        let Some(store) = inner.upgrade() else { return };
        let store = ClusterStore(store);
        let mut cursor = store.0.cursor.lock().await;
        store.deliver_batch(&entries, &mut cursor);
        last = *cursor;
        drop(cursor);
        store.0.progress.send_replace(last);
    }
}

async fn renew_loop(inner: Weak<Inner>) {
    let Some((period, stop)) = inner
        .upgrade()
        .map(|s| (renew_period(s.config.window), s.stop.clone()))
    else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let Some(store) = inner.upgrade() else { return };
        let store = ClusterStore(store);
        if let Some(sink) = store.0.sink.get() {
            for session in sink.live_sessions() {
                store.save_live(&session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_order_as_redis_ids() {
        let a = Offset::parse("1700000000000-0").unwrap();
        let b = Offset::parse("1700000000000-1").unwrap();
        let c = Offset::parse("1700000000001-0").unwrap();
        assert!(a < b && b < c);
        assert_eq!(a.to_string(), "1700000000000-0");
        assert_eq!(Offset::parse("abc"), None);
        assert_eq!(Offset::parse("1-"), None);
        assert_eq!(Offset::parse("deadbeef-12"), None);
    }

    #[test]
    fn session_records_round_trip() {
        let rec =
            serde_json::json!({"ns":"/","sid":"abc","rooms":["abc","relay:x"],"data":{"k":1}})
                .to_string();
        let s = parse_session(&rec, "p1").unwrap();
        assert_eq!(s.ns, "/");
        assert_eq!(s.sid.as_str(), "abc");
        assert_eq!(s.pid, "p1");
        assert_eq!(s.rooms, vec![Room::from("abc"), Room::from("relay:x")]);
        assert_eq!(s.data, serde_json::json!({"k":1}));
        assert!(parse_session("{}", "p").is_none());
        assert!(parse_session("not json", "p").is_none());
    }

    #[test]
    fn renewal_is_within_the_window() {
        assert_eq!(
            renew_period(Duration::from_secs(120)),
            Duration::from_secs(30)
        );
        assert_eq!(
            renew_period(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        assert_eq!(
            renew_period(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
