// The socket.io Admin UI (@socket.io/admin-ui 0.5.x) against a socketgate
// gateway that tests/admin.rs started with --admin and a login.
//
//   node admin-e2e.mjs <browser|protocol|readonly|production> <gateway-url> <user> <password> [artifacts-dir]
//   node admin-e2e.mjs cluster <node-1-url> - - <node-2-url>
//
// Two test clients (socket.io-client 4.x) connect to the main namespace and
// join rooms through the relay: A joins "lobby" and "red", B joins "lobby"
// (rooms "relay:lobby" and "relay:red" on the gateway).
//
//   browser   headless Chromium opens <url>/admin/, logs in through the UI's
//             connection form, and its Sockets page lists A and B (their
//             ids, two rows); its Rooms page lists "lobby" with 2 sockets
//             and "red" with 1; its Events page lists A's echo (received
//             and sent back); clicking B's disconnect button disconnects B
//             ("io server disconnect") and its row goes; a second context
//             with a wrong password gets "Invalid credentials".
//   protocol  the admin namespace spoken by a socket.io-client: a wrong
//             password is refused; a login gets `session`, `config` (the
//             command features), `all_sockets` (A and B with their rooms)
//             and `server_stats`; `join`/`leave` by socket id change B's
//             rooms (seen by `room_joined`/`room_left`); `emit` to a room
//             reaches its members only; the session id logs in again
//             without the password (and the first dashboard hears
//             `socket_connected`); B's `echo` with a binary argument is
//             heard as `event_received` and `event_sent`, a chat to lobby as
//             `event_sent` to A and to B; a socket that connects and leaves
//             at once is heard both ways ("client namespace disconnect");
//             an upgrading client is heard as `socket_updated`; `_disconnect`
//             by room disconnects A (`socket_disconnected` with "server
//             namespace disconnect", `room_left` for its rooms).
//   readonly  config lists no command; `_disconnect`, `join` and `emit` are
//             ignored (A stays connected, B joins no room, nobody gets
//             hello), as seen after a barrier: the dashboard's connection
//             joins "/" after its commands, then A and B echo once.
//   production  (a gateway with --admin-mode production) config lacks
//             ALL_EVENTS; server_stats comes; a client joining a room,
//             chatting and leaving tells the dashboard nothing else.
//   cluster   two nodes on Redis, no login: A on node 1, B on node 2; a
//             dashboard on node 1 gets both in `all_sockets`, `server_stats`
//             from both nodes, `socket_connected` for C joining node 2, and
//             its `_disconnect` of B reaches node 2.
//
// Output follows harness.mjs: progress lines, then the verdict line.

import path from "node:path";

import { io } from "socket.io-client";

import { armWatchdog, check, emit, fail, finish, initRunner, ScenarioError, sleep, withDeadline } from "./harness.mjs";

const USAGE = "usage: node admin-e2e.mjs <browser|protocol|readonly|production> <gateway-url> <user> <password> [artifacts-dir]\n";
const STEP_MS = Number(process.env.E2E_STEP_TIMEOUT_MS || 10_000);
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

const [scenario, url, user, password, artifacts] = process.argv.slice(2);
if (!["browser", "protocol", "readonly", "cluster", "production"].includes(scenario) || !url || !user || !password) {
  process.stderr.write(USAGE);
  process.stdout.write(JSON.stringify({ ok: false, error: "bad arguments" }) + "\n");
  process.exit(2);
}

const sockets = [];
let browser = null;
initRunner({ scenario }, {
  onFail: () => {
    for (const s of sockets) s.close();
  },
});
armWatchdog(50_000);

/** A connected client of `nsp`, with what happened to it recorded. */
async function client(name, nsp = "/", opts = {}, base = url) {
  const socket = io(base + nsp, { forceNew: true, reconnection: false, ...opts });
  sockets.push(socket);
  socket.got = [];
  socket.disconnectReason = null;
  socket.onAny((ev, ...args) => socket.got.push([ev, ...args]));
  socket.on("disconnect", (reason) => { socket.disconnectReason = reason; emit({ event: "disconnect", name, reason }); });
  await withDeadline(new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  }), STEP_MS, `${name} to connect`);
  emit({ event: "connected", name, id: socket.id });
  return socket;
}

