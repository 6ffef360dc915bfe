#!/usr/bin/env node
// socket.io-client 4.8 clients that a Rust test drives line by line, for
// scenarios where the test itself acts between the clients' steps (emits
// on a server, stops a node, reads what each client got): the cluster
// tests with the msgpack parser (tests/cluster_msgpack.rs).
//
// Usage: node sio-probe.mjs
//
// Commands, one JSON object a line on stdin (binary values anywhere in
// `args` as {"$binary":"<hex>"}, made Buffers before they are sent):
//   {"cmd":"connect","name":N,"url":U,"parser":"json"|"msgpack","transport"?:"polling"|"websocket"}
//       a socket with its own Manager, no automatic reconnection
//   {"cmd":"emit","name":N,"args":[event, ...],"ack"?:seq}
//       with `ack`, waits (10 s) for the answer: {"event":"ack","name":N,"seq":seq,"args":[...]}
//   {"cmd":"answer","name":N,"event":E,"args":[...]}
//       from now on, answers E's acks with `args`: {"event":"answering","name":N,"ev":E}
//   {"cmd":"reconnect","name":N,"url":U}
//       the disconnected socket connects again, to U (another node): the
//       client presents its pid and last offset, as on an automatic reconnect
//   {"cmd":"quit"}   disconnects everyone; the verdict line follows
//
// Output (stdout), one JSON object a line, in the order things happened:
//   {"event":"connected","name":N,"id":…,"recovered":bool,"transport":…}
//   {"event":"connect_error","name":N,"message":…}
//   {"event":"recv","name":N,"ev":E,"args":[...],"binaryClasses":[...]}
//       every event a client gets, binaries as {"$binary":"<hex>"}
//       (sio-shared.mjs's normalize), and the JS classes of those binaries
//   {"event":"disconnected","name":N,"reason":…}
//   then the verdict (harness.mjs); a bad command fails the run.

import readline from "node:readline";

import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

import { armWatchdog, check, emit, fail, finish, initRunner, withDeadline } from "./harness.mjs";
import { binaryClasses, errorMessage, normalize } from "./sio-shared.mjs";

const STEP_MS = 10_000;
const sockets = new Map();
initRunner({ scenario: "probe" }, { onFail: () => sockets.forEach((s) => s.disconnect()) });
// Longer than any test that drives it; the test kills it when dropped.
armWatchdog(120_000);

/** The inverse of normalize: {"$binary":hex} becomes a Buffer. */
function binaries(x) {
  if (Array.isArray(x)) return x.map(binaries);
  if (x && typeof x === "object") {
    if (typeof x.$binary === "string" && Object.keys(x).length === 1) return Buffer.from(x.$binary, "hex");
    const o = {};
    for (const k of Object.keys(x)) o[k] = binaries(x[k]);
    return o;
  }
  return x;
}

function socketOf(name) {
  const socket = sockets.get(name);
  check(socket, `no client named ${name}`);
  return socket;
}

function connect({ name, url, parser, transport }) {
  check(!sockets.has(name), `a client named ${name} exists`);
  check(parser === "json" || parser === "msgpack", `parser must be json or msgpack, not ${parser}`);
  const socket = io(url, {
    forceNew: true,
    reconnection: false,
    timeout: STEP_MS,
    ...(transport ? { transports: [transport] } : {}),
    ...(parser === "msgpack" ? { parser: msgpackParser } : {}),
  });
  sockets.set(name, socket);
  socket.on("connect", () =>
    emit({ event: "connected", name, id: socket.id, recovered: socket.recovered, transport: socket.io.engine.transport.name }),
  );
  socket.on("connect_error", (e) => emit({ event: "connect_error", name, message: errorMessage(e) }));
  socket.on("disconnect", (reason) => emit({ event: "disconnected", name, reason }));
  socket.onAny((ev, ...args) => emit({ event: "recv", name, ev, args: normalize(args), binaryClasses: [...binaryClasses(args)] }));
}

async function emitCmd({ name, args, ack }) {
  const socket = socketOf(name);
  check(Array.isArray(args) && typeof args[0] === "string", `emit needs [event, ...args], got ${JSON.stringify(args)}`);
  const [event, ...rest] = binaries(args);
  if (ack === undefined) {
    socket.emit(event, ...rest);
    return;
  }
  const answer = await withDeadline(
    new Promise((resolve, reject) => socket.timeout(STEP_MS).emit(event, ...rest, (err, ...a) => (err ? reject(err) : resolve(a)))),
    STEP_MS + 1000,
    `${name}'s ack of ${event}`,
  );
  emit({ event: "ack", name, seq: ack, args: normalize(answer) });
}

function answerCmd({ name, event, args }) {
  socketOf(name).on(event, (...got) => {
    const cb = got[got.length - 1];
    if (typeof cb === "function") cb(...binaries(args));
  });
  // The test waits for this before it asks: stdin and the sockets are
  // read independently, so the question could otherwise come first.
  emit({ event: "answering", name, ev: event });
}

function reconnectCmd({ name, url }) {
  const socket = socketOf(name);
  check(!socket.connected, `${name} is still connected`);
  // The Manager opens its next engine.io connection at this address; the
  // socket keeps its pid and last offset and presents them in its CONNECT.
  socket.io.uri = url;
  socket.connect();
}

const commands = { connect, emit: emitCmd, answer: answerCmd, reconnect: reconnectCmd };

// One command at a time, in order; an ack being waited for holds the next.
let chain = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    const cmd = JSON.parse(line);
    if (cmd.cmd === "quit") {
      sockets.forEach((s) => s.disconnect());
      finish(true, { clients: sockets.size });
    }
    const run = commands[cmd.cmd];
    check(run, `unknown command ${line}`);
    await run(cmd);
  }).catch((e) => fail(e, e && e.details ? e.details : {}));
});
rl.on("close", () => chain.then(() => finish(true, { clients: sockets.size, stdin: "closed" })));
