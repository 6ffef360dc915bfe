// What the socket.io interop scripts (socketio-client.mjs, legacy-client.mjs,
// recovery-client.mjs) share on top of harness.mjs: their command line
// (<scenario> <mode> <baseUrl> [path]) and its checks, the SIO_* settings they
// all read, the comparable view of event arguments (binaries as hex), wire
// tracing, the bookkeeping of engine.io connections and Managers (open,
// upgrade, close), the transport-mode check, waits that re-check on every
// change, and closing. What differs (scenarios, the clients' event handling,
// acks, the global deadline) stays in the scripts.
//
// Importing this module reads the command line: `scenario`, `mode`, `baseUrl`
// (without trailing slashes), `baseUrlArg` (as given) and `path` (normalised,
// default /socket.io/).

import { isDeepStrictEqual } from "node:util";
import {
  usageExit, checkUrl, armWatchdog, runScenario, // the runner
  emit, now, ScenarioError, check, sleep, // output, checks, waits
  normalizePath, isBinary, toBuffer,
} from "./harness.mjs";

// ------------------------------------------------- command line, settings ---

export const MODES = ["polling", "websocket", "default"];
export const STEP_TIMEOUT_MS = Number(process.env.SIO_STEP_TIMEOUT_MS || 10_000);
// Quiet period before asserting that nothing else (a leak to another room, a
// duplicate, a stray event) arrived.
export const GRACE_MS = Number(process.env.SIO_GRACE_MS || 200);
// SIO_TRACE=1: every engine.io packet sent and received ("wire-in" / "wire-out" lines).
export const TRACE = !!process.env.SIO_TRACE && process.env.SIO_TRACE !== "0";
// SIO_PARSER=msgpack: clients built by ownManagerOpts use the real
// socket.io-msgpack-parser (the server must be configured for it).
export const PARSER = process.env.SIO_PARSER || "json";
const msgpackParser = PARSER === "msgpack" ? (await import("socket.io-msgpack-parser")).default : null;

export const [scenario, mode, baseUrlArg, pathArg] = process.argv.slice(2);
export const baseUrl = (baseUrlArg || "").replace(/\/+$/, "");
export const path = normalizePath(pathArg, "/socket.io/");

/**
 * The end of every script: a usage error (exit code 2) unless the scenario,
 * the mode and the base URL are there; then the global watchdog, the "start"
 * line and the scenario.
 */
export function runSioScript(script, scenarios, globalTimeoutMs) {
  if (!scenarios[scenario] || !MODES.includes(mode) || !baseUrl) {
    usageExit(
      `usage: node ${script} <scenario> <mode> <baseUrl> [path]\n  scenarios: ${Object.keys(scenarios).join(", ")}\n  modes: ${MODES.join(", ")}\n`,
      `usage: unknown or missing scenario/mode/baseUrl (${scenario} ${mode} ${baseUrlArg})`,
    );
  }
  checkUrl(path, baseUrl);

  armWatchdog(globalTimeoutMs);
  emit({ event: "start", scenario, mode, baseUrl, path });
  runScenario(scenarios[scenario]);
}

/** The client options for mode `m`: polling / websocket only, or the defaults. */
export function transportOpts(m = mode) {
  if (m === "polling") return { transports: ["polling"] };
  if (m === "websocket") return { transports: ["websocket"] };
  return {}; // default: polling first, then upgrade
}

/**
 * Client options for a socket with its own Manager (forceNew): the path, no
 * reconnection, STEP_TIMEOUT_MS to connect, the transports (by default
 * those of the mode) and the msgpack parser with SIO_PARSER=msgpack, then
 * `opts`.
 */
export function ownManagerOpts(opts = {}, transports = transportOpts()) {
  const parser = msgpackParser ? { parser: msgpackParser } : {};
  return { path, forceNew: true, reconnection: false, timeout: STEP_TIMEOUT_MS, ...transports, ...parser, ...opts };
}

// ------------------------------------------------------------------ values ---

/**
 * JSON-safe, comparable view of event arguments: every binary value (Buffer,
 * Uint8Array, ArrayBuffer...) becomes {"$binary":"<hex>"}, so binary data is
 * compared byte for byte and cannot be confused with, e.g., an array of
 * numbers or a leftover {"_placeholder":true,"num":0} object. Functions (ack
 * callbacks) become {"$function":true}.
 */
