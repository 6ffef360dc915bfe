#!/usr/bin/env node
// Interop client for socketgate's engine.io v4 layer, driven by the real
// `engine.io-client` package (pinned in package.json).
//
// Usage: node engineio-client.mjs <scenario> <baseUrl> [path]
//   scenario: polling | websocket | upgrade |
//             heartbeat | heartbeat-polling | heartbeat-websocket |
//             stop-pong-polling | stop-pong-websocket
//   baseUrl:  e.g. http://127.0.0.1:3000
//   path:     engine.io path, default /engine.io/
//
// The server under test must be an *echo* server: every message (text or
// binary) is sent back unchanged.
//
// Output and exit codes come from harness.mjs; the verdict fields are
// "scenario" and the scenario's details. Every wait has a deadline and a
// global watchdog guarantees the process exits on its own.

import { Socket } from "engine.io-client";
import {
  initRunner, usageExit, checkUrl, armWatchdog, runScenario, // the runner
  emit, now, ScenarioError, check, sleep, withDeadline, // output, checks, waits
  normalizePath, isBinary, toBuffer,
} from "./harness.mjs";

const STEP_TIMEOUT_MS = Number(process.env.EIO_STEP_TIMEOUT_MS || 10_000);
const GLOBAL_TIMEOUT_MS = Number(process.env.EIO_GLOBAL_TIMEOUT_MS || 30_000);

const SCENARIOS = {
  polling: () => echoScenario("polling"),
  websocket: () => echoScenario("websocket"),
  upgrade: () => upgradeScenario(),
  heartbeat: () => heartbeatScenario(null),
  "heartbeat-polling": () => heartbeatScenario("polling"),
  "heartbeat-websocket": () => heartbeatScenario("websocket"),
  "stop-pong-polling": () => stopPongScenario("polling"),
  "stop-pong-websocket": () => stopPongScenario("websocket"),
};

const [scenario, baseUrl, pathArg] = process.argv.slice(2);
// Normalised like engine.io-client does it (leading and trailing slash), so
// the raw session probe below hits the same URL as the client.
const path = normalizePath(pathArg, "/engine.io/");
initRunner({ scenario });

// --------------------------------------------------------------- helpers ---

function describePayload(x) {
  if (typeof x === "string") {
    return x.length <= 40
      ? { kind: "text", value: x }
      : { kind: "text", chars: x.length, bytes: Buffer.byteLength(x) };
  }
  if (isBinary(x)) {
    const b = toBuffer(x);
    return b.length <= 32 ? { kind: "binary", hex: b.toString("hex") } : { kind: "binary", bytes: b.length };
  }
  return { kind: typeof x };
}

/** Byte-for-byte comparison; returns null when equal, else a description. */
function payloadMismatch(expected, actual) {
  if (typeof expected === "string") {
    if (typeof actual !== "string") return `expected text, got ${JSON.stringify(describePayload(actual))}`;
    if (actual === expected) return null;
    const a = Buffer.from(expected, "utf8");
    const b = Buffer.from(actual, "utf8");
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return `text differs: expected ${a.length} bytes, got ${b.length} bytes, first difference at byte ${i}` +
      (actual.length <= 80 ? ` (got ${JSON.stringify(actual)})` : "");
  }
  if (!isBinary(actual)) return `expected binary, got ${JSON.stringify(describePayload(actual))}`;
  const a = toBuffer(expected);
  const b = toBuffer(actual);
  if (a.equals(b)) return null;
  return `binary differs: expected ${a.toString("hex").slice(0, 64)} (${a.length} B), got ${b
    .toString("hex")
    .slice(0, 64)} (${b.length} B)`;
}

function big100kText() {
  // 100 KiB of deterministic, non-repeating-looking printable ASCII, so a
  // truncated, reordered or corrupted echo is detected.
  let s = "";
  for (let i = 0; i < 100 * 1024; i++) s += String.fromCharCode(33 + ((i * 7919 + (i >> 7)) % 94));
  return s;
}

const STANDARD_PAYLOADS = () => [
  "hello",
  "héllo ✓ 🎉",
  new Uint8Array([0, 1, 2, 255]),
  big100kText(),
];

