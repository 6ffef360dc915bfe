#!/usr/bin/env node
// socket.io clients behind a round-robin load balancer without sticky
// sessions (tests/no_sticky.rs): every HTTP request and WebSocket of a
// client may land on any socketgate node, so the nodes must route a
// session's requests to the node that owns it. Uses the gateway's relay
// (src/gateway.rs): `join` (acked), `chat` ({room, ...} comes back to the
// room with `from`).
//
// Usage:
//   node lb-client.mjs chat <url> <polling|websocket|upgrade> <clients> <duration_ms>
//     socket.io-client 4.x; client i joins room <mode>-r<i%4>, then sends `chat`
//     {room, seq, client: i} every 100 ms for duration_ms; every member of
//     a room (the sender too) must get each message once, in order per sender.
//   node lb-client.mjs legacy <url> <clients> <duration_ms>
//     the same with socket.io-client 2.5.0, polling only.
//   node lb-client.mjs stream <url> <sender_url> <receivers> <total> <rate>
//     receivers through <url>, a third each polling-only, websocket-only and
//     polling-then-upgrade, reconnecting quickly and never re-joining; all
//     join room `feed`; then a line `READY {json}` (engine and socket ids)
//     and a sender connected straight to <sender_url> sends <total> `chat`
//     {room: "feed", seq} at <rate> per second. Each receiver must get every
//     seq once, in order; each disconnect must end in a recovered connection
//     with the same socket id (rooms and missed messages come back).
//
// Progress goes to stderr; stdout carries the READY line (stream) and, last,
// the verdict {"ok":true|false,...} from harness.mjs (exit code 0 / 1, 2 for
// a usage error).

import { io as ioV4 } from "socket.io-client";
import ioV2 from "socket.io-client-v2"; // CommonJS: the default export is lookup()
import { initRunner, usageExit, armWatchdog, runScenario, check, withDeadline, sleep, now } from "./harness.mjs";

const STEP_MS = 15_000; // connecting, joining
const SEND_EVERY_MS = 100; // chat: one message per client per 100 ms
const DRAIN_MS = 20_000; // chat: how long deliveries may trail the last send
const STREAM_DRAIN_MS = 30_000; // stream: the same, after the last message sent
const GRACE_MS = 300; // quiet time for late duplicates once everything arrived

const [scenario, ...args] = process.argv.slice(2);
const USAGE = `usage:
  node lb-client.mjs chat <url> <polling|websocket|upgrade> <clients> <duration_ms>
  node lb-client.mjs legacy <url> <clients> <duration_ms>
  node lb-client.mjs stream <url> <sender_url> <receivers> <total> <rate>
`;

const sockets = [];
let closing = false;
const closeAll = () => {
  closing = true;
  sockets.forEach((s) => s.disconnect());
};
const log = (...parts) => process.stderr.write(`[${now()} ms] ${parts.join(" ")}\n`);
const TRANSPORTS = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };

/** Resolves on the socket's first `connect`, rejects on a connect_error. */
function connected(socket, what) {
  return withDeadline(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", (e) => reject(new Error(`${what}: connect_error ${e && e.message}`)));
    }),
    STEP_MS,
    `${what} to connect`,
  );
}

/** An acked emit, for either client generation (2.x has no emitWithAck). */
function emitAck(socket, what, ...emitArgs) {
  return withDeadline(new Promise((resolve) => socket.emit(...emitArgs, resolve)), STEP_MS, what);
}

/**
 * What one receiver got, per sender: each seq must come once, and later
 * than the one before.
 */
class Inbox {
  constructor() {
    this.bySender = new Map(); // sender -> { seen: Set, last }
    this.received = 0;
    this.duplicates = 0;
    this.outOfOrder = 0;
  }
  take(sender, seq) {
    this.received++;
    let s = this.bySender.get(sender);
    if (!s) this.bySender.set(sender, (s = { seen: new Set(), last: -1 }));
    if (s.seen.has(seq)) {
      this.duplicates++;
      return;
    }
    s.seen.add(seq);
    if (seq <= s.last) this.outOfOrder++;
    s.last = Math.max(s.last, seq);
  }
  /** The seqs below `total` never received from `sender` (the first 20). */
  missingSeqs(sender, total) {
    const seen = this.bySender.get(sender)?.seen ?? new Set();
    const missing = [];
    for (let seq = 0; seq < total && missing.length < 20; seq++) if (!seen.has(seq)) missing.push(seq);
    return missing;
  }
  unique(sender) {
    return this.bySender.get(sender)?.seen.size ?? 0;
  }
}

