//! Codec benchmarks: engine packets and payloads, socket.io packets with
//! and without binary, and the encode-once broadcast path.
//!
//! ```text
//! cargo bench --bench codecs
//! ```

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use socketgate::engine::{Message, Packet, Str, payload};
use socketgate::socketio::packet::{Decoded, Limits, decode};

fn engine(c: &mut Criterion) {
    let text = format!("4{}", "héllo wörld ".repeat(10));
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("decode text packet", |b| {
        let bytes = Bytes::from(text.clone());
        b.iter(|| {
            let s = Str::from_utf8(black_box(bytes.clone())).unwrap();
            let p = Packet::decode_text(s).unwrap();
            match p {
                Packet::Message(m) => black_box(m.as_text().map(str::len)),
                _ => None,
            }
        })
    });
    let frames: Vec<_> = (0..16)
        .map(|i| {
            Message::text(format!("[\"chat\",{{\"n\":{i},\"text\":\"hello there\"}}]"))
                .frame()
                .clone()
        })
        .chain([Message::binary(vec![7u8; 256]).frame().clone()])
        .collect();
    let wire = payload::encode(&frames);
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("encode v4 payload (16 text + 1 binary)", |b| {
        b.iter(|| black_box(payload::encode(black_box(&frames))))
    });
    g.bench_function("decode v4 payload (16 text + 1 binary)", |b| {
        b.iter(|| black_box(payload::decode(black_box(wire.clone())).unwrap().len()))
    });
    g.finish();
}

fn socketio(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("socketio");
    let event =
        r#"2/chat,17["message",{"user":"ada","text":"hello, world","tags":["a","b"],"n":42}]"#;
    g.throughput(Throughput::Bytes(event.len() as u64));
    g.bench_function("decode event", |b| {
        b.iter(|| match decode(black_box(event), &limits).unwrap() {
            Decoded::Complete(p) => black_box(p.id),
            Decoded::Partial(_) => None,
        })
    });
    let binary = r#"51-["upload",{"name":"a.bin","data":{"_placeholder":true,"num":0}}]"#;
    let attachment = Bytes::from(vec![1u8; 1024]);
    g.bench_function("decode binary event + 1 KiB attachment", |b| {
        b.iter(|| match decode(black_box(binary), &limits).unwrap() {
            Decoded::Partial(mut p) => {
                black_box(p.push(attachment.clone(), &limits).unwrap().is_some())
            }
            Decoded::Complete(_) => false,
        })
    });
    g.finish();
}

fn broadcast(c: &mut Criterion) {
    use socketgate::socketio::{SocketIo, SocketIoConfig};
    // Encode once, share with every recipient: what one broadcast costs
    // before any socket is reached (no sockets connected here).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let io = SocketIo::new(SocketIoConfig::default());
    let data = serde_json::json!({ "user": "ada", "text": "hello, world", "n": 42 });
    let mut g = c.benchmark_group("broadcast");
    g.bench_function("encode and fan out to an empty room", |b| {
        b.iter(|| {
            io.to("room")
                .emit(black_box("message"), black_box(&data))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, engine, socketio, broadcast);
criterion_main!(benches);
