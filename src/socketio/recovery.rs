//! Connection state recovery: what a disconnected socket had (id, rooms,
//! data) and the packets it missed, kept for a while so that a client that
//! comes back gets both, in order, exactly once.
//!
//! Every event sent without an ack gets an *offset* as its last argument.
//! The client remembers the last offset it saw and, when it reconnects,
//! sends it with its private session id (`pid`). The store answers with the
//! session and every retained packet after that offset that was addressed
//! to it. The storage is a trait so that a cluster store can keep it where
//! every node reaches it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::adapter::{BroadcastOptions, Room};
use super::socket::SocketId;
use crate::engine::Message;

/// Connection state recovery settings. Recovery is off unless
/// [`SocketIoConfig::recovery`](super::SocketIoConfig::recovery) holds one.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// How long a disconnected socket's state is kept; default 120 s.
    pub max_disconnection_duration: Duration,
    /// Whether connect middlewares are skipped for a recovered socket;
    /// default true.
    pub skip_middlewares: bool,
    /// Most packets retained (all namespaces); default 10 000. Past it the
    /// oldest go, and a client whose offset is older cannot recover.
    pub max_packets: usize,
    /// Most bytes of retained packets; default 16 MiB.
    pub max_bytes: usize,
    /// Most disconnected sessions kept at once; default 100 000. Past it
    /// the oldest is forgotten (its client starts afresh).
    pub max_sessions: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
            max_bytes: 16 << 20,
            max_sessions: 100_000,
        }
    }
}

impl RecoveryConfig {
    /// Sets [`max_disconnection_duration`](Self::max_disconnection_duration).
    pub fn max_disconnection_duration(mut self, d: Duration) -> Self {
        self.max_disconnection_duration = d;
        self
    }

    /// Sets [`skip_middlewares`](Self::skip_middlewares).
    pub fn skip_middlewares(mut self, skip: bool) -> Self {
        self.skip_middlewares = skip;
        self
    }

    /// Sets [`max_packets`](Self::max_packets).
    pub fn max_packets(mut self, n: usize) -> Self {
        self.max_packets = n;
        self
    }

    /// Sets [`max_sessions`](Self::max_sessions).
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }
}

/// What a disconnected socket leaves behind.
#[derive(Clone)]
pub struct PersistedSession {
    /// Namespace path.
    pub ns: String,
    /// The socket id, given back on recovery.
    pub sid: SocketId,
    /// The private session id the client presents.
    pub pid: String,
    /// Rooms, its own id among them.
    pub rooms: Vec<Room>,
    /// The socket's JSON data ([`Socket::data`](super::Socket::data)).
    pub data: Value,
    /// The socket's typed extensions. A store that keeps sessions outside
    /// this process cannot keep these; the in-memory store does.
    pub extensions: http::Extensions,
}

impl fmt::Debug for PersistedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistedSession")
            .field("ns", &self.ns)
            .field("sid", &self.sid)
            .field("rooms", &self.rooms)
            .finish_non_exhaustive()
    }
}

/// Why the packets a session missed cannot be replayed; the client then
/// starts afresh (`recovered` false) rather than with a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The offset is not one of this store's.
    #[error("unknown offset")]
    UnknownOffset,
    /// Something after the offset is no longer retained.
    #[error("packets after the offset were evicted")]
    Evicted,
    /// The missed packets together pass the limit given.
    #[error("the missed packets are more than the client's queue holds")]
    TooLarge,
}

/// Where recovery state lives.
pub trait SessionStore: Send + Sync + 'static {
    /// An offset for the next packet, greater than every earlier one.
    fn next_offset(&self) -> String;
    /// Keeps a packet sent in namespace `ns` to the sockets `target`
    /// selects, under its offset.
    fn retain(&self, offset: &str, ns: &str, target: &BroadcastOptions, packet: &[Message]);
    /// Keeps a disconnected socket's state.
    fn persist(&self, session: PersistedSession);
    /// Takes back (once) the session of `pid` in `ns`; `None` when it is
    /// unknown or expired.
    fn take(&self, ns: &str, pid: &str) -> Option<PersistedSession>;
    /// Every retained packet of `session`'s namespace after `offset` that
    /// was addressed to it, oldest first, each as the engine messages that
    /// were sent (text, then attachments). Fails rather than answer with a
    /// gap, and when the packets together pass `max_bytes` (so the answer
    /// never grows past what the client could be sent).
    fn missed(
        &self,
        session: &PersistedSession,
        offset: &str,
        max_bytes: usize,
    ) -> Result<Vec<Vec<Message>>, ReplayError>;
}