/** Plain-JSON view of the (reason, description) pair of the `close` event. */
function describeCloseDetails(desc) {
  if (desc === undefined || desc === null) return null;
  if (desc instanceof Error) {
    const out = { message: desc.message };
    if (desc.type) out.type = desc.type;
    if (typeof desc.description === "number") out.httpStatus = desc.description;
    else if (desc.description && desc.description.message) out.cause = String(desc.description.message);
    else if (desc.description !== undefined) out.cause = String(desc.description);
    return out;
  }
  const out = {};
  if (desc.description !== undefined) out.description = String(desc.description);
  const ctx = desc.context;
  if (ctx && typeof ctx === "object") {
    // `ws` CloseEvent
    if (ctx.code !== undefined) out.wsCloseCode = ctx.code;
    if (ctx.reason !== undefined) out.wsCloseReason = String(ctx.reason);
    if (ctx.wasClean !== undefined) out.wsWasClean = ctx.wasClean;
  }
  return out;
}

/**
 * Asks the server directly (plain HTTP, not through engine.io-client) whether
 * it still knows `sid`. A closed session must answer 400
 * {"code":1,"message":"Session ID unknown"} (DESIGN §2). Retries briefly,
 * because the server may process a close a few ms after the client saw it.
 */
async function probeSessionGone(sid, budgetMs = 2000) {
  const url = new URL(path, baseUrl);
  url.searchParams.set("EIO", "4");
  url.searchParams.set("transport", "polling");
  url.searchParams.set("sid", sid);
  const until = Date.now() + budgetMs;
  let last = null;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(200, Math.min(1000, until - Date.now()))) });
      const body = await res.text();
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {}
      last = { status: res.status, body: body.length <= 200 ? body : body.slice(0, 200) + "…" };
      if (res.status === 400 && json && json.code === 1) return { gone: true, ...last };
    } catch (e) {
      last = { error: String(e && e.message ? e.message : e) };
    }
    if (Date.now() >= until) return { gone: false, ...last };
    await sleep(50);
  }
}

// ---------------------------------------------------------------- client ---

/** Wraps an engine.io-client Socket: logs events, queues messages. */
class Client {
  constructor(transports) {
    const opts = { path };
    if (transports) opts.transports = transports;
    this.requestedTransports = transports;
    this.handshake = null;
    this.sid = null;
    this.queue = [];
    this.waiters = [];
    this.pings = []; // ms timestamps (relative to T0) of received pings
    this.pongsCreated = 0; // pongs engine.io-client queued for sending
    this.closed = null;
    this.closeWaiters = [];
    this.errors = [];
    this.lastHttpError = null;
    this.events = { upgrading: 0, upgrade: 0, upgradeError: 0 };

    const socket = (this.socket = new Socket(baseUrl, opts));
    socket.on("handshake", (data) => {
      this.handshake = data;
      emit({ event: "handshake", transport: socket.transport.name, ...data });
    });
    socket.on("open", () => {
      this.sid = socket.id;
      emit({ event: "open", sid: socket.id, transport: socket.transport.name });
    });
    socket.on("message", (data) => {
      this.queue.push({ data, transport: socket.transport.name, t: now() });
      this._wake();
    });
    socket.on("ping", () => {
      this.pings.push(now());
      emit({ event: "ping", n: this.pings.length, transport: socket.transport.name });
    });
    socket.on("packetCreate", (packet) => {
      if (packet.type === "pong") this.pongsCreated++;
    });
    socket.on("upgrading", (t) => {
      this.events.upgrading++;
      emit({ event: "upgrading", to: t.name });
    });
    socket.on("upgrade", (t) => {
      this.events.upgrade++;
      emit({ event: "upgrade", transport: t.name });
    });
    socket.on("upgradeError", (e) => {
      this.events.upgradeError++;
      emit({ event: "upgradeError", error: String(e && e.message ? e.message : e) });
    });
    socket.on("error", (err) => {
      const info = { message: String(err && err.message ? err.message : err) };
      if (err && typeof err.description === "number") {
        info.httpStatus = err.description;
        // For polling errors `context` is the XMLHttpRequest; read the body
        // now, engine.io-client aborts (and clears) it right after this event.
        const ctx = err.context;
        if (ctx && typeof ctx.responseText === "string") info.body = ctx.responseText.slice(0, 200);
        this.lastHttpError = info;
      }
      this.errors.push(info);
      emit({ event: "error", ...info });
    });
    socket.on("close", (reason, desc) => {
      this.closed = { reason, details: describeCloseDetails(desc), t: now() };
      emit({ event: "close", reason, details: this.closed.details });
      this._wake();
      for (const w of this.closeWaiters.splice(0)) w(this.closed);
    });
  }

