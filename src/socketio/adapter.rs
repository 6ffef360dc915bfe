//! Where room membership lives, and the seam a cluster adapter sits on.
//!
//! The adapter of a namespace answers "which local sockets does this
//! broadcast reach" (every adapter keeps local membership in memory). A
//! cluster adapter also reaches other nodes: it is handed every broadcast
//! that is not `local()`, as a [`RemoteBroadcast`] (the event and its
//! arguments, without this node's recovery offsets: each node numbers its
//! own), and every room operation on remote sockets as a [`RemoteOp`]; what
//! other nodes send it, it delivers through the [`AdapterContext`] it gets
//! when its namespace is created. Handing something on never blocks: a
//! cluster adapter queues it (boundedly) and reports what it had to drop.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::payload::Payload;
pub use super::types::{BroadcastOptions, Room};
use super::types::{EmitError, SocketId};

/// A broadcast for the other nodes of a cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteBroadcast {
    /// Whom it is for (`except_sid` travels as a room: every socket is in
    /// its own).
    pub opts: BroadcastOptions,
    /// The packet's data as socket.io carries it: the event name, then the
    /// arguments (binary as placeholders and attachments).
    pub data: Payload,
}

impl RemoteBroadcast {
    /// A broadcast of `data` (the event name, then the arguments) to the
    /// sockets `opts` selects.
    pub fn new(opts: BroadcastOptions, data: Payload) -> Self {
        RemoteBroadcast { opts, data }
    }

    /// The event name (the first element of the data).
    pub fn event(&self) -> Option<&str> {
        self.data.args.first().and_then(|v| v.as_str())
    }
}

/// An operation on the sockets `opts` selects, wherever they are.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RemoteOp {
    /// They join `rooms`.
    Join {
        /// Whom.
        opts: BroadcastOptions,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// They leave `rooms`.
    Leave {
        /// Whom.
        opts: BroadcastOptions,
        /// The rooms.
        rooms: Vec<Room>,
    },
    /// They are disconnected from the namespace (`close`: their whole
    /// connection is closed).
    Disconnect {
        /// Whom.
        opts: BroadcastOptions,
        /// Close the client's connection too.
        close: bool,
    },
}

/// Why an adapter could not hand something on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The cluster bus cannot be reached now; the message was dropped and
    /// counted.
    #[error("the cluster bus is unavailable: {0}")]
    Unavailable(String),
    /// The queue towards the bus is full; the message was dropped and
    /// counted.
    #[error("the queue towards the cluster bus is full")]
    Backlog,
}

