#!/usr/bin/env node
// Interop client for socketgate's legacy support (engine.io v3 / socket.io v4
// protocol, `EIO=3`), driven by the real `socket.io-client` 2.5.0 package
// (pinned in package.json as `socket.io-client-v2`). The mixed-room scenario
// also opens a `socket.io-client` 4.8.4 client.
//
// Usage: node legacy-client.mjs <scenario> <mode> <baseUrl> [path]
//   scenario: basic | heartbeat | mixed-room | namespace-errors | namespace-query | conformance
//   mode:     polling   -> transports: ['polling'], must never upgrade
//             websocket -> transports: ['websocket']
//             default   -> default transports (polling, then upgrade); the
//                          2.x connection must upgrade to websocket before the
//                          scenario finishes
//   baseUrl:  e.g. http://127.0.0.1:3000
//   path:     socket.io path, default /socket.io/
//
// The server under test implements the contract of socketio-client.mjs (see
// README.md), with engine.io v3 support on (allowEIO3) and `bcast` accepting
// `withBinary: true` (then `event` is emitted with `data` and Buffer [1,2,3]).
//
// Output and exit codes come from harness.mjs, the command line, the SIO_*
// settings and the engine.io / Manager bookkeeping from sio-shared.mjs; the
// verdict fields are "scenario", "mode" and the scenario's details, among them
// "transport" (the final transport of the 2.x connection). Every wait has a
// deadline and a global watchdog guarantees that the process exits on its own.
// SIO_TRACE=1 also prints every engine.io packet ("wire-in" / "wire-out") and,
// for the 2.x client, the raw transport data ("raw-in" / "raw-out": the
// polling payloads and WebSocket frames exactly as sent/received) and the
// first request URI of each transport.

import ioV2 from "socket.io-client-v2"; // CommonJS: the default export is lookup()
import { io as ioV4 } from "socket.io-client";
import {
  initRunner, armWatchdog, // the runner
  emit, now, ScenarioError, check, sleep, // output, checks, waits
} from "./harness.mjs";
import {
  scenario, mode, baseUrl, STEP_TIMEOUT_MS, GRACE_MS, runSioScript, ownManagerOpts, // command line, settings
  normalize, sameValue, checkEqual, binaryClasses, describeWire, // values
  managers, trackManager, currentEngine, checkTransportMode, // managers
  disconnectAll, closeManagers, InboxClient, // clients
} from "./sio-shared.mjs";

const GLOBAL_TIMEOUT_MS = Number(process.env.SIO_GLOBAL_TIMEOUT_MS || 30_000);

const SCENARIOS = {
  basic: basicScenario,
  heartbeat: heartbeatScenario,
  conformance: conformanceScenario,
  "mixed-room": mixedRoomScenario,
  "namespace-errors": namespaceErrorsScenario,
  "namespace-query": namespaceQueryScenario,
};

initRunner({ scenario, mode }, { onFail: closeAllNow });

// --------------------------------------------------------------- helpers ---

function errText(e) {
  if (e === undefined || e === null) return e;
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  try {
    return JSON.stringify(normalize(e));
  } catch {
    return String(e);
  }
}

// ------------------------------------------------------ engines / tracing ---

/**
 * Raw tracing of an engine.io-client 3.x transport (SIO_TRACE only): wraps,
 * on the instance, what the transport reads (onData: a whole polling payload
 * or one WebSocket frame) and writes (doWrite for polling, ws.send for
 * WebSocket), and the first request URI (shows b64=1).
 */
function traceTransportV2(t, label) {
  if (!t || t.__traced) return;
  t.__traced = true;
  const kind = (d) => (typeof d === "string" ? "text" : "binary");
  const onData = t.onData;
  t.onData = function (data) {
    emit({ event: "raw-in", manager: label, transport: t.name, kind: kind(data), data: describeWire(data) });
    return onData.call(this, data);
  };
  if (t.name === "polling") {
    let uris = 0;
    const uri = t.uri;
    t.uri = function (...a) {
      const u = uri.apply(this, a);
      if (uris++ < 2) emit({ event: "request-uri", manager: label, transport: t.name, uri: u });
      return u;
    };
    const doWrite = t.doWrite;
    t.doWrite = function (data, fn) {
      emit({ event: "raw-out", manager: label, transport: t.name, kind: kind(data), data: describeWire(data) });
      return doWrite.call(this, data, fn);
    };
  } else {
    const wrapWs = () => {
      if (!t.ws || t.ws.__traced) return;
      t.ws.__traced = true;
      emit({ event: "request-uri", manager: label, transport: t.name, uri: t.ws.url });
      const send = t.ws.send;
      t.ws.send = function (data, ...rest) {
        emit({ event: "raw-out", manager: label, transport: t.name, kind: kind(data), data: describeWire(data) });
        return send.call(this, data, ...rest);
      };
    };
    wrapWs();
    t.once("open", wrapWs); // registered before the upgrade probe's own 'open' listener
  }
}

