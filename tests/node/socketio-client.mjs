#!/usr/bin/env node
// Interop client for socketgate's socket.io v5 layer, driven by the real
// `socket.io-client` package (pinned in package.json).
//
// Usage: node socketio-client.mjs <scenario> <mode> <baseUrl> [path]
//   scenario: basic | auth | acks | rooms | dynamic | reconnect | conformance
//   mode:     polling   -> transports: ['polling'], must never upgrade
//             websocket -> transports: ['websocket']
//             default   -> default transports (polling, then upgrade); every
//                          engine.io connection must upgrade to websocket
//                          before the scenario finishes
//   baseUrl:  e.g. http://127.0.0.1:3000
//   path:     socket.io path, default /socket.io/
//
// The server under test implements the test contract described in README.md
// (namespaces /, /custom, /private, /tenant-<digits>; events message,
// message-with-ack, join, leave, bcast, ask, poll-room, binary-please,
// close-transport, disconnect-me).
//
// Output and exit codes come from harness.mjs, the command line, the SIO_*
// settings and the engine.io / Manager bookkeeping from sio-shared.mjs; the
// verdict fields are "scenario", "mode" and the scenario's details. Every wait
// has a deadline and a global watchdog guarantees the process exits on its
// own. Set SIO_TRACE=1 to also print every engine.io packet sent and received
// ("wire-in" / "wire-out" lines).

import { io } from "socket.io-client";
import {
  initRunner, // the runner
  emit, now, ScenarioError, check, sleep, // output, checks, waits
} from "./harness.mjs";
import {
  scenario, mode, baseUrl, STEP_TIMEOUT_MS, GRACE_MS, runSioScript, ownManagerOpts, // command line, settings
  normalize, checkEqual, binaryClasses, errorMessage, describeCloseDetails, // values
  trackManager, trackReconnects, checkTransportMode, // managers
  clients, disconnectAll, closeManagers, InboxClient, // clients
} from "./sio-shared.mjs";

const GLOBAL_TIMEOUT_MS = Number(process.env.SIO_GLOBAL_TIMEOUT_MS || 30_000);

const SCENARIOS = {
  basic: basicScenario,
  auth: authScenario,
  acks: acksScenario,
  rooms: roomsScenario,
  dynamic: dynamicScenario,
  reconnect: reconnectScenario,
  conformance: conformanceScenario,
};

// On failure, disconnect every client before the verdict is written.
initRunner({ scenario, mode }, { onFail: disconnectAll });

// ---------------------------------------------------------------- client ---

/** The Manager's bookkeeping (sio-shared.mjs), plus reconnects and closes. */
function managerOpts() {
  return {
    fields: { reconnectAttempts: 0, reconnects: 0, closes: [] },
    setup(info) {
      const { manager, label } = info;
      trackReconnects(manager, info, { manager: label });
      manager.on("close", (reason, desc) => {
        info.closes.push(reason);
        emit({ event: "manager-close", manager: label, reason, details: describeCloseDetails(desc) });
      });
      manager.on("error", (e) => emit({ event: "manager-error", manager: label, error: errorMessage(e) }));
    },
  };
}

/**
 * Wraps a socket.io-client Socket. Every received event (including the
 * lifecycle events connect / connect_error / disconnect) goes into an inbox;
 * scenarios take the entries they expect and then assert that nothing else
 * is left, which catches leaks and duplicates.
 */
