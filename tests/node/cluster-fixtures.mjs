// Writes the golden fixtures of the cluster wire format to
// tests/fixtures/cluster/*.json: the exact bytes that @socket.io/redis-adapter
// 8.3.0 and @socket.io/redis-emitter 5.1.0 publish on Redis, captured from the
// real packages (pinned in package.json) with stub Redis clients whose
// `publish(channel, message)` records what it is given.
//
//   cd tests/node && npm ci && node cluster-fixtures.mjs
//
// The output is checked in; the Rust unit tests in src/cluster/wire.rs read
// it. Run the script again after changing a pinned version, and review the
// diff.
//
// Each file is {note, code, messages: [{channel, hex, text?}], client?}:
// - `messages`: what was published, in order (`text` when the bytes are JSON);
// - `client`: for a broadcast, what the Node server sends its own clients for
//   it (socket.io-parser's encoding of the decoded packet: the text packet and
//   the attachments in hex), which is what socketgate must deliver too.
//
// Node picks random ids (the adapter's uid, each requestId: 6 characters from
// uid2). So that the bytes are reproducible, the adapter's uid is set to
// "node01" after construction, and each random requestId is replaced in the
// captured bytes by "req001", "req002", … (same length, so nothing else
// moves); the replacement is checked by decoding again.

import { EventEmitter } from "node:events";
import { mkdirSync, writeFileSync, readdirSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import notepack from "notepack.io";
import { Server } from "socket.io";
import { Encoder } from "socket.io-parser";

const OUT = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/cluster");

/** A Redis client as the adapter and emitter see it (ioredis-shaped). */
class StubRedis extends EventEmitter {
  constructor() {
    super();
    this.published = [];
  }
  publish(channel, message) {
    this.published.push({ channel, message: Buffer.from(message) });
    return Promise.resolve(1);
  }
  psubscribe() {}
  subscribe() {}
  punsubscribe() {}
  unsubscribe() {}
  // PUBSUB NUMSUB <request channel>: two nodes, so that requests are sent.
  send_command(command, args, callback) {
    callback(null, [args[1], 2]);
  }
}

const pub = new StubRedis();
const sub = new StubRedis();
// requestsTimeout: the requests nobody answers here fail fast.
const io = new Server({ adapter: createAdapter(pub, sub, { requestsTimeout: 100 }) });
const adapter = io.of("/").adapter;
adapter.uid = "node01";
io.of("/admin").adapter.uid = "node01";
const emitter = new Emitter(pub);

const fixtures = new Map();
let pinned = 0;

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** What `fn` made the Node side publish, with random requestIds pinned. */
async function capture(fn) {
  pub.published.length = 0;
  await fn();
  await settle();
  return pub.published.splice(0).map(({ channel, message }) => {
    let bytes = message;
    const decoded = decode(bytes);
    const id = decoded && decoded.requestId;
    if (typeof id === "string" && id.length === 6 && !id.startsWith("req")) {
      pinned += 1;
      const pin = `req${String(pinned).padStart(3, "0")}`;
      bytes = replaceAll(bytes, Buffer.from(id), Buffer.from(pin));
      const again = decode(bytes);
      if (again.requestId !== pin) throw new Error(`pinning ${id} failed`);
    }
    const entry = { channel, hex: bytes.toString("hex") };
    if (bytes[0] === 0x7b) entry.text = bytes.toString("utf8");
    return entry;
  });
}

function decode(bytes) {
  return bytes[0] === 0x7b ? JSON.parse(bytes.toString("utf8")) : notepack.decode(bytes);
}

function replaceAll(haystack, needle, replacement) {
  const parts = [];
  let from = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, from)) {
    parts.push(haystack.subarray(from, at), replacement);
    from = at + needle.length;
  }
  parts.push(haystack.subarray(from));
  return Buffer.concat(parts);
}

/** socket.io-parser's encoding of a broadcast packet for a Node server's clients. */
function clientView(packet) {
  const [text, ...attachments] = new Encoder().encode({
    type: packet.type,
    data: packet.data,
    nsp: packet.nsp ?? "/",
    ...(packet.id === undefined ? {} : { id: packet.id }),
  });
  return { text, attachments: attachments.map((b) => Buffer.from(b).toString("hex")) };
}

function record(name, note, code, messages, extra = {}) {
  if (fixtures.has(name)) throw new Error(`duplicate fixture ${name}`);
  fixtures.set(name, { note, code, messages, ...extra });
}