  get transportName() {
    return this.socket.transport ? this.socket.transport.name : null;
  }

  _wake() {
    while (this.waiters.length && (this.queue.length || this.closed)) {
      const w = this.waiters.shift();
      if (this.queue.length) w.resolve(this.queue.shift());
      else w.reject(new ScenarioError(`connection closed (${this.closed.reason}) while waiting for a message`, { close: this.closed }));
    }
  }

  nextMessage(what = "an echo", ms = STEP_TIMEOUT_MS) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closed)
      return Promise.reject(new ScenarioError(`connection closed (${this.closed.reason}) while waiting for ${what}`, { close: this.closed }));
    const p = new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return withDeadline(p, ms, what);
  }

  waitEvent(name, ms = STEP_TIMEOUT_MS) {
    const p = new Promise((resolve, reject) => {
      const onEvent = (...args) => {
        this.socket.off("close", onClose);
        resolve(args);
      };
      const onClose = (reason) => {
        this.socket.off(name, onEvent);
        reject(new ScenarioError(`connection closed (${reason}) while waiting for '${name}'`, { close: this.closed }));
      };
      this.socket.once(name, onEvent);
      this.socket.once("close", onClose);
    });
    return withDeadline(p, ms, `the '${name}' event`);
  }

  waitClose(ms = STEP_TIMEOUT_MS) {
    if (this.closed) return Promise.resolve(this.closed);
    return withDeadline(new Promise((resolve) => this.closeWaiters.push(resolve)), ms, "the connection to close");
  }

  async open() {
    if (this.socket.readyState !== "open") await this.waitEvent("open");
    const h = this.handshake;
    check(h && typeof h.sid === "string" && h.sid.length > 0, "handshake without a sid", { handshake: h });
    check(Number.isFinite(h.pingInterval) && h.pingInterval > 0, "handshake without a valid pingInterval", { handshake: h });
    check(Number.isFinite(h.pingTimeout) && h.pingTimeout > 0, "handshake without a valid pingTimeout", { handshake: h });
    check(Array.isArray(h.upgrades), "handshake without an upgrades array", { handshake: h });
    check(this.sid === h.sid, "socket.id differs from handshake sid");
    return h;
  }

  /** Sends every payload, then expects the echoes, in order, byte for byte. */
  async echo(payloads, { label = "echo", expectTransport = null } = {}) {
    for (const p of payloads) this.socket.send(p);
    const results = [];
    for (let i = 0; i < payloads.length; i++) {
      const m = await this.nextMessage(`${label} #${i} (${JSON.stringify(describePayload(payloads[i]))})`);
      const diff = payloadMismatch(payloads[i], m.data);
      check(diff === null, `${label} #${i}: ${diff}`);
      if (expectTransport)
        check(m.transport === expectTransport, `${label} #${i} arrived over ${m.transport}, expected ${expectTransport}`);
      results.push(describePayload(m.data));
    }
    emit({ event: "echoed", label, count: payloads.length, transport: this.transportName });
    return results;
  }

  /**
   * Client-initiated close, waiting until the close actually reached the
   * server: for polling the POST carrying the `1` packet completed; for
   * WebSocket the closing handshake finished. Then checks with a raw request
   * that the server forgot the session.
   */
  async closeCleanly() {
    const sid = this.sid;
    const transport = this.socket.transport;
    const name = transport.name;
    let delivered;
    if (name === "websocket") {
      const ws = transport.ws; // engine.io-client sets transport.ws = null on close
      delivered = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ wsCloseCode: code, wsCloseReason: String(reason) })));
    } else {
      // engine.io-client strips the transport's listeners inside close();
      // re-attach from our 'close' handler, which runs after that.
      delivered = new Promise((resolve) => {
        this.socket.once("close", () => {
          transport.once("drain", () => resolve({ closePacketPosted: true }));
          transport.once("error", (e) => resolve({ closePacketPosted: false, error: String(e && e.message) }));
        });
      });
    }
    this.socket.close();
    const closed = await this.waitClose(5000);
    check(closed.reason === "forced close", `unexpected close reason ${closed.reason}`, { close: closed });
    const d = await withDeadline(delivered, 5000, "the close to reach the server");
    check(d.closePacketPosted !== false, `POST of the close packet failed: ${d.error}`);
    const probe = await probeSessionGone(sid);
    check(probe.gone, "server still knows the session after a clean close", { probe });
    return { transport: name, ...d, sessionGone: true };
  }
}