class Client extends InboxClient {
  constructor(label, socket) {
    super(label, socket, trackManager(socket.io, label, managerOpts()));
    socket.onAny((name, ...args) => this._recordEvent(name, args));
    socket.on("connect", () => {
      this._receive(
        { event: "connect", lifecycle: true, id: socket.id, recovered: !!socket.recovered, t: now() },
        { event: "connect", client: label, nsp: socket.nsp, id: socket.id, engineSid: socket.io.engine && socket.io.engine.id, recovered: !!socket.recovered, transport: this.transportName },
      );
    });
    socket.on("connect_error", (err) => {
      const e = { event: "connect_error", lifecycle: true, message: err && err.message, data: err && err.data, t: now() };
      this._receive(e, { event: "connect_error", client: label, nsp: socket.nsp, message: e.message, data: normalize(e.data) });
    });
    socket.on("disconnect", (reason, desc) => {
      this._receive(
        { event: "disconnect", lifecycle: true, reason, details: describeCloseDetails(desc), t: now() },
        { event: "disconnect", client: label, nsp: socket.nsp, reason, details: describeCloseDetails(desc) },
      );
    });
  }

  async connected() {
    const e = await this.take((e) => e.event === "connect" || e.event === "connect_error" || e.event === "disconnect", `'connect' on ${this.socket.nsp}`);
    if (e.event === "connect_error")
      throw new ScenarioError(`${this.label}: connect_error on ${this.socket.nsp}: ${e.message}`, { data: normalize(e.data) });
    if (e.event === "disconnect") throw new ScenarioError(`${this.label}: disconnected (${e.reason}) while waiting for 'connect'`);
    check(this.socket.connected, `${this.label}: 'connect' fired but socket.connected is false`);
    return e;
  }

  async connectError() {
    const e = await this.take((e) => e.event === "connect" || e.event === "connect_error", `'connect_error' on ${this.socket.nsp}`);
    if (e.event === "connect") throw new ScenarioError(`${this.label}: ${this.socket.nsp} connected (id ${e.id}) but should have been refused`);
    return e;
  }

  async disconnected() {
    return this.take((e) => e.event === "disconnect", `'disconnect' on ${this.socket.nsp}`);
  }

  /** emit with an ack callback; resolves with the ack arguments (array). */
  ack(event, args = [], ms = STEP_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(ms).emit(event, ...args, (err, ...resp) => {
        if (err) reject(new ScenarioError(`${this.label}: no ack for '${event}': ${err.message}`, { inbox: this.describeInbox() }));
        else resolve(resp);
      });
    });
  }
}

/** A socket with its own Manager (independent engine.io connection). */
function newClient(label, nsp, opts = {}) {
  return new Client(label, io(baseUrl + nsp, ownManagerOpts(opts)));
}

/** A socket on `nsp` sharing the Manager (engine.io connection) of `other`. */
function sameManagerClient(label, other, nsp, socketOpts = {}) {
  return new Client(label, other.socket.io.socket(nsp, socketOpts));
}

/** Disconnects every socket and waits (bounded) until the engines closed. */
async function closeAll() {
  for (const c of clients) if (c.socket.active || c.socket.connected) c.socket.disconnect();
  await closeManagers((info, closed) => {
    if (!closed) info.manager._close && info.manager._close();
  });
}

// ------------------------------------------------------------- scenarios ---

