#!/usr/bin/env node
// Interop client for socketgate's connection state recovery, driven by the
// real `socket.io-client` package (pinned in package.json).
//
// Usage: node recovery-client.mjs <scenario> <mode> <baseUrl> [path]
//   scenario: transport-close | ping-timeout | expired | shutdown
//   mode:     polling   -> transports: ['polling'], must never upgrade
//             websocket -> transports: ['websocket']
//             default   -> default transports (polling, then upgrade); every
//                          engine.io connection must upgrade to websocket
//   baseUrl:  e.g. http://127.0.0.1:3000
//   path:     socket.io path, default /socket.io/
//
// The server under test has connection state recovery on and implements the
// recovery contract of README.md (namespace /: auth on connect, join, leave,
// set-data, get-data, whoami, burst-on-disconnect). `expired` needs a server
// with maxDisconnectionDuration 1000 ms; `shutdown` needs the test to act on
// the {"ready":true,...} line (emit 20 `pre`, shut down, restart).
//
// Output and exit codes come from harness.mjs, the command line, the SIO_*
// settings and the engine.io bookkeeping from sio-shared.mjs; the verdict
// fields are "scenario", "mode" and the scenario's details. Every wait has a
// deadline and a global watchdog guarantees the process exits on its own.
// SIO_TRACE=1 also prints every engine.io packet ("wire-in" / "wire-out"
// lines).

import { io } from "socket.io-client";
import { isDeepStrictEqual } from "node:util";
import {
  initRunner, // the runner
  emit, now, ScenarioError, check, sleep, // output, checks, waits
} from "./harness.mjs";
import {
  scenario, mode, baseUrl, STEP_TIMEOUT_MS, GRACE_MS, TRACE, runSioScript, ownManagerOpts, // command line, settings
  normalize, checkEqual, errorMessage, describeCloseDetails, // values
  waitOn, traceWire, watchEngine, hookManagerEngines, trackReconnects, checkEngineMode, // engines
  clients, disconnectAll, closeManagers, // clients
} from "./sio-shared.mjs";

// How long `shutdown` waits for the client to get back in after the disconnect.
const RECONNECT_TIMEOUT_MS = Number(process.env.SIO_RECONNECT_TIMEOUT_MS || 10_000);

const SCENARIOS = {
  "transport-close": () => missedPacketsScenario("transport-close"),
  "ping-timeout": () => missedPacketsScenario("ping-timeout"),
  expired: expiredScenario,
  shutdown: shutdownScenario,
};
// `shutdown` waits for the test twice (to act on `ready`, and for the restart).
const GLOBAL_TIMEOUT_MS = Number(process.env.SIO_GLOBAL_TIMEOUT_MS || (process.argv[2] === "shutdown" ? 45_000 : 30_000));

const BURST = 50; // events per kind in burst-on-disconnect
const PRE = 20; // `pre` events of the shutdown scenario
const AUTH = { token: "recovery" };

initRunner({ scenario, mode }, { onFail: disconnectAll });

// --------------------------------------------------------------- helpers ---

/** A socket.io CONNECT packet for `/` as engine.io message data ("0{...}"), parsed; else null. */
function parseConnectPacket(data) {
  if (typeof data !== "string" || data[0] !== "0" || data[1] === "/") return null;
  try {
    return data.length > 1 ? JSON.parse(data.slice(1)) : {};
  } catch {
    return { unparsable: data };
  }
}

// ---------------------------------------------------------------- client ---

/**
 * One socket on `/` with its own Manager (forceNew), reconnection on with
 * short fixed delays. Everything the socket sees goes into `log` in arrival
 * order, with a sequence number: received events (split into the payload and
 * the trailing offset string), connect (with socket.recovered),
 * connect_error and disconnect. Scenarios remember a mark (log length) and
 * inspect what came after it. Each engine.io connection the Manager opens is
 * recorded in `engines` (handshake, upgrade, pings received, pongs sent, the
 * socket.io CONNECT packets sent and received, and the order of the packets
 * around the CONNECT answer).
 */