export function normalize(x) {
  if (isBinary(x)) return { $binary: toBuffer(x).toString("hex") };
  if (typeof x === "function") return { $function: true };
  if (Array.isArray(x)) return x.map(normalize);
  if (x && typeof x === "object") {
    const o = {};
    for (const k of Object.keys(x)) o[k] = normalize(x[k]);
    return o;
  }
  return x;
}
export function sameValue(expected, actual) {
  return isDeepStrictEqual(normalize(expected), normalize(actual));
}
export function checkEqual(actual, expected, what) {
  check(sameValue(expected, actual), `${what}: expected ${JSON.stringify(normalize(expected))}, got ${JSON.stringify(normalize(actual))}`, {
    expected: normalize(expected),
    actual: normalize(actual),
  });
}
/** The JS classes of the binary values found in x (e.g. ["Buffer"]). */
export function binaryClasses(x, out = new Set()) {
  if (isBinary(x)) out.add(x.constructor && x.constructor.name);
  else if (Array.isArray(x)) x.forEach((v) => binaryClasses(v, out));
  else if (x && typeof x === "object") Object.values(x).forEach((v) => binaryClasses(v, out));
  return out;
}

export function errorMessage(e) {
  return String(e && e.message ? e.message : e);
}

/** Packet data for a trace line: text cut at 300 characters, binary as hex (at most 64 bytes shown). */
export function describeWire(data) {
  if (data === undefined) return undefined;
  if (isBinary(data)) return { binary: toBuffer(data).toString("hex").slice(0, 128), bytes: toBuffer(data).length };
  const s = String(data);
  return s.length <= 300 ? s : s.slice(0, 300) + "…";
}

/** Plain-JSON view of the description of a `close` / `disconnect` (engine.io-client 6.x). */
export function describeCloseDetails(desc) {
  if (desc === undefined || desc === null) return undefined;
  if (desc instanceof Error) return { message: desc.message, description: desc.description !== undefined ? String(desc.description) : undefined };
  const out = {};
  if (desc.description !== undefined) out.description = String(desc.description && desc.description.message ? desc.description.message : desc.description);
  const ctx = desc.context;
  if (ctx && typeof ctx === "object" && ctx.code !== undefined) out.wsCloseCode = ctx.code;
  return out;
}

// ------------------------------------------------------------------- waits ---

/**
 * Resolves with the first truthy value of pred(), which is evaluated now and
 * each time something calls the functions in `owner.waiters` (the owner's
 * "wake"); rejects with what pred() throws, or with timeoutError() after ms.
 */
export function waitOn(owner, pred, ms, timeoutError) {
  return new Promise((resolve, reject) => {
    let timer = null;
    const attempt = () => {
      let r;
      try {
        r = pred();
      } catch (e) {
        clearTimeout(timer);
        reject(e);
        return true;
      }
      if (!r) return false;
      clearTimeout(timer);
      resolve(r);
      return true;
    };
    if (attempt()) return;
    timer = setTimeout(() => {
      owner.waiters = owner.waiters.filter((w) => w !== attempt);
      reject(timeoutError());
    }, ms);
    owner.waiters.push(attempt);
  });
}

// ----------------------------------------------------------------- engines ---

/** SIO_TRACE: a "wire-in" / "wire-out" line per engine.io packet; `who` is {manager: label} or {client: label}. */
export function traceWire(engine, who) {
  const tn = () => (engine.transport ? engine.transport.name : null);
  engine.on("packet", (p) => emit({ event: "wire-in", ...who, transport: tn(), type: p.type, data: describeWire(p.data) }));
  engine.on("packetCreate", (p) => emit({ event: "wire-out", ...who, transport: tn(), type: p.type, data: describeWire(p.data) }));
}

/**
 * Keeps `rec` (upgrading, upgraded, upgradeError, closed) up to date for an
 * engine.io-client Socket and reports it ("upgrading", "upgrade",
 * "upgradeError", "engine-close" lines with `who`); `wake` runs after every
 * change but "upgrading". errorText turns an upgrade error into text;
 * closeFields(desc) gives the fields besides `reason` of rec.closed and of the
 * "engine-close" line.
 */
export function watchEngine(engine, rec, who, wake, { errorText = errorMessage, closeFields = (desc) => ({ details: describeCloseDetails(desc) }) } = {}) {
  engine.on("upgrading", (t) => {
    rec.upgrading++;
    emit({ event: "upgrading", ...who, sid: engine.id, to: t.name });
  });
  engine.on("upgrade", (t) => {
    rec.upgraded = true;
    emit({ event: "upgrade", ...who, sid: engine.id, transport: t.name });
    wake();
  });
  engine.on("upgradeError", (e) => {
    rec.upgradeError = errorText(e);
    emit({ event: "upgradeError", ...who, sid: engine.id, error: rec.upgradeError });
    wake();
  });
  engine.on("close", (reason, desc) => {
    const fields = closeFields(desc);
    rec.closed = { reason, ...fields };
    emit({ event: "engine-close", ...who, sid: rec.sid, reason, ...fields });
    wake();
  });
}

/**
 * Calls onEngine(engine) for every engine.io-client Socket the Manager
 * creates. The Manager creates a new one in every open(), which runs before
 * its "handshake" event, so the hook runs right after open() (wrapped on the
 * instance); the first open() already ran in the Manager constructor, so it
 * also runs now for manager.engine.
 */