async function basicScenario() {
  const main = newClient("main", "/", { auth: { token: "abc" } });
  await main.connected();
  checkEqual(await main.event("auth"), [{ token: "abc" }], "auth event on /");
  const socketId = main.socket.id;
  const engineId = main.socket.io.engine.id;
  check(typeof socketId === "string" && socketId.length > 0, `socket.id must be a non-empty string, got ${JSON.stringify(socketId)}`);
  check(typeof engineId === "string" && engineId.length > 0, `engine id must be a non-empty string, got ${JSON.stringify(engineId)}`);
  check(socketId !== engineId, `socket.id must differ from the engine.io sid (both ${socketId})`);

  // Text, JSON, top-level binary and non-ASCII text in one event.
  const MESSAGE = ["text", { a: 1, b: [true, null] }, new Uint8Array([0, 1, 255]), "héllo ✓ 🎉"];
  const back = await main.echo(MESSAGE, "message");
  const binClasses = [...binaryClasses(back)];

  // Ack with a JSON and a binary argument (the answer is a BINARY_ACK).
  const ACK_ARGS = [{ k: "v", list: [1, "two", { three: 3 }] }, new Uint8Array([0xde, 0xad, 0xbe, 0xef])];
  checkEqual(await main.ack("message-with-ack", ACK_ARGS), ACK_ARGS, "message-with-ack answer");

  // Second namespace over the same Manager / engine.io connection.
  const custom = sameManagerClient("custom", main, "/custom", { auth: { token: "abc", nsp: "custom" } });
  check(custom.socket.io === main.socket.io, "/custom socket does not share the Manager");
  await custom.connected();
  checkEqual(await custom.event("auth"), [{ token: "abc", nsp: "custom" }], "auth event on /custom");
  const customId = custom.socket.id;
  check(typeof customId === "string" && customId.length > 0, `/custom socket.id must be a non-empty string, got ${JSON.stringify(customId)}`);
  check(customId !== socketId && customId !== engineId, `/custom socket.id ${customId} must differ from the / socket id and the engine sid`);
  check(custom.socket.io.engine.id === engineId, "the /custom socket opened a second engine.io connection");
  // Several attachments, nested and inside arrays, including an empty one.
  const CUSTOM_MESSAGE = ["custom", { file: new Uint8Array([7, 7, 7]), meta: { name: "f.bin" } }, [new Uint8Array([]), new Uint8Array([9])]];
  await custom.echo(CUSTOM_MESSAGE, "message on /custom");
  checkEqual(await custom.ack("message-with-ack", ["on-custom", 2]), ["on-custom", 2], "message-with-ack on /custom");

  // Server-sent binary event, top-level and nested.
  const done = await main.ack("binary-please");
  checkEqual(done, ["done"], "binary-please ack");
  const bin = await main.event("binary");
  checkEqual(bin, [Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]), label: "x" }], "binary event");

  const transport = await checkTransportMode(main.info);
  // One more round trip on each namespace on the final transport.
  await main.echo(["final", new Uint8Array([42])], "final echo on /");
  await custom.echo(["final-custom"], "final echo on /custom");
  await sleep(GRACE_MS);
  main.checkNothingElse();
  custom.checkNothingElse();
  check(main.socket.io.engine.id === engineId, "the engine.io sid changed during the scenario");
  await closeAll();
  return { socketId, customSocketId: customId, engineId, transport: transport.transport, upgraded: !!transport.upgraded, binaryClasses: binClasses };
}

/**
 * The contract of `examples/conformance.rs socketio`, a subset of the test
 * server's: `auth` echoed on `/` and `/custom`, `message` -> `message-back`
 * and `message-with-ack` on `/` (binary included), any other namespace
 * refused.
 */
async function conformanceScenario() {
  const main = newClient("main", "/", { auth: { token: "abc" } });
  await main.connected();
  checkEqual(await main.event("auth"), [{ token: "abc" }], "auth event on /");
  await main.echo(["text", { a: 1, b: [true, null] }, new Uint8Array([0, 1, 255]), "héllo ✓"], "message");
  const ACK_ARGS = [{ k: "v" }, new Uint8Array([0xde, 0xad, 0xbe, 0xef])];
  checkEqual(await main.ack("message-with-ack", ACK_ARGS), ACK_ARGS, "message-with-ack answer");

  const custom = sameManagerClient("custom", main, "/custom", { auth: { nsp: "custom" } });
  await custom.connected();
  checkEqual(await custom.event("auth"), [{ nsp: "custom" }], "auth event on /custom");

  const nope = sameManagerClient("nope", main, "/nope");
  const refused = await nope.connectError();
  check(refused.message === "Invalid namespace", `/nope: connect_error ${JSON.stringify(refused.message)}, expected "Invalid namespace"`);

  const transport = await checkTransportMode(main.info);
  await main.echo(["final", new Uint8Array([42])], "final echo on /");
  await sleep(GRACE_MS);
  for (const c of [main, custom, nope]) c.checkNothingElse();
  await closeAll();
  return { transport: transport.transport };
}