class Client {
  constructor(label, opts = {}) {
    this.label = label;
    this.socket = io(baseUrl + "/", ownManagerOpts({ reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0, ...opts }));
    this.manager = this.socket.io;
    this.log = [];
    this.waiters = [];
    this.engines = [];
    this.reconnectAttempts = 0;
    this.reconnects = 0;
    clients.push(this);

    const socket = this.socket;
    const manager = this.manager;
    hookManagerEngines(manager, (engine) => this.hookEngine(engine));
    trackReconnects(manager, this, { client: label });
    manager.on("reconnect_error", (e) => emit({ event: "reconnect_error", client: label, error: errorMessage(e) }));

    socket.onAny((name, ...args) => {
      // With recovery on, every server event without an ack id carries the
      // offset as its last argument (and the client hands it to listeners).
      const last = args[args.length - 1];
      const offset = typeof last === "string" ? last : null;
      const payload = offset !== null ? args.slice(0, -1) : args;
      this.push({ kind: "event", name, payload, offset, nargs: args.length, transport: this.transportName });
      emit({ event: "recv", client: label, name, args: normalize(payload), offset, transport: this.transportName });
    });
    socket.on("connect", () => {
      this.push({ kind: "connect", id: socket.id, recovered: socket.recovered });
      emit({ event: "connect", client: label, id: socket.id, recovered: socket.recovered, engineSid: this.manager.engine && this.manager.engine.id, transport: this.transportName });
    });
    socket.on("connect_error", (err) => {
      this.push({ kind: "connect_error", message: err && err.message });
      emit({ event: "connect_error", client: label, message: err && err.message });
    });
    socket.on("disconnect", (reason, desc) => {
      const details = describeCloseDetails(desc);
      this.push({ kind: "disconnect", reason, details });
      emit({ event: "disconnect", client: label, reason, details });
    });
  }

  hookEngine(engine) {
    if (!engine || this.engines.some((r) => r.engine === engine)) return;
    const label = this.label;
    const rec = {
      engine, sid: null, openedAs: null, handshake: null, upgrading: 0, upgraded: false, upgradeError: null, closed: null,
      pings: 0, pongs: 0, connectSent: [], connectAnswers: [], eventsBeforeConnectAnswer: 0,
    };
    this.engines.push(rec);
    const tn = () => (engine.transport ? engine.transport.name : null);
    engine.once("handshake", (h) => {
      rec.handshake = h;
      rec.sid = h.sid;
    });
    engine.once("open", () => {
      rec.openedAs = tn();
      emit({ event: "engine-open", client: label, sid: engine.id, transport: rec.openedAs, handshake: rec.handshake });
      this.wake();
    });
    if (TRACE) traceWire(engine, { client: label });
    engine.on("packet", (p) => {
      if (p.type === "ping") rec.pings++;
      if (p.type === "message" && typeof p.data === "string") {
        const c = parseConnectPacket(p.data);
        if (c) rec.connectAnswers.push(c);
        else if (p.data[0] === "2" && rec.connectAnswers.length === 0) rec.eventsBeforeConnectAnswer++;
      }
      this.wake();
    });
    engine.on("packetCreate", (p) => {
      if (p.type === "pong") rec.pongs++;
      if (p.type === "message") {
        const c = parseConnectPacket(p.data);
        if (c) rec.connectSent.push(c);
      }
      this.wake();
    });
    watchEngine(engine, rec, { client: label }, () => this.wake());
  }

  get transportName() {
    const e = this.manager.engine;
    return e && e.transport ? e.transport.name : null;
  }
  /** The record of the engine.io connection the Manager uses now. */
  get engineRec() {
    return this.engines.find((r) => r.engine === this.manager.engine) || this.engines[this.engines.length - 1];
  }