// ------------------------------------------------------------- scenarios ---

async function echoScenario(mode) {
  const c = new Client([mode]);
  const h = await c.open();
  check(c.transportName === mode, `opened over ${c.transportName}, expected ${mode}`);
  if (mode === "websocket") check(h.upgrades.length === 0, `handshake over websocket must advertise no upgrades, got ${JSON.stringify(h.upgrades)}`);
  const echoed = await c.echo(STANDARD_PAYLOADS(), { expectTransport: mode });
  check(c.transportName === mode, `transport changed to ${c.transportName}`);
  check(c.events.upgrading === 0 && c.events.upgrade === 0, "client started an upgrade although only one transport was allowed");
  const close = await c.closeCleanly();
  return { sid: h.sid, transport: mode, upgrades: h.upgrades, echoed, close };
}

async function upgradeScenario() {
  const c = new Client(null); // default transports: polling first, then upgrade
  const sent = [];
  const sentWhile = { upgrading: 0, afterUpgrade: 0 };
  let upgraded = false;
  c.socket.on("upgrade", () => (upgraded = true));
  // The burst starts in the 'upgrading' handler (probe answered, polling being
  // paused). Half is sent synchronously, the rest one per event-loop turn, so
  // some may be sent after the switch completed.
  c.socket.once("upgrading", () => {
    const sendOne = (i) => {
      const msg = `burst-${String(i).padStart(2, "0")}`;
      sent.push(msg);
      if (upgraded) sentWhile.afterUpgrade++;
      else sentWhile.upgrading++;
      c.socket.send(msg);
    };
    for (let i = 0; i < 10; i++) sendOne(i);
    let i = 10;
    const next = () => {
      if (i >= 20 || c.closed) return;
      sendOne(i++);
      setImmediate(next);
    };
    setImmediate(next);
  });

  // Attach before open (the upgrade can be fast); fail at once on upgradeError.
  const upgradeP = Promise.race([
    c.waitEvent("upgrade"),
    new Promise((_, reject) =>
      c.socket.once("upgradeError", (e) => reject(new ScenarioError(`upgrade failed: ${e && e.message ? e.message : e}`))),
    ),
  ]);
  upgradeP.catch(() => {});
  const h = await c.open();
  check(c.transportName === "polling", `opened over ${c.transportName}, expected polling`);
  check(h.upgrades.includes("websocket"), `handshake over polling must offer the websocket upgrade, got ${JSON.stringify(h.upgrades)}`);
  // A few messages sent over polling right after open: their echoes may be in
  // flight (queued on the server) while the upgrade happens.
  const pre = ["pre-0", "pre-1", "pre-2", "pre-3", "pre-4"];
  for (const m of pre) c.socket.send(m);

  await upgradeP;
  check(c.transportName === "websocket", `after 'upgrade' the transport is ${c.transportName}, expected websocket`);
  check(c.events.upgradeError === 0, "upgradeError fired");

  const expected = [...pre];
  const received = [];
  const byTransport = { polling: 0, websocket: 0 };
  // Wait until the whole burst was handed to the socket.
  await withDeadline(
    (async () => {
      while (sent.length < 20) await sleep(5);
    })(),
    STEP_TIMEOUT_MS,
    "the burst to be sent",
  );
  expected.push(...sent);
  for (let i = 0; i < expected.length; i++) {
    const m = await c.nextMessage(`ordered echo #${i} (${expected[i]})`);
    check(typeof m.data === "string", `echo #${i}: expected text, got ${JSON.stringify(describePayload(m.data))}`);
    received.push(m.data);
    byTransport[m.transport] = (byTransport[m.transport] || 0) + 1;
    check(m.data === expected[i], `echo #${i}: expected ${JSON.stringify(expected[i])}, got ${JSON.stringify(m.data)} (lost, duplicated or reordered)`, {
      received,
    });
  }
  emit({ event: "burst-echoed", count: expected.length, byTransport, sentWhile });
  // Any duplicate of the above would show up here as a mismatch.
  const echoed = await c.echo(STANDARD_PAYLOADS(), { label: "after-upgrade", expectTransport: "websocket" });
  check(c.queue.length === 0, `unexpected extra messages: ${c.queue.map((m) => JSON.stringify(describePayload(m.data))).join(", ")}`);
  check(c.transportName === "websocket", `transport changed to ${c.transportName}`);
  const close = await c.closeCleanly();
  return {
    sid: h.sid,
    transport: "websocket",
    upgrades: h.upgrades,
    burst: { count: 20, orderedEchoes: expected.length, sentWhile, echoesByTransport: byTransport },
    echoed,
    close,
  };
}