/// Recovery state in this process's memory, bounded by
/// [`RecoveryConfig`]. It survives the shutdown of a [`SocketIo`] (a new
/// server built with the same store recovers its clients), not the end of
/// the process.
///
/// [`SocketIo`]: super::SocketIo
pub struct MemoryStore {
    config: RecoveryConfig,
    /// Random per store, so offsets of another store (or process) are
    /// recognised as foreign.
    epoch: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    packets: VecDeque<Retained>,
    bytes: usize,
    /// Highest sequence number that was dropped to respect the bounds.
    evicted: Option<u64>,
    sessions: HashMap<String, (PersistedSession, Instant)>,
    /// Sessions in the order they were kept, for eviction past
    /// `max_sessions` (an entry whose time no longer matches its session's
    /// is stale and skipped).
    kept: VecDeque<(String, Instant)>,
}

struct Retained {
    seq: u64,
    ns: String,
    target: BroadcastOptions,
    packet: Vec<Message>,
    bytes: usize,
    at: Instant,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(config: RecoveryConfig) -> Self {
        // Hex, so that the `-` between epoch and sequence is unambiguous.
        let mut random = [0u8; 6];
        let epoch = match getrandom::fill(&mut random) {
            Ok(()) => random.iter().map(|b| format!("{b:02x}")).collect(),
            Err(_) => "0".to_owned(),
        };
        MemoryStore {
            config,
            epoch,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn parse(&self, offset: &str) -> Option<u64> {
        let (epoch, seq) = offset.rsplit_once('-')?;
        (epoch == self.epoch).then(|| seq.parse().ok()).flatten()
    }

    /// Disconnected sessions kept now.
    pub fn session_count(&self) -> usize {
        self.state().sessions.len()
    }

    /// Retained packets and bytes, for tests and metrics.
    pub fn retained(&self) -> (usize, usize) {
        let s = self.state();
        (s.packets.len(), s.bytes)
    }

    fn expire(&self, s: &mut State, now: Instant) {
        let max_age = self.config.max_disconnection_duration;
        while s
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > max_age)
        {
            evict_front(s);
        }
        while let Some((pid, at)) = s.kept.front()
            && now.duration_since(*at) > max_age
        {
            let (pid, at) = (pid.clone(), *at);
            s.kept.pop_front();
            if s.sessions.get(&pid).is_some_and(|(_, kept)| *kept == at) {
                s.sessions.remove(&pid);
            }
        }
    }
}

fn evict_front(s: &mut State) {
    if let Some(p) = s.packets.pop_front() {
        s.bytes -= p.bytes;
        s.evicted = Some(p.seq);
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (packets, bytes) = self.retained();
        f.debug_struct("MemoryStore")
            .field("packets", &packets)
            .field("bytes", &bytes)
            .finish()
    }
}

impl SessionStore for MemoryStore {
    fn next_offset(&self) -> String {
        let mut s = self.state();
        let seq = s.next;
        s.next += 1;
        format!("{}-{seq}", self.epoch)
    }

    fn retain(&self, offset: &str, ns: &str, target: &BroadcastOptions, packet: &[Message]) {
        let Some(seq) = self.parse(offset) else {
            return;
        };
        let bytes = packet.iter().map(Message::len).sum::<usize>() + 64;
        let now = Instant::now();
        let mut s = self.state();
        self.expire(&mut s, now);
        let retained = Retained {
            seq,
            ns: ns.to_owned(),
            target: target.clone(),
            packet: packet.to_vec(),
            bytes,
            at: now,
        };
        // Offsets are taken before encoding, so two emitters may retain out
        // of order: keep the queue sorted by sequence.
        let at = s
            .packets
            .iter()
            .rposition(|p| p.seq < seq)
            .map_or(0, |i| i + 1);
        s.packets.insert(at, retained);
        s.bytes += bytes;
        while s.packets.len() > self.config.max_packets || s.bytes > self.config.max_bytes {
            evict_front(&mut s);
        }
    }