export function hookManagerEngines(manager, onEngine) {
  onEngine(manager.engine);
  const originalOpen = manager.open;
  manager.open = manager.connect = function (...args) {
    const r = originalOpen.apply(this, args);
    onEngine(this.engine);
    return r;
  };
}

/** Counts the Manager's reconnect attempts and reconnects in `counts`, with a line each. */
export function trackReconnects(manager, counts, who) {
  manager.on("reconnect_attempt", (n) => {
    counts.reconnectAttempts++;
    emit({ event: "reconnect_attempt", ...who, attempt: n });
  });
  manager.on("reconnect", (n) => {
    counts.reconnects++;
    emit({ event: "reconnect", ...who, attempt: n });
  });
}

/**
 * Transport check of an opened engine.io connection for mode `m`:
 * - polling / websocket: the transport is the requested one and no upgrade
 *   was even attempted;
 * - default: it opened over polling and upgraded (waitUpgrade(pred) waits
 *   until pred() is true).
 * Messages start with `prefix`.
 */
export async function checkEngineMode(rec, m, prefix, waitUpgrade) {
  const name = rec.engine.transport && rec.engine.transport.name;
  const upgrades = rec.handshake && rec.handshake.upgrades;
  if (m !== "default") {
    check(rec.openedAs === m, `${prefix}: opened over ${rec.openedAs}, expected ${m}`);
    check(name === m, `${prefix}: transport is ${name}, expected ${m}`);
    check(rec.upgrading === 0 && !rec.upgraded, `${prefix}: the client started an upgrade although only ${m} was allowed`);
    if (m === "websocket") check(Array.isArray(upgrades) && upgrades.length === 0, `${prefix}: handshake over websocket must advertise no upgrades, got ${JSON.stringify(upgrades)}`);
    return { sid: rec.sid, transport: name, upgraded: false };
  }
  check(rec.openedAs === "polling", `${prefix}: default transports must open over polling, opened over ${rec.openedAs}`);
  check(Array.isArray(upgrades) && upgrades.includes("websocket"), `${prefix}: handshake over polling must offer the websocket upgrade, got ${JSON.stringify(upgrades)}`);
  await waitUpgrade(() => {
    if (rec.upgradeError) throw new ScenarioError(`${prefix}: upgrade failed: ${rec.upgradeError}`);
    if (rec.closed) throw new ScenarioError(`${prefix}: engine closed (${rec.closed.reason}) before upgrading`);
    return rec.upgraded;
  });
  const after = rec.engine.transport && rec.engine.transport.name;
  check(after === "websocket", `${prefix}: after 'upgrade' the transport is ${after}, expected websocket`);
  return { sid: rec.sid, transport: after, upgraded: true };
}

// ---------------------------------------------------------------- managers ---
// Used by socketio-client.mjs and legacy-client.mjs (recovery-client.mjs keeps
// its records on its single client).

const handshakes = new WeakMap(); // engine.io-client Socket -> handshake data
function hookEngine(engine, label, traceEngine) {
  if (!engine || handshakes.has(engine)) return;
  handshakes.set(engine, null);
  engine.once("handshake", (data) => handshakes.set(engine, data));
  if (!TRACE) return;
  traceWire(engine, { manager: label });
  if (traceEngine) traceEngine(engine);
}

/** Manager -> info: label, manager, engines (one record per engine.io connection), waiters, wake. */
export const managers = new Map();

/**
 * Per-Manager bookkeeping: every engine.io connection it opens gets a record
 * in info.engines (sid, openedAs, handshake, upgrading, upgraded,
 * upgradeError, closed) and an "engine-open" line; see watchEngine. Options:
 * fields (more fields of info), traceEngine(engine) (more tracing under
 * SIO_TRACE), openFields (more fields of "engine-open", after "manager"),
 * errorText and closeFields (see watchEngine), onOpen(engine, rec, info)
 * (after the record is made) and setup(info) (once, for a new Manager).
 */
export function trackManager(manager, label, { fields = {}, traceEngine = null, openFields = {}, errorText, closeFields, onOpen = null, setup = null } = {}) {
  if (managers.has(manager)) return managers.get(manager);
  const info = { label, manager, engines: [], waiters: [], ...fields };
  managers.set(manager, info);
  info.wake = () => (info.waiters = info.waiters.filter((w) => !w()));
  hookManagerEngines(manager, (engine) => hookEngine(engine, label, traceEngine));
  manager.on("open", () => {
    const engine = manager.engine;
    const handshake = handshakes.get(engine) || null;
    const rec = { engine, sid: engine.id, openedAs: engine.transport.name, handshake, upgrading: 0, upgraded: false, upgradeError: null, closed: null };
    info.engines.push(rec);
    emit({ event: "engine-open", manager: label, ...openFields, sid: engine.id, transport: engine.transport.name, handshake });
    watchEngine(engine, rec, { manager: label }, info.wake, { errorText, closeFields });
    if (onOpen) onOpen(engine, rec, info);
  });
  if (setup) setup(info);
  return info;
}