/** A broadcast: one message, plus what Node's clients get for it. */
async function broadcast(name, note, code, fn) {
  const messages = await capture(fn);
  if (messages.length !== 1) throw new Error(`${name}: ${messages.length} messages`);
  const [, packet] = notepack.decode(Buffer.from(messages[0].hex, "hex"));
  record(name, note, code, messages, { client: clientView(packet) });
}

async function requests(name, note, code, fn) {
  record(name, note, code, await capture(fn));
}

// ------------------------------------------------------------ broadcasts ---

await broadcast(
  "adapter-emit",
  "io.emit: every room, no flags; published on the namespace's channel",
  'io.emit("hello", "world", 1, 2.5, -3, true, null, { a: 1, b: [1, 2] })',
  () => io.emit("hello", "world", 1, 2.5, -3, true, null, { a: 1, b: [1, 2] }),
);

await broadcast(
  "adapter-room-binary",
  "one room (so the room's own channel), an excepted room, binary arguments (Buffer, nested Buffer, ArrayBuffer, Uint8Array) as msgpack bin",
  'io.to("r1").except("r2").emit("bin", Buffer.from([1, 2, 3]), { file: Buffer.from([4, 5]), name: "f" }, new Uint8Array([6, 7]).buffer, new Uint8Array([8]))',
  () =>
    io
      .to("r1")
      .except("r2")
      .emit(
        "bin",
        Buffer.from([1, 2, 3]),
        { file: Buffer.from([4, 5]), name: "f" },
        new Uint8Array([6, 7]).buffer,
        new Uint8Array([8]),
      ),
);

await broadcast(
  "adapter-two-rooms",
  "two rooms: the namespace's channel, not a room's",
  'io.to(["r1", "r2"]).emit("x")',
  () => io.to(["r1", "r2"]).emit("x"),
);

await broadcast(
  "adapter-volatile-compress",
  "flags in the order they were set",
  'io.volatile.compress(false).emit("v", 1)',
  () => io.volatile.compress(false).emit("v", 1),
);

await broadcast(
  "adapter-namespace",
  "another namespace: nsp in the packet and in the channel",
  'io.of("/admin").emit("n", "x")',
  () => io.of("/admin").emit("n", "x"),
);

await broadcast(
  "adapter-values",
  "notepack.io 3 encodings: Dates as msgpack timestamps (32, 64 and 96 bits), undefined as nil (and dropped from objects), NaN and Infinity as float 64, integral numbers as the smallest int, -0 as 0, large integers as uint 64 / int 64, strings by UTF-8 length",
  'io.emit("values", new Date(1700000000000), new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), new Date(-1), undefined, NaN, Infinity, 2 ** 40, -(2 ** 40), 0.1, -0, 255, -129, "é✓🎉", "x".repeat(40), { k: 1, u: undefined }, [undefined])',
  () =>
    io.emit(
      "values",
      new Date(1700000000000),
      new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
      new Date(-1),
      undefined,
      NaN,
      Infinity,
      2 ** 40,
      -(2 ** 40),
      0.1,
      -0,
      255,
      -129,
      "é✓🎉",
      "x".repeat(40),
      { k: 1, u: undefined },
      [undefined],
    ),
);

{
  const messages = await capture(() => io.local.emit("l", 1));
  if (messages.length !== 0) throw new Error("io.local.emit published");
  record("adapter-local", "io.local.emit: nothing is published", 'io.local.emit("l", 1)', messages);
}

await broadcast(
  "emitter-emit",
  'the emitter: uid "emitter", opts keys in the order rooms, flags, except',
  'new Emitter(redis).emit("hello", "world", Buffer.from([1]))',
  () => emitter.emit("hello", "world", Buffer.from([1])),
);

await broadcast(
  "emitter-room-volatile",
  "the emitter, one room (its channel), an excepted room, volatile",
  'emitter.of("/admin").to("r1").except("r2").volatile.emit("ev", { a: [1, "b"] })',
  () => emitter.of("/admin").to("r1").except("r2").volatile.emit("ev", { a: [1, "b"] }),
);

// ------------------------------------------------- requests from a node ---

await requests(
  "adapter-broadcast-ack",
  "a broadcast expecting acks: a BROADCAST request (type 7) as a msgpack map on the request channel; flags carry the timeout",
  'io.to("r1").timeout(1000).emit("ask", "q", Buffer.from([9]), callback)',
  () => io.to("r1").timeout(1000).emit("ask", "q", Buffer.from([9]), () => {}),
);

await requests(
  "adapter-fetch-sockets",
  "fetchSockets: REMOTE_FETCH (type 5) as JSON",
  'io.in("r1").except("r2").fetchSockets()',
  () => {
    io.in("r1").except("r2").fetchSockets().catch(() => {});
  },
);