  push(entry) {
    this.log.push({ seq: this.log.length, t: now(), ...entry });
    this.wake();
  }
  wake() {
    this.waiters = this.waiters.filter((w) => !w());
  }
  mark() {
    return this.log.length;
  }
  since(mark) {
    return this.log.slice(mark);
  }
  events(mark, name) {
    return this.since(mark).filter((e) => e.kind === "event" && (name === undefined || e.name === name));
  }
  describe(entries) {
    return entries.map((e) => (e.kind === "event" ? { event: e.name, args: normalize(e.payload), offset: e.offset } : { [e.kind]: e.reason || e.message || e.id, recovered: e.recovered }));
  }

  /** Waits until pred() returns a truthy value (re-evaluated on every log or engine change). */
  waitFor(pred, what, ms = STEP_TIMEOUT_MS) {
    return waitOn(this, pred, ms, () => new ScenarioError(`${this.label}: timed out after ${ms} ms waiting for ${what}`, { log: this.describe(this.log.slice(-12)) }));
  }

  /** The first log entry after `mark` of the given kind (and name for events). */
  waitEntry(mark, kind, what, ms = STEP_TIMEOUT_MS, name) {
    return this.waitFor(() => this.since(mark).find((e) => e.kind === kind && (name === undefined || e.name === name)), what, ms);
  }

  /** Waits for `connect` after mark. connect_error fails unless allowErrors (a server that is down). */
  async waitConnect(mark, what, { ms = STEP_TIMEOUT_MS, allowErrors = false } = {}) {
    const e = await this.waitFor(() => {
      for (const x of this.since(mark)) {
        if (x.kind === "connect") return x;
        if (x.kind === "connect_error" && !allowErrors) throw new ScenarioError(`${this.label}: connect_error while waiting for ${what}: ${x.message}`);
      }
      return null;
    }, what, ms);
    check(this.socket.connected, `${this.label}: 'connect' fired but socket.connected is false`);
    return e;
  }

  /** emit with an ack callback; resolves with the ack arguments (array). */
  ack(event, args = [], ms = STEP_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      this.socket.timeout(ms).emit(event, ...args, (err, ...resp) => {
        if (err) reject(new ScenarioError(`${this.label}: no ack for '${event}': ${err.message}`));
        else resolve(resp);
      });
    });
  }

  /** whoami -> {id, rooms, recovered}, checked for shape and id. */
  async whoami(what) {
    const r = await this.ack("whoami");
    check(r.length === 1 && r[0] && typeof r[0] === "object" && Array.isArray(r[0].rooms), `${what}: whoami must ack one {id, rooms, recovered} object, got ${JSON.stringify(normalize(r))}`);
    check(r[0].id === this.socket.id, `${what}: whoami id ${JSON.stringify(r[0].id)} differs from socket.id ${JSON.stringify(this.socket.id)}`);
    return r[0];
  }
}

/**
 * Mode check for the current engine.io connection: polling / websocket: the
 * requested transport and no upgrade attempt; default: opened over polling
 * and upgraded (waits for the upgrade).
 */
async function checkTransportMode(c, what) {
  const rec = await c.waitFor(() => {
    const r = c.engineRec;
    return r && r.openedAs ? r : null;
  }, `${what}: the engine.io connection to open`);
  const checked = await checkEngineMode(rec, mode, what, (pred) => c.waitFor(pred, `${what}: the upgrade to websocket`));
  return { ...checked, rec };
}

/** Disconnects every socket and waits (bounded) until the engines closed. */
async function closeAll() {
  for (const c of clients) if (c.socket.active || c.socket.connected) c.socket.disconnect();
  await closeManagers(undefined, clients);
}

// ------------------------------------------------------- shared steps ---