async function authScenario() {
  // A `/` socket keeps the engine.io connection up while /private is refused.
  const main = newClient("main", "/", { auth: { token: "main" } });
  await main.connected();
  checkEqual(await main.event("auth"), [{ token: "main" }], "auth event on /");
  const engineId = main.socket.io.engine.id;

  const priv = sameManagerClient("private", main, "/private", { auth: { token: "wrong" } });
  const refused = await priv.connectError();
  check(refused.message === "unauthorized", `connect_error message: expected "unauthorized", got ${JSON.stringify(refused.message)}`);
  checkEqual(refused.data, { code: 401 }, "connect_error data");
  check(!priv.socket.connected && priv.socket.id === undefined, "refused socket looks connected");

  // The refusal must leave the engine.io connection and the / namespace alive.
  await sleep(GRACE_MS);
  check(main.socket.connected, "the / socket was disconnected by the /private refusal");
  await main.echo(["still here", new Uint8Array([1])], "echo on / after the refusal");
  check(main.socket.io.engine.id === engineId, "the engine.io connection changed after the refusal");
  priv.checkNothingElse("after connect_error");

  // Usual retry pattern: fix the credentials and connect the same socket again.
  priv.socket.auth = { token: "secret" };
  priv.socket.connect();
  await priv.connected();
  checkEqual(await priv.event("auth"), [{ token: "secret" }], "auth event on /private");
  const privateId = priv.socket.id;
  check(typeof privateId === "string" && privateId.length > 0 && privateId !== main.socket.id && privateId !== engineId, `bad /private socket id ${JSON.stringify(privateId)}`);
  check(main.socket.io.engine.id === engineId, "the engine.io connection changed while connecting /private");

  // Also a fresh, independent client with the right token straight away.
  const fresh = newClient("private-fresh", "/private", { auth: { token: "secret" } });
  await fresh.connected();
  checkEqual(await fresh.event("auth"), [{ token: "secret" }], "auth event on /private (fresh client)");

  const transport = await checkTransportMode(main.info);
  await checkTransportMode(fresh.info);
  await main.echo(["final"], "final echo on /");
  await sleep(GRACE_MS);
  for (const c of [main, priv, fresh]) c.checkNothingElse();
  const freshSocketId = fresh.socket.id;
  await closeAll();
  return {
    engineId,
    refused: { message: refused.message, data: normalize(refused.data) },
    privateSocketId: privateId,
    freshSocketId,
    transport: transport.transport,
  };
}

