// The demo page in headless Chromium, through nginx round-robin over a
// cluster of socketgate nodes, with WebSocket blocked from the start
// (tests/browser_cluster.rs starts Redis, the nodes and nginx).
//
//   node browser-cluster.mjs <nginx-url> <artifacts-dir>
//
// Two pages (separate browser contexts) open the demo page through nginx.
// #block-ws is checked before app.js runs (an init script checks it when the
// document becomes interactive, which is before module scripts run), so the
// page's very first connection uses transports ["polling"]: no WebSocket is
// ever opened and every /socket.io/ request is a polling request. Both pages
// join one room and chat A->B and B->A.
//
// Then the script prints a progress line {"event":"owner","sid":<engine sid
// of page A>,"handshake":<path?query of A's handshake request>} and waits for
// a line "KILLED <node id>" on stdin: the Rust test SIGKILLs the node that
// owns that session. Page A must reconnect by itself (same document, no
// navigation), still over polling, with a new engine session, #recovered
// "yes" and the same socket id; both pages chat again in the same room.
//
// Output follows harness.mjs: JSON progress lines, then the verdict line.
// Screenshots go to <artifacts-dir>/cluster-<step>.png.
//
// Environment: CLUSTER_STEP_TIMEOUT_MS (15 s: every wait),
// CLUSTER_RECONNECT_TIMEOUT_MS (30 s: page A back after the kill),
// CLUSTER_GLOBAL_TIMEOUT_MS (90 s, under the Rust driver's 100 s),
// CHROMIUM_PATH (/usr/bin/chromium).

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";

import { chromium } from "playwright-core";

import { armWatchdog, check, emit, fail, finish, initRunner, now, ScenarioError, sleep, usageExit, withDeadline } from "./harness.mjs";

const USAGE = "usage: node browser-cluster.mjs <nginx-url> <artifacts-dir>\n";
const STEP_MS = Number(process.env.CLUSTER_STEP_TIMEOUT_MS || 15_000);
const RECONNECT_MS = Number(process.env.CLUSTER_RECONNECT_TIMEOUT_MS || 30_000);
const GLOBAL_MS = Number(process.env.CLUSTER_GLOBAL_TIMEOUT_MS || 90_000);
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

// ------------------------------------------------------------------ arguments

const [urlArg, artifactsArg, ...extra] = process.argv.slice(2);
if (!urlArg || !artifactsArg || extra.length) usageExit(USAGE, "expected <nginx-url> <artifacts-dir>");
let baseUrl;
try {
  baseUrl = new URL("/", urlArg).href;
} catch (e) {
  usageExit(USAGE, `invalid url ${JSON.stringify(urlArg)}: ${e.message}`);
}
const artifacts = path.resolve(artifactsArg);
fs.mkdirSync(artifacts, { recursive: true });

initRunner({ scenario: "cluster-polling-kill" }, { onFail: () => {} });
armWatchdog(GLOBAL_MS);

// ------------------------------------------------------------------ stdin

// Lines from the Rust test ("KILLED <id>"), handed to whoever waits.
const stdinLines = [];
let stdinWaiter = null;
let stdinClosed = false;
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  stdinLines.push(line.trim());
  if (stdinWaiter) stdinWaiter();
});
rl.on("close", () => {
  stdinClosed = true;
  if (stdinWaiter) stdinWaiter();
});