/// A boxed future, for the adapter's asynchronous answers.
pub type AdapterFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Room membership and broadcast fan-out of one namespace.
///
/// Local membership lives in a [`LocalAdapter`] the adapter holds
/// ([`local`](Self::local)); the membership methods default to it.
pub trait Adapter: Send + Sync + 'static {
    /// The rooms of this node's sockets.
    fn local(&self) -> &LocalAdapter;
    /// Adds a socket to rooms.
    fn join(&self, sid: &SocketId, rooms: &[Room]) {
        self.local().add(sid, rooms);
    }
    /// Removes a socket from rooms.
    fn leave(&self, sid: &SocketId, rooms: &[Room]) {
        self.local().remove(sid, rooms);
    }
    /// Removes a socket from every room (it disconnected).
    fn leave_all(&self, sid: &SocketId) {
        self.local().remove_all(sid);
    }
    /// The rooms a socket is in.
    fn rooms_of(&self, sid: &SocketId) -> Vec<Room> {
        self.local().rooms_of_socket(sid)
    }
    /// The local sockets a broadcast reaches.
    fn select(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.local().selected(opts)
    }
    /// Every room with a local socket in it (sockets' own rooms included).
    fn all_rooms(&self) -> Vec<Room> {
        self.local().rooms()
    }
    /// Called once when the namespace exists, with the handle through
    /// which what other nodes send is delivered here.
    fn attach(&self, ctx: AdapterContext) {
        let _ = ctx;
    }
    /// Whether the adapter reaches other nodes: only then are broadcasts
    /// turned into [`RemoteBroadcast`]s. Default false.
    fn is_remote(&self) -> bool {
        false
    }
    /// Hands a broadcast (not `local()`) to the other nodes, after it was
    /// delivered here. Must not block.
    fn publish(&self, broadcast: &RemoteBroadcast) -> Result<(), AdapterError> {
        let _ = broadcast;
        Ok(())
    }
    /// Hands a room operation (not `local()`) to the other nodes, after it
    /// was applied here. Must not block.
    fn apply_remote(&self, op: &RemoteOp) -> Result<(), AdapterError> {
        let _ = op;
        Ok(())
    }
    /// How many nodes serve this namespace, this one included.
    fn server_count(&self) -> AdapterFuture<Result<usize, AdapterError>> {
        Box::pin(std::future::ready(Ok(1)))
    }
    /// The sockets of the other nodes that `opts` selects, as they answer
    /// by `timeout`.
    fn fetch_remote(
        &self,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<SocketInfo>, AdapterError>> {
        let _ = (opts, timeout);
        Box::pin(std::future::ready(Ok(Gathered::default())))
    }
    /// The rooms of the other nodes, as they answer by `timeout`.
    fn remote_rooms(
        &self,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<Room>, AdapterError>> {
        let _ = timeout;
        Box::pin(std::future::ready(Ok(Gathered::default())))
    }
    /// Sends an event to the other nodes' server-side handlers
    /// ([`Namespace::on_server_side`](super::Namespace::on_server_side));
    /// `data` is the event name, then the arguments.
    fn server_side_emit(&self, data: &Payload) -> Result<(), AdapterError> {
        let _ = data;
        Ok(())
    }
    /// [`server_side_emit`](Self::server_side_emit), gathering one answer
    /// per other node until all answered or `timeout`.
    fn server_side_emit_with_ack(
        &self,
        data: &Payload,
        timeout: Duration,
    ) -> AdapterFuture<Result<Gathered<serde_json::Value>, AdapterError>> {
        let _ = (data, timeout);
        Box::pin(std::future::ready(Ok(Gathered::default())))
    }
    /// Hands a broadcast that expects acks to the other nodes and gathers
    /// their clients' answers until every one answered or `timeout`.
    fn broadcast_with_acks(
        &self,
        broadcast: &RemoteBroadcast,
        timeout: Duration,
    ) -> AdapterFuture<Result<RemoteAcks, AdapterError>> {
        let _ = (broadcast, timeout);
        Box::pin(std::future::ready(Ok(RemoteAcks::default())))
    }
}

/// What the other nodes answered to a request by its deadline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Gathered<T> {
    /// Their answers, put together.
    pub items: Vec<T>,
    /// Nodes that did not answer in time (counted, not named: the bus
    /// only says how many nodes listen).
    pub silent_nodes: usize,
}

impl<T> Default for Gathered<T> {
    fn default() -> Self {
        Gathered {
            items: Vec::new(),
            silent_nodes: 0,
        }
    }
}

impl<T> Gathered<T> {
    /// Answers, and how many nodes stayed silent.
    pub fn new(items: Vec<T>, silent_nodes: usize) -> Self {
        Gathered {
            items,
            silent_nodes,
        }
    }
}

/// The acks of a broadcast from the sockets of other nodes.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RemoteAcks {
    /// The answers (the first argument of each, as the Node adapter
    /// carries them).
    pub replies: Vec<Payload>,
    /// Clients on other nodes the broadcast went to.
    pub clients: u64,
    /// Nodes that did not say how many clients they sent it to.
    pub silent_nodes: usize,
}

impl RemoteAcks {
    /// Answers, how many clients were asked, and how many nodes stayed
    /// silent.
    pub fn new(replies: Vec<Payload>, clients: u64, silent_nodes: usize) -> Self {
        RemoteAcks {
            replies,
            clients,
            silent_nodes,
        }
    }
}

/// What an adapter delivers through: the namespace it serves, reached
/// weakly (the namespace owns the adapter).
#[derive(Clone)]
pub struct AdapterContext {
    ns: Arc<dyn LocalNamespace>,
    path: Arc<str>,
}