async function acksScenario() {
  const c = newClient("main", "/", { auth: { token: "acks" } });
  await c.connected();
  checkEqual(await c.event("auth"), [{ token: "acks" }], "auth event");
  const results = {};

  // Sends `ask`, takes the server's `question` (which must carry an ack id),
  // optionally answers it; returns the server's final ack and the timing.
  async function ask(timeoutMs, answer) {
    const sentAt = Date.now();
    const askP = c.ack("ask", [timeoutMs]);
    askP.catch(() => {});
    // Fails fast when the server acks `ask` without asking first.
    const q = await Promise.race([
      c.event("question"),
      askP.then((r) => {
        throw new ScenarioError(`the server acked 'ask' with ${JSON.stringify(normalize(r))} before sending 'question'`);
      }),
    ]);
    check(q.length === 2 && q[0] === "q?" && typeof q[1] === "function", `'question' must be ("q?", <ack>), got ${JSON.stringify(normalize(q))} (no ack id on the server's EVENT?)`);
    if (answer !== undefined) q[1](answer);
    const resp = await askP;
    return { resp, ms: Date.now() - sentAt, ackFn: q[1] };
  }

  // 1. The client answers: the server's ack (with timeout) gets the answer.
  const a1 = await ask(2000, "42!");
  checkEqual(a1.resp, [{ answer: "42!" }], "ask(2000) answered with \"42!\"");
  results.answered = { ms: a1.ms };

  // 2. A binary answer (client -> server BINARY_ACK, then back in the server's ack).
  const a2 = await ask(2000, new Uint8Array([9, 8, 7]));
  checkEqual(a2.resp, [{ answer: new Uint8Array([9, 8, 7]) }], "ask(2000) answered with binary 090807");
  results.binaryAnswer = { ms: a2.ms };

  // 3. The client does not answer: the server's timeout fires.
  const a3 = await ask(300);
  checkEqual(a3.resp, [{ timeout: true }], "ask(300) not answered");
  check(a3.ms >= 250, `the server reported the timeout after ${a3.ms} ms, expected about 300 ms (>= 250)`);
  check(a3.ms < 300 + 2000, `the server reported the timeout only after ${a3.ms} ms (timeout 300 ms)`);
  results.timedOut = { ms: a3.ms };

  // A late answer to the expired question must be ignored by the server
  // (no crash, no disconnect, nothing sent back).
  a3.ackFn("too late");
  await sleep(GRACE_MS);
  check(c.socket.connected, "the socket disconnected after a late ack");
  c.checkNothingElse("after the late ack");

  const transport = await checkTransportMode(c.info);
  await c.echo(["still alive", new Uint8Array([1, 2])], "echo after the late ack");
  // Timing after the upgrade too (default mode: now over websocket).
  const a4 = await ask(300);
  checkEqual(a4.resp, [{ timeout: true }], "second ask(300) not answered");
  check(a4.ms >= 250, `the server reported the second timeout after ${a4.ms} ms (>= 250 expected)`);
  a4.ackFn("too late again");
  const a5 = await ask(2000, "again");
  checkEqual(a5.resp, [{ answer: "again" }], "ask(2000) answered after a timed-out question");
  await sleep(GRACE_MS);
  c.checkNothingElse();
  const socketId = c.socket.id;
  await closeAll();
  return { socketId, ...results, secondTimeoutMs: a4.ms, transport: transport.transport };
}