await requests(
  "adapter-all-rooms",
  "allRooms: ALL_ROOMS (type 1) as JSON",
  "adapter.allRooms()",
  () => {
    adapter.allRooms().catch(() => {});
  },
);

await requests(
  "adapter-sockets-join",
  "socketsJoin: REMOTE_JOIN (type 2) with opts, no requestId",
  'io.in("r1").socketsJoin(["r3", "r4"])',
  () => io.in("r1").socketsJoin(["r3", "r4"]),
);

await requests(
  "adapter-sockets-leave",
  "socketsLeave: REMOTE_LEAVE (type 3) with opts, no requestId",
  'io.except("r2").socketsLeave("r3")',
  () => io.except("r2").socketsLeave("r3"),
);

await requests(
  "adapter-disconnect-sockets",
  "disconnectSockets: REMOTE_DISCONNECT (type 4) with opts and close, no requestId",
  'io.in("r1").disconnectSockets(true)',
  () => io.in("r1").disconnectSockets(true),
);

await requests(
  "adapter-server-side-emit",
  "serverSideEmit without ack: SERVER_SIDE_EMIT (type 6), no requestId",
  'io.serverSideEmit("sse", 1, { a: "b" })',
  () => io.serverSideEmit("sse", 1, { a: "b" }),
);

await requests(
  "adapter-server-side-emit-ack",
  "serverSideEmit with ack: SERVER_SIDE_EMIT (type 6) with a requestId",
  'io.serverSideEmit("sse", 2, callback)',
  () => io.serverSideEmit("sse", 2, () => {}),
);

// ---------------------------------------------- requests from the emitter ---

await requests(
  "emitter-sockets-join",
  "the emitter's socketsJoin: REMOTE_JOIN without uid and requestId",
  'emitter.in("r1").socketsJoin("r3")',
  () => emitter.in("r1").socketsJoin("r3"),
);

await requests(
  "emitter-sockets-leave",
  "the emitter's socketsLeave: REMOTE_LEAVE without uid and requestId",
  'emitter.except("r2").socketsLeave(["r3", "r4"])',
  () => emitter.except("r2").socketsLeave(["r3", "r4"]),
);

await requests(
  "emitter-disconnect-sockets",
  "the emitter's disconnectSockets: REMOTE_DISCONNECT without uid and requestId",
  'emitter.in("r1").disconnectSockets()',
  () => emitter.in("r1").disconnectSockets(),
);

await requests(
  "emitter-server-side-emit",
  'the emitter\'s serverSideEmit: uid "emitter", no requestId',
  'emitter.serverSideEmit("sse", "x", 1)',
  () => emitter.serverSideEmit("sse", "x", 1),
);

// ------------------------------------------------------------- responses ---
// The node answers requests from another node ("other1"), delivered as the
// subscriber would deliver them. It holds one fake socket, "sid1", in room
// "r1", shaped as socket.io 4.8 builds one.

const handshake = {
  headers: { host: "localhost:3000", "user-agent": "node" },
  time: "Tue Jan 02 2024 03:04:05 GMT+0000 (Coordinated Universal Time)",
  address: "::1",
  xdomain: false,
  secure: false,
  issued: 1704164645678,
  url: "/socket.io/?EIO=4&transport=websocket",
  query: { EIO: "4", transport: "websocket" },
  auth: { token: "t" },
};
const acks = new Map();
const fakeSocket = {
  id: "sid1",
  handshake,
  rooms: new Set(["sid1", "r1"]),
  data: { user: "u1" },
  acks,
  client: { writeToEngine() {} },
  join() {},
  leave() {},
  disconnect() {},
};
io.of("/").sockets.set("sid1", fakeSocket);
adapter.addAll("sid1", new Set(["sid1", "r1"]));
io.on("sse", (...args) => {
  const callback = args[args.length - 1];
  if (typeof callback === "function") callback({ ok: true });
});

const requestChannel = "socket.io-request#/#";
const deliver = (request) =>
  adapter.onrequest(
    requestChannel,
    Buffer.isBuffer(request) ? request : Buffer.from(JSON.stringify(request)),
  );

await requests(
  "response-all-rooms",
  "the answer to ALL_ROOMS: JSON {requestId, rooms} on the response channel",
  'onrequest({uid: "other1", requestId: "req101", type: 1})',
  () => deliver({ uid: "other1", requestId: "req101", type: 1 }),
);

