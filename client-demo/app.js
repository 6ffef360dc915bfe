// The socketgate demo page.
//
// It uses the official socket.io-client bundle (window.io, loaded by
// index.html from /socket.io/socket.io.min.js) when the gateway serves it,
// and /mini-client.js otherwise (or with ?client=mini). Both are used
// through the same part of the socket.io-client API:
//
//   io(url, { transports, reconnectionDelay, reconnectionDelayMax }) -> socket
//   socket.on("connect" | "disconnect" | "connect_error" | "chat", fn)
//   socket.emit(event, ...args, ack?)   (buffered while disconnected)
//   socket.connected / id / recovered / active / sendBuffer
//   socket.connect() / socket.disconnect()
//   socket.io (the manager): on("open" | "close" | "ping" |
//              "reconnect_attempt" | "reconnect"), opts.transports (read at
//              each connection), backoff.duration() / backoff.attempts,
//              engine.transport.name, engine.on("upgrade"), engine.close()

const $ = (id) => document.getElementById(id);
const ALL_TRANSPORTS = ["polling", "websocket"];
const PING_EVERY_MS = 2000;
const PING_TIMEOUT_MS = 5000;
const HISTORY = 40;

async function loadClient() {
  const forceMini = new URLSearchParams(location.search).get("client") === "mini";
  if (!forceMini && typeof window.io === "function") return { io: window.io, kind: "socket.io-client" };
  const mod = await import("/mini-client.js");
  return { io: mod.io, kind: "mini-client" };
}

const clock = (d = new Date()) =>
  d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");

// ------------------------------------------------------------------ log

function log(text, kind = "info") {
  const li = document.createElement("li");
  li.className = `log-${kind}`;
  const time = document.createElement("time");
  time.textContent = clock();
  const span = document.createElement("span");
  span.textContent = text;
  li.append(time, span);
  const list = $("log");
  list.prepend(li);
  while (list.children.length > 200) list.lastElementChild.remove();
}

// ------------------------------------------------------------------ page state

const view = {
  state: "connecting",
  attempt: 0,
  nextDelay: "",
  retryAt: 0,
  transport: "",
  upgradedAt: "",
  upgradeAfter: "",
  openedAt: 0,
  recovered: "-",
  lastPing: 0,
};

function setText(id, value) {
  const el = $(id);
  const text = String(value);
  if (el.textContent !== text) el.textContent = text;
}

function render(socket) {
  setText("state", view.state);
  setText("state-detail", view.state === "reconnecting" ? `reconnecting (attempt ${view.attempt})` : view.state);
  $("state-pill").dataset.state = view.state;
  document.body.dataset.state = view.state;
  setText("attempt", view.attempt);
  setText("next-delay", view.nextDelay);
  setText("socket-id", socket.id || "");
  setText("transport", view.transport);
  $("transport").dataset.transport = view.transport;
  $("transport").classList.toggle("stale", view.state !== "connected");
  setText("upgraded-at", view.upgradedAt);
  setText("upgrade-after", view.upgradeAfter);
  setText("recovered", view.recovered);
  $("recovered").dataset.value = view.recovered;
  setText("toggle", socket.active ? "Disconnect" : "Connect");
  $("drop").disabled = !socket.connected;
  renderTimers();
  renderOutbox(socket);
}

// The parts that change with time alone.
function renderTimers() {
  const left = view.state === "reconnecting" && view.retryAt ? Math.max(0, view.retryAt - Date.now()) : null;
  setText("countdown", left === null ? "" : left > 0 ? `(${(left / 1000).toFixed(1)} s left)` : "(trying now…)");
  setText("last-ping", view.lastPing ? `${Math.round((Date.now() - view.lastPing) / 1000)} s ago` : "");
}

// ------------------------------------------------------------------ outbox

// Messages the client holds while disconnected (socket.io-client buffers
// emits itself, in socket.sendBuffer, and flushes them in order on connect).
function queuedChats(socket) {
  return (socket.sendBuffer || []).filter((p) => Array.isArray(p.data) && p.data[0] === "chat");
}

function renderOutbox(socket) {
  const queued = queuedChats(socket);
  setText("outbox", queued.length);
  const list = $("outbox-list");
  const texts = queued.map((p) => (p.data[1] && p.data[1].text) || "");
  if (list.dataset.snapshot === JSON.stringify(texts)) return;
  list.dataset.snapshot = JSON.stringify(texts);
  list.replaceChildren(...texts.map((t) => {
    const li = document.createElement("li");
    li.textContent = t;
    return li;
  }));
}

// ------------------------------------------------------------------ round trips

const rtts = []; // { ms, lost }