const join = (socket, room) => withDeadline(socket.emitWithAck("join", room), STEP_MS, `join ${room}`);

async function waitUntil(what, ok, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await ok();
    if (v) return v;
    if (Date.now() > deadline) throw new ScenarioError(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The test clients: A in lobby and red, B in lobby. */
async function testClients() {
  const a = await client("A");
  const b = await client("B");
  await join(a, "lobby");
  await join(a, "red");
  await join(b, "lobby");
  // The relay keeps clients' rooms apart from the server's: the gateway
  // (and so the dashboard) names them with its prefix.
  return { a, b, lobby: "relay:lobby", red: "relay:red" };
}

/** An admin connection; rejects with the connect_error message. */
function admin(auth) {
  return client("admin", "/admin", { auth });
}

async function protocol() {
  const { a, b, lobby, red } = await testClients();
  const refused = await admin({ username: user, password: password + "x" }).then(() => null, (e) => e.message);
  check(refused === "invalid credentials", "a wrong password is refused", { refused });

  const adm = await admin({ username: user, password });
  const first = (ev) => waitUntil(ev, () => adm.got.find((g) => g[0] === ev));
  const [, session] = await first("session");
  const [, config] = await first("config");
  const [, all] = await first("all_sockets");
  const [, stats] = await first("server_stats");
  check(typeof session === "string" && session.length >= 16, "a session id", { session });
  for (const f of ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]) {
    check(config.supportedFeatures.includes(f), `feature ${f}`, { config });
  }
  const main = all.filter((s) => s.nsp === "/");
  const byId = Object.fromEntries(main.map((s) => [s.id, s]));
  check(main.length === 2 && byId[a.id] && byId[b.id], "all_sockets lists A and B", { main });
  check(byId[a.id].rooms.includes(lobby) && byId[a.id].rooms.includes(red) && byId[a.id].rooms.includes(a.id), "A's rooms", byId[a.id]);
  check(byId[b.id].rooms.includes(lobby) && !byId[b.id].rooms.includes(red), "B's rooms", byId[b.id]);
  check(byId[a.id].clientId === a.io.engine.id.slice(0, 12), "clientId is the engine id's start", byId[a.id]);
  check(["polling", "websocket"].includes(byId[a.id].transport) && byId[a.id].handshake.headers, "transport and headers", byId[a.id]);
  check(all.some((s) => s.nsp === "/admin" && s.id === adm.id), "the admin socket is listed too", { all });
  for (const k of ["serverId", "hostname", "pid", "uptime", "clientsCount", "pollingClientsCount", "aggregatedEvents", "namespaces"]) {
    check(k in stats, `server_stats has ${k}`, { stats });
  }
  check(stats.clientsCount === 3, "3 clients (A, B, admin)", { stats });
  const mainNs = stats.namespaces.find((n) => n.name === "/");
  check(mainNs && mainNs.socketsCount === 2, "namespace / has 2 sockets", { stats });
  // The next report counts the traffic since the first.
  await waitUntil("a second server_stats", () => adm.got.filter((g) => g[0] === "server_stats").length >= 2, 5_000);
  const events = adm.got.filter((g) => g[0] === "server_stats").flatMap((g) => g[1].aggregatedEvents);
  check(events.some((e) => e.type === "packetsOut" && e.count > 0), "aggregated packetsOut", { events });

  // join / leave by socket id, seen live.
  adm.emit("join", "/", "blue", b.id);
  await waitUntil("room_joined blue", () => adm.got.find((g) => g[0] === "room_joined" && g[1] === "/" && g[2] === "blue" && g[3] === b.id));
  adm.emit("emit", "/", "blue", "hello", { n: 1 });
  await waitUntil("B gets hello", () => b.got.find((g) => g[0] === "hello" && g[1].n === 1));
  adm.emit("leave", "/", "blue", b.id);
  await waitUntil("room_left blue", () => adm.got.find((g) => g[0] === "room_left" && g[2] === "blue" && g[3] === b.id));
  check(!a.got.some((g) => g[0] === "hello"), "A, not in blue, got no hello", { got: a.got });

  // The session id logs in without the password.
  const again = await admin({ sessionId: session });
  check(again.connected, "the session id is accepted");
  const [, seen] = await waitUntil("socket_connected for it", () => adm.got.find((g) => g[0] === "socket_connected" && g[1].id === again.id));
  check(seen.nsp === "/admin" && seen.rooms.includes(again.id) && seen.handshake.url.startsWith("/socket.io/"), "socket_connected carries the socket", seen);
  const bogus = await admin({ sessionId: "nope" }).then(() => null, (e) => e.message);
  check(bogus === "invalid credentials", "an unknown session id is refused", { bogus });

  // Events, as they happen (development mode): B's echo is received, with
  // its binary argument, and sent back to B; a chat to "lobby" is sent to
  // each of A and B.
  const blob = Buffer.from([1, 2, 3, 250]);
  b.emit("echo", { n: 7 }, blob);
  const [, rNsp, rId, rArgs, rAt] = await waitUntil("event_received echo", () =>
    adm.got.find((g) => g[0] === "event_received" && g[2] === b.id && g[3][0] === "echo"));
  check(rNsp === "/" && rArgs[1].n === 7 && Buffer.isBuffer(rArgs[2]) && rArgs[2].equals(blob), "event_received carries the event with its binary argument", { rArgs });
  check(!Number.isNaN(Date.parse(rAt)), "event_received has a date", { rAt });
  const [, , , sArgs] = await waitUntil("event_sent echo", () =>
    adm.got.find((g) => g[0] === "event_sent" && g[2] === b.id && g[3][0] === "echo"));
  check(sArgs[1].n === 7 && Buffer.isBuffer(sArgs[2]) && sArgs[2].equals(blob), "event_sent carries the echo", { sArgs });
  a.emit("chat", { room: "lobby", text: "hi all" });
  for (const [who, s] of [["A", a], ["B", b]]) {
    await waitUntil(`event_sent chat to ${who}`, () =>
      adm.got.find((g) => g[0] === "event_sent" && g[2] === s.id && g[3][0] === "chat" && g[3][1].text === "hi all"));
  }
  check(!adm.got.some((g) => (g[0] === "event_sent" || g[0] === "event_received") && g[1] === "/admin"), "the dashboard's own traffic is not reported", {});

  // A socket that comes and goes at once is seen coming and going, with
  // socket.io's reason.
  const brief = await client("brief");
  const briefId = brief.id;
  brief.disconnect();
  await waitUntil("socket_connected brief", () => adm.got.find((g) => g[0] === "socket_connected" && g[1].id === briefId));
  const [, , , briefReason] = await waitUntil("socket_disconnected brief", () =>
    adm.got.find((g) => g[0] === "socket_disconnected" && g[2] === briefId));
  check(briefReason === "client namespace disconnect", "the client's own disconnect", { briefReason });

  // A client that starts on polling is seen upgrading.
  const up = await client("upgrading", "/", { transports: ["polling", "websocket"] });
  const [, upSeen] = await waitUntil("socket_connected upgrading", () => adm.got.find((g) => g[0] === "socket_connected" && g[1].id === up.id));
  if (upSeen.transport === "polling") {
    const [, update] = await waitUntil("socket_updated upgrading", () => adm.got.find((g) => g[0] === "socket_updated" && g[1].id === up.id));
    check(update.nsp === "/" && update.transport === "websocket", "socket_updated says websocket", { update });
  } else {
    // It upgraded before it joined the namespace: nothing to update.
    check(upSeen.transport === "websocket", "a known transport", { upSeen });
  }
  emit({ event: "upgrade", seenAs: upSeen.transport });

  // _disconnect by room (A's own): A only.
  const aId = a.id; // socket.io-client forgets it on disconnect
  adm.emit("_disconnect", "/", false, aId);
  await waitUntil("A disconnected", () => a.disconnectReason);
  check(a.disconnectReason === "io server disconnect", "A told by the server", { reason: a.disconnectReason });
  const [, , , aReason] = await waitUntil("socket_disconnected A", () => adm.got.find((g) => g[0] === "socket_disconnected" && g[2] === aId));
  check(aReason === "server namespace disconnect", "the server's disconnect", { aReason });
  const leftLobby = adm.got.find((g) => g[0] === "room_left" && g[2] === lobby && g[3] === aId);
  check(leftLobby, "A left its rooms", { got: adm.got.map((g) => g[0]) });
  check(b.connected, "B still connected");
  return { clients: 2, upgradeSeenAs: upSeen.transport };
}

/** Production mode: the overview only. */
async function production() {
  const { a } = await testClients();
  const adm = await admin(user === "-" ? undefined : { username: user, password });
  const [, config] = await waitUntil("config", () => adm.got.find((g) => g[0] === "config"));
  check(!config.supportedFeatures.includes("ALL_EVENTS") && config.supportedFeatures.includes("AGGREGATED_EVENTS"), "no ALL_EVENTS", { config });
  await waitUntil("server_stats", () => adm.got.find((g) => g[0] === "server_stats"));
  const c = await client("C");
  a.emit("chat", { room: "lobby", text: "quiet" });
  await join(c, "lobby");
  c.disconnect();
  // A report after all of that: whatever would have been told was told.
  const reports = adm.got.filter((g) => g[0] === "server_stats").length;
  await waitUntil("another server_stats", () => adm.got.filter((g) => g[0] === "server_stats").length > reports, 5_000);
  const told = adm.got.map((g) => g[0]).filter((e) => !["session", "config", "server_stats"].includes(e));
  check(told.length === 0, "nothing but the overview", { told });
  return {};
}

async function readonly() {
  const { a, b } = await testClients();
  const adm = await admin({ username: user, password });
  const [, config] = await waitUntil("config", () => adm.got.find((g) => g[0] === "config"));
  for (const f of ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]) {
    check(!config.supportedFeatures.includes(f), `no feature ${f}`, { config });
  }
  adm.emit("_disconnect", "/", false, a.id);
  adm.emit("join", "/", "blue", b.id);
  adm.emit("emit", "/", "", "hello", 1);
  // A barrier instead of a wait: the dashboard's connection joins "/" after
  // its commands, so the gateway has handled them (and queued whatever they
  // caused) once that join is answered; then A's and B's echoes come back
  // after anything queued for them before.
  const barrier = adm.io.socket("/");
  await withDeadline(new Promise((resolve, reject) => {
    barrier.once("connect", resolve);
    barrier.once("connect_error", reject);
  }), STEP_MS, "the barrier to connect");
  barrier.disconnect();
  for (const s of [a, b]) await withDeadline(s.emitWithAck("echo", "barrier"), STEP_MS, "an echo");
  check(a.connected && !a.disconnectReason, "A still connected", { reason: a.disconnectReason });
  check(!adm.got.some((g) => g[0] === "room_joined" && g[2] === "blue"), "B did not join blue", { got: adm.got });
  check(!a.got.some((g) => g[0] === "hello") && !b.got.some((g) => g[0] === "hello"), "no emit", {});
  return {};
}

