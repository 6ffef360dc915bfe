#!/usr/bin/env node
// Drives the small example servers in examples/ with the real
// socket.io-client (4.8.x), so that an example that stops working fails CI.
//
// Usage: node examples-client.mjs <scenario> <mode> <baseUrl>
//   scenario: quickstart | axum-chat | bench
//   mode:     polling | websocket | default (polling, then upgrade)
//
// Output and exit codes come from harness.mjs (one JSON verdict line).

import { io } from "socket.io-client";
import {
  initRunner, usageExit, armWatchdog, runScenario, check, withDeadline, sleep,
} from "./harness.mjs";

const STEP_MS = 10_000;
const USAGE = "usage: node examples-client.mjs <quickstart|axum-chat|bench> <polling|websocket|default> <baseUrl>\n";
const [scenario, mode, baseUrl] = process.argv.slice(2);
const SCENARIOS = { quickstart, "axum-chat": axumChat, bench };
if (!SCENARIOS[scenario]) usageExit(USAGE, `unknown scenario ${JSON.stringify(scenario)}`);
if (!["polling", "websocket", "default"].includes(mode)) usageExit(USAGE, `unknown mode ${JSON.stringify(mode)}`);
if (!baseUrl) usageExit(USAGE, "missing baseUrl");

const clients = [];
initRunner({ scenario, mode }, { onFail: () => clients.forEach((c) => c.disconnect()) });
armWatchdog(60_000);

function connect(nsp = "/", opts = {}) {
  const transports = { polling: ["polling"], websocket: ["websocket"], default: ["polling", "websocket"] }[mode];
  const socket = io(baseUrl + nsp, { transports, forceNew: true, reconnection: false, ...opts });
  clients.push(socket);
  return withDeadline(new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }), STEP_MS, `connect ${nsp}`);
}

/** The next `event` on `socket`, with its arguments. */
function next(socket, event) {
  return withDeadline(new Promise((resolve) => socket.once(event, (...args) => resolve(args))), STEP_MS, `event ${event}`);
}

function ack(socket, event, ...args) {
  return withDeadline(socket.timeout(STEP_MS).emitWithAck(event, ...args), STEP_MS + 1000, `ack of ${event}`);
}

/** Waits until the client is on the transport the mode asks for. */
async function finalTransport(socket) {
  const want = mode === "polling" ? "polling" : "websocket";
  for (let i = 0; i < 200 && socket.io.engine.transport.name !== want; i++) await sleep(25);
  check(socket.io.engine.transport.name === want, `transport ${socket.io.engine.transport.name}, expected ${want}`);
  return want;
}

// examples/quickstart.rs: `hello` (name) acks "hello, <name>" and tells the
// others `joined`.
async function quickstart() {
  const [a, b] = [await connect(), await connect()];
  const joined = next(b, "joined");
  check((await ack(a, "hello", "world")) === "hello, world", "the hello ack");
  const [name] = await joined;
  check(name === "world", `joined ${JSON.stringify(name)}`);
  const transport = await finalTransport(a);
  a.disconnect();
  b.disconnect();
  return { transport };
}

// examples/axum_chat.rs: `/chat` with auth {name}; `join` (room) acks the
// room; `say` {room, text} reaches the room as `said` {name, text};
// GET /rooms/<room> lists who is in it.
async function axumChat() {
  const ann = await connect("/chat", { auth: { name: "ann" } });
  const bob = await connect("/chat", { auth: { name: "bob" } });
  const eve = await connect("/chat", { auth: { name: "eve" } });
  // A room of this run's own: the server may serve several runs.
  const tea = `tea-${mode}`;
  check((await ack(ann, "join", tea)) === tea, "ann joins tea");
  check((await ack(bob, "join", tea)) === tea, "bob joins tea");
  const members = await (await fetch(`${baseUrl}/rooms/${tea}`)).json();
  check(JSON.stringify([...members].sort()) === JSON.stringify(["ann", "bob"]), `members of tea: ${JSON.stringify(members)}`);
  const eveHeard = [];
  eve.on("said", (m) => eveHeard.push(m.text));
  const heard = next(bob, "said");
  const own = next(ann, "said");
  ann.emit("say", { room: tea, text: "hi" });
  const [[msg], [echo]] = await Promise.all([heard, own]);
  check(msg.name === "ann" && msg.text === "hi", `bob heard ${JSON.stringify(msg)}`);
  check(echo.text === "hi", "the sender is in the room too");
  // A message to everyone's room afterwards: eve, not in tea, got nothing.
  const lobby = `lobby-${mode}`;
  check((await ack(eve, "join", lobby)) === lobby, "eve joins lobby");
  const marker = next(eve, "said");
  ann.emit("say", { room: lobby, text: "marker" });
  await marker;
  check(JSON.stringify(eveHeard) === JSON.stringify(["marker"]), `eve heard ${JSON.stringify(eveHeard)} (tea must not reach her)`);
  const transport = await finalTransport(ann);
  for (const c of [ann, bob, eve]) c.disconnect();
  return { transport };
}

// examples/bench_server.rs (the benchmark contract): `echo` comes back to
// the sender, `broadcast` reaches everyone as `bcast`, sender included.
async function bench() {
  const [a, b] = [await connect(), await connect()];
  const echoed = next(a, "echo");
  a.emit("echo", 7, "seven", Buffer.from([7]));
  const [n, s, bin] = await echoed;
  check(n === 7 && s === "seven" && Buffer.from(bin).equals(Buffer.from([7])), "echo arguments");
  const both = Promise.all([next(a, "bcast"), next(b, "bcast")]);
  b.emit("broadcast", { from: "b" });
  const [[x], [y]] = await both;
  check(x.from === "b" && y.from === "b", "bcast to everyone, sender included");
  const transport = await finalTransport(a);
  a.disconnect();
  b.disconnect();
  return { transport };
}

runScenario(SCENARIOS[scenario]);
