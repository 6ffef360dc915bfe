// mini-client.js: a small, dependency-free stand-in for socket.io-client,
// used by the demo page when the official bundle is not installed.
//
// It speaks engine.io v4 (long-polling, then an upgrade to WebSocket) and
// socket.io v5 on the main namespace, and copies the part of the
// socket.io-client API the page uses:
//
//   const socket = io(url, { transports: ["polling", "websocket"] });
//   socket.on(event, fn); socket.emit(event, ...args, ack?);
//   socket.connected, socket.id, socket.recovered, socket.active,
//   socket.sendBuffer, socket.connect(), socket.disconnect();
//   socket.io (the manager): on("open" | "close" | "ping" |
//   "reconnect_attempt" | "reconnect"), opts.transports (read at each
//   connection), backoff.duration() / backoff.attempts,
//   engine.transport.name, engine.on("upgrade", transport), engine.close().

const SEP = "\x1e";
const RESERVED = new Set(["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]);
const CONNECT = 0, DISCONNECT = 1, EVENT = 2, ACK = 3, CONNECT_ERROR = 4, BINARY_EVENT = 5, BINARY_ACK = 6;

class Emitter {
  constructor() { this._listeners = new Map(); }
  on(ev, fn) {
    if (!this._listeners.has(ev)) this._listeners.set(ev, []);
    this._listeners.get(ev).push(fn);
    return this;
  }
  off(ev, fn) {
    const list = this._listeners.get(ev) || [];
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
    return this;
  }
  // Calls the local listeners (`emit` is the network emit on a socket).
  emitReserved(ev, ...args) {
    for (const fn of [...(this._listeners.get(ev) || [])]) fn.apply(this, args);
    return this;
  }
}

// Exponential backoff with jitter, as in socket.io-client.
class Backoff {
  constructor({ min = 500, max = 5000, factor = 2, jitter = 0.5 } = {}) {
    Object.assign(this, { min, max, factor, jitter, attempts: 0 });
  }
  duration() {
    let ms = this.min * Math.pow(this.factor, this.attempts++);
    if (this.jitter) {
      const rand = Math.random();
      const deviation = Math.floor(rand * this.jitter * ms);
      ms = (Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation;
    }
    return Math.min(ms, this.max) | 0;
  }
  reset() { this.attempts = 0; }
}

const toBase64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const fromBase64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)).buffer;
const isBinary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v) || (typeof Blob !== "undefined" && v instanceof Blob);
let requestSeq = 0;

// ---------------------------------------------------------------- engine.io v4

class Engine extends Emitter {
  constructor(origin, opts) {
    super();
    this.origin = origin;
    this.path = opts.path || "/socket.io/";
    this.transports = [...(opts.transports || ["polling", "websocket"])];
    this.readyState = "opening";
    this.sid = null;
    this.writeBuffer = [];
    this.upgrading = false; // probe answered, waiting for polling to pause
    this.polling = false; // a GET is in flight
    this.postPromise = null; // a POST is in flight
    this.ws = null;
    this.probe = null;
    this.pollAbort = new AbortController();
    if (this.transports.includes("polling")) {
      this.transport = { name: "polling" };
      this._handshakePolling();
    } else {
      this.transport = { name: "websocket" };
      this._handshakeWebSocket();
    }
  }

  _url(transport) {
    const base = transport === "websocket" ? this.origin.replace(/^http/, "ws") : this.origin;
    let q = `EIO=4&transport=${transport}`;
    if (this.sid) q += `&sid=${encodeURIComponent(this.sid)}`;
    if (transport === "polling") q += `&t=${Date.now().toString(36)}.${(requestSeq++).toString(36)}`;
    return `${base}${this.path}?${q}`;
  }

  async _get() {
    const res = await fetch(this._url("polling"), { cache: "no-store", signal: this.pollAbort.signal });
    if (!res.ok) throw new Error(`polling GET: HTTP ${res.status}`);
    return res.text();
  }

  static decodePayload(text) {
    return text.split(SEP).filter((p) => p.length).map((p) =>
      p[0] === "b" ? { type: "4", data: fromBase64(p.slice(1)) } : { type: p[0], data: p.slice(1) });
  }