// ------------------------------------------------------------------ the browser

async function login(page, pw) {
  await page.goto(url + "/admin/", { waitUntil: "load", timeout: STEP_MS });
  await page.getByLabel("Server URL").fill(url);
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(pw);
  await page.getByRole("button", { name: "Connect" }).click();
}

async function shot(page, step) {
  if (!artifacts) return;
  await page.screenshot({ path: path.join(artifacts, `admin-${step}.png`), fullPage: true, timeout: STEP_MS });
}

/** The text of each row of the page's data table. */
const rows = (page) => page.locator("table tbody tr").allTextContents();

async function inBrowser() {
  const { chromium } = await import("playwright-core");
  const { a, b, lobby, red } = await testClients();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: STEP_MS });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Nothing but the gateway: the UI is served whole from it.
  const outside = [];
  page.on("request", (req) => { if (!req.url().startsWith(url)) outside.push(req.url()); });

  await login(page, password);
  // The form closes once logged in.
  await page.getByRole("button", { name: "Connect" }).waitFor({ state: "hidden" });
  await page.goto(url + "/admin/#/sockets/");
  const listed = await waitUntil("A and B in the sockets table", async () => {
    const r = await rows(page);
    return r.length === 2 && r.some((t) => t.includes(a.id)) && r.some((t) => t.includes(b.id)) ? r : null;
  });
  emit({ event: "sockets-table", rows: listed });
  await shot(page, "sockets");

  await page.goto(url + "/admin/#/rooms/");
  const rooms = await waitUntil("lobby (2) and red (1) in the rooms table", async () => {
    const r = (await rows(page)).map((t) => t.replace(/\s+/g, " "));
    const has = (room, n) => r.some((t) => t.includes(room) && new RegExp(`\\b${n}\\b`).test(t.replace(room, "")));
    return has(lobby, 2) && has(red, 1) ? r : null;
  });
  emit({ event: "rooms-table", rows: rooms });
  await shot(page, "rooms");

  // A's echo, heard as it happens: the Events page lists it received from
  // A and sent to A.
  a.emit("echo", { marker: "seen-in-the-browser" });
  await page.goto(url + "/admin/#/events/");
  const events = await waitUntil("A's echo on the events page, received and sent", async () => {
    const r = (await rows(page)).filter((t) => t.includes("echo") && t.includes(a.id));
    return r.length >= 2 ? r : null;
  });
  emit({ event: "events-table", rows: events });
  await shot(page, "events");

  // Disconnect B from its row.
  await page.goto(url + "/admin/#/sockets/");
  const row = page.locator("table tbody tr", { hasText: b.id });
  await row.locator("button").click();
  await waitUntil("B disconnected", () => b.disconnectReason);
  check(b.disconnectReason === "io server disconnect", "B told by the server", { reason: b.disconnectReason });
  // The click reaches the row too, which opens B's details (as with the
  // Node server): they show it disconnected.
  await page.getByText("disconnected", { exact: true }).first().waitFor();
  await shot(page, "details");
  await page.goto(url + "/admin/#/sockets/");
  let last = null;
  await waitUntil("B's row gone", async () => {
    last = await rows(page);
    return last.length === 1 && last[0].includes(a.id);
  }).catch(async (e) => {
    await shot(page, "not-gone");
    e.details = { rows: last };
    throw e;
  });
  check(a.connected, "A still connected");
  await shot(page, "disconnected");

  // A wrong password, in a context of its own (no saved session).
  const other = await (await browser.newContext()).newPage();
  other.setDefaultTimeout(STEP_MS);
  await login(other, password + "x");
  await other.getByText("Invalid credentials").waitFor();
  await shot(other, "refused");

  check(errors.length === 0, "no page error", { errors });
  check(outside.length === 0, "no request outside the gateway", { outside });
  await browser.close();
  browser = null;
  return { listed: listed.length, rooms };
}