    fn persist(&self, session: PersistedSession) {
        let now = Instant::now();
        let mut s = self.state();
        self.expire(&mut s, now);
        s.kept.push_back((session.pid.clone(), now));
        s.sessions.insert(session.pid.clone(), (session, now));
        while s.sessions.len() > self.config.max_sessions {
            let Some((pid, at)) = s.kept.pop_front() else {
                break;
            };
            if s.sessions.get(&pid).is_some_and(|(_, kept)| *kept == at) {
                s.sessions.remove(&pid);
                tracing::debug!("recovery store full: the oldest session is forgotten");
            }
        }
        // Entries of sessions taken back meanwhile are stale: drop them
        // before they outnumber the live ones.
        if s.kept.len() > 2 * s.sessions.len() + 64 {
            let State { kept, sessions, .. } = &mut *s;
            kept.retain(|(pid, at)| sessions.get(pid).is_some_and(|(_, t)| t == at));
        }
    }

    fn take(&self, ns: &str, pid: &str) -> Option<PersistedSession> {
        let now = Instant::now();
        let mut s = self.state();
        self.expire(&mut s, now);
        if s.sessions
            .get(pid)
            .is_some_and(|(session, _)| session.ns == ns)
        {
            s.sessions.remove(pid).map(|(session, _)| session)
        } else {
            None
        }
    }

