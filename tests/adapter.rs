//! A custom room adapter (`SocketIo::builder().adapter(…)`): what a cluster
//! adapter builds on. It answers the room selection; it is handed every
//! broadcast once, as event and arguments without recovery offsets, to
//! forward to other nodes (`local()` broadcasts and emits to one socket
//! stay on this node); and what it delivers through its context reaches
//! this node's sockets.

mod common;

use std::sync::{Arc, Mutex};

use common::sio::{SioServer, config};
use common::{ws_event, ws_send};
use socketgate::socketio::{
    Adapter, AdapterContext, BroadcastOptions, LocalAdapter, RecoveryConfig, RemoteBroadcast, Room,
    SocketIo,
};

/// A broadcast handed to the adapter: namespace, rooms, and its data (event
/// and arguments) as JSON.
type Published = (String, Vec<String>, serde_json::Value);

/// The in-memory adapter, recording what it is asked to publish.
struct Recording {
    nsp: String,
    rooms: LocalAdapter,
    published: Arc<Mutex<Vec<Published>>>,
    ctx: Arc<Mutex<Option<AdapterContext>>>,
}

impl Adapter for Recording {
    fn local(&self) -> &LocalAdapter {
        &self.rooms
    }
    fn attach(&self, ctx: AdapterContext) {
        assert_eq!(ctx.path(), self.nsp);
        *self.ctx.lock().unwrap() = Some(ctx);
    }
    fn is_remote(&self) -> bool {
        true
    }
    fn publish(
        &self,
        broadcast: &RemoteBroadcast,
    ) -> Result<(), socketgate::socketio::AdapterError> {
        let rooms = broadcast.opts.rooms.iter().map(|r| r.to_string()).collect();
        let data = serde_json::Value::from(broadcast.data.args.clone());
        self.published
            .lock()
            .unwrap()
            .push((self.nsp.clone(), rooms, data));
        Ok(())
    }
}

/// A server on the recording adapter, with recovery on (offsets must not
/// reach the adapter; emits to one socket must not either).
async fn server() -> (
    SioServer,
    Arc<Mutex<Vec<Published>>>,
    Arc<Mutex<Option<AdapterContext>>>,
) {
    let published = Arc::new(Mutex::new(Vec::new()));
    let ctx = Arc::new(Mutex::new(None));
    let (record, slot) = (published.clone(), ctx.clone());
    let io = SocketIo::builder()
        .config(config().recovery(RecoveryConfig::default()))
        .adapter(move |nsp| {
            let ctx = if nsp == "/" {
                slot.clone()
            } else {
                Arc::new(Mutex::new(None))
            };
            Box::new(Recording {
                nsp: nsp.to_owned(),
                rooms: LocalAdapter::default(),
                published: record.clone(),
                ctx,
            }) as Box<dyn Adapter>
        })
        .build()
        .unwrap();
    (
        SioServer::serve(io, "127.0.0.1:0".parse().unwrap()).await,
        published,
        ctx,
    )
}

/// The JSON of an event packet, without a trailing recovery offset.
fn event(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text.strip_prefix("42").unwrap()).unwrap();
    let args = v.as_array_mut().unwrap();
    if args
        .last()
        .is_some_and(|a| a.as_str().is_some_and(|s| s.contains('-')))
    {
        args.pop();
    }
    v
}

#[tokio::test]
async fn broadcasts_reach_the_adapter_without_offsets_and_local_ones_do_not() {
    let (server, published, _) = server().await;
    let (mut ws, sid) = server.ws_joined().await;
    let socket = server.io.of("/").unwrap().sockets()[0].clone();
    assert_eq!(socket.id().as_str(), sid);

    // Room membership lives in the adapter.
    ws_send(&mut ws, "421[\"join\",\"r1\"]").await;
    assert_eq!(ws_event(&mut ws).await, "431[\"r1\"]");
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    let mut expected = vec![sid.clone(), "r1".to_owned()];
    expected.sort();
    assert_eq!(rooms, expected);

    // A client-triggered room broadcast: delivered here (with an offset)
    // and published once, as event and argument (without it).
    ws_send(
        &mut ws,
        "422[\"bcast\",{\"to\":\"r1\",\"event\":\"news\",\"data\":{\"n\":1}}]",
    )
    .await;
    assert_eq!(
        event(&ws_event(&mut ws).await),
        serde_json::json!(["news", { "n": 1 }])
    );
    assert_eq!(ws_event(&mut ws).await, "432[\"sent\"]");
    assert_eq!(
        *published.lock().unwrap(),
        [(
            "/".to_owned(),
            vec!["r1".to_owned()],
            serde_json::json!(["news", { "n": 1 }])
        )]
    );

    // `local()` and an emit to one socket: delivered, not published.
    server.io.to("r1").local().emit("quiet", &2).unwrap();
    assert_eq!(
        event(&ws_event(&mut ws).await),
        serde_json::json!(["quiet", 2])
    );
    socket.emit("direct", &3).unwrap();
    assert_eq!(
        event(&ws_event(&mut ws).await),
        serde_json::json!(["direct", 3])
    );
    socket.volatile().emit("v", &4).unwrap();
    assert_eq!(ws_event(&mut ws).await, "42[\"v\",4]");
    assert_eq!(published.lock().unwrap().len(), 1);

    // A server-side broadcast to a room nobody here is in is still
    // published: other nodes may have members.
    server.io.to("elsewhere").emit("far", &3).unwrap();
    assert_eq!(
        published.lock().unwrap().last().unwrap(),
        &(
            "/".to_owned(),
            vec!["elsewhere".to_owned()],
            serde_json::json!(["far", 3])
        )
    );
}

#[tokio::test]
async fn what_the_adapter_delivers_reaches_local_sockets_and_is_not_published_again() {
    let (server, published, ctx) = server().await;
    let (mut ws, _) = server.ws_joined().await;
    let ctx = ctx
        .lock()
        .unwrap()
        .clone()
        .expect("the adapter was attached");
    let mut payload = socketgate::socketio::Payload::new().arg("from-afar");
    let placeholder = payload.attach(vec![1u8, 2, 3]);
    payload = payload.arg(serde_json::json!({ "file": placeholder }));
    let remote = RemoteBroadcast::new(BroadcastOptions::default(), payload);
    ctx.broadcast(&remote).unwrap();
    let text = ws_event(&mut ws).await;
    assert!(
        text.starts_with("451-[\"from-afar\",{\"file\":{\"_placeholder\":true,\"num\":0}}"),
        "{text}"
    );
    assert_eq!(
        common::ws_next(&mut ws).await.unwrap().into_data().as_ref(),
        [1, 2, 3]
    );
    assert!(published.lock().unwrap().is_empty(), "not published again");
    // And a remote room operation reaches the local sockets.
    ctx.apply(&socketgate::socketio::RemoteOp::Join {
        opts: BroadcastOptions::default(),
        rooms: vec![Room::from("joined-from-afar")],
    });
    let socket = server.io.of("/").unwrap().sockets()[0].clone();
    assert!(socket.rooms().contains(&Room::from("joined-from-afar")));
}