export function currentEngine(info) {
  return info.engines[info.engines.length - 1];
}

export function waitManager(info, pred, ms, what) {
  return waitOn(info, pred, ms, () => new ScenarioError(`${info.label}: timed out after ${ms} ms waiting for ${what}`));
}

/** checkEngineMode for the Manager's current engine.io connection (waits up to STEP_TIMEOUT_MS for the upgrade). */
export async function checkTransportMode(info, m = mode) {
  const rec = currentEngine(info);
  check(rec, `${info.label}: no engine.io connection was opened`);
  return checkEngineMode(rec, m, info.label, (pred) => waitManager(info, pred, STEP_TIMEOUT_MS, "the upgrade to websocket"));
}

// ----------------------------------------------------------------- clients ---

/** Every client a script made (objects with a `socket`), for closing. */
export const clients = [];

/** Disconnects every client's socket, ignoring errors. */
export function disconnectAll() {
  for (const c of clients) {
    try {
      c.socket.disconnect();
    } catch {}
  }
}

/**
 * Waits (bounded, 3 s each) until every Manager's current engine.io
 * connection closed ("close-warning" line if not), calling after(info, closed)
 * for each Manager that opened one, then lets a last polling POST (the close
 * packet) reach the server. `owners` replaces the Managers' records with
 * anything that has a label, engine records (`engines`, the current one
 * last) and `waiters` woken on their changes (recovery-client.mjs passes its
 * clients).
 */
export async function closeManagers(after = () => {}, owners = managers.values()) {
  for (const info of owners) {
    const rec = currentEngine(info);
    if (!rec) continue;
    let closed = true;
    try {
      await waitManager(info, () => rec.closed || rec.engine.readyState === "closed", 3000, "the engine.io connection to close");
    } catch (e) {
      closed = false;
      emit({ event: "close-warning", manager: info.label, error: e.message });
    }
    after(info, closed);
  }
  await sleep(50);
}

/**
 * A socket wrapper with an inbox (socketio-client.mjs, legacy-client.mjs):
 * the script's subclass puts every received event (and the lifecycle events)
 * into it; scenarios take the entries they expect and then assert that
 * nothing else is left, which catches leaks and duplicates.
 */
export class InboxClient {
  constructor(label, socket, info) {
    this.label = label;
    this.socket = socket;
    this.inbox = [];
    this.waiters = [];
    this.info = info;
    clients.push(this);
  }

  get transportName() {
    const e = this.socket.io.engine;
    return e && e.transport ? e.transport.name : null;
  }

  _wake() {
    this.waiters = this.waiters.filter((w) => !w());
  }

  /** Adds an inbox entry, writes its line and wakes the waits. */
  _receive(entry, line) {
    this.inbox.push(entry);
    emit(line);
    this._wake();
  }

  /** A received event with its arguments (a "recv" line). */
  _recordEvent(name, args) {
    const transport = this.transportName;
    this._receive({ event: name, args, transport, t: now() }, { event: "recv", client: this.label, name, args: normalize(args), transport });
  }

  describeInbox() {
    return this.inbox.map((e) => (e.lifecycle ? { event: e.event, reason: e.reason, message: e.message } : { event: e.event, args: normalize(e.args) }));
  }

  /** Removes and returns the first inbox entry matching `match`, waiting up to ms. */
  take(match, what, ms = STEP_TIMEOUT_MS) {
    return waitOn(
      this,
      () => {
        const i = this.inbox.findIndex(match);
        return i >= 0 && this.inbox.splice(i, 1)[0];
      },
      ms,
      () => new ScenarioError(`${this.label}: timed out after ${ms} ms waiting for ${what}`, { inbox: this.describeInbox() }),
    );
  }

  /** Waits for the event `name` and returns its arguments. */
  async event(name, ms = STEP_TIMEOUT_MS) {
    const e = await this.take((e) => !e.lifecycle && e.event === name, `event '${name}'`, ms);
    return e.args;
  }

  /** Asserts that the inbox is empty (nothing unexpected arrived). */
  checkNothingElse(what) {
    check(this.inbox.length === 0, `${this.label}: unexpected ${what ? what + ": " : ""}${JSON.stringify(this.describeInbox())}`, {
      inbox: this.describeInbox(),
    });
  }

  /** `message` -> `message-back` round trip; checks deep equality. */
  async echo(args, what = "echo") {
    this.socket.emit("message", ...args);
    const back = await this.event("message-back");
    checkEqual(back, args, `${this.label}: ${what}: message-back`);
    return back;
  }
}