function renderRtt() {
  const ok = rtts.filter((r) => !r.lost).map((r) => r.ms);
  const lost = rtts.length - ok.length;
  const stats = ok.length
    ? `min ${Math.min(...ok).toFixed(1)} · avg ${(ok.reduce((a, b) => a + b, 0) / ok.length).toFixed(1)} · max ${Math.max(...ok).toFixed(1)} ms` +
      (lost ? ` · ${lost} lost` : "")
    : lost ? `${lost} lost` : "";
  setText("rtt-stats", stats);
  const max = Math.max(1, ...ok);
  const bars = rtts.map((r) => {
    const bar = document.createElement("span");
    bar.className = r.lost ? "bar lost" : "bar";
    bar.style.height = r.lost ? "100%" : `${Math.max(4, (r.ms / max) * 100)}%`;
    bar.title = r.lost ? "no answer" : `${r.ms.toFixed(1)} ms`;
    return bar;
  });
  $("rtt-history").replaceChildren(...bars);
}

function pushRtt(entry) {
  rtts.push(entry);
  if (rtts.length > HISTORY) rtts.shift();
  renderRtt();
}

function startHeartbeat(socket) {
  let seq = 0;
  setInterval(() => {
    // Only while connected: an echo emitted offline would sit in the outbox.
    if (!socket.connected) return;
    const n = ++seq;
    const start = performance.now();
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      pushRtt({ ms: PING_TIMEOUT_MS, lost: true });
      log(`echo #${n} got no answer within ${PING_TIMEOUT_MS / 1000} s`, "warn");
    }, PING_TIMEOUT_MS);
    socket.emit("echo", { seq: n, sentAt: Date.now() }, () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const ms = performance.now() - start;
      setText("rtt", Math.ceil(ms));
      pushRtt({ ms, lost: false });
    });
  }, PING_EVERY_MS);
}

// ------------------------------------------------------------------ chat

const myIds = new Set();
let currentRoom = "";

function addMessage(msg, socket) {
  if (!msg || typeof msg !== "object") return;
  const li = document.createElement("li");
  const from = String(msg.from ?? "");
  const room = typeof msg.room === "string" ? msg.room : "";
  li.dataset.from = from;
  li.dataset.room = room;
  if (myIds.has(from) || from === socket.id) li.classList.add("mine");
  const meta = document.createElement("span");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = myIds.has(from) ? "you" : from.slice(0, 8);
  who.title = from;
  const where = document.createElement("span");
  where.className = room ? "room" : "room everyone";
  where.textContent = room ? `#${room}` : "everyone";
  const time = document.createElement("time");
  time.textContent = clock().slice(0, 8);
  meta.append(who, where, time);
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = String(msg.text ?? "");
  li.append(meta, text);
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.append(li);
  while (list.children.length > 300) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function joinRoom(socket, room) {
  socket.emit("join", room, (joined) => {
    // The gateway refuses some rooms (names shaped like socket ids, past
    // 50 rooms) and says why.
    if (joined && typeof joined === "object" && joined.error) {
      log(`room "${room}" refused: ${joined.error}`, "warn");
    } else {
      log(`joined room "${joined}"`, "ok");
    }
  });
}

function setupChat(socket, refresh) {
  const send = () => {
    const text = $("msg").value;
    if (!text.trim()) return;
    const payload = currentRoom ? { room: currentRoom, text } : { text };
    socket.emit("chat", payload);
    $("msg").value = "";
    if (!socket.connected) log(`offline: "${text}" waits in the outbox`, "warn");
    refresh();
  };
  $("send").addEventListener("click", send);
  $("msg").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  const join = () => {
    const room = $("room").value.trim();
    if (room === currentRoom) return;
    if (currentRoom) {
      const old = currentRoom;
      socket.emit("leave", old, () => log(`left room "${old}"`));
    }
    currentRoom = room;
    setText("current-room", room ? `#${room}` : "everyone");
    if (room) joinRoom(socket, room);
    refresh();
  };
  $("join").addEventListener("click", join);
  $("room").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      join();
    }
  });

  socket.on("chat", (msg) => addMessage(msg, socket)); // a trailing offset argument is ignored
}

// ------------------------------------------------------------------ connection

function watchManager(socket, refresh) {
  const manager = socket.io;

  // The delay of each scheduled reconnect: both clients compute it with
  // backoff.duration(), which also counts the attempt.
  const duration = manager.backoff.duration.bind(manager.backoff);
  manager.backoff.duration = () => {
    const ms = duration();
    view.state = "reconnecting";
    view.attempt = manager.backoff.attempts;
    view.nextDelay = String(ms);
    view.retryAt = Date.now() + ms;
    log(`reconnect attempt ${view.attempt} in ${ms} ms`, "warn");
    refresh();
    return ms;
  };

  manager.on("open", () => {
    const engine = manager.engine;
    view.transport = engine.transport.name;
    view.upgradedAt = "";
    view.upgradeAfter = "";
    view.openedAt = performance.now();
    log(`transport open: ${engine.transport.name}`);
    engine.on("upgrade", (transport) => {
      view.transport = transport.name;
      view.upgradedAt = clock();
      view.upgradeAfter = `(+${Math.round(performance.now() - view.openedAt)} ms)`;
      log(`upgraded to ${transport.name}`, "ok");
      refresh();
    });
    refresh();
  });
  manager.on("close", (reason) => {
    log(`transport closed: ${reason}`, "warn");
    refresh();
  });
  manager.on("ping", () => {
    view.lastPing = Date.now();
  });
  manager.on("reconnect_attempt", (n) => {
    log(`reconnect attempt ${n}: connecting…`);
    refresh();
  });
  manager.on("reconnect", (n) => log(`reconnected after ${n} attempt${n === 1 ? "" : "s"}`, "ok"));
}