await requests(
  "response-fetch-sockets",
  "the answer to REMOTE_FETCH: JSON {requestId, sockets: [{id, handshake, rooms, data}]}",
  'onrequest({uid: "other1", requestId: "req102", type: 5, opts: {rooms: ["r1"], except: []}})',
  () => deliver({ uid: "other1", requestId: "req102", type: 5, opts: { rooms: ["r1"], except: [] } }),
);

await requests(
  "response-sockets",
  "the answer to the legacy SOCKETS request: JSON {requestId, sockets: [ids]}",
  'onrequest({uid: "other1", requestId: "req103", type: 0, rooms: ["r1"]})',
  () => deliver({ uid: "other1", requestId: "req103", type: 0, rooms: ["r1"] }),
);

await requests(
  "response-remote-join",
  "the answer to the legacy REMOTE_JOIN of one socket: JSON {requestId}",
  'onrequest({uid: "other1", requestId: "req104", type: 2, sid: "sid1", room: "r9"})',
  () => deliver({ uid: "other1", requestId: "req104", type: 2, sid: "sid1", room: "r9" }),
);

await requests(
  "response-server-side-emit",
  "the answer to SERVER_SIDE_EMIT with a requestId: JSON {type: 6, requestId, data} on the response channel",
  'onrequest({uid: "other1", requestId: "req105", type: 6, data: ["sse", 1]}); the handler answers {ok: true}',
  () => deliver({ uid: "other1", requestId: "req105", type: 6, data: ["sse", 1] }),
);

await requests(
  "response-broadcast-ack",
  "the answers to BROADCAST: JSON {type: 8, requestId, clientCount}, then per client ack msgpack {type: 9, requestId, packet}",
  'onrequest(msgpack {uid: "other1", requestId: "req106", type: 7, packet: {type: 2, data: ["ask", 1], nsp: "/"}, opts: {rooms: ["r1"], except: [], flags: {timeout: 1000}}}); the client acks with ("yes", Buffer [7])',
  () => {
    deliver(
      notepack.encode({
        uid: "other1",
        requestId: "req106",
        type: 7,
        packet: { type: 2, data: ["ask", 1], nsp: "/" },
        opts: { rooms: ["r1"], except: [], flags: { timeout: 1000 } },
      }),
    );
    for (const ack of acks.values()) ack({ answer: "yes", raw: Buffer.from([7]) });
  },
);

// --------------------------------------- what notepack.io 3 still decodes ---
// Older notepack.io (2.x) wrote undefined as fixext 1 type 0, a Date as
// fixext 8 type 0 (milliseconds), an ArrayBuffer as ext type 0; any other ext
// type decodes to [type, Buffer]. Node decodes these bytes; `client` shows
// what its clients then get.

{
  const legacyDate = Buffer.alloc(10);
  legacyDate[0] = 0xd7;
  legacyDate[1] = 0x00;
  legacyDate.writeInt32BE(Math.floor(1704164645678 / 2 ** 32), 2);
  legacyDate.writeUInt32BE(1704164645678 % 2 ** 32, 6);
  const hex = [
    "93", // [uid, packet, opts]
    "a7" + Buffer.from("emitter").toString("hex"),
    "83", // {type, data, nsp}
    "a474797065" + "02",
    "a464617461" + "96", // data: 6 elements
    "a66c6567616379", // "legacy"
    "d40000", // undefined
    legacyDate.toString("hex"),
    "c7030001" + "0203", // ArrayBuffer [1, 2, 3]: ext 8, type 0
    "d405aa", // ext type 5, one byte
    "d6ff" + "65920080", // timestamp 32: 1704067200 s
    "a36e7370" + "a12f",
    "83", // {rooms, except, flags}
    "a5726f6f6d73" + "90",
    "a6657863657074" + "90",
    "a5666c616773" + "80",
  ].join("");
  const bytes = Buffer.from(hex, "hex");
  const [, packet] = notepack.decode(bytes);
  record(
    "legacy-notepack",
    "bytes as older notepack.io wrote them (built here by hand), decoded by notepack.io 3 and sent on to Node's clients",
    "hand-written bytes",
    [{ channel: "socket.io#/#", hex }],
    { client: clientView(packet) },
  );
}

// ----------------------------------------------------------------- write ---

mkdirSync(OUT, { recursive: true });
for (const file of readdirSync(OUT)) {
  if (file.endsWith(".json")) unlinkSync(join(OUT, file));
}
for (const [name, fixture] of fixtures) {
  writeFileSync(join(OUT, `${name}.json`), JSON.stringify(fixture, null, 2) + "\n");
}
console.log(`wrote ${fixtures.size} fixtures to ${OUT}`);
io.close();
process.exit(0);