async function cluster() {
  const url2 = artifacts;
  const a = await client("A");
  const b = await client("B", "/", {}, url2);
  const adm = await admin(undefined);
  const [, all] = await waitUntil("all_sockets", () => adm.got.find((g) => g[0] === "all_sockets"));
  const ids = all.filter((s) => s.nsp === "/").map((s) => s.id);
  check(ids.includes(a.id) && ids.includes(b.id), "all_sockets has A (node 1) and B (node 2)", { all });
  const servers = await waitUntil("server_stats from two nodes", () => {
    const ids = new Set(adm.got.filter((g) => g[0] === "server_stats").map((g) => g[1].serverId));
    return ids.size === 2 ? [...ids] : null;
  });
  const c = await client("C", "/", {}, url2);
  await waitUntil("socket_connected C", () => adm.got.find((g) => g[0] === "socket_connected" && g[1].id === c.id));
  const bId = b.id;
  adm.emit("_disconnect", "/", false, bId);
  await waitUntil("B disconnected", () => b.disconnectReason);
  check(b.disconnectReason === "io server disconnect", "B told by its node", { reason: b.disconnectReason });
  await waitUntil("socket_disconnected B", () => adm.got.find((g) => g[0] === "socket_disconnected" && g[2] === bId));
  check(a.connected && c.connected, "A and C still connected");
  return { servers };
}

const run = { browser: inBrowser, protocol, readonly, cluster, production }[scenario];
try {
  const details = await run();
  for (const s of sockets) s.close();
  finish(true, details);
} catch (e) {
  if (browser) await browser.close().catch(() => {});
  fail(e, e.details || {});
}
