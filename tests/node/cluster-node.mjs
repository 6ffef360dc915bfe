#!/usr/bin/env node
// The Node side of the cluster tests (tests/cluster.rs): a real socket.io
// 4.8 server on the real @socket.io/redis-adapter, and the real
// @socket.io/redis-emitter, on the Redis the test started.
//
// Usage:
//   node cluster-node.mjs server <redisUrl> [json|msgpack]
//     Serves socket.io on 127.0.0.1 (an ephemeral port), prints
//     {"listening":<port>} and runs until killed. With `msgpack` the server
//     (and so its clients) uses the real socket.io-msgpack-parser; default
//     json. Clients may emit:
//       join (room, ack)            the socket joins; acks with the room
//       bcast ({to?, except?, event, data, withBinary?}, ack)
//                                   io.to(to).except(except).emit(event, data[, <01 02 03>])
//       fetch ({room?}, ack)        io.in(room).fetchSockets(): [{id, rooms, data, address, auth}]
//       all-rooms (ack)             the adapter's allRooms(), sorted
//       poll ({room, timeoutMs}, ack)
//                                   io.to(room).timeout(ms).emit("poll", "ready?", cb):
//                                   {error, responses (sorted)}
//       sse (arg, ack)              io.serverSideEmit("hello", arg, cb): {error, responses}
//                                   (this server answers others' "hello" with "node:<arg>")
//       rooms-op ({op, from?, room}, ack)
//                                   io.in(from).socketsJoin / socketsLeave (room),
//                                   or disconnectSockets
//   node cluster-node.mjs emitter <redisUrl> <action> [room] [room2]
//     action: emit | emit-room | emit-binary | sockets-join | sockets-leave | disconnect
//     Runs one emitter call, prints {"ok":true} and exits.

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import msgpackParser from "socket.io-msgpack-parser";

const [mode, url, ...rest] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const die = (err) => {
  out({ ok: false, error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
};
process.on("unhandledRejection", die);
process.on("uncaughtException", die);
// Never outlive the test that started us.
setTimeout(() => die("the 120 s watchdog fired"), 120_000).unref();

async function client() {
  const c = createClient({ url });
  c.on("error", () => {}); // reconnects by itself; the test checks delivery
  await c.connect();
  return c;
}

async function server() {
  const pub = await client();
  const sub = pub.duplicate();
  sub.on("error", () => {});
  await sub.connect();
  const http = createServer();
  const [parser = "json"] = rest;
  if (parser !== "json" && parser !== "msgpack") die(`unknown parser ${parser}`);
  const io = new Server(http, { adapter: createAdapter(pub, sub), ...(parser === "msgpack" ? { parser: msgpackParser } : {}) });
  // A server-side event from other nodes: answered "node" when asked.
  io.on("hello", (arg, cb) => {
    if (typeof cb === "function") cb(`node:${arg}`);
  });
  io.on("connection", (socket) => {
    socket.on("sse", (arg, ack) => {
      io.serverSideEmit("hello", arg, (err, responses) => {
        ack({ error: err ? err.message : null, responses: [...responses].sort() });
      });
    });
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack(room);
    });
    socket.on("bcast", (spec, ack) => {
      let op = io.of("/");
      if (spec.to) op = op.to(spec.to);
      if (spec.except) op = op.except(spec.except);
      const args = [spec.data];
      if (spec.withBinary) args.push(Buffer.from([1, 2, 3]));
      op.emit(spec.event, ...args);
      ack("sent");
    });
    socket.on("fetch", async (spec, ack) => {
      const sockets = await (spec.room ? io.in(spec.room) : io.of("/")).fetchSockets();
      ack(sockets.map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data, address: s.handshake.address, auth: s.handshake.auth })));
    });
    socket.on("all-rooms", async (ack) => {
      ack([...(await io.of("/").adapter.allRooms())].sort());
    });
    socket.on("poll", (spec, ack) => {
      io.to(spec.room).timeout(spec.timeoutMs).emit("poll", "ready?", (err, responses) => {
        ack({ error: err ? err.message : null, responses: [...responses].sort() });
      });
    });
    socket.on("rooms-op", (spec, ack) => {
      const sel = spec.from ? io.in(spec.from) : io.of("/");
      if (spec.op === "join") sel.socketsJoin(spec.room);
      else if (spec.op === "leave") sel.socketsLeave(spec.room);
      else sel.disconnectSockets();
      ack("done");
    });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  out({ listening: http.address().port });
}

async function emitter() {
  const [action, room, room2] = rest;
  const redis = await client();
  const e = new Emitter(redis);
  switch (action) {
    case "emit":
      e.emit("from-emitter", { n: 1 });
      break;
    case "emit-room":
      e.to(room).emit("from-emitter", { n: 2 });
      break;
    case "emit-binary":
      e.emit("from-emitter", Buffer.from([7, 8, 9]), { nested: Buffer.from([10]) });
      break;
    case "sockets-join":
      e.in(room).socketsJoin(room2);
      break;
    case "sockets-leave":
      e.in(room).socketsLeave(room2);
      break;
    case "disconnect":
      e.in(room).disconnectSockets();
      break;
    default:
      die(`unknown action ${action}`);
  }
  // The emitter publishes without waiting: make sure it went out.
  await redis.ping();
  await redis.quit();
  out({ ok: true, action });
}

if (mode === "server") await server();
else if (mode === "emitter") await emitter();
else die("usage: node cluster-node.mjs server <redisUrl> [json|msgpack] | emitter <redisUrl> <action> [room] [room2]");