/// The namespace as its adapter sees it; implemented by the namespace
/// (this module names no type of the layers above it).
pub(crate) trait LocalNamespace: Send + Sync + 'static {
    fn is_alive(&self) -> bool;
    fn broadcast(&self, broadcast: &RemoteBroadcast) -> Result<(), EmitError>;
    fn apply(&self, op: &RemoteOp);
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo>;
    fn rooms(&self) -> Vec<Room>;
    fn broadcast_with_acks(
        &self,
        broadcast: &RemoteBroadcast,
        timeout: Duration,
        acks: tokio::sync::mpsc::UnboundedSender<Payload>,
    ) -> usize;
    fn server_side(&self, data: Payload, reply: Option<ServerSideReply>) -> bool;
}

impl std::fmt::Debug for AdapterContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterContext")
            .field("path", &self.path)
            .finish()
    }
}

impl AdapterContext {
    pub(crate) fn new(path: &str, ns: Arc<dyn LocalNamespace>) -> Self {
        AdapterContext {
            ns,
            path: path.into(),
        }
    }

    /// The namespace's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the namespace still exists.
    pub fn is_alive(&self) -> bool {
        self.ns.is_alive()
    }

    /// Delivers a broadcast from another node to this node's sockets (it
    /// is not handed on again).
    pub fn broadcast(&self, broadcast: &RemoteBroadcast) -> Result<(), EmitError> {
        self.ns.broadcast(broadcast)
    }

    /// Applies a room operation from another node to this node's sockets.
    pub fn apply(&self, op: &RemoteOp) {
        self.ns.apply(op);
    }

    /// This node's sockets that `opts` selects, as other nodes see them.
    pub fn sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.ns.sockets(opts)
    }

    /// Every room with a socket of this node in it.
    pub fn rooms(&self) -> Vec<Room> {
        self.ns.rooms()
    }

    /// Delivers a broadcast from another node that expects acks: how many
    /// sockets it went to, and their answers as they come (the channel
    /// closes once every socket answered or `timeout` passed).
    pub fn broadcast_with_acks(
        &self,
        broadcast: &RemoteBroadcast,
        timeout: Duration,
    ) -> (usize, tokio::sync::mpsc::UnboundedReceiver<Payload>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (self.ns.broadcast_with_acks(broadcast, timeout, tx), rx)
    }

    /// Runs this node's server-side handler of an event another node sent
    /// (`data`: the name, then the arguments); `reply`, when the sender
    /// waits for an answer, takes the handler's. Returns whether a handler
    /// ran.
    pub fn server_side(&self, data: Payload, reply: Option<ServerSideReply>) -> bool {
        self.ns.server_side(data, reply)
    }
}

/// Answers a server-side event that another node sent and waits on.
pub type ServerSideReply = Box<dyn FnOnce(serde_json::Value) + Send>;

/// A socket as other nodes see it (what `fetchSockets` returns).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SocketInfo {
    /// Its id.
    pub id: SocketId,
    /// Its handshake, in the reference server's shape
    /// ([`Handshake::to_node_json`](super::Handshake::to_node_json)).
    pub handshake: serde_json::Value,
    /// Its rooms (its own included).
    pub rooms: Vec<Room>,
    /// Its data ([`Socket::data`](super::Socket::data)).
    pub data: serde_json::Value,
}

impl SocketInfo {
    /// A socket's description.
    pub fn new(
        id: SocketId,
        handshake: serde_json::Value,
        rooms: Vec<Room>,
        data: serde_json::Value,
    ) -> Self {
        SocketInfo {
            id,
            handshake,
            rooms,
            data,
        }
    }
}

/// The default adapter: rooms in this process's memory.
#[derive(Debug, Default)]
pub struct LocalAdapter {
    state: RwLock<Rooms>,
}

#[derive(Debug, Default)]
struct Rooms {
    rooms: HashMap<Room, HashSet<SocketId>>,
    sockets: HashMap<SocketId, HashSet<Room>>,
}

impl LocalAdapter {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rooms> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Adapter for LocalAdapter {
    fn local(&self) -> &LocalAdapter {
        self
    }
}

impl LocalAdapter {
    /// Adds a socket to rooms.
    pub fn add(&self, sid: &SocketId, rooms: &[Room]) {
        let mut s = self.write();
        for room in rooms {
            s.rooms.entry(room.clone()).or_default().insert(sid.clone());
            s.sockets
                .entry(sid.clone())
                .or_default()
                .insert(room.clone());
        }
    }