/** Connects, checks the first `auth` (payload + offset), and the socket's first state. */
async function connectFirst(c) {
  const first = await c.waitConnect(0, "the first connect");
  check(!first.recovered, `the first connection reports socket.recovered = ${JSON.stringify(first.recovered)}`);
  const auth = await c.waitEntry(0, "event", "the 'auth' event", STEP_TIMEOUT_MS, "auth");
  checkEqual(auth.payload, [AUTH], "auth event payload (without the offset)");
  check(typeof auth.offset === "string" && auth.offset.length > 0, `the 'auth' event has no offset as its last argument (got ${auth.nargs} argument(s)); is connection state recovery on?`);
  const rec = c.engineRec;
  const answer = rec.connectAnswers[0];
  check(answer && typeof answer.sid === "string" && typeof answer.pid === "string" && answer.pid.length > 0, `the CONNECT answer must carry sid and pid, got ${JSON.stringify(answer)}`);
  return { id: first.id, authOffset: auth.offset, pid: answer.pid };
}

/** join "r", set-data {x:1}, whoami before the disconnect. */
async function setUpState(c, what) {
  checkEqual(await c.ack("join", ["r"]), ["r"], `${what}: join ack`);
  checkEqual(await c.ack("set-data", [{ x: 1 }]), ["ok"], `${what}: set-data ack`);
  const who = await c.whoami(`${what}`);
  check(who.rooms.includes("r"), `${what}: whoami rooms ${JSON.stringify(who.rooms)} lack "r" after join`);
  check(who.recovered === false, `${what}: whoami recovered must be false on a fresh session, got ${JSON.stringify(who.recovered)}`);
  return who;
}

/**
 * Closes the client's transport underneath the Manager, like a dropped
 * connection: engine.io-client reports "transport close" and the Manager
 * reconnects. (socket.io.engine.close() would report "forced close"
 * instead; see README.md.)
 */
function killTransport(c) {
  const engine = c.manager.engine;
  emit({ event: "kill-transport", client: c.label, sid: engine.id, transport: engine.transport && engine.transport.name });
  engine.transport.close();
}

/**
 * The engine.io-client 6.6 pong is sent from Socket#_onPacket through the
 * private Socket#_sendPacket("pong"); shadowing it on this engine instance
 * drops the pongs (and only on this instance: the reconnect creates a new
 * engine that uses the prototype's method again).
 */
function stopPongs(c) {
  const engine = c.manager.engine;
  check(typeof engine._sendPacket === "function", "engine.io-client internals changed: Socket#_sendPacket not found");
  const state = { engine, dropped: 0, since: now() };
  const original = engine._sendPacket;
  engine._sendPacket = function (type, ...rest) {
    if (type === "pong") {
      state.dropped++;
      emit({ event: "pong-dropped", client: c.label, sid: engine.id, n: state.dropped });
      return;
    }
    return original.call(this, type, ...rest);
  };
  emit({ event: "pong-suppressed", client: c.label, sid: engine.id, transport: engine.transport && engine.transport.name });
  return state;
}

/** Checks that `entries` are events `name` with payloads [0], [1], … [count-1], each with an offset. */
function checkSequence(entries, name, count, what) {
  const got = entries.map((e) => (e.payload.length === 1 ? e.payload[0] : normalize(e.payload)));
  const expected = Array.from({ length: count }, (_, i) => i);
  check(isDeepStrictEqual(got, expected), `${what}: '${name}' events must be ${count} with arguments 0..${count - 1} in order, exactly once; got ${JSON.stringify(got)}`, { got });
  const missing = entries.filter((e) => typeof e.offset !== "string" || e.offset.length === 0);
  check(missing.length === 0, `${what}: ${missing.length} '${name}' event(s) without an offset string as the last argument`, { first: missing[0] && missing[0].nargs });
}

// ------------------------------------------------------------- scenarios ---

/**
 * transport-close / ping-timeout: the server buffers 50 `direct` (to the
 * socket id) + 50 `room` (to room r) events when it sees the disconnect; the
 * recovered session must get them all, once, in order, keep the id, the room
 * and the data.
 */
