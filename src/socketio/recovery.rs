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
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
            max_packets: 10_000,
            max_bytes: 16 << 20,
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

/// A recovered session and the packets it missed, oldest first, each as
/// the engine messages that were sent (text, then attachments).
#[derive(Debug)]
pub struct Restored {
    /// The session.
    pub session: PersistedSession,
    /// The missed packets.
    pub missed: Vec<Vec<Message>>,
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
    /// Takes back the session of `pid` in `ns` with every packet it missed
    /// after `offset`; `None` when it is unknown, expired, or some packet it
    /// may have missed is no longer retained.
    fn restore(&self, ns: &str, pid: &str, offset: &str) -> Option<Restored>;
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
        s.sessions
            .retain(|_, (_, at)| now.duration_since(*at) <= max_age);
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
        s.sessions.insert(session.pid.clone(), (session, now));
    }

    fn restore(&self, ns: &str, pid: &str, offset: &str) -> Option<Restored> {
        let seq = self.parse(offset)?;
        let now = Instant::now();
        let mut s = self.state();
        self.expire(&mut s, now);
        let (session, _) = s.sessions.remove(pid)?;
        if session.ns != ns || s.evicted.is_some_and(|e| e > seq) {
            // Something after the client's offset may be gone: recovering
            // would lose it silently, so start afresh instead.
            return None;
        }
        let missed = s
            .packets
            .iter()
            .filter(|p| p.seq > seq && p.ns == ns && addressed_to(&p.target, &session))
            .map(|p| p.packet.clone())
            .collect();
        Some(Restored { session, missed })
    }
}

/// Whether a packet sent to `target` was for the socket `session` was.
fn addressed_to(target: &BroadcastOptions, session: &PersistedSession) -> bool {
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
        let restored = st.restore("/", "p1", &seen).unwrap();
        assert_eq!(texts(&restored.missed), ["direct", "room", "everyone"]);
        assert!(st.restore("/", "p1", &seen).is_none(), "taken once");
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
        assert!(st.restore("/", "nope", &first).is_none());
        assert!(st.restore("/", "p1", "other-epoch-0").is_none());
        st.persist(session("p1", &["s1"]));
        assert!(
            st.restore("/chat", "p1", &first).is_none(),
            "other namespace"
        );
        for i in 0..5 {
            emit(&st, &to(&[]), &i.to_string());
        }
        assert_eq!(st.retained().0, 3);
        st.persist(session("p1", &["s1"]));
        assert!(st.restore("/", "p1", &first).is_none(), "history evicted");
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
        assert_eq!(
            texts(&st.restore("/", "p", &base).unwrap().missed),
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
        assert!(st.restore("/", "p", &seen).is_none());
        assert_eq!(st.retained().0, 0);
    }
}
