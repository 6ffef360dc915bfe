//! A custom room adapter (`SocketIo::builder().adapter(…)`): what a cluster
//! adapter builds on. It answers the room selection, and it is handed
//! every broadcast once, already encoded, to forward to other nodes;
//! `local()` broadcasts stay on this node.

mod common;

use std::sync::{Arc, Mutex};

use common::sio::{SioServer, config};
use common::{ws_event, ws_send, ws_text};
use socketgate::engine::Message;
use socketgate::socketio::{Adapter, BroadcastOptions, LocalAdapter, Room, SocketId, SocketIo};

/// A broadcast handed to the adapter: namespace, rooms, and the texts of
/// its engine.io messages.
type Published = (String, Vec<String>, Vec<String>);

/// The in-memory adapter, recording what it is asked to publish.
struct Recording {
    nsp: String,
    rooms: LocalAdapter,
    published: Arc<Mutex<Vec<Published>>>,
}

impl Adapter for Recording {
    fn join(&self, sid: &SocketId, rooms: &[Room]) {
        self.rooms.join(sid, rooms);
    }
    fn leave(&self, sid: &SocketId, rooms: &[Room]) {
        self.rooms.leave(sid, rooms);
    }
    fn leave_all(&self, sid: &SocketId) {
        self.rooms.leave_all(sid);
    }
    fn rooms_of(&self, sid: &SocketId) -> Vec<Room> {
        self.rooms.rooms_of(sid)
    }
    fn select(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.rooms.select(opts)
    }
    fn publish(&self, opts: &BroadcastOptions, packet: &[Message]) {
        let rooms = opts.rooms.iter().map(|r| r.to_string()).collect();
        let texts = packet
            .iter()
            .map(|m| m.as_text().unwrap_or("<binary>").to_owned())
            .collect();
        self.published
            .lock()
            .unwrap()
            .push((self.nsp.clone(), rooms, texts));
    }
}

#[tokio::test]
async fn broadcasts_reach_the_adapter_once_encoded_and_local_ones_do_not() {
    let published = Arc::new(Mutex::new(Vec::new()));
    let record = published.clone();
    let io = SocketIo::builder()
        .config(config())
        .adapter(move |nsp| {
            Box::new(Recording {
                nsp: nsp.to_owned(),
                rooms: LocalAdapter::default(),
                published: record.clone(),
            }) as Box<dyn Adapter>
        })
        .build()
        .unwrap();
    let server = SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await;
    let (mut ws, sid) = server.ws_joined().await;
    let socket = server.io.of("/").unwrap().sockets()[0].clone();
    assert_eq!(socket.id().as_str(), sid);

    // Room membership lives in the adapter.
    ws_send(&mut ws, "421[\"join\",\"r1\"]").await;
    assert_eq!(ws_event(&mut ws).await, "431[\"r1\"]");
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    assert_eq!(rooms, [sid.clone(), "r1".to_owned()]);

    // A client-triggered room broadcast: delivered here and published once.
    ws_send(
        &mut ws,
        "422[\"bcast\",{\"to\":\"r1\",\"event\":\"news\",\"data\":{\"n\":1}}]",
    )
    .await;
    assert_eq!(ws_event(&mut ws).await, "42[\"news\",{\"n\":1}]");
    assert_eq!(ws_event(&mut ws).await, "432[\"sent\"]");
    assert_eq!(
        *published.lock().unwrap(),
        [(
            "/".to_owned(),
            vec!["r1".to_owned()],
            vec!["2[\"news\",{\"n\":1}]".to_owned()]
        )]
    );

    // `local()`: delivered, not published.
    server.io.to("r1").local().emit("quiet", &2).unwrap();
    assert_eq!(ws_event(&mut ws).await, "42[\"quiet\",2]");
    assert_eq!(published.lock().unwrap().len(), 1);

    // A server-side broadcast to a room nobody here is in is still
    // published: other nodes may have members.
    server.io.to("elsewhere").emit("far", &3).unwrap();
    assert_eq!(
        published.lock().unwrap().last().unwrap(),
        &(
            "/".to_owned(),
            vec!["elsewhere".to_owned()],
            vec!["2[\"far\",3]".to_owned()]
        )
    );
    // And nothing of it reached this client: the next message is a ping.
    assert_eq!(ws_text(&mut ws).await, "2");
}