async function heartbeatScenario(mode) {
  const c = new Client(mode ? [mode] : null);
  const h = await c.open();
  const idleMs = 5 * h.pingInterval + Math.min(h.pingTimeout, h.pingInterval) / 2;
  armWatchdog(idleMs + GLOBAL_TIMEOUT_MS);
  const openedAt = now();
  emit({ event: "idle", ms: idleMs });
  await sleep(idleMs);
  check(!c.closed, `connection closed while idle: ${c.closed && c.closed.reason}`, { close: c.closed });
  const pings = c.pings.filter((t) => t >= openedAt).length;
  const gaps = c.pings.slice(1).map((t, i) => t - c.pings[i]);
  check(pings >= 3, `only ${pings} ping(s) in ${idleMs} ms with pingInterval ${h.pingInterval}`, { pings, gaps });
  check(c.pongsCreated === c.pings.length, `client answered ${c.pongsCreated} of ${c.pings.length} pings`);
  if (mode) check(c.transportName === mode, `transport is ${c.transportName}, expected ${mode}`);
  const echoed = await c.echo(["still alive after idle"], { label: "post-idle" });
  const close = await c.closeCleanly();
  return {
    sid: h.sid,
    transport: c.transportName,
    pingInterval: h.pingInterval,
    pingTimeout: h.pingTimeout,
    idleMs,
    pings,
    pongs: c.pongsCreated,
    pingGapsMs: gaps,
    echoed,
    close,
  };
}

/**
 * How we stop answering pings: engine.io-client 6.6 answers a `2` (ping) in
 * Socket#_onPacket with `this._sendPacket("pong")`, then emits "ping" and
 * re-arms its own ping-timeout timer. We shadow the (private) _sendPacket on
 * the instance and drop "pong" packets, so the pong never enters the write
 * buffer and nothing at all is sent in reply. As a wire-level cross-check,
 * transport.write (the method that actually encodes packets onto the HTTP
 * POST / WebSocket frames) is wrapped to count outgoing pong packets; it must
 * stay 0.
 *
 * Who closed the session? engine.io-client also has its own timer: on every
 * received ping it (re)arms a timer of pingInterval + pingTimeout and, when it
 * fires, closes with reason "ping timeout" (and would then itself tell the
 * server by POSTing `1` / closing the WebSocket). A compliant server sends the
 * ping at T, gets no pong, and closes at about T + pingTimeout, i.e. a whole
 * pingInterval *before* the client's timer (T + pingInterval + pingTimeout).
 * The client-side `close` reason tells the two apart:
 *   - "ping timeout"      -> the client's own timer fired: the server did NOT
 *                            close the session in time (verdict ok:false);
 *   - "transport close"   -> the server closed it: for polling the pending GET
 *                            returned a `1` (close) packet (description
 *                            "transport closed by the server"); for WebSocket
 *                            the server closed the socket (description
 *                            "websocket connection closed" + close code);
 *   - "transport error"   -> polling: a GET/POST answered non-200 (e.g. 400
 *                            Session ID unknown, status and body reported) or
 *                            the connection was dropped; WebSocket: a socket
 *                            error. Also server-side.
 * Finally a raw HTTP request with the sid confirms the server forgot the
 * session (400, code 1).
 */