/** SIO_TRACE, 2.x: the raw data of the engine's transports, the current one and each one it creates. */
function traceEngineV2(engine, label) {
  traceTransportV2(engine.transport, label);
  const createTransport = engine.createTransport;
  engine.createTransport = function (...a) {
    const t = createTransport.apply(this, a);
    traceTransportV2(t, label);
    return t;
  };
}

/** The Manager's bookkeeping (sio-shared.mjs) for either client version, plus the heartbeat of 2.x. */
function managerOpts(label, legacy) {
  return {
    fields: { legacy },
    traceEngine: legacy ? (engine) => traceEngineV2(engine, label) : null,
    openFields: { client: legacy ? "2.x" : "4.x" },
    errorText: errText,
    closeFields: (desc) => ({ description: errText(desc) }),
    onOpen(engine, rec, info) {
      Object.assign(rec, { pings: 0, pongs: 0, serverPings: 0, pongTimes: [] });
      if (!legacy) return;
      // engine.io v3: the client pings ('ping' once the packet is flushed),
      // the server answers with a pong ('pong').
      engine.on("ping", () => rec.pings++);
      engine.on("pong", () => {
        rec.pongs++;
        rec.pongTimes.push(now());
        info.wake();
      });
      // A server ping is the v4 direction; a v3 server never sends one.
      engine.on("packet", (p) => {
        if (p.type === "ping") rec.serverPings++;
      });
    },
    setup(info) {
      info.manager.on("close", (reason) => emit({ event: "manager-close", manager: label, reason }));
      info.manager.on("error", (e) => emit({ event: "manager-error", manager: label, error: errText(e) }));
    },
  };
}

// --------------------------------------------------------------- clients ---

/**
 * Wraps a socket (2.x or 4.x). Every received event goes into an inbox, and
 * so do the lifecycle events (connect, disconnect, connect_error and, for
 * 2.x, `error`, which is how 2.x surfaces a namespace refusal). Scenarios take
 * what they expect and then assert that nothing else is left.
 */
class Client extends InboxClient {
  constructor(label, socket, legacy) {
    super(label, socket, trackManager(socket.io, label, managerOpts(label, legacy)));
    this.legacy = legacy;
    const record = (name, args) => this._recordEvent(name, args);
    if (legacy) {
      // 2.x has no onAny: take over Socket#onevent on the instance (same
      // argument list as the original, including the ack callback). Events
      // arriving before CONNECT are recorded too (the original would buffer
      // them until 'connect').
      socket.onevent = function (packet) {
        const args = (packet.data || []).slice();
        const name = args.shift();
        if (packet.id !== null && packet.id !== undefined) args.push(this.ack(packet.id));
        record(name, args);
      };
      socket.on("error", (payload) => {
        this._receive({ event: "error", lifecycle: true, payload, t: now() }, { event: "error", client: label, nsp: socket.nsp, payload: normalize(payload) });
      });
      socket.on("connect_timeout", () => {
        this._receive({ event: "connect_timeout", lifecycle: true, t: now() }, { event: "connect_timeout", client: label, nsp: socket.nsp });
      });
    } else {
      socket.onAny((name, ...args) => record(name, args));
    }
    socket.on("connect", () => {
      this._receive(
        { event: "connect", lifecycle: true, id: socket.id, t: now() },
        { event: "connect", client: label, version: legacy ? "2.x" : "4.x", nsp: socket.nsp, id: socket.id, engineSid: socket.io.engine && socket.io.engine.id, transport: this.transportName },
      );
    });
    socket.on("connect_error", (err) => {
      const e = { event: "connect_error", lifecycle: true, message: errText(err), data: err && err.data, t: now() };
      this._receive(e, { event: "connect_error", client: label, nsp: socket.nsp, message: e.message, data: normalize(e.data) });
    });
    socket.on("disconnect", (reason) => {
      this._receive({ event: "disconnect", lifecycle: true, reason, t: now() }, { event: "disconnect", client: label, nsp: socket.nsp, reason });
    });
  }