/** Waits until `done()` holds (checked every 50 ms) or `ms` passed; returns whether it held. */
async function waitFor(done, ms) {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// ------------------------------------------------------------------ chat ---

async function chat({ url, mode, n, durationMs, legacy }) {
  const clients = [];
  // `from` is the sender's socket id. A 4.x client knows it (socket.id); a
  // 2.x client's socket.id is its engine id, which the server's socket id
  // need not be, so there the first `from` seen for a sender stands for it:
  // it must never change, and differ between senders (checked at the end).
  for (let i = 0; i < n; i++) {
    const opts = { forceNew: true, reconnection: false, timeout: STEP_MS, transports: TRANSPORTS[mode] };
    const socket = legacy ? ioV2(url, opts) : ioV4(url, opts);
    sockets.push(socket);
    const c = { i, room: `${legacy ? "legacy" : mode}-r${i % 4}`, socket, inbox: new Inbox(), sent: 0, wrongRoom: 0, wrongFrom: 0, disconnects: [] };
    socket.on("chat", (msg) => {
      if (!msg || msg.room !== c.room) {
        c.wrongRoom++;
        return;
      }
      const sender = clients[msg.client];
      if (legacy && sender && sender.from === undefined) sender.from = msg.from;
      const want = sender && (legacy ? sender.from : sender.id);
      if (typeof msg.from !== "string" || msg.from !== want) c.wrongFrom++;
      c.inbox.take(msg.client, msg.seq);
    });
    socket.on("disconnect", (reason) => {
      if (closing) return;
      c.disconnects.push(reason);
      log(`client ${i} disconnected: ${reason}`);
    });
    clients.push(c);
  }
  await Promise.all(clients.map((c) => connected(c.socket, `client ${c.i}`)));
  for (const c of clients) c.id = c.socket.id;
  log(`${n} ${legacy ? "legacy " : ""}clients connected (${mode})`);
  const joined = await Promise.all(clients.map((c) => emitAck(c.socket, `join ack of client ${c.i}`, "join", c.room)));
  clients.forEach((c, k) => check(joined[k] === c.room, `client ${c.i} joined ${JSON.stringify(joined[k])}, not ${c.room}`));
  log("all joined");

  // Everyone sends every 100 ms, the clients' ticks spread over the period.
  const timers = [];
  await new Promise((resolve) => {
    let stopped = 0;
    for (const c of clients) {
      setTimeout(() => {
        const send = () => c.socket.emit("chat", { room: c.room, seq: c.sent++, client: c.i });
        send();
        const timer = setInterval(send, SEND_EVERY_MS);
        timers.push(timer);
        setTimeout(() => {
          clearInterval(timer);
          if (++stopped === clients.length) resolve();
        }, durationMs);
      }, (c.i * SEND_EVERY_MS) / n);
    }
  });
  const sent = sum(clients.map((c) => c.sent));
  log(`sent ${sent}; waiting for the deliveries`);

  const members = (room) => clients.filter((c) => c.room === room);
  const expectedOf = (c) => sum(members(c.room).map((s) => s.sent));
  const uniqueOf = (c) => sum(members(c.room).map((s) => c.inbox.unique(s.i)));
  const complete = await waitFor(() => clients.every((c) => uniqueOf(c) >= expectedOf(c)), DRAIN_MS);
  await sleep(GRACE_MS);

  const expected = sum(clients.map(expectedOf));
  const received = sum(clients.map((c) => c.inbox.received));
  const missing = sum(clients.map((c) => expectedOf(c) - uniqueOf(c)));
  const duplicates = sum(clients.map((c) => c.inbox.duplicates));
  const outOfOrder = sum(clients.map((c) => c.inbox.outOfOrder));
  const wrongRoom = sum(clients.map((c) => c.wrongRoom));
  const wrongFrom = sum(clients.map((c) => c.wrongFrom)) + (legacy ? n - new Set(clients.map((c) => c.from)).size : 0);
  const disconnected = clients.filter((c) => c.disconnects.length > 0).length;
  const transports = clients.map((c) => c.socket.io.engine.transport.name);
  const details = {
    clients: n,
    sent,
    expected,
    received,
    missing,
    duplicates,
    out_of_order: outOfOrder,
    wrong_room: wrongRoom,
    wrong_from: wrongFrom,
    disconnected,
    complete,
    on_websocket: transports.filter((t) => t === "websocket").length,
    transports,
    engine_ids: clients.map((c) => c.socket.io.engine.id),
    socket_ids: clients.map((c) => c.id),
  };
  closeAll();
  check(
    missing === 0 && duplicates === 0 && outOfOrder === 0 && wrongRoom === 0 && wrongFrom === 0 && disconnected === 0,
    `deliveries: ${missing} missing, ${duplicates} duplicates, ${outOfOrder} out of order, ${wrongRoom} to the wrong room, ${wrongFrom} with a wrong sender, ${disconnected} clients disconnected`,
    details,
  );
  return details;
}

// ---------------------------------------------------------------- stream ---

async function stream({ url, senderUrl, n, total, rate }) {
  const modes = ["polling", "websocket", "upgrade"];
  const receivers = [];
  for (let i = 0; i < n; i++) {
    // Modes by threes: the handshakes leave in order, and a round-robin
    // over three nodes would give each node a single mode with i % 3.
    const mode = modes[Math.floor(i / 3) % 3];
    const socket = ioV4(url, {
      forceNew: true,
      timeout: STEP_MS,
      transports: TRANSPORTS[mode],
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
    });
    sockets.push(socket);
    const r = { i, mode, socket, inbox: new Inbox(), disconnects: [], reconnects: [], connectErrors: 0, engineIds: [] };
    socket.on("chat", (msg) => r.inbox.take("sender", msg.seq));
    socket.on("disconnect", (reason, details) => {
      if (closing) return;
      const why = details && details.description ? `${reason} (${details.description.message || details.description})` : reason;
      r.disconnects.push({ t: now(), reason: why });
      log(`receiver ${i} (${mode}, ${r.engineIds.at(-1)}) disconnected: ${why}`);
    });
    socket.on("connect_error", (e) => {
      r.connectErrors++;
      if (r.id) log(`receiver ${i} connect_error: ${e && e.message}`);
    });
    socket.on("connect", () => {
      r.engineIds.push(socket.io.engine.id);
      if (r.id === undefined) {
        r.id = socket.id;
        return;
      }
      const again = { t: now(), recovered: socket.recovered, same_id: socket.id === r.id, engine_id: socket.io.engine.id };
      r.reconnects.push(again);
      log(`receiver ${i} reconnected: ${JSON.stringify(again)}`);
    });
    receivers.push(r);
  }
  await Promise.all(receivers.map((r) => connected(r.socket, `receiver ${r.i}`)));
  const joined = await Promise.all(receivers.map((r) => withDeadline(r.socket.timeout(STEP_MS).emitWithAck("join", "feed"), STEP_MS + 1000, `join ack of receiver ${r.i}`)));
  joined.forEach((room, k) => check(room === "feed", `receiver ${k} joined ${JSON.stringify(room)}`));

  const sender = ioV4(senderUrl, { forceNew: true, reconnection: false, timeout: STEP_MS, transports: ["websocket"] });
  sockets.push(sender);
  await connected(sender, "the sender");
  const senderDisconnects = [];
  sender.on("disconnect", (reason) => {
    if (closing) return;
    senderDisconnects.push(reason);
    log(`the sender disconnected: ${reason}`);
  });

  const ready = receivers.map((r) => ({ i: r.i, mode: r.mode, engine_id: r.engineIds[0], socket_id: r.id }));
  process.stdout.write(`READY ${JSON.stringify({ receivers: ready, sender_engine_id: sender.io.engine.id })}\n`);
  log(`READY: ${n} receivers joined feed; sending ${total} at ${rate}/s`);

  // Sends on schedule: by t ms after the start, floor(t * rate / 1000) + 1 messages.
  const start = Date.now();
  let seq = 0;
  while (seq < total) {
    const due = Math.min(total, Math.floor(((Date.now() - start) * rate) / 1000) + 1);
    while (seq < due) sender.emit("chat", { room: "feed", seq: seq++ });
    await sleep(5);
  }
  log(`sent ${total}; waiting for the receivers`);
  const complete = await waitFor(() => receivers.every((r) => r.inbox.unique("sender") >= total), STREAM_DRAIN_MS);
  await sleep(GRACE_MS);

  const perReceiver = receivers.map((r) => ({
    i: r.i,
    mode: r.mode,
    socket_id: r.id,
    engine_ids: r.engineIds,
    transport: r.socket.io.engine ? r.socket.io.engine.transport.name : null,
    connected: r.socket.connected,
    received: r.inbox.received,
    missing: total - r.inbox.unique("sender"),
    missing_seqs: r.inbox.missingSeqs("sender", total),
    duplicates: r.inbox.duplicates,
    out_of_order: r.inbox.outOfOrder,
    disconnects: r.disconnects,
    reconnects: r.reconnects,
    connect_errors: r.connectErrors,
  }));
  const disconnected = perReceiver.filter((r) => r.disconnects.length > 0);
  // Each disconnect must have been followed by a recovered reconnect with the same id.
  const recoveredAll = disconnected.every(
    (r) => r.connected && r.reconnects.length >= r.disconnects.length && r.reconnects.every((c) => c.recovered && c.same_id),
  );
  const details = {
    receivers: n,
    total,
    complete,
    disconnected: disconnected.length,
    recovered_all: recoveredAll,
    missing: sum(perReceiver.map((r) => r.missing)),
    duplicates: sum(perReceiver.map((r) => r.duplicates)),
    out_of_order: sum(perReceiver.map((r) => r.out_of_order)),
    sender_disconnects: senderDisconnects,
    per_receiver: perReceiver,
  };
  closeAll();
  check(
    details.missing === 0 && details.duplicates === 0 && details.out_of_order === 0 && recoveredAll && senderDisconnects.length === 0,
    `stream: ${details.missing} missing, ${details.duplicates} duplicates, ${details.out_of_order} out of order, ` +
      `${disconnected.length} receivers disconnected, recovered_all=${recoveredAll}, sender disconnects ${senderDisconnects.length}`,
    details,
  );
  return details;
}

// ------------------------------------------------------------------ main ---

const num = (s) => (/^\d+$/.test(s || "") ? Number(s) : NaN);
let run;
if (scenario === "chat" && args.length === 4 && TRANSPORTS[args[1]] && num(args[2]) > 0 && num(args[3]) > 0) {
  const [url, mode, n, durationMs] = [args[0], args[1], num(args[2]), num(args[3])];
  initRunner({ scenario, mode }, { onFail: closeAll });
  armWatchdog(STEP_MS * 2 + durationMs + DRAIN_MS + 15_000);
  run = () => chat({ url, mode, n, durationMs, legacy: false });
} else if (scenario === "legacy" && args.length === 3 && num(args[1]) > 0 && num(args[2]) > 0) {
  const [url, n, durationMs] = [args[0], num(args[1]), num(args[2])];
  initRunner({ scenario, mode: "polling" }, { onFail: closeAll });
  armWatchdog(STEP_MS * 2 + durationMs + DRAIN_MS + 15_000);
  run = () => chat({ url, mode: "polling", n, durationMs, legacy: true });
} else if (scenario === "stream" && args.length === 5 && num(args[2]) > 0 && num(args[3]) > 0 && num(args[4]) > 0) {
  const [url, senderUrl, n, total, rate] = [args[0], args[1], num(args[2]), num(args[3]), num(args[4])];
  initRunner({ scenario }, { onFail: closeAll });
  armWatchdog(STEP_MS * 3 + (total * 1000) / rate + STREAM_DRAIN_MS + 15_000);
  run = () => stream({ url, senderUrl, n, total, rate });
} else {
  usageExit(USAGE, `usage: bad arguments ${JSON.stringify(process.argv.slice(2))}`);
}
runScenario(run);