  _opened(info) {
    this.sid = info.sid;
    this.pingInterval = info.pingInterval;
    this.pingTimeout = info.pingTimeout;
    this.maxPayload = info.maxPayload || 1e6;
    this.readyState = "open";
    this._resetPingTimer();
    this.emitReserved("open");
  }

  async _handshakePolling() {
    let packets;
    try {
      packets = Engine.decodePayload(await this._get());
    } catch (err) {
      return this._onClose("transport error", err);
    }
    if (this.readyState !== "opening") return;
    const open = packets.shift();
    if (!open || open.type !== "0") return this._onClose("parse error", new Error("bad handshake"));
    const info = JSON.parse(open.data);
    this._opened(info);
    for (const p of packets) this._onPacket(p);
    this._pollLoop();
    if (this.readyState === "open" && (info.upgrades || []).includes("websocket") && this.transports.includes("websocket")) {
      this._probe();
    }
  }

  _handshakeWebSocket() {
    const ws = (this.ws = new WebSocket(this._url("websocket")));
    ws.binaryType = "arraybuffer";
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string" || ev.data[0] !== "0") return this._onClose("parse error", new Error("bad handshake"));
      this._attachWebSocket(ws);
      this._opened(JSON.parse(ev.data.slice(1)));
    };
    ws.onerror = ws.onclose = () => this._onClose("transport error", new Error("websocket error"));
  }

  async _pollLoop() {
    while (this.readyState === "open" && this.transport.name === "polling") {
      if (this.upgrading) return this._finishUpgrade(); // polling paused
      this.polling = true;
      let text;
      try {
        text = await this._get();
      } catch (err) {
        this.polling = false;
        if (this.transport.name === "polling") this._onClose("transport error", err);
        return;
      }
      this.polling = false;
      if (this.readyState !== "open") return;
      for (const p of Engine.decodePayload(text)) this._onPacket(p);
    }
  }

  // Upgrade: 2probe/3probe on a new WebSocket, wait for the pending poll
  // (the server answers it with a noop) and any POST, then send 5.
  _probe() {
    let ws;
    try { ws = new WebSocket(this._url("websocket")); } catch { return; }
    ws.binaryType = "arraybuffer";
    const fail = () => {
      if (this.probe !== probe) return;
      this.probe = null;
      clearTimeout(probe.timer);
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try { ws.close(); } catch { /* already closed */ }
      if (this.upgrading) {
        this.upgrading = false;
        if (this.readyState === "open" && !this.polling) this._pollLoop();
        this._flush();
      }
      this.emitReserved("upgradeError");
    };
    const probe = { ws, fail, timer: setTimeout(fail, 10000) };
    this.probe = probe;
    ws.onopen = () => ws.send("2probe");
    ws.onmessage = (ev) => {
      if (ev.data !== "3probe" || this.upgrading) return fail();
      this.upgrading = true;
      this._finishUpgrade();
    };
    ws.onerror = ws.onclose = fail;
  }

  _finishUpgrade() {
    if (!this.upgrading || this.polling || this.postPromise || this.readyState !== "open") return;
    const { ws, timer } = this.probe;
    clearTimeout(timer);
    this.probe = null;
    this.upgrading = false;
    ws.send("5");
    this._attachWebSocket(ws);
    this.transport = { name: "websocket" };
    this.emitReserved("upgrade", this.transport);
    this._flush();
  }

  _attachWebSocket(ws) {
    this.ws = ws;
    ws.onmessage = (ev) => this._onPacket(typeof ev.data === "string"
      ? { type: ev.data[0], data: ev.data.slice(1) }
      : { type: "4", data: ev.data });
    ws.onclose = () => this._onClose("transport close");
    ws.onerror = () => this._onClose("transport error", new Error("websocket error"));
  }

  _onPacket(p) {
    if (this.readyState !== "open") return;
    this._resetPingTimer();
    switch (p.type) {
      case "1": return this._onClose("transport close");
      case "2": this._write("3"); return this.emitReserved("ping");
      case "4": return this.emitReserved("message", p.data);
      default: return; // 3 pong, 6 noop
    }
  }

  _resetPingTimer() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => this._onClose("ping timeout"), this.pingInterval + this.pingTimeout);
  }

  send(data) { this._write(data, true); }

  _write(data, message = false) {
    if (this.readyState !== "open") return;
    this.writeBuffer.push(message ? (typeof data === "string" ? "4" + data : data) : data);
    this._flush();
  }

  _flush() {
    if (this.readyState !== "open" || !this.writeBuffer.length) return;
    if (this.transport.name === "websocket") {
      for (const p of this.writeBuffer.splice(0)) this.ws.send(p);
      return;
    }
    if (this.upgrading || this.postPromise) return;
    let size = 0, n = 0;
    const encoded = this.writeBuffer.map((p) => (typeof p === "string" ? p : "b" + toBase64(p)));
    while (n < encoded.length && (n === 0 || size + encoded[n].length + 1 <= this.maxPayload)) size += encoded[n++].length + 1;
    this.writeBuffer.splice(0, n);
    this.postPromise = this._post(encoded.slice(0, n).join(SEP)).then(
      () => { this.postPromise = null; this.upgrading ? this._finishUpgrade() : this._flush(); },
      (err) => { this.postPromise = null; this._onClose("transport error", err); });
  }

  async _post(body, keepalive = false) {
    const res = await fetch(this._url("polling"), {
      method: "POST", body, keepalive, cache: "no-store",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
    });
    if (!res.ok) throw new Error(`polling POST: HTTP ${res.status}`);
  }

  // Closes the session: sends what is queued and a close packet.
  close() {
    if (this.readyState === "open") {
      if (this.transport.name === "polling") {
        const body = [...this.writeBuffer.splice(0), "1"].map((p) => (typeof p === "string" ? p : "b" + toBase64(p))).join(SEP);
        const after = this.postPromise || Promise.resolve();
        const post = () => this._post(body, true).catch(() => {});
        after.then(post, post);
      } else {
        try { this.ws.close(); } catch { /* already closed */ }
      }
    }
    this._onClose("forced close");
  }

  _onClose(reason, err) {
    if (this.readyState === "closed") return;
    const wasOpening = this.readyState === "opening";
    this.readyState = "closed";
    clearTimeout(this.pingTimer);
    this.pollAbort.abort();
    if (this.probe) this.probe.fail();
    if (this.ws) {
      this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
      try { this.ws.close(); } catch { /* already closed */ }
    }
    this.writeBuffer = [];
    if (wasOpening) this.emitReserved("error", err || new Error(reason));
    else this.emitReserved("close", reason, err);
  }
}

