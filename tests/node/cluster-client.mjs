#!/usr/bin/env node
// socket.io-client 4.8 against a cluster of socketgate nodes (tests/cluster.rs):
// one client per node, broadcasts between them through the test contract's
// `join`, `bcast` and `poll-room` events (tests/common/sio.rs): to a room with
// binary, except a room, to all, volatile, with acks across nodes (one client
// never answers) and 1,000 messages from one sender in order.
//
// Usage: node cluster-client.mjs <polling|websocket|default> <baseUrl1> <baseUrl2> <baseUrl3>
// Output and exit codes come from harness.mjs (one JSON verdict line).

import { io } from "socket.io-client";
import { initRunner, usageExit, armWatchdog, runScenario, check, withDeadline } from "./harness.mjs";

const [mode, ...urls] = process.argv.slice(2);
if (!["polling", "websocket", "default"].includes(mode) || urls.length !== 3) {
  usageExit("usage: node cluster-client.mjs <polling|websocket|default> <url1> <url2> <url3>\n", "bad arguments");
}
const STEP_MS = 10_000;
const clients = [];
initRunner({ scenario: "cluster", mode }, { onFail: () => clients.forEach((c) => c.disconnect()) });
armWatchdog(60_000);

const transports = { polling: ["polling"], websocket: ["websocket"], default: ["polling", "websocket"] }[mode];

/** A connected client whose events (name and arguments) land in an inbox. */
async function client(url) {
  const socket = io(url, { transports, forceNew: true, reconnection: false });
  clients.push(socket);
  const inbox = [];
  const waiters = [];
  socket.onAny((event, ...args) => {
    inbox.push([event, ...args]);
    waiters.splice(0).forEach((w) => w());
  });
  await withDeadline(new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), STEP_MS, `connect to ${url}`);
  /** The next event other than `auth` (the contract's greeting). */
  const next = async (what) => {
    for (;;) {
      const i = inbox.findIndex((e) => e[0] !== "auth");
      if (i >= 0) return inbox.splice(i, 1)[0];
      await withDeadline(new Promise((r) => waiters.push(r)), STEP_MS, `${what} at ${url}`);
    }
  };
  return { socket, next, inbox };
}

const ack = (c, ...args) => withDeadline(c.socket.timeout(STEP_MS).emitWithAck(...args), STEP_MS + 1000, `ack of ${args[0]}`);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

runScenario(async () => {
  const [c1, c2, c3] = [await client(urls[0]), await client(urls[1]), await client(urls[2])];
  // A room of this run's own: clients of an earlier run may linger on the
  // nodes until their heartbeat ends.
  const r = `r-${mode}`;
  check((await ack(c2, "join", r)) === r, "c2 joins r");
  check((await ack(c3, "join", r)) === r, "c3 joins r");

  // A room broadcast from node 1 with binary reaches the members on nodes 2 and 3.
  check((await ack(c1, "bcast", { to: r, event: "news", data: { n: 1 }, withBinary: true })) === "sent", "bcast sent");
  for (const c of [c2, c3]) {
    const [event, data, bin] = await c.next("news");
    check(event === "news" && same(data, { n: 1 }) && Buffer.from(bin).equals(Buffer.from([1, 2, 3])), `news: ${JSON.stringify([event, data])}`);
  }
  // Except the room: only c1 gets it; a marker to everyone proves c2 and c3 got nothing before it.
  await ack(c1, "bcast", { except: r, event: "outside", data: 2 });
  check(same(await c1.next("outside"), ["outside", 2]), "c1 gets the broadcast outside r");
  await ack(c1, "bcast", { event: "marker", data: 3 });
  for (const c of [c1, c2, c3]) check(same(await c.next("marker"), ["marker", 3]), "the marker comes next");

  // To all, and volatile (the clients keep up, so they get it).
  await ack(c2, "bcast", { event: "all", data: 4 });
  for (const c of [c1, c2, c3]) check(same(await c.next("all"), ["all", 4]), "to all");
  await ack(c3, "bcast", { event: "vol", data: 5, volatile: true });
  for (const c of [c1, c2, c3]) check(same(await c.next("vol"), ["vol", 5]), "volatile");

  // A broadcast with acks from node 1 to r: c2 answers, c3 does not; the
  // answer from the other node comes back, c3 counts as missing.
  c2.socket.on("poll", (q, cb) => cb(`yes:${q}`));
  c3.socket.on("poll", () => {});
  const report = await ack(c1, "poll-room", { room: r, timeoutMs: 1500 });
  check(same(report.remote, [["yes:ready?"]]) && report.remoteMissing === 1, `poll report ${JSON.stringify(report)}`);
  for (const c of [c2, c3]) c.inbox.splice(0).forEach((e) => check(e[0] === "poll" || e[0] === "auth", `unexpected ${JSON.stringify(e)}`));

  // One sender's 1,000 messages arrive in order on another node.
  for (let i = 0; i < 1000; i++) c1.socket.emit("bcast", { to: r, event: "seq", data: i });
  for (let i = 0; i < 1000; i++) {
    const e = await c3.next("seq");
    check(same(e, ["seq", i]), `seq ${i}: got ${JSON.stringify(e)}`);
  }
  const transport = c1.socket.io.engine.transport.name;
  clients.forEach((c) => c.disconnect());
  return { transport };
});