  describeInbox() {
    return this.inbox.map((e) =>
      e.lifecycle ? { event: e.event, reason: e.reason, message: e.message, payload: normalize(e.payload) } : { event: e.event, args: normalize(e.args) },
    );
  }

  async connected() {
    const e = await this.take((e) => e.lifecycle, `'connect' on ${this.socket.nsp}`);
    if (e.event !== "connect") {
      const why = e.event === "error" ? JSON.stringify(normalize(e.payload)) : e.event === "disconnect" ? e.reason : e.message;
      throw new ScenarioError(`${this.label}: '${e.event}' (${why}) on ${this.socket.nsp} while waiting for 'connect'`);
    }
    check(this.socket.connected, `${this.label}: 'connect' fired but socket.connected is false`);
    return e;
  }

  /** 2.x: waits for the namespace refusal (an `error` event) and returns its payload. */
  async refused() {
    const e = await this.take((e) => e.lifecycle, `a refusal ('error') on ${this.socket.nsp}`);
    if (e.event === "connect") throw new ScenarioError(`${this.label}: ${this.socket.nsp} connected (id ${e.id}) but should have been refused`);
    check(e.event === "error", `${this.label}: expected an 'error' event on ${this.socket.nsp}, got '${e.event}' (${e.reason || e.message || ""})`);
    check(!this.socket.connected, `${this.label}: refused socket looks connected`);
    return e.payload;
  }

  /** emit with an ack callback; resolves with the ack arguments (array). */
  ack(event, args = [], ms = STEP_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new ScenarioError(`${this.label}: no ack for '${event}' within ${ms} ms`, { inbox: this.describeInbox() })), ms);
      this.socket.emit(event, ...args, (...resp) => {
        clearTimeout(timer);
        resolve(resp);
      });
    });
  }
}

/** A 2.x socket with its own Manager. */
function newV2Client(label, nsp, opts = {}) {
  return new Client(label, ioV2(baseUrl + nsp, ownManagerOpts(opts)), true);
}

/** A 4.x socket with its own Manager (default transports unless given). */
function newV4Client(label, nsp, opts = {}) {
  return new Client(label, ioV4(baseUrl + nsp, ownManagerOpts(opts, {})), false);
}

/** A socket on `nsp` sharing the Manager (engine.io connection) of `other`. */
function sameManagerClient(label, other, nsp, socketOpts = {}) {
  return new Client(label, other.socket.io.socket(nsp, socketOpts), other.legacy);
}

/**
 * 2.x keeps the Manager open while a socket it counts as connecting (a
 * refused namespace, for example) is left; close it in any case.
 */
function closeManager(info) {
  try {
    info.manager.close ? info.manager.close() : info.manager._close();
  } catch {}
}

/** Disconnects every socket and waits (bounded) until the engines closed. */
async function closeAll() {
  disconnectAll();
  await closeManagers(closeManager);
}
function closeAllNow() {
  disconnectAll();
  for (const info of managers.values()) closeManager(info);
}

/** Checks the 2.x convention for socket.id: `/` -> engine id, others -> `<nsp>#<engine id>`. */
function checkLegacyId(c) {
  const engineId = c.socket.io.engine.id;
  const expected = c.socket.nsp === "/" ? engineId : `${c.socket.nsp}#${engineId}`;
  check(typeof engineId === "string" && engineId.length > 0, `${c.label}: engine id must be a non-empty string, got ${JSON.stringify(engineId)}`);
  check(c.socket.id === expected, `${c.label}: socket.id ${JSON.stringify(c.socket.id)}, expected ${JSON.stringify(expected)}`);
  return c.socket.id;
}

// ------------------------------------------------------------- scenarios ---

