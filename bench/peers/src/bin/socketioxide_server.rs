//! The benchmark contract (socketgate DESIGN.md §6) on socketioxide 0.18.9:
//! namespace `/`, `echo` back to the sender, `broadcast` → `bcast` to every
//! socket, sender included. WebSocket and polling, default heartbeat
//! (25 s / 20 s), maxPayload 1e6.
//!
//! ```text
//! socketioxide-server [--port P]
//! ```

use std::fmt;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeTuple, Serializer};
use serde_json::value::RawValue;
use socketgate_peers::cli;
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};

/// Every argument of an event, each kept as raw JSON text.
///
/// socketioxide hands a tuple-like `Data<T>` all the arguments after the
/// event name (a non-tuple `T`, e.g. `Data<serde_json::Value>`, gets only
/// the first one) and spreads a tuple-like value over the arguments on
/// emit. `Args` is such a tuple of any length; keeping each argument as a
/// `RawValue` relays it without building a `serde_json::Value` and writing
/// it out again, the cheapest relay socketioxide's API allows. (JSON only:
/// binary attachments are not part of the contract.)
struct Args(Vec<Box<RawValue>>);

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            t.serialize_element(arg)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args, A::Error> {
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(16));
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        // A tuple, so socketioxide passes every argument; the length is
        // ignored by serde_json, which reads the array to its end.
        d.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = cli::listen_addr("socketioxide-server");
    let (layer, io) = SocketIo::builder()
        .max_payload(1_000_000)
        // The default (128 packets per socket) makes emits fail under a
        // broadcast burst; socketgate and Node queue far more before they
        // give up, so the comparison would measure drops, not work.
        .max_buffer_size(1_000_000)
        .build_layer();
    io.ns("/", async |s: SocketRef| {
        s.on("echo", async |s: SocketRef, Data(args): Data<Args>| {
            let _ = s.emit("echo", &args);
        });
        s.on("broadcast", async |io: SocketIo, Data(args): Data<Args>| {
            // `io.emit`, as in JS: every socket of `/`, the sender included.
            // (`s.broadcast()` skips the sender and `s.local()` alone
            // reaches only the sender.)
            let _ = io.emit("bcast", &args).await;
        });
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("socketioxide-server on http://{}", listener.local_addr()?);
    // The accept loop on a runtime worker, as socketgate's bench_server
    // runs it (not on the main thread, which would hand every accepted
    // connection to the worker across threads).
    let server = std::future::IntoFuture::into_future(axum::serve(listener, app));
    tokio::spawn(server)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