async function roomsScenario() {
  const A = newClient("A", "/", { auth: { name: "A" } });
  const B = newClient("B", "/", { auth: { name: "B" } });
  const C = newClient("C", "/", { auth: { name: "C" } });
  const all = [A, B, C];
  for (const c of all) await c.connected();
  for (const c of all) checkEqual(await c.event("auth"), [{ name: c.label }], `${c.label}: auth event`);

  checkEqual(await A.ack("join", ["r1"]), ["r1"], "A join r1");
  checkEqual(await B.ack("join", ["r1"]), ["r1"], "B join r1");
  checkEqual(await C.ack("join", ["r2"]), ["r2"], "C join r2");

  // A broadcast with acks: C has the server poll room r1 (A and B). A
  // answers, B stays silent: the server reports A's answer and B missing
  // once its 500 ms are up.
  const pollSentAt = now();
  const pollP = C.ack("poll-room", [{ room: "r1", timeoutMs: 500 }]);
  pollP.catch(() => {});
  const pollA = await A.event("poll");
  const pollB = await B.event("poll");
  for (const [label, q] of [["A", pollA], ["B", pollB]]) {
    check(q.length === 2 && q[0] === "ready?" && typeof q[1] === "function", `${label}: 'poll' must be ("ready?", <ack>), got ${JSON.stringify(normalize(q))}`);
  }
  pollA[1]("A-ok", 1);
  const [pollReport] = await pollP;
  const pollMs = now() - pollSentAt;
  checkEqual(
    pollReport,
    { replies: { [A.socket.id]: ["A-ok", 1] }, missing: [{ id: B.socket.id, error: "ack timed out" }] },
    "poll-room r1 report",
  );
  check(pollMs >= 450, `the room poll was reported after ${pollMs} ms, before its 500 ms timeout`);
  pollB[1]("too late");
  await sleep(GRACE_MS);
  for (const c of all) c.checkNothingElse("after the room poll");

  const steps = [];
  // Sends `bcast` from `from`, waits for `event` on every expected client,
  // then waits GRACE_MS and asserts nobody received anything else.
  async function bcast(step, from, spec, receivers) {
    const sentAt = now();
    checkEqual(await from.ack("bcast", [spec]), ["sent"], `${step}: bcast ack`);
    for (const c of receivers) checkEqual(await c.event(spec.event), [spec.data], `${step}: '${spec.event}' received by ${c.label}`);
    await sleep(GRACE_MS);
    for (const c of all) c.checkNothingElse(`after step ${step} (expected receivers: ${receivers.map((r) => r.label).join(",") || "none"})`);
    steps.push({ step, receivers: receivers.map((r) => r.label), ms: now() - sentAt });
    emit({ event: "step-ok", step, receivers: receivers.map((r) => r.label) });
  }

  await bcast("to-r1", A, { to: "r1", event: "news", data: { n: 1 } }, [A, B]);
  await bcast("except-r1", A, { except: "r1", event: "all", data: 2 }, [C]);
  await bcast("all-but-sender", A, { allButSender: true, event: "others", data: 3 }, [B, C]);

  // Volatile: all three are connected and idle, so the packet must get
  // through. In polling mode a volatile packet is legitimately dropped when it
  // hits the ~1 ms window in which a client's GET has just returned (e.g. with
  // a ping) and the next one is not there yet, so up to 3 attempts are made;
  // a server that drops volatile packets always fails all of them.
  if (mode === "default") for (const c of all) await checkTransportMode(c.info);
  let volAttempts = 0;
  for (;;) {
    volAttempts++;
    checkEqual(await A.ack("bcast", [{ volatile: true, event: "vol", data: 4 }]), ["sent"], "volatile bcast ack");
    const got = [];
    const deadline = Date.now() + 1500;
    for (const c of all) {
      try {
        checkEqual(await c.event("vol", Math.max(1, deadline - Date.now())), [4], `volatile 'vol' received by ${c.label}`);
        got.push(c.label);
      } catch (e) {
        if (!(e instanceof ScenarioError) || !/timed out/.test(e.message)) throw e;
      }
    }
    await sleep(GRACE_MS);
    for (const c of all) c.checkNothingElse("after the volatile broadcast");
    if (got.length === all.length) break;
    emit({ event: "volatile-missed", attempt: volAttempts, got });
    check(volAttempts < 3, `volatile broadcast did not reach all idle clients in ${volAttempts} attempts (last reached: ${got.join(",") || "none"})`);
  }
  steps.push({ step: "volatile", receivers: ["A", "B", "C"], attempts: volAttempts });

  checkEqual(await B.ack("leave", ["r1"]), ["r1"], "B leave r1");
  await bcast("to-r1-after-leave", A, { to: "r1", event: "news", data: { n: 2 } }, [A]);
  // And a room nobody is in.
  await bcast("to-empty-room", B, { to: "nobody-here", event: "news", data: { n: 3 } }, []);

  const transports = [];
  for (const c of all) transports.push((await checkTransportMode(c.info)).transport);
  await A.echo(["final"], "final echo");
  const ids = Object.fromEntries(all.map((c) => [c.label, c.socket.id]));
  check(new Set(Object.values(ids)).size === 3, `socket ids are not distinct: ${JSON.stringify(ids)}`);
  await closeAll();
  return { ids, steps, pollMs, volatileAttempts: volAttempts, transports };
}