async function basicScenario() {
  const main = newV2Client("main", "/");
  await main.connected();
  // The server connects / by itself for EIO=3 and a 2.x client sends no auth.
  checkEqual(await main.event("auth"), [{}], "auth event on /");
  const engineId = main.socket.io.engine.id;
  const socketId = checkLegacyId(main);

  const MESSAGE = ["text", { a: 1, b: [true, null] }, Buffer.from([0, 1, 255]), "héllo ✓ 🎉"];
  const back = await main.echo(MESSAGE, "message");
  const binClasses = [...binaryClasses(back)];

  const ACK_ARGS = [{ k: "v", list: [1, "two", { three: 3 }] }, Buffer.from([0xde, 0xad, 0xbe, 0xef])];
  checkEqual(await main.ack("message-with-ack", ACK_ARGS), ACK_ARGS, "message-with-ack answer");

  // Second namespace over the same Manager / engine.io connection.
  const custom = sameManagerClient("custom", main, "/custom");
  check(custom.socket.io === main.socket.io, "/custom socket does not share the Manager");
  await custom.connected();
  checkEqual(await custom.event("auth"), [{}], "auth event on /custom");
  const customId = checkLegacyId(custom);
  check(custom.socket.io.engine.id === engineId, "the /custom socket opened a second engine.io connection");
  // Several attachments, nested and inside arrays, including an empty one.
  const CUSTOM_MESSAGE = ["custom", { file: Buffer.from([7, 7, 7]), meta: { name: "f.bin" } }, [Buffer.alloc(0), Buffer.from([9])]];
  await custom.echo(CUSTOM_MESSAGE, "message on /custom");
  checkEqual(await custom.ack("message-with-ack", ["on-custom", 2]), ["on-custom", 2], "message-with-ack on /custom");

  // Server-sent binary event, top-level and nested.
  checkEqual(await main.ack("binary-please"), ["done"], "binary-please ack");
  checkEqual(await main.event("binary"), [Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]), label: "x" }], "binary event");

  const transport = await checkTransportMode(main.info);
  // One more round trip on each namespace on the final transport.
  await main.echo(["final", Buffer.from([42])], "final echo on /");
  await custom.echo(["final-custom", Buffer.from([43])], "final echo on /custom");
  await sleep(GRACE_MS);
  main.checkNothingElse();
  custom.checkNothingElse();
  check(main.socket.io.engine.id === engineId, "the engine.io sid changed during the scenario");
  await closeAll();
  return { socketId, customSocketId: customId, engineId, transport: transport.transport, upgraded: transport.upgraded, binaryClasses: binClasses };
}

/** The contract of `examples/conformance.rs socketio --allow-eio3`, for 2.x. */
async function conformanceScenario() {
  const main = newV2Client("main", "/");
  await main.connected();
  checkEqual(await main.event("auth"), [{}], "auth event on /");
  await main.echo(["text", { a: 1 }, Buffer.from([0, 1, 255]), "héllo ✓"], "message");
  const ACK_ARGS = [{ k: "v" }, Buffer.from([0xde, 0xad])];
  checkEqual(await main.ack("message-with-ack", ACK_ARGS), ACK_ARGS, "message-with-ack answer");
  const custom = sameManagerClient("custom", main, "/custom");
  await custom.connected();
  checkEqual(await custom.event("auth"), [{}], "auth event on /custom");
  const nope = sameManagerClient("nope", main, "/nope");
  const payload = await nope.refused();
  check(refusalMessage(payload) === "Invalid namespace", `/nope: refusal ${JSON.stringify(normalize(payload))}`);
  const transport = await checkTransportMode(main.info);
  await main.echo(["final", Buffer.from([42])], "final echo on /");
  await sleep(GRACE_MS);
  for (const c of [main, custom, nope]) c.checkNothingElse();
  await closeAll();
  return { transport: transport.transport };
}