async function missedPacketsScenario(kind) {
  const c = new Client("main", { auth: AUTH });
  const start = await connectFirst(c);
  const firstTransport = await checkTransportMode(c, "first connection");
  await setUpState(c, "before the disconnect");
  checkEqual(await c.ack("burst-on-disconnect", [{ room: "r", count: BURST }]), ["armed"], "burst-on-disconnect ack");
  const firstRec = c.engineRec;
  check(c.events(0).length === 1, `unexpected events before the disconnect: ${JSON.stringify(c.describe(c.events(0).slice(1)))}`);

  const mark = c.mark();
  let pongs = null;
  const t0 = now();
  if (kind === "transport-close") {
    killTransport(c);
  } else {
    pongs = stopPongs(c);
  }
  const h = firstRec.handshake || {};
  const discMs = kind === "ping-timeout" ? Math.max(STEP_TIMEOUT_MS, 3 * ((h.pingInterval || 0) + (h.pingTimeout || 0))) : STEP_TIMEOUT_MS;
  const disc = await c.waitEntry(mark, "disconnect", "'disconnect'", discMs);
  const disconnectMs = disc.t - t0;
  if (kind === "transport-close") {
    check(disc.reason === "transport close", `disconnect reason: expected "transport close", got ${JSON.stringify(disc.reason)}`, { details: disc.details });
  } else {
    // The server closes the session (the client then sees "transport close"
    // or "transport error"), or the client's own timer fires first ("ping
    // timeout"). Either way the server must have kept the session.
    check(["transport close", "transport error", "ping timeout"].includes(disc.reason), `disconnect reason: expected a transport-level reason, got ${JSON.stringify(disc.reason)}`, { details: disc.details });
    check(pongs.dropped >= 1, "the disconnect came before any ping was left unanswered");
  }

  const conn = await c.waitConnect(mark, "the automatic reconnect");
  const reconnectMs = conn.t - disc.t;
  check(c.reconnects >= 1, "the socket connected again without a Manager 'reconnect' event");
  check(c.engineRec !== firstRec && c.engineRec.sid !== firstRec.sid, "the reconnect did not open a new engine.io connection");
  check(conn.recovered === true, `socket.recovered must be true after the reconnect, got ${JSON.stringify(conn.recovered)} (the CONNECT answer was ${JSON.stringify(c.engineRec.connectAnswers[0])})`);
  check(conn.id === start.id, `a recovered session must keep the socket id (${start.id} -> ${conn.id})`);

  // The replayed packets and the new `auth`. A correct server replays before
  // it emits `auth`, so once `auth` is in, waiting 2 x GRACE_MS more is
  // enough: an incomplete replay then fails with the list of what came.
  const complete = c.waitFor(
    () => c.events(mark, "direct").length >= BURST && c.events(mark, "room").length >= BURST && c.events(mark, "auth").length >= 1,
    `${BURST} 'direct', ${BURST} 'room' and one 'auth' after the reconnect`,
  );
  const settledAfterAuth = c.waitEntry(mark, "event", "'auth' after the reconnect", STEP_TIMEOUT_MS, "auth").then(() => sleep(2 * GRACE_MS));
  complete.catch(() => {});
  settledAfterAuth.catch(() => {});
  await Promise.race([complete, settledAfterAuth]);
  const whoAfter = await c.whoami("after the reconnect");
  const dataAfter = await c.ack("get-data");
  const second = await checkTransportMode(c, "reconnected connection");
  if (mode === "default") check(second.transport === "websocket", `the reconnected connection ended on ${second.transport}, expected websocket`);

  let heartbeat = null;
  if (kind === "ping-timeout") {
    // The new engine must answer pings again and the server must keep it.
    const rec = c.engineRec;
    check(rec.engine !== pongs.engine, "the Manager reused the engine whose pongs are suppressed");
    check(!Object.prototype.hasOwnProperty.call(rec.engine, "_sendPacket"), "the new engine still has the pong-dropping _sendPacket");
    const pingsAt = rec.pings;
    const hb = rec.handshake || {};
    await c.waitFor(() => {
      if (c.since(mark).some((e) => e.kind === "disconnect" && e.seq > conn.seq)) throw new ScenarioError("disconnected again after the recovery (pongs not answered?)");
      return rec.pings >= pingsAt + 2 && rec.pongs >= rec.pings;
    }, "two pings answered on the new engine.io connection", STEP_TIMEOUT_MS + 3 * ((hb.pingInterval || 0) + (hb.pingTimeout || 0)));
    heartbeat = { pings: rec.pings, pongs: rec.pongs, droppedOnOldEngine: pongs.dropped };
  }

  await sleep(GRACE_MS);
  const after = c.since(mark);
  const directs = after.filter((e) => e.kind === "event" && e.name === "direct");
  const rooms = after.filter((e) => e.kind === "event" && e.name === "room");
  const auths = after.filter((e) => e.kind === "event" && e.name === "auth");
  const others = after.filter((e) => !(e.kind === "event" && ["direct", "room", "auth"].includes(e.name)) && !(e.kind === "disconnect" && e === disc) && !(e.kind === "connect" && e === conn));
  check(others.length === 0, `unexpected after the disconnect: ${JSON.stringify(c.describe(others))}`);
  check(auths.length === 1, `expected exactly one 'auth' after the reconnect, got ${auths.length}`);
  const auth = auths[0];
  check(auth.payload.length === 1 && auth.payload[0] && auth.payload[0].token === AUTH.token, `'auth' after the reconnect must carry the handshake auth (token ${AUTH.token}), got ${JSON.stringify(normalize(auth.payload))}`);
  check(typeof auth.offset === "string", "the 'auth' event after the reconnect has no offset");
  // Otherwise the client's last offset would end on an older packet than the
  // newest it has, and the next recovery would replay `auth` again.
  const lateReplays = [...directs, ...rooms].filter((e) => e.seq > auth.seq).length;
  check(lateReplays === 0, `the missed packets must be replayed before new events: ${lateReplays} replayed event(s) came after 'auth'`);
  checkSequence(directs, "direct", BURST, "replayed");
  checkSequence(rooms, "room", BURST, "replayed");
  check(directs[BURST - 1].seq < rooms[0].seq, "the replayed 'direct' events must all come before the 'room' events (the order they were emitted in)");
  const offsets = [...directs, ...rooms, auth].map((e) => e.offset);
  check(new Set([start.authOffset, ...offsets]).size === offsets.length + 1, "two events carried the same offset");

  check(whoAfter.rooms.includes("r"), `whoami after the recovery: rooms ${JSON.stringify(whoAfter.rooms)} lack "r"`);
  check(whoAfter.recovered === true, `whoami after the recovery: recovered must be true, got ${JSON.stringify(whoAfter.recovered)}`);
  checkEqual(dataAfter, [{ x: 1 }], "get-data after the recovery");

  const rec2 = c.engineRec;
  const details = {
    socketId: conn.id,
    recovered: conn.recovered,
    reason: disc.reason,
    disconnectMs,
    reconnectMs,
    reconnectAttempts: c.reconnectAttempts,
    events: { direct: directs.length, room: rooms.length, auth: auths.length },
    offsets: { firstAuth: start.authOffset, first: directs[0].offset, last: rooms[BURST - 1].offset, auth: auth.offset },
    rooms: whoAfter.rooms,
    data: normalize(dataAfter[0]),
    wire: {
      connectSent: rec2.connectSent,
      connectAnswer: rec2.connectAnswers[0],
      eventsBeforeConnectAnswer: rec2.eventsBeforeConnectAnswer,
      authAfter: normalize(auth.payload[0]),
    },
    engines: [firstRec.sid, rec2.sid],
    transports: [firstTransport.transport, second.transport],
    transport: second.transport,
  };
  if (heartbeat) details.heartbeat = heartbeat;
  await closeAll();
  return details;
}