async function dynamicScenario() {
  const t42 = newClient("tenant-42", "/tenant-42");
  await t42.connected();
  checkEqual(await t42.event("tenant"), ["/tenant-42"], "tenant event on /tenant-42");
  const engineId = t42.socket.io.engine.id;

  // A second dynamic namespace over the same connection.
  const t7 = sameManagerClient("tenant-7", t42, "/tenant-7");
  await t7.connected();
  checkEqual(await t7.event("tenant"), ["/tenant-7"], "tenant event on /tenant-7");
  check(t7.socket.id !== t42.socket.id, "the two tenant sockets have the same id");

  const refused = {};
  for (const nsp of ["/tenant-abc", "/nope"]) {
    const c = sameManagerClient(nsp, t42, nsp);
    const e = await c.connectError();
    check(e.message === "Invalid namespace", `${nsp}: connect_error message: expected "Invalid namespace", got ${JSON.stringify(e.message)}`);
    refused[nsp] = { message: e.message, data: normalize(e.data) };
  }
  await sleep(GRACE_MS);
  check(t42.socket.connected && t7.socket.connected, "a refused namespace disconnected the tenant sockets");
  check(t42.socket.io.engine.id === engineId, "the engine.io connection changed after the refusals");
  const transport = await checkTransportMode(t42.info);
  for (const c of clients) c.checkNothingElse();
  const tenantSocketIds = { "/tenant-42": t42.socket.id, "/tenant-7": t7.socket.id };
  await closeAll();
  return { engineId, tenantSocketIds, refused, transport: transport.transport };
}

async function reconnectScenario() {
  const c = newClient("main", "/", { auth: { token: "re" }, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
  await c.connected();
  checkEqual(await c.event("auth"), [{ token: "re" }], "auth event");
  const firstId = c.socket.id;
  const first = await checkTransportMode(c.info);
  await c.echo(["before"], "echo before close-transport");

  c.socket.emit("close-transport");
  const closedAt = now();
  const d = await c.disconnected();
  check(d.reason === "transport close", `disconnect reason: expected "transport close", got ${JSON.stringify(d.reason)}`, { details: d.details });
  const again = await c.connected();
  const reconnectMs = now() - closedAt;
  check(c.info.reconnects >= 1, "the socket connected again without a Manager 'reconnect' event");
  const secondId = c.socket.id;
  const recovered = !!c.socket.recovered;
  // Without connection state recovery the server hands out a new id; with it
  // (socket.recovered) the id is kept.
  if (recovered) check(secondId === firstId, `recovered session must keep the socket id (${firstId} -> ${secondId})`);
  else check(secondId !== firstId && typeof secondId === "string" && secondId.length > 0, `a new session must get a new socket id (${firstId} -> ${secondId})`);
  checkEqual(await c.event("auth"), [{ token: "re" }], "auth event after reconnect");
  check(c.info.engines.length === 2 && c.info.engines[1].sid !== first.sid, "the reconnect did not open a new engine.io connection");
  const second = await checkTransportMode(c.info);
  await c.echo(["after reconnect", { n: 1 }, new Uint8Array([5, 6])], "echo after reconnect");
  await sleep(GRACE_MS);
  c.checkNothingElse("after reconnect");

  c.socket.emit("disconnect-me");
  const d2 = await c.disconnected();
  check(d2.reason === "io server disconnect", `disconnect reason: expected "io server disconnect", got ${JSON.stringify(d2.reason)}`);
  const attemptsBefore = c.info.reconnectAttempts;
  await sleep(500);
  check(c.info.reconnectAttempts === attemptsBefore, "the client tried to reconnect after 'io server disconnect'");
  check(!c.socket.connected && !c.socket.active, "the socket is active again after 'io server disconnect'");
  c.checkNothingElse("after io server disconnect");
  await closeAll();
  return {
    firstSocketId: firstId,
    secondSocketId: secondId,
    recovered,
    firstEngineId: first.sid,
    secondEngineId: second.sid,
    reconnectMs,
    reconnectAttempts: c.info.reconnectAttempts,
    transport: second.transport,
    reasons: [d.reason, d2.reason],
  };
}

// ------------------------------------------------------------------ main ---

runSioScript("socketio-client.mjs", SCENARIOS, GLOBAL_TIMEOUT_MS);