async function heartbeatScenario() {
  const c = newV2Client("main", "/");
  await c.connected();
  checkEqual(await c.event("auth"), [{}], "auth event");
  const transport = await checkTransportMode(c.info); // default mode: idle on websocket
  const rec = currentEngine(c.info);
  const pingInterval = Number(c.socket.io.engine.pingInterval);
  const pingTimeout = Number(c.socket.io.engine.pingTimeout);
  check(pingInterval > 0 && pingTimeout > 0, `bad heartbeat values in the handshake: pingInterval ${pingInterval}, pingTimeout ${pingTimeout}`);
  const idleMs = 5 * pingInterval + 100;
  armWatchdog(GLOBAL_TIMEOUT_MS + idleMs);

  const pingsBefore = rec.pings;
  const pongsBefore = rec.pongs;
  const serverPingsBefore = rec.serverPings;
  emit({ event: "idle", ms: idleMs, pingInterval, pingTimeout });
  await sleep(idleMs);
  const pings = rec.pings - pingsBefore;
  const pongs = rec.pongs - pongsBefore;
  const serverPings = rec.serverPings - serverPingsBefore;
  emit({ event: "idle-done", pings, pongs, serverPings });
  check(!rec.closed, `the engine.io connection closed while idle (${rec.closed && rec.closed.reason})`);
  check(c.socket.connected, "the socket disconnected while idle");
  check(pongs >= 3, `expected at least 3 pongs in ${idleMs} ms (pingInterval ${pingInterval}), got ${pongs} (pings sent: ${pings})`);
  check(pongs <= pings + 1, `more pongs (${pongs}) than pings (${pings})`);
  check(rec.serverPings === 0, `the server sent ${rec.serverPings} ping(s): with EIO=3 only the client pings`);

  await c.echo(["after idle", Buffer.from([1, 2])], "echo after idle");
  await sleep(GRACE_MS);
  c.checkNothingElse();
  const engineId = rec.sid;
  check(c.socket.io.engine.id === engineId, "the engine.io sid changed during the scenario");
  const gaps = rec.pongTimes.slice(1).map((t, i) => t - rec.pongTimes[i]);
  await closeAll();
  return { engineId, pingInterval, pingTimeout, idleMs, pings, pongs, serverPings, pongGapsMs: gaps, transport: transport.transport };
}

async function mixedRoomScenario() {
  const L = newV2Client("L", "/");
  const M = newV4Client("M", "/"); // 4.x, default transports in every mode
  for (const c of [L, M]) await c.connected();
  for (const c of [L, M]) checkEqual(await c.event("auth"), [{}], `${c.label}: auth event`);
  checkLegacyId(L);
  checkEqual(await L.ack("join", ["mixed"]), ["mixed"], "L join mixed");
  checkEqual(await M.ack("join", ["mixed"]), ["mixed"], "M join mixed");

  const steps = [];
  async function bcast(step, from, spec, expected) {
    checkEqual(await from.ack("bcast", [spec]), ["sent"], `${step}: bcast ack`);
    const got = {};
    for (const c of [L, M]) {
      const args = await c.event(spec.event);
      checkEqual(args, expected, `${step}: '${spec.event}' received by ${c.label}`);
      got[c.label] = { transport: c.transportName, binaryClasses: [...binaryClasses(args)] };
    }
    await sleep(GRACE_MS);
    for (const c of [L, M]) c.checkNothingElse(`after step ${step}`);
    steps.push({ step, from: from.label, got });
    emit({ event: "step-ok", step, got });
  }

  await bcast("from-2.x", L, { to: "mixed", event: "news", data: { n: 1 }, withBinary: true }, [{ n: 1 }, Buffer.from([1, 2, 3])]);
  // The 4.x client has default transports: let it finish its upgrade first.
  const mTransport = await checkTransportMode(M.info, "default");
  const lTransport = await checkTransportMode(L.info);
  await bcast("from-4.x", M, { to: "mixed", event: "news2", data: "x" }, ["x"]);
  // And once more with binary, on the final transports.
  await bcast("from-2.x-final", L, { to: "mixed", event: "news3", data: { n: 3 }, withBinary: true }, [{ n: 3 }, Buffer.from([1, 2, 3])]);

  const ids = { L: L.socket.id, M: M.socket.id };
  await closeAll();
  return { ids, steps, transports: { L: lTransport.transport, M: mTransport.transport }, transport: lTransport.transport };
}

/** The refusal payloads a server may send to 2.x (checked loosely, reported exactly). */
function refusalMessage(payload) {
  if (typeof payload === "string") return payload;
  if (payload && typeof payload === "object" && typeof payload.message === "string") return payload.message;
  return null;
}