// ---------------------------------------------------------------- socket.io v5

function encode(packet) {
  let s = String(packet.type);
  const attachments = [];
  let data = packet.data;
  if (data !== undefined && hasBinary(data)) {
    data = deconstruct(data, attachments);
    s = String(packet.type === EVENT ? BINARY_EVENT : BINARY_ACK) + attachments.length + "-";
  }
  if (packet.nsp && packet.nsp !== "/") s += packet.nsp + ",";
  if (packet.id != null) s += packet.id;
  if (data !== undefined) s += JSON.stringify(data);
  return [s, ...attachments];
}

function decode(str) {
  let i = 0;
  const p = { type: Number(str[i++]), nsp: "/", attachments: 0 };
  if (p.type === BINARY_EVENT || p.type === BINARY_ACK) {
    const j = str.indexOf("-", i);
    p.attachments = Number(str.slice(i, j));
    i = j + 1;
  }
  if (str[i] === "/") {
    const j = str.indexOf(",", i);
    p.nsp = j < 0 ? str.slice(i) : str.slice(i, j);
    i = j < 0 ? str.length : j + 1;
  }
  const id = /^\d+/.exec(str.slice(i));
  if (id) { p.id = Number(id[0]); i += id[0].length; }
  if (i < str.length) p.data = JSON.parse(str.slice(i));
  return p;
}

function hasBinary(v) {
  if (isBinary(v)) return true;
  if (Array.isArray(v)) return v.some(hasBinary);
  if (v && typeof v === "object") return Object.values(v).some(hasBinary);
  return false;
}

function deconstruct(v, out) {
  if (isBinary(v)) { out.push(v); return { _placeholder: true, num: out.length - 1 }; }
  if (Array.isArray(v)) return v.map((x) => deconstruct(x, out));
  if (v && typeof v === "object" && !(v instanceof Date)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deconstruct(x, out)]));
  }
  return v;
}