/** expired: the server forgets the session after 1000 ms; the reconnect comes after 1500 ms. */
async function expiredScenario() {
  const DELAY = 1500;
  const c = new Client("main", { auth: AUTH });
  const start = await connectFirst(c);
  const firstTransport = await checkTransportMode(c, "first connection");
  await setUpState(c, "before the disconnect");
  const firstRec = c.engineRec;

  c.manager.reconnectionDelay(DELAY);
  c.manager.reconnectionDelayMax(DELAY);
  c.manager.randomizationFactor(0);
  const mark = c.mark();
  killTransport(c);
  const disc = await c.waitEntry(mark, "disconnect", "'disconnect'");
  check(disc.reason === "transport close", `disconnect reason: expected "transport close", got ${JSON.stringify(disc.reason)}`, { details: disc.details });
  const conn = await c.waitConnect(mark, "the automatic reconnect", { ms: STEP_TIMEOUT_MS + DELAY });
  const reconnectMs = conn.t - disc.t;
  check(reconnectMs >= DELAY - 100, `the client reconnected after ${reconnectMs} ms, expected about ${DELAY} ms (the scenario needs the session to expire first)`);
  const rec2 = c.engineRec;
  check(rec2 !== firstRec, "the reconnect did not open a new engine.io connection");
  check(rec2.connectSent.length >= 1 && rec2.connectSent[0].pid === start.pid && typeof rec2.connectSent[0].offset === "string", `the client did not try to recover: it sent ${JSON.stringify(rec2.connectSent[0])}`);
  check(!conn.recovered, `socket.recovered must be false after the session expired, got ${JSON.stringify(conn.recovered)}`);
  check(typeof conn.id === "string" && conn.id.length > 0 && conn.id !== start.id, `an expired session must get a new socket id (${start.id} -> ${conn.id})`);
  const answer = rec2.connectAnswers[0];
  check(answer && typeof answer.pid === "string" && answer.pid !== start.pid, `a new session must get a new pid, the CONNECT answer was ${JSON.stringify(answer)}`);

  const auth = await c.waitEntry(mark, "event", "'auth' after the reconnect", STEP_TIMEOUT_MS, "auth");
  check(auth.payload.length === 1 && auth.payload[0] && auth.payload[0].token === AUTH.token, `'auth' after the reconnect must carry the handshake auth, got ${JSON.stringify(normalize(auth.payload))}`);
  check(typeof auth.offset === "string", "the 'auth' event after the reconnect has no offset");
  const who = await c.whoami("after the reconnect");
  check(!who.rooms.includes("r"), `whoami after an expired session: rooms ${JSON.stringify(who.rooms)} still include "r"`);
  check(who.recovered === false, `whoami after an expired session: recovered must be false, got ${JSON.stringify(who.recovered)}`);
  const data = await c.ack("get-data");
  check(!(data.length === 1 && isDeepStrictEqual(normalize(data[0]), { x: 1 })), "get-data after an expired session still returns {x:1}");
  const second = await checkTransportMode(c, "reconnected connection");

  await sleep(GRACE_MS);
  const others = c.since(mark).filter((e) => e !== disc && e !== conn && e !== auth);
  check(others.length === 0, `unexpected after the disconnect: ${JSON.stringify(c.describe(others))}`);
  const details = {
    firstSocketId: start.id,
    secondSocketId: conn.id,
    recovered: conn.recovered,
    reason: disc.reason,
    reconnectMs,
    rooms: who.rooms,
    data: normalize(data),
    wire: { connectSent: rec2.connectSent, connectAnswer: answer },
    transports: [firstTransport.transport, second.transport],
    transport: second.transport,
  };
  await closeAll();
  return details;
}

