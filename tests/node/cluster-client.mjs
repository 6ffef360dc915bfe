#!/usr/bin/env node
// socket.io-client 4.8 against a cluster of socketgate nodes (tests/cluster.rs):
// one client per node, broadcasts between them through the test contract's
// `join` and `bcast` events (tests/common/sio.rs).
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
  check((await ack(c2, "join", "r")) === "r", "c2 joins r");
  check((await ack(c3, "join", "r")) === "r", "c3 joins r");

  // A room broadcast from node 1 with binary reaches the members on nodes 2 and 3.
  check((await ack(c1, "bcast", { to: "r", event: "news", data: { n: 1 }, withBinary: true })) === "sent", "bcast sent");
  for (const c of [c2, c3]) {
    const [event, data, bin] = await c.next("news");
    check(event === "news" && same(data, { n: 1 }) && Buffer.from(bin).equals(Buffer.from([1, 2, 3])), `news: ${JSON.stringify([event, data])}`);
  }
  // Except the room: only c1 gets it; a marker to everyone proves c2 and c3 got nothing before it.
  await ack(c1, "bcast", { except: "r", event: "outside", data: 2 });
  check(same(await c1.next("outside"), ["outside", 2]), "c1 gets the broadcast outside r");
  await ack(c1, "bcast", { event: "marker", data: 3 });
  for (const c of [c1, c2, c3]) check(same(await c.next("marker"), ["marker", 3]), "the marker comes next");

  // One sender's 200 messages arrive in order on another node.
  for (let i = 0; i < 200; i++) c1.socket.emit("bcast", { to: "r", event: "seq", data: i });
  for (let i = 0; i < 200; i++) {
    const e = await c3.next("seq");
    check(same(e, ["seq", i]), `seq ${i}: got ${JSON.stringify(e)}`);
  }
  const transport = c1.socket.io.engine.transport.name;
  clients.forEach((c) => c.disconnect());
  return { transport };
});