function watchSocket(socket, refresh) {
  let everConnected = false;

  socket.on("connect", () => {
    myIds.add(socket.id);
    view.state = "connected";
    view.attempt = 0;
    view.nextDelay = "";
    view.retryAt = 0;
    if (socket.io.engine && socket.io.engine.transport) view.transport = socket.io.engine.transport.name;
    if (everConnected) {
      view.recovered = socket.recovered ? "yes" : "no";
      log(socket.recovered
        ? `reconnected as ${socket.id}: recovered (same id, rooms kept, missed events replayed)`
        : `reconnected as ${socket.id}: new session${currentRoom ? `, re-joined #${currentRoom}` : ""}`,
      socket.recovered ? "ok" : "warn");
    } else {
      log(`connected as ${socket.id}`, "ok");
    }
    everConnected = true;
    refresh();
  });

  socket.on("disconnect", (reason) => {
    view.state = socket.active ? "reconnecting" : "disconnected";
    if (!socket.active) {
      view.attempt = 0;
      view.nextDelay = "";
    }
    log(`disconnected: ${reason}`, "error");
    // Queue the room first: if the session is not recovered, the server has
    // forgotten our rooms, and the buffered join then goes out before the
    // buffered messages. (With recovery it is a harmless repeat.)
    if (currentRoom) joinRoom(socket, currentRoom);
    refresh();
  });

  socket.on("connect_error", (err) => {
    if (!socket.active) view.state = "disconnected";
    const which = view.state === "reconnecting" ? ` (attempt ${view.attempt})` : "";
    log(`connect error${which}: ${(err && err.message) || err}`, "error");
    refresh();
  });
}

function setupControls(socket, refresh) {
  $("block-ws").addEventListener("change", (e) => {
    const blocked = e.target.checked;
    socket.io.opts.transports = blocked ? ["polling"] : [...ALL_TRANSPORTS];
    log(blocked ? "WebSocket blocked: reconnecting with polling only" : "WebSocket allowed again: reconnecting", "warn");
    // Close the transport: the client reconnects by itself with the new list.
    if (socket.connected && socket.io.engine) socket.io.engine.close();
    refresh();
  });

  $("drop").addEventListener("click", () => {
    if (!socket.io.engine) return;
    log("dropping the connection", "warn");
    socket.io.engine.close();
    refresh();
  });

  $("toggle").addEventListener("click", () => {
    if (socket.active) {
      log("disconnecting (no automatic reconnect)");
      socket.disconnect();
      view.state = "disconnected";
    } else {
      log("connecting");
      view.state = "connecting";
      socket.connect();
    }
    refresh();
  });
}

/** Shows whether the gateway keeps sessions for recovery (its /health says). */
async function showRecoverySetting() {
  let text = "unknown";
  try {
    const health = await (await fetch("/health", { cache: "no-store" })).json();
    const ms = Number(health.recovery_ms) || 0;
    text = ms > 0
      ? `on: missed messages are replayed after a reconnect within ${ms / 1000} s`
      : "off: start the gateway with --recovery-ms 120000 to turn it on";
  } catch (err) {
    text = `unknown (${err})`;
  }
  setText("recovery-setting", text);
  $("recovery-setting").dataset.on = String(text.startsWith("on"));
}

async function main() {
  showRecoverySetting();
  const client = await loadClient();
  setText("client-kind", client.kind);
  document.body.dataset.client = client.kind;
  log(`using ${client.kind}${client.kind === "mini-client" ? " (socket.io-client bundle not served)" : ""}`);

  const socket = client.io({
    transports: $("block-ws").checked ? ["polling"] : [...ALL_TRANSPORTS],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  window.demoSocket = socket; // for poking around in the console

  const refresh = () => render(socket);
  watchManager(socket, refresh);
  watchSocket(socket, refresh);
  setupControls(socket, refresh);
  setupChat(socket, refresh);
  startHeartbeat(socket);
  setInterval(refresh, 250);
  refresh();
}

main().catch((err) => {
  log(`failed to start: ${err && err.message}`, "error");
  throw err;
});