async function stopPongScenario(mode) {
  const c = new Client([mode]);
  const socket = c.socket;
  const h = await c.open();
  check(c.transportName === mode, `opened over ${c.transportName}, expected ${mode}`);

  check(typeof socket._sendPacket === "function", "engine.io-client internals changed: Socket#_sendPacket not found");
  let droppedPongs = 0;
  const originalSendPacket = socket._sendPacket;
  socket._sendPacket = function (type, ...rest) {
    if (type === "pong") {
      droppedPongs++;
      emit({ event: "pong-dropped", n: droppedPongs });
      return;
    }
    return originalSendPacket.call(this, type, ...rest);
  };
  let wirePongs = 0;
  const transport = socket.transport;
  const originalWrite = transport.write;
  transport.write = function (packets) {
    for (const p of packets) if (p.type === "pong") wirePongs++;
    return originalWrite.call(this, packets);
  };
  const stoppedAt = now();
  const pingsBefore = c.pings.length;
  emit({ event: "pong-suppressed", sid: h.sid, transport: mode });

  const closed = await c.waitClose(Math.max(STEP_TIMEOUT_MS, 3 * (h.pingInterval + h.pingTimeout)));
  const pingsAfterStop = c.pings.length - pingsBefore;
  const lastPing = c.pings.length ? c.pings[c.pings.length - 1] : null;
  const msFromLastPingToClose = lastPing !== null ? closed.t - lastPing : null;
  const details = closed.details || {};

  let closedBy;
  let signal;
  if (closed.reason === "ping timeout") {
    closedBy = "client-ping-timer";
    signal = `no ping for pingInterval+pingTimeout (${h.pingInterval + h.pingTimeout} ms); the server did not close first`;
  } else if (closed.reason === "transport close" && details.description === "transport closed by the server") {
    closedBy = "server";
    signal = "close-packet"; // polling: a GET answered with the `1` packet
  } else if (closed.reason === "transport close" && details.description === "websocket connection closed") {
    closedBy = "server";
    signal = "websocket-close"; // the server closed the WebSocket
  } else if (closed.reason === "transport error") {
    closedBy = "server";
    signal = details.httpStatus ? `http-${details.httpStatus}` : mode === "websocket" ? "websocket-error" : "connection-error";
  } else {
    closedBy = "unknown";
    signal = closed.reason;
  }
  const observed = {
    sid: h.sid,
    transport: mode,
    pingInterval: h.pingInterval,
    pingTimeout: h.pingTimeout,
    closeReason: closed.reason,
    closeDetails: closed.details,
    closedBy,
    signal,
    httpError: closed.reason === "transport error" ? c.lastHttpError : undefined,
    pingsAfterStop,
    droppedPongs,
    wirePongsAfterStop: wirePongs,
    msFromStopToClose: closed.t - stoppedAt,
    msFromLastPingToClose,
    clientTimerMs: h.pingInterval + h.pingTimeout,
  };
  emit({ event: "closed-by", closedBy, signal });

  check(closedBy !== "client-ping-timer", "the server did not close the session; the client's own ping timer fired first", observed);
  check(closedBy === "server", `unexpected close: ${closed.reason}`, observed);
  check(pingsAfterStop >= 1, "the session closed before the server sent any ping after pongs were suppressed", observed);
  check(droppedPongs >= 1 && wirePongs === 0, "pong suppression did not work", observed);
  // The server must wait pingTimeout after its ping before giving up (some
  // slack for delivery skew); closing much earlier is a bug.
  check(msFromLastPingToClose >= h.pingTimeout / 2, `server closed only ${msFromLastPingToClose} ms after its ping (pingTimeout ${h.pingTimeout})`, observed);
  const probe = await probeSessionGone(h.sid);
  observed.sessionProbe = probe;
  check(probe.gone, "the server still knows the session after closing it", observed);
  return observed;
}

// ------------------------------------------------------------------ main ---

if (!scenario || !baseUrl || !SCENARIOS[scenario]) {
  usageExit(
    `usage: node engineio-client.mjs <scenario> <baseUrl> [path]\n  scenarios: ${Object.keys(SCENARIOS).join(", ")}\n`,
    `usage: unknown or missing scenario/baseUrl (${scenario})`,
  );
}
checkUrl(path, baseUrl);

armWatchdog(GLOBAL_TIMEOUT_MS);
runScenario(SCENARIOS[scenario]);