/**
 * shutdown: after the ready line the test emits 20 `pre` to everyone, shuts
 * the server down gracefully and starts a new one on the same address that
 * shares the recovery state.
 */
async function shutdownScenario() {
  const c = new Client("main", { auth: AUTH });
  const start = await connectFirst(c);
  const firstTransport = await checkTransportMode(c, "first connection");
  const firstRec = c.engineRec;
  check(c.events(0).length === 1, `unexpected events before ready: ${JSON.stringify(c.describe(c.events(0).slice(1)))}`);
  const mark = c.mark();
  process.stdout.write(JSON.stringify({ ready: true, id: start.id, t: now(), event: "ready", engineSid: firstRec.sid, transport: firstTransport.transport }) + "\n");

  const disc = await c.waitEntry(mark, "disconnect", "the 20 'pre' events and the 'disconnect' caused by the shutdown");
  const before = c.events(mark).filter((e) => e.seq < disc.seq);
  const preBefore = before.filter((e) => e.name === "pre");
  const othersBefore = before.filter((e) => e.name !== "pre");
  check(othersBefore.length === 0, `unexpected events before the disconnect: ${JSON.stringify(c.describe(othersBefore))}`);
  check(preBefore.length === PRE, `only ${preBefore.length} of ${PRE} 'pre' events arrived before the disconnect (reason ${disc.reason})`, { pre: c.describe(preBefore) });
  checkSequence(preBefore, "pre", PRE, "before the disconnect");
  check(disc.reason === "transport close", `disconnect reason: expected "transport close", got ${JSON.stringify(disc.reason)}`, { details: disc.details });

  const conn = await c.waitConnect(mark, "the reconnect to the restarted server", { ms: RECONNECT_TIMEOUT_MS, allowErrors: true });
  const reconnectMs = conn.t - disc.t;
  const rec2 = c.engineRec;
  check(conn.recovered === true, `socket.recovered must be true after the restart, got ${JSON.stringify(conn.recovered)} (the CONNECT answer was ${JSON.stringify(rec2.connectAnswers[0])})`);
  check(conn.id === start.id, `a recovered session must keep the socket id (${start.id} -> ${conn.id})`);
  const auth = await c.waitEntry(disc.seq + 1, "event", "'auth' after the reconnect", STEP_TIMEOUT_MS, "auth");
  check(auth.payload.length === 1 && auth.payload[0] && auth.payload[0].token === AUTH.token, `'auth' after the reconnect must carry the handshake auth, got ${JSON.stringify(normalize(auth.payload))}`);
  const who = await c.whoami("after the restart");
  check(who.recovered === true, `whoami after the restart: recovered must be true, got ${JSON.stringify(who.recovered)}`);
  const second = await checkTransportMode(c, "reconnected connection");

  await sleep(GRACE_MS);
  const after = c.since(disc.seq + 1);
  const connectErrors = after.filter((e) => e.kind === "connect_error");
  const preAfter = after.filter((e) => e.kind === "event" && e.name === "pre");
  check(preAfter.length === 0, `'pre' events arrived again after the disconnect: ${JSON.stringify(c.describe(preAfter))}`);
  const others = after.filter((e) => e !== conn && e !== auth && e.kind !== "connect_error");
  check(others.length === 0, `unexpected after the disconnect: ${JSON.stringify(c.describe(others))}`);
  const details = {
    socketId: conn.id,
    reason: disc.reason,
    recovered: conn.recovered,
    counts: { preBeforeDisconnect: preBefore.length, preAfterDisconnect: preAfter.length, connectErrors: connectErrors.length, auth: 1 },
    offsets: { first: preBefore[0].offset, last: preBefore[PRE - 1].offset },
    reconnectMs,
    reconnectAttempts: c.reconnectAttempts,
    wire: { connectSent: rec2.connectSent, connectAnswer: rec2.connectAnswers[0], eventsBeforeConnectAnswer: rec2.eventsBeforeConnectAnswer },
    transports: [firstTransport.transport, second.transport],
    transport: second.transport,
  };
  await closeAll();
  return details;
}

// ------------------------------------------------------------------ main ---

runSioScript("recovery-client.mjs", SCENARIOS, GLOBAL_TIMEOUT_MS);