function reconstruct(v, bins) {
  if (v && v._placeholder === true && typeof v.num === "number") return bins[v.num];
  if (Array.isArray(v)) return v.map((x) => reconstruct(x, bins));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reconstruct(x, bins)]));
  return v;
}

class Manager extends Emitter {
  constructor(origin, opts) {
    super();
    this.origin = origin;
    this.opts = { path: "/socket.io/", transports: ["polling", "websocket"], reconnection: true,
      reconnectionDelay: 500, reconnectionDelayMax: 5000, randomizationFactor: 0.5, timeout: 20000, ...opts };
    this.backoff = new Backoff({ min: this.opts.reconnectionDelay, max: this.opts.reconnectionDelayMax, jitter: this.opts.randomizationFactor });
    this.engine = null;
    this._readyState = "closed";
    this._reconnecting = false;
    this.skipReconnect = false;
    this._pending = null; // binary packet waiting for attachments
  }

  open(fn) {
    if (this._readyState === "open" || this._readyState === "opening") return this;
    this._readyState = "opening";
    this.skipReconnect = false;
    const engine = (this.engine = new Engine(this.origin, this.opts));
    const timer = setTimeout(() => engine._onClose("forced close", new Error("timeout")), this.opts.timeout);
    engine.on("open", () => {
      clearTimeout(timer);
      this._readyState = "open";
      this.emitReserved("open");
      if (fn) fn();
    });
    engine.on("error", (err) => {
      clearTimeout(timer);
      this._readyState = "closed";
      this.emitReserved("error", err);
      if (fn) fn(err);
      else if (this.opts.reconnection && !this._reconnecting && !this.skipReconnect) this.reconnect();
    });
    engine.on("message", (data) => this._ondata(data));
    engine.on("ping", () => this.emitReserved("ping"));
    engine.on("close", (reason, err) => this._onclose(reason, err));
    return this;
  }

  _ondata(data) {
    if (typeof data === "string") {
      const p = decode(data);
      if (p.attachments > 0) { this._pending = { p, bins: [] }; return; }
      return this.emitReserved("packet", p);
    }
    if (!this._pending) return;
    this._pending.bins.push(data);
    if (this._pending.bins.length === this._pending.p.attachments) {
      const { p, bins } = this._pending;
      this._pending = null;
      p.data = reconstruct(p.data, bins);
      p.type = p.type === BINARY_EVENT ? EVENT : ACK;
      this.emitReserved("packet", p);
    }
  }

  _packet(packet) {
    if (this.engine && this.engine.readyState === "open") for (const part of encode(packet)) this.engine.send(part);
  }

  _onclose(reason, err) {
    this._readyState = "closed";
    this._pending = null;
    this.backoff.reset();
    this.emitReserved("close", reason, err);
    if (this.opts.reconnection && !this.skipReconnect) this.reconnect();
  }

  reconnect() {
    if (this._reconnecting || this.skipReconnect) return;
    const delay = this.backoff.duration();
    this._reconnecting = true;
    this._timer = setTimeout(() => {
      if (this.skipReconnect) return;
      this.emitReserved("reconnect_attempt", this.backoff.attempts);
      if (this.skipReconnect) return;
      this.open((err) => {
        this._reconnecting = false;
        if (err) {
          this.reconnect();
        } else {
          const attempts = this.backoff.attempts;
          this.backoff.reset();
          this.emitReserved("reconnect", attempts);
        }
      });
    }, delay);
  }

  // Closes for good (the socket called disconnect()).
  _close() {
    this.skipReconnect = true;
    this._reconnecting = false;
    clearTimeout(this._timer);
    this.backoff.reset();
    this._readyState = "closed";
    if (this.engine) this.engine.close();
  }
}

class Socket extends Emitter {
  constructor(manager, nsp, opts) {
    super();
    this.io = manager;
    this.nsp = nsp;
    this.auth = opts.auth;
    this.connected = false;
    this.recovered = false;
    this.id = undefined;
    this.sendBuffer = [];
    this.receiveBuffer = [];
    this.acks = {};
    this.ids = 0;
    this.subs = null;
    if (opts.autoConnect !== false) this.connect();
  }