async function namespaceErrorsScenario() {
  const main = newV2Client("main", "/");
  await main.connected();
  checkEqual(await main.event("auth"), [{}], "auth event on /");
  const engineId = main.socket.io.engine.id;

  const refused = {};
  // Unknown namespace: 2.x has no connect_error for this; the socket gets an
  // `error` event with the ERROR packet's payload.
  const nope = sameManagerClient("nope", main, "/nope");
  const nopePayload = await nope.refused();
  check(refusalMessage(nopePayload) === "Invalid namespace", `/nope: expected the refusal "Invalid namespace" (string or {message}), got ${JSON.stringify(normalize(nopePayload))}`);
  refused["/nope"] = { payload: normalize(nopePayload), shape: typeof nopePayload === "string" ? "string" : "object" };

  // Middleware refusal: 2.x cannot send `auth`, so /private refuses it.
  const priv = sameManagerClient("private", main, "/private");
  const privPayload = await priv.refused();
  const plausible =
    refusalMessage(privPayload) === "unauthorized" || sameValue({ code: 401 }, privPayload) || sameValue({ message: "unauthorized", data: { code: 401 } }, privPayload);
  check(plausible, `/private: unexpected refusal payload ${JSON.stringify(normalize(privPayload))} (expected {code:401}, "unauthorized" or {message:"unauthorized",data:{code:401}})`);
  refused["/private"] = {
    payload: normalize(privPayload),
    shape: typeof privPayload === "string" ? "string" : "object",
    // What the Node socket.io 4.8 server sends to 2.x: `err.data || err.message`.
    sameAsReference: sameValue({ code: 401 }, privPayload),
  };

  // The refusals must leave `/` and the engine.io connection alive (and must
  // not come on the `/` namespace: 2.x hands an ERROR for `/` to every socket).
  await sleep(GRACE_MS);
  check(main.socket.connected, "the / socket was disconnected by a refusal");
  check(main.socket.io.engine.id === engineId, "the engine.io connection changed after the refusals");
  for (const c of [main, nope, priv]) c.checkNothingElse("after the refusals");
  await main.echo(["still here", Buffer.from([1])], "echo on / after the refusals");
  checkEqual(await main.ack("message-with-ack", ["ack", Buffer.from([2])]), ["ack", Buffer.from([2])], "message-with-ack after the refusals");

  const transport = await checkTransportMode(main.info);
  await main.echo(["final"], "final echo on /");
  await sleep(GRACE_MS);
  for (const c of [main, nope, priv]) c.checkNothingElse();
  check(main.socket.io.engine.id === engineId, "the engine.io sid changed during the scenario");
  await closeAll();
  return { engineId, refused, transport: transport.transport };
}

// Not in the original brief: the 2.x way of passing credentials is a query on
// the namespace (CONNECT `40/private?token=secret,`); the Node server hands it
// to the middleware as handshake.auth.
async function namespaceQueryScenario() {
  const main = newV2Client("main", "/");
  await main.connected();
  checkEqual(await main.event("auth"), [{}], "auth event on /");
  const engineId = main.socket.io.engine.id;

  const priv = sameManagerClient("private", main, "/private", { query: { token: "secret" } });
  await priv.connected();
  checkEqual(await priv.event("auth"), [{ token: "secret" }], "auth event on /private (namespace query)");
  const privateId = checkLegacyId(priv);

  const custom = sameManagerClient("custom", main, "/custom", { query: "x=1&y=two" });
  await custom.connected();
  checkEqual(await custom.event("auth"), [{ x: "1", y: "two" }], "auth event on /custom (namespace query)");
  checkLegacyId(custom);
  await priv.echo(["on private", Buffer.from([5])], "echo on /private");

  const transport = await checkTransportMode(main.info);
  await custom.echo(["final"], "final echo on /custom");
  await sleep(GRACE_MS);
  for (const c of [main, priv, custom]) c.checkNothingElse();
  check(main.socket.io.engine.id === engineId, "the engine.io sid changed during the scenario");
  const customSocketId = custom.socket.id;
  await closeAll();
  return { engineId, privateSocketId: privateId, customSocketId, transport: transport.transport };
}

// ------------------------------------------------------------------ main ---

runSioScript("legacy-client.mjs", SCENARIOS, GLOBAL_TIMEOUT_MS);