    /// Removes a socket from rooms.
    pub fn remove(&self, sid: &SocketId, rooms: &[Room]) {
        let mut s = self.write();
        for room in rooms {
            if let Some(members) = s.rooms.get_mut(room) {
                members.remove(sid);
                if members.is_empty() {
                    s.rooms.remove(room);
                }
            }
            if let Some(joined) = s.sockets.get_mut(sid) {
                joined.remove(room);
            }
        }
    }

    /// Removes a socket from every room.
    pub fn remove_all(&self, sid: &SocketId) {
        let mut s = self.write();
        let Some(joined) = s.sockets.remove(sid) else {
            return;
        };
        for room in joined {
            if let Some(members) = s.rooms.get_mut(&room) {
                members.remove(sid);
                if members.is_empty() {
                    s.rooms.remove(&room);
                }
            }
        }
    }

    /// The rooms a socket is in.
    pub fn rooms_of_socket(&self, sid: &SocketId) -> Vec<Room> {
        self.read()
            .sockets
            .get(sid)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every room with a socket in it.
    pub fn rooms(&self) -> Vec<Room> {
        self.read().rooms.keys().cloned().collect()
    }

    /// The sockets a broadcast reaches.
    pub fn selected(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        let s = self.read();
        let excluded = |sid: &SocketId| {
            opts.except_sid.as_ref() == Some(sid)
                || opts
                    .except
                    .iter()
                    .any(|room| s.rooms.get(room).is_some_and(|m| m.contains(sid)))
        };
        if opts.rooms.is_empty() {
            return s
                .sockets
                .keys()
                .filter(|sid| !excluded(sid))
                .cloned()
                .collect();
        }
        let mut seen = HashSet::new();
        opts.rooms
            .iter()
            .filter_map(|room| s.rooms.get(room))
            .flatten()
            .filter(|sid| !excluded(sid) && seen.insert((*sid).clone()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u16) -> SocketId {
        SocketId::from(format!("socket-{n}"))
    }

    fn sorted(mut v: Vec<SocketId>) -> Vec<String> {
        let mut s: Vec<String> = v.drain(..).map(|s| s.to_string()).collect();
        s.sort();
        s
    }

    #[test]
    fn selects_rooms_minus_exceptions() {
        let a = LocalAdapter::default();
        let (x, y, z) = (sid(1), sid(2), sid(3));
        let r1: Room = "r1".into();
        let r2: Room = "r2".into();
        a.join(&x, std::slice::from_ref(&r1));
        a.join(&y, &[r1.clone(), r2.clone()]);
        a.join(&z, std::slice::from_ref(&r2));
        let all = BroadcastOptions::default();
        assert_eq!(
            sorted(a.select(&all)),
            sorted(vec![x.clone(), y.clone(), z.clone()])
        );
        let to_r1 = BroadcastOptions {
            rooms: vec![r1.clone()],
            ..Default::default()
        };
        assert_eq!(sorted(a.select(&to_r1)), sorted(vec![x.clone(), y.clone()]));
        let both = BroadcastOptions {
            rooms: vec![r1.clone(), r2.clone()],
            ..Default::default()
        };
        assert_eq!(
            a.select(&both).len(),
            3,
            "a socket in two rooms gets it once"
        );
        let except = BroadcastOptions {
            except: vec![r2.clone()],
            ..Default::default()
        };
        assert_eq!(sorted(a.select(&except)), sorted(vec![x.clone()]));
        let not_me = BroadcastOptions {
            except_sid: Some(x.clone()),
            ..Default::default()
        };
        assert_eq!(
            sorted(a.select(&not_me)),
            sorted(vec![y.clone(), z.clone()])
        );
        a.leave(&y, std::slice::from_ref(&r1));
        assert_eq!(sorted(a.select(&to_r1)), sorted(vec![x.clone()]));
        a.leave_all(&x);
        assert!(a.select(&to_r1).is_empty());
        assert!(a.rooms_of(&x).is_empty());
        assert_eq!(a.rooms_of(&z), vec![r2]);
    }
}