  get active() { return !!this.subs; }

  connect() {
    if (this.connected) return this;
    if (!this.subs) {
      const io = this.io;
      const handlers = {
        open: () => this._onopen(),
        packet: (p) => p.nsp === this.nsp && this._onpacket(p),
        close: (reason) => this._onclose(reason),
        error: (err) => { if (!this.connected) this.emitReserved("connect_error", err); },
      };
      for (const [ev, fn] of Object.entries(handlers)) io.on(ev, fn);
      this.subs = Object.entries(handlers).map(([ev, fn]) => () => io.off(ev, fn));
    }
    if (!this.io._reconnecting) this.io.open();
    if (this.io._readyState === "open") this._onopen();
    return this;
  }

  disconnect() {
    if (this.connected) this._packet({ type: DISCONNECT });
    this._destroy();
    this.io._close();
    if (this.connected) this._onclose("io client disconnect");
    return this;
  }

  emit(ev, ...args) {
    if (RESERVED.has(ev)) throw new Error(`"${ev}" is a reserved event name`);
    const packet = { type: EVENT, data: [ev, ...args] };
    if (typeof packet.data[packet.data.length - 1] === "function") {
      packet.id = this.ids++;
      this.acks[packet.id] = packet.data.pop();
    }
    if (this.connected) this._packet(packet);
    else this.sendBuffer.push(packet);
    return this;
  }

  _packet(packet) { this.io._packet({ ...packet, nsp: this.nsp }); }

  _destroy() {
    if (this.subs) { this.subs.forEach((off) => off()); this.subs = null; }
  }

  _onopen() {
    const data = this._pid ? { pid: this._pid, offset: this._lastOffset, ...this.auth } : this.auth;
    this._packet({ type: CONNECT, data });
  }

  _onpacket(p) {
    switch (p.type) {
      case CONNECT:
        if (p.data && p.data.sid) return this._onconnect(p.data.sid, p.data.pid);
        return this.emitReserved("connect_error", new Error("invalid CONNECT packet"));
      case EVENT: case BINARY_EVENT: {
        const args = p.data || [];
        if (p.id != null) args.push(this._ack(p.id));
        return this.connected ? this._emitEvent(args) : this.receiveBuffer.push(args);
      }
      case ACK: case BINARY_ACK: {
        const fn = this.acks[p.id];
        delete this.acks[p.id];
        if (typeof fn === "function") fn.apply(this, p.data || []);
        return;
      }
      case DISCONNECT:
        this._destroy();
        this.io._close();
        return this._onclose("io server disconnect");
      case CONNECT_ERROR: {
        this._destroy();
        const err = new Error(p.data && p.data.message);
        err.data = p.data && p.data.data;
        return this.emitReserved("connect_error", err);
      }
    }
  }

  _emitEvent(args) {
    this.emitReserved(...args);
    // With connection state recovery on, the last argument is the offset.
    if (this._pid && args.length && typeof args[args.length - 1] === "string") this._lastOffset = args[args.length - 1];
  }

  _ack(id) {
    let sent = false;
    return (...args) => {
      if (sent) return;
      sent = true;
      this._packet({ type: ACK, id, data: args });
    };
  }

  _onconnect(id, pid) {
    this.id = id;
    this.recovered = !!(pid && this._pid === pid);
    this._pid = pid;
    this.connected = true;
    for (const args of this.receiveBuffer.splice(0)) this._emitEvent(args);
    for (const packet of this.sendBuffer.splice(0)) this._packet(packet);
    this.emitReserved("connect");
  }

  _onclose(reason) {
    if (!this.connected) return;
    this.connected = false;
    this.id = undefined;
    this.emitReserved("disconnect", reason);
    // acks still waiting in sendBuffer survive; the others are dropped
    const buffered = new Set(this.sendBuffer.map((p) => p.id));
    for (const id of Object.keys(this.acks)) if (!buffered.has(Number(id))) delete this.acks[id];
  }
}

export function io(url, opts = {}) {
  if (typeof url === "object" && url !== null) { opts = url; url = undefined; }
  const target = new URL(url || "/", location.href);
  const manager = new Manager(target.origin, opts);
  return new Socket(manager, target.pathname || "/", opts);
}

export default io;