async function nextStdinLine(ms, what) {
  const deadline = Date.now() + ms;
  while (stdinLines.length === 0) {
    if (stdinClosed) throw new ScenarioError(`stdin closed while waiting for ${what}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new ScenarioError(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      stdinWaiter = () => { clearTimeout(timer); resolve(); };
    });
    stdinWaiter = null;
  }
  return stdinLines.shift();
}

// ------------------------------------------------------------------ the browser

let browser = null;
const pages = [];
const screenshots = [];

async function closeBrowser() {
  const b = browser;
  browser = null;
  if (b) await withDeadline(b.close(), 10_000, "the browser to close").catch((e) => emit({ event: "browser-close-failed", error: e.message }));
}

for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => fail(`terminated by ${sig}`));

async function launchBrowser() {
  browser = await withDeadline(chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: STEP_MS,
  }), STEP_MS + 2000, "Chromium to start");
  emit({ event: "browser", version: browser.version() });
}

/** The engine.io facts of a /socket.io/ request URL. */
function engineRequest(url, method) {
  const u = new URL(url);
  if (!u.pathname.startsWith("/socket.io/") || u.pathname.endsWith(".js")) return null;
  return {
    method,
    transport: u.searchParams.get("transport"),
    sid: u.searchParams.get("sid"),
    uri: u.pathname + u.search,
    at: now(),
  };
}

/**
 * A page in a new browser context, WebSocket blocked before the page's
 * script runs, with its network, navigations and errors watched.
 */
async function openPage(name) {
  const context = await withDeadline(browser.newContext({ viewport: { width: 1280, height: 900 } }), STEP_MS, "a browser context");
  // "interactive" comes when parsing ends, before module scripts (app.js)
  // run: the box is checked when app.js picks the transports of its first
  // connection, as if the user had checked it before connecting.
  await context.addInitScript(() => {
    document.addEventListener("readystatechange", () => {
      if (document.readyState !== "interactive") return;
      const box = document.getElementById("block-ws");
      if (box) box.checked = true;
    });
  });
  const page = await withDeadline(context.newPage(), STEP_MS, "a new page");
  page.setDefaultTimeout(STEP_MS);
  const info = { name, page, websockets: [], requests: [], failedRequests: 0, navigations: 0, errors: [] };
  page.on("websocket", (ws) => {
    info.websockets.push(ws.url());
    emit({ event: "websocket-opened", page: name, url: ws.url() });
  });
  page.on("request", (req) => {
    const r = engineRequest(req.url(), req.method());
    if (r) info.requests.push(r);
  });
  page.on("requestfailed", (req) => {
    if (engineRequest(req.url(), req.method())) {
      info.failedRequests++;
      emit({ event: "request-failed", page: name, method: req.method(), url: req.url(), error: req.failure()?.errorText });
    }
  });
  page.on("response", (res) => {
    if (res.status() >= 400 && engineRequest(res.url(), res.request().method())) {
      emit({ event: "error-response", page: name, status: res.status(), method: res.request().method(), url: res.url() });
    }
  });
  page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) info.navigations++; });
  page.on("pageerror", (e) => { info.errors.push(String(e)); emit({ event: "page-error", page: name, error: String(e) }); });
  page.on("console", (msg) => { if (msg.type() === "error") emit({ event: "console-error", page: name, text: msg.text() }); });
  pages.push(info);
  await page.goto(baseUrl, { waitUntil: "load", timeout: STEP_MS });
  emit({ event: "page-loaded", page: name, url: baseUrl });
  return info;
}

async function screenshot(info, step) {
  const file = path.join(artifacts, `cluster-${step}.png`);
  await info.page.screenshot({ path: file, fullPage: true, timeout: STEP_MS });
  screenshots.push(path.basename(file));
}

// ------------------------------------------------------------------ DOM contract

const evaluate = (info, fn, arg) => withDeadline(info.page.evaluate(fn, arg), STEP_MS, `${info.name}: the page to answer`);

/** Polls `read` until `ok(value)` holds; fails after `ms` with the last value seen. */
async function waitUntil(what, read, ok, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await read();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new ScenarioError(`timed out after ${ms} ms waiting for ${what}`, { last });
    await sleep(100);
  }
}

/** The page's connection facts: what the DOM shows, and the client's own ids. */
function status(info) {
  return evaluate(info, () => {
    const t = (id) => (document.getElementById(id)?.textContent ?? "").trim();
    const s = window.demoSocket;
    return {
      clientKind: t("client-kind"), state: t("state"), transport: t("transport"), recovered: t("recovered"),
      recoverySetting: t("recovery-setting"), socketIdShown: t("socket-id"), blockWs: document.getElementById("block-ws").checked,
      socketId: s?.id ?? null, connected: !!s?.connected, engineSid: s?.io?.engine?.id ?? null,
      engineTransport: s?.io?.engine?.transport?.name ?? null, transports: s?.io?.opts?.transports ?? null,
    };
  });
}

const waitStatus = (info, what, ok, ms) => waitUntil(`${info.name}: ${what}`, () => status(info), ok, ms);
const onPolling = (s) => s.state === "connected" && s.connected && s.transport === "polling" && s.engineTransport === "polling" && !!s.engineSid;

/** The messages in #messages: text, from and room of each li. */
function messages(info) {
  return withDeadline(info.page.$$eval("#messages li", (lis) => lis.map((li) => ({
    text: li.querySelector(".text")?.textContent ?? null,
    from: li.dataset.from ?? null,
    room: li.dataset.room ?? null,
  }))), STEP_MS, `${info.name}: #messages`);
}

async function waitMessage(info, text, room, ms = STEP_MS) {
  const found = await waitUntil(`${info.name}: a message ${JSON.stringify(text)} in room ${JSON.stringify(room)}`,
    async () => (await messages(info)).filter((m) => m.text === text && m.room === room),
    (list) => list.length > 0, ms);
  return found[0];
}

async function sendChat(info, message) {
  await info.page.fill("#msg", message);
  await info.page.click("#send");
  emit({ event: "sent", page: info.name, text: message });
}

async function joinRoom(info, room) {
  await info.page.fill("#room", room);
  await info.page.click("#join");
  emit({ event: "join", page: info.name, room });
}

/**
 * Nothing but polling, ever: no WebSocket opened, every engine.io request a
 * polling one, and the client's transport list is polling alone.
 */
async function checkPollingOnly(info, when) {
  check(info.websockets.length === 0, `${info.name} (${when}): a WebSocket was opened`, { websockets: info.websockets });
  const other = info.requests.filter((r) => r.transport !== "polling");
  check(other.length === 0, `${info.name} (${when}): engine.io requests that are not polling`, { other });
  check(info.requests.length > 0, `${info.name} (${when}): no engine.io request seen`);
  const s = await status(info);
  check(JSON.stringify(s.transports) === JSON.stringify(["polling"]) && s.blockWs,
    `${info.name} (${when}): the client's transports are ${JSON.stringify(s.transports)}, #block-ws ${s.blockWs}`);
  return s;
}

/** `from` sends `text` to `room`; `to` gets it once, with `from`'s socket id. */
async function chatOnce(from, to, room, text) {
  await sendChat(from, text);
  const own = await waitMessage(from, text, room);
  const got = await waitMessage(to, text, room);
  check(got.from && got.from === own.from, `${from.name} and ${to.name} disagree on the sender of ${JSON.stringify(text)}`, { own, got });
  return got;
}

/** Every message in `texts` shows exactly once on the page. */
async function checkOnce(info, texts) {
  const all = (await messages(info)).map((m) => m.text);
  for (const t of texts) {
    const n = all.filter((x) => x === t).length;
    check(n === 1, `${info.name} shows ${JSON.stringify(t)} ${n} times`, { all });
  }
}

// ------------------------------------------------------------------ scenario

async function scenario() {
  await launchBrowser();
  const a = await openPage("a");
  const b = await openPage("b");

  const first = {};
  for (const p of [a, b]) {
    first[p.name] = await waitStatus(p, "connected over polling", onPolling);
    const s = first[p.name];
    check(s.clientKind === "socket.io-client", `${p.name}: #client-kind is ${JSON.stringify(s.clientKind)}, expected the socket.io-client bundle`);
    await checkPollingOnly(p, "first connection");
    const handshakes = p.requests.filter((r) => r.sid === null);
    check(handshakes.length === 1, `${p.name}: ${handshakes.length} handshakes before the kill, expected 1`, { requests: p.requests });
  }
  const setting = await waitUntil("a: #recovery-setting", async () => (await status(a)).recoverySetting, (t) => t && t !== "-");
  check(/^on: .* within 60 s$/.test(setting), `#recovery-setting is ${JSON.stringify(setting)}, expected on, 60 s`);

  const room = `cluster-${Date.now()}`;
  await joinRoom(a, room);
  await joinRoom(b, room);
  // A join and the chat after it go out in order on the same connection:
  // a page that sees its own room message is in the room.
  for (const p of [a, b]) {
    await sendChat(p, `${p.name} is here`);
    await waitMessage(p, `${p.name} is here`, room);
  }
  const aToB = await chatOnce(a, b, room, "hello from A");
  const bToA = await chatOnce(b, a, room, "hello from B");
  check(aToB.from !== bToA.from, "A and B have the same socket id", { aToB, bToA });
  await checkOnce(a, ["hello from A", "hello from B"]);
  await checkOnce(b, ["hello from A", "hello from B"]);
  await screenshot(a, "before-kill-a");
  await screenshot(b, "before-kill-b");

  // The session to kill: the page's engine sid, which must also be the sid
  // of its latest polling request (what the nodes route on).
  const before = await waitStatus(a, "still connected over polling", onPolling);
  const lastRequest = a.requests[a.requests.length - 1];
  check(lastRequest.sid === before.engineSid, "page A's latest request names another sid than its engine", { lastRequest, engineSid: before.engineSid });
  const handshake = a.requests.find((r) => r.sid === null);
  const bBefore = await status(b);
  await evaluate(a, () => { window.__clusterSamePage = true; });
  const navigationsBefore = a.navigations;
  const requestsBefore = a.requests.length;

  emit({ event: "owner", sid: before.engineSid, handshake: handshake.uri, socketId: before.socketId, bSid: bBefore.engineSid });
  const killed = await nextStdinLine(STEP_MS, "the KILLED line");
  check(/^KILLED \d+$/.test(killed), `unexpected line on stdin: ${JSON.stringify(killed)}`);
  const tKill = Date.now();
  emit({ event: "killed", line: killed });

  // A notices by itself (its pending poll fails), reconnects through nginx
  // to a surviving node, and recovers its session there.
  const after = await waitStatus(a, "reconnected over polling with a new engine session",
    (s) => onPolling(s) && s.engineSid !== before.engineSid && s.recovered !== "-", RECONNECT_MS);
  const reconnectMs = Date.now() - tKill;
  emit({ event: "reconnected", page: "a", ms: reconnectMs, sid: after.engineSid, recovered: after.recovered, socketId: after.socketId });
  check(after.recovered === "yes", `#recovered is ${JSON.stringify(after.recovered)} after the node died, expected "yes"`, { after });
  check(after.socketId === before.socketId, "page A's socket id changed across the recovery", { before, after });
  const samePage = await evaluate(a, () => window.__clusterSamePage === true);
  check(samePage && a.navigations === navigationsBefore, "page A was reloaded: it must reconnect by itself");
  const newHandshakes = a.requests.slice(requestsBefore).filter((r) => r.sid === null);
  check(newHandshakes.length >= 1, "page A reconnected without a new handshake", { requests: a.requests.slice(requestsBefore) });
  const bAfter = await waitStatus(b, "connected over polling", onPolling, RECONNECT_MS);

  // Chat again, both ways, in the same room (nobody joins again).
  const aToB2 = await chatOnce(a, b, room, "A after the kill");
  const bToA2 = await chatOnce(b, a, room, "B after the kill");
  check(aToB2.from === aToB.from, "A's messages name another sender after the kill", { aToB, aToB2 });
  // B's session too, whether its node died or not (recovery is on).
  check(bToA2.from === bToA.from, "B's messages name another sender after the kill", { bToA, bToA2, bBefore, bAfter });
  for (const p of [a, b]) await checkOnce(p, ["hello from A", "hello from B", "A after the kill", "B after the kill"]);

  const final = {};
  for (const p of [a, b]) {
    final[p.name] = await checkPollingOnly(p, "the end");
    check(onPolling(final[p.name]), `${p.name}: not connected over polling at the end`, { status: final[p.name] });
  }
  check(final.a.engineSid === after.engineSid, "page A changed sessions again after recovering", { after, final: final.a });
  const pageErrors = pages.flatMap((p) => p.errors.map((e) => `${p.name}: ${e}`));
  check(pageErrors.length === 0, "uncaught exceptions in the page", { pageErrors });
  await screenshot(a, "after-kill-a");
  await screenshot(b, "after-kill-b");

  return {
    room,
    killedSid: before.engineSid,
    handshake: handshake.uri,
    newSid: after.engineSid,
    bSidBefore: bBefore.engineSid,
    bSidAfter: final.b.engineSid,
    socketId: before.socketId,
    recovered: after.recovered,
    reconnectMs,
    requests: { a: a.requests.length, b: b.requests.length },
    failedRequests: { a: a.failedRequests, b: b.failedRequests },
  };
}

const started = Date.now();
scenario().then(
  async (details) => {
    await closeBrowser();
    finish(true, { ms: Date.now() - started, screenshots, ...details });
  },
  async (e) => {
    const details = e instanceof ScenarioError ? e.details : { stack: e && e.stack };
    for (const info of pages) {
      try {
        details[`status_${info.name}`] = await withDeadline(status(info), 2000, "status");
        await withDeadline(screenshot(info, `failure-${info.name}`), 5000, "failure screenshot");
        details[`log_${info.name}`] = await withDeadline(info.page.$$eval("#log li", (lis) => lis.slice(0, 20).map((li) => li.textContent)), 2000, "log");
      } catch {}
    }
    await closeBrowser();
    fail(e, { ms: Date.now() - started, screenshots, ...details });
  },
);
