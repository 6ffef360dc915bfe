//! Where room membership lives and how a broadcast finds its sockets.
//!
//! The adapter of a namespace answers "which local sockets does this
//! broadcast reach" and gets every broadcast once to forward to other
//! nodes. The in-memory adapter has no other node; a cluster adapter
//! publishes the already encoded packet and, on the receiving node, runs
//! the same selection over its own sockets.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::config::FullQueue;
use super::payload::Encoded;
use super::socket::SocketId;
use crate::engine::Message;

/// A room name.
pub type Room = Arc<str>;

/// Whom a broadcast is for.
#[derive(Debug, Clone, Default)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket when empty.
    pub rooms: Vec<Room>,
    /// Minus sockets in any of these rooms.
    pub except: Vec<Room>,
    /// Minus this socket (the sender of a `broadcast`).
    pub except_sid: Option<SocketId>,
    /// The packet may be dropped for clients that are behind.
    pub volatile: bool,
    /// This node only.
    pub local: bool,
}

/// Room membership and broadcast fan-out of one namespace.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn join(&self, sid: &SocketId, rooms: &[Room]);
    /// Removes a socket from rooms.
    fn leave(&self, sid: &SocketId, rooms: &[Room]);
    /// Removes a socket from every room (it disconnected).
    fn leave_all(&self, sid: &SocketId);
    /// The rooms a socket is in.
    fn rooms_of(&self, sid: &SocketId) -> Vec<Room>;
    /// The local sockets a broadcast reaches.
    fn select(&self, opts: &BroadcastOptions) -> Vec<SocketId>;
    /// Hands a broadcast to other nodes; the in-memory adapter has none.
    fn publish(&self, opts: &BroadcastOptions, packet: &[Message]) {
        let _ = (opts, packet);
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
    fn join(&self, sid: &SocketId, rooms: &[Room]) {
        let mut s = self.write();
        for room in rooms {
            s.rooms.entry(room.clone()).or_default().insert(sid.clone());
            s.sockets
                .entry(sid.clone())
                .or_default()
                .insert(room.clone());
        }
    }

    fn leave(&self, sid: &SocketId, rooms: &[Room]) {
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

    fn leave_all(&self, sid: &SocketId) {
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

    fn rooms_of(&self, sid: &SocketId) -> Vec<Room> {
        self.read()
            .sockets
            .get(sid)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn select(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
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

/// Sends an encoded packet to one socket's session, under the full-queue
/// policy: a volatile packet is dropped for a client that is behind; any
/// other packet that does not fit closes the session (so nothing is lost
/// silently), or with [`FullQueue::Drop`] is dropped and counted.
pub(crate) fn deliver(
    session: &crate::engine::Session,
    packet: &Encoded,
    volatile: bool,
    policy: FullQueue,
) -> Result<(), crate::engine::SendError> {
    use crate::engine::SendError;
    if volatile {
        session.send_volatile(&packet.0);
        return Ok(());
    }
    match session.send_all(&packet.0) {
        Err(SendError::QueueFull) if policy == FullQueue::Drop => {
            session.count_dropped();
            Err(SendError::QueueFull)
        }
        Err(SendError::QueueFull) => {
            tracing::warn!(sid = %session.sid(), queued = session.queued_bytes(), "slow consumer: closing");
            session.close_now(crate::engine::CloseReason::SlowConsumer);
            Err(SendError::QueueFull)
        }
        other => other,
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