    fn missed(
        &self,
        session: &PersistedSession,
        offset: &str,
        max_bytes: usize,
    ) -> Result<Vec<Vec<Message>>, ReplayError> {
        let seq = self.parse(offset).ok_or(ReplayError::UnknownOffset)?;
        let now = Instant::now();
        let mut s = self.state();
        self.expire(&mut s, now);
        if s.evicted.is_some_and(|e| e > seq) {
            // Something after the client's offset may be gone: recovering
            // would lose it silently, so start afresh instead.
            return Err(ReplayError::Evicted);
        }
        let mut bytes = 0;
        let mut missed = Vec::new();
        for p in s
            .packets
            .iter()
            .filter(|p| p.seq > seq && p.ns == session.ns && addressed_to(&p.target, session))
        {
            bytes += p.packet.iter().map(|m| m.frame().len()).sum::<usize>();
            if bytes > max_bytes {
                return Err(ReplayError::TooLarge);
            }
            missed.push(p.packet.clone());
        }
        Ok(missed)
    }
}

/// Whether a packet sent to `target` was for the socket `session` was.
pub(crate) fn addressed_to(target: &BroadcastOptions, session: &PersistedSession) -> bool {
    let member = |room: &Room| session.rooms.contains(room);
    (target.rooms.is_empty() || target.rooms.iter().any(member))
        && !target.except.iter().any(member)
        && target.except_sid.as_ref() != Some(&session.sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_packets: usize) -> MemoryStore {
        MemoryStore::new(RecoveryConfig::default().max_packets(max_packets))
    }

    fn session(pid: &str, rooms: &[&str]) -> PersistedSession {
        PersistedSession {
            ns: "/".into(),
            sid: SocketId::from("s1"),
            pid: pid.into(),
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            data: Value::Null,
            extensions: http::Extensions::new(),
        }
    }

    fn to(rooms: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| Room::from(*r)).collect(),
            ..Default::default()
        }
    }

    fn texts(missed: &[Vec<Message>]) -> Vec<String> {
        missed
            .iter()
            .map(|p| p[0].as_text().unwrap().to_owned())
            .collect()
    }

    fn emit(st: &MemoryStore, target: &BroadcastOptions, text: &str) -> String {
        let offset = st.next_offset();
        st.retain(&offset, "/", target, &[Message::text(text)]);
        offset
    }

    #[test]
    fn restores_what_was_addressed_to_the_session_after_its_offset() {
        let st = store(100);
        let seen = emit(&st, &to(&[]), "seen");
        emit(&st, &to(&["s1"]), "direct");
        emit(&st, &to(&["r"]), "room");
        emit(&st, &to(&["other"]), "not mine");
        emit(
            &st,
            &BroadcastOptions {
                except: vec![Room::from("r")],
                ..Default::default()
            },
            "excluded by room",
        );
        emit(
            &st,
            &BroadcastOptions {
                except_sid: Some(SocketId::from("s1")),
                ..Default::default()
            },
            "sent by it",
        );
        emit(&st, &to(&[]), "everyone");
        st.persist(session("p1", &["s1", "r"]));
        let session = st.take("/", "p1").unwrap();
        let missed = st.missed(&session, &seen, usize::MAX).unwrap();
        assert_eq!(texts(&missed), ["direct", "room", "everyone"]);
        assert!(st.take("/", "p1").is_none(), "taken once");
        assert_eq!(
            st.missed(&session, &seen, 10),
            Err(ReplayError::TooLarge),
            "bounded by the caller's limit"
        );
    }

    #[test]
    fn offsets_are_parsed_back_by_their_store_only() {
        for _ in 0..200 {
            let st = store(10);
            let offset = st.next_offset();
            assert_eq!(st.parse(&offset), Some(0), "{offset}");
            assert_eq!(store(10).parse(&offset), None, "another store's offset");
        }
    }

    #[test]
    fn refuses_unknown_foreign_or_evicted_history() {
        let st = store(3);
        let first = emit(&st, &to(&[]), "1");
        st.persist(session("p1", &["s1"]));
        assert!(st.take("/", "nope").is_none());
        assert!(st.take("/chat", "p1").is_none(), "other namespace");
        let s1 = st.take("/", "p1").unwrap();
        assert_eq!(
            st.missed(&s1, "other-epoch-0", usize::MAX),
            Err(ReplayError::UnknownOffset)
        );
        assert!(st.missed(&s1, &first, usize::MAX).is_ok());
        for i in 0..5 {
            emit(&st, &to(&[]), &i.to_string());
        }
        assert_eq!(st.retained().0, 3);
        assert_eq!(
            st.missed(&s1, &first, usize::MAX),
            Err(ReplayError::Evicted),
            "history evicted"
        );
    }

    #[test]
    fn out_of_order_retains_are_replayed_in_offset_order() {
        let st = store(100);
        let base = emit(&st, &to(&[]), "base");
        let a = st.next_offset();
        let b = st.next_offset();
        st.retain(&b, "/", &to(&[]), &[Message::text("b")]);
        st.retain(&a, "/", &to(&[]), &[Message::text("a")]);
        st.persist(session("p", &["s1"]));
        let p = st.take("/", "p").unwrap();
        assert_eq!(
            texts(&st.missed(&p, &base, usize::MAX).unwrap()),
            ["a", "b"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_and_packets_expire() {
        let st = MemoryStore::new(
            RecoveryConfig::default().max_disconnection_duration(Duration::from_secs(1)),
        );
        let seen = emit(&st, &to(&[]), "seen");
        st.persist(session("p", &["s1"]));
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(st.take("/", "p").is_none());
        let _ = seen;
        assert_eq!(st.retained().0, 0);
    }

    #[test]
    fn sessions_are_bounded_oldest_first() {
        let st = MemoryStore::new(RecoveryConfig::default().max_sessions(3));
        for i in 0..10 {
            st.persist(session(&format!("p{i}"), &["s1"]));
        }
        assert_eq!(st.session_count(), 3);
        assert!(st.take("/", "p6").is_none(), "the oldest went");
        assert!(st.take("/", "p9").is_some());
        // Taking and keeping the same pid again and again leaves no trail.
        for _ in 0..1000 {
            st.persist(session("again", &["s1"]));
            assert!(st.take("/", "again").is_some());
        }
        assert!(st.state().kept.len() < 200, "{}", st.state().kept.len());
    }
}
