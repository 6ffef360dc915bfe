// Browser end-to-end tests of the demo page served by the `socketgate` binary:
// headless Chromium (Debian's, driven by playwright-core) against the real binary.
//
//   node browser-e2e.mjs <scenario> <socketgate-binary> <artifacts-dir> [--no-bundle]
//
// The script starts the binary itself on a free 127.0.0.1 port, with the repository
// root as its working directory (so the default client bundle path resolves), waits
// for its "listening on http://" line, drives the page through its DOM contract (ids
// below), saves PNG screenshots as <artifacts-dir>/<scenario>[-no-bundle]-<step>.png
// (plus the gateway's log as ...-gateway.log), and stops everything it started,
// also on failure. With --no-bundle the binary gets `--client-bundle /nonexistent`,
// so the page must fall back to its own mini-client.
//
// Scenarios:
//   upgrade   #state connected, #transport websocket, #upgraded-at set, #rtt a number;
//             the browser really has an open WebSocket to /socket.io/.
//   polling   after upgrading, #block-ws checked: the page reconnects with polling and
//             stays on it >= 2 s (no new WebSocket is opened); a chat message sent to
//             everyone then shows up in #messages.
//   chat      two browser contexts join room "lobby"; "hello from A" (typed, #send)
//             reaches B as li[data-room="lobby"] .text, "hello from B" (typed, Enter)
//             reaches A; both pages agree on the sender's id; a third page in no
//             room gets neither.
//   recovery  #drop on page A (connected, holding an offset from a chat it got); while A
//             is away page B chats to everyone; A reconnects with #recovered "yes", keeps
//             its socket id (the from of its messages) and gets B's message once.
//   restart   the binary gets SIGTERM: the page shows reconnecting (#attempt and
//             #next-delay recorded); 3 messages sent while it is down make #outbox 3;
//             the binary starts again on the same port: the page reconnects without a
//             reload, #outbox drops to 0, and "offline 1..3" arrive once each, in order.
//
// Every scenario also checks #recovery-setting (on only in the recovery
// scenario, which starts the binary with --recovery-ms 120000) and
// #client-kind (socket.io-client, or mini-client with
// --no-bundle) and that the page threw no uncaught exception. Output follows
// harness.mjs: progress lines, then the verdict line ({"ok":true,...} exit 0,
// {"ok":false,"error":...} exit 1; exit 2 on usage errors).
//
// Environment: E2E_STEP_TIMEOUT_MS (10 s: every wait), E2E_GLOBAL_TIMEOUT_MS (50 s: the
// whole run, under the Rust driver's 60 s), CHROMIUM_PATH (/usr/bin/chromium).

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { armWatchdog, check, emit, fail, finish, initRunner, now, ScenarioError, sleep, usageExit, withDeadline } from "./harness.mjs";

const USAGE = "usage: node browser-e2e.mjs <upgrade|polling|chat|recovery|restart> <socketgate-binary> <artifacts-dir> [--no-bundle]\n";
const SCENARIOS = ["upgrade", "polling", "chat", "recovery", "restart"];
const STEP_MS = Number(process.env.E2E_STEP_TIMEOUT_MS || 10_000);
const GLOBAL_MS = Number(process.env.E2E_GLOBAL_TIMEOUT_MS || 50_000);
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// ------------------------------------------------------------------ arguments

const argv = process.argv.slice(2);
const noBundle = argv.includes("--no-bundle");
const [scenario, binaryArg, artifactsArg, ...extra] = argv.filter((a) => a !== "--no-bundle");
if (!SCENARIOS.includes(scenario)) usageExit(USAGE, `unknown scenario ${JSON.stringify(scenario)}`);
if (!binaryArg || !artifactsArg || extra.length) usageExit(USAGE, "expected <scenario> <socketgate-binary> <artifacts-dir> [--no-bundle]");
const binary = path.resolve(binaryArg);
const artifacts = path.resolve(artifactsArg);
if (!fs.existsSync(binary)) usageExit(USAGE, `no socketgate binary at ${binary}`);
fs.mkdirSync(artifacts, { recursive: true });
const prefix = `${scenario}${noBundle ? "-no-bundle" : ""}`;
const expectedKind = noBundle ? "mini-client" : "socket.io-client";

// ------------------------------------------------------------------ cleanup

// What this run started, so that every exit path stops it.
const gateways = new Set();
const everyGateway = [];
let browser = null;
const pages = new Map(); // name -> page
const screenshots = [];

/** Synchronous last resort (a failed verdict exits at once): kill the binaries; the
 * browser is killed by playwright-core's own exit handler. */
function killAllSync() {
  for (const g of gateways) g.killSync();
}

/** The orderly way: stop the binaries (SIGTERM, then SIGKILL after 15 s), then close
 * the browser. In that order, the pages' pending polls get the close packet; a polling
 * session whose browser is already gone would hold the shutdown for its 10 s grace. */
async function stopAll() {
  await Promise.all([...gateways].map((g) => g.stop()));
  const b = browser;
  browser = null;
  if (b) await withDeadline(b.close(), 10_000, "the browser to close").catch((e) => emit({ event: "browser-close-failed", error: e.message }));
}

for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, () => fail(`terminated by ${sig}`));

// ------------------------------------------------------------------ the binary

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const GATEWAY_LOG = path.join(artifacts, `${prefix}-gateway.log`);
fs.writeFileSync(GATEWAY_LOG, "");

// setpriv's parent-death signal kills the binary even if this script is SIGKILLed.
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p));

class Gateway {
  constructor(port, label) {
    this.port = port;
    this.label = label;
    this.log = fs.createWriteStream(GATEWAY_LOG, { flags: "a" });
    this.tail = [];
    everyGateway.push(this);
  }

  async start() {
    // Recovery is off by default (as in the reference server); the
    // recovery scenario turns it on, the others check the page says so.
    const recovery = scenario === "recovery" ? ["--recovery-ms", "120000"] : [];
    const args = ["--addr", `127.0.0.1:${this.port}`, ...recovery, ...(noBundle ? ["--client-bundle", "/nonexistent"] : [])];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SOCKETGATE_")));
    env.RUST_LOG = env.RUST_LOG || "info";
    env.NO_COLOR = "1";
    const [cmd, cmdArgs] = SETPRIV ? [SETPRIV, ["--pdeathsig", "KILL", "--", binary, ...args]] : [binary, args];
    this.child = spawn(cmd, cmdArgs, { cwd: REPO_ROOT, env, stdio: ["ignore", "ignore", "pipe"] });
    gateways.add(this);
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => {
      gateways.delete(this);
      this.log.write(`--- ${this.label} exited (code ${code}, signal ${signal})\n`);
      resolve({ code, signal });
    }));
    this.log.write(`--- ${this.label}: ${binary} ${args.join(" ")} (cwd ${REPO_ROOT})\n`);
    const listening = new Promise((resolve) => {
      let buf = "";
      this.child.stderr.on("data", (chunk) => {
        this.log.write(chunk);
        buf += chunk.toString();
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.tail.push(line);
          if (this.tail.length > 30) this.tail.shift();
          const m = line.match(/listening on (http:\/\/\S+)/);
          if (m) resolve(m[1]);
        }
      });
    });
    const early = this.exited.then(({ code, signal }) => {
      throw new ScenarioError(`${this.label} exited before listening (code ${code}, signal ${signal})`, { gatewayLog: this.tail });
    });
    const url = await withDeadline(Promise.race([listening, early]), STEP_MS, `${this.label} to listen`);
    emit({ event: "gateway-listening", label: this.label, url, pid: this.child.pid });
    return url;
  }

  /** SIGTERM (the graceful shutdown), and waits for the exit; SIGKILL after 15 s. */
  async stop() {
    if (!gateways.has(this)) return this.exited;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  killSync() {
    try { this.child.kill("SIGKILL"); } catch {}
  }
}

// ------------------------------------------------------------------ the browser

async function launchBrowser() {
  browser = await withDeadline(chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    // playwright-core gives every launch a fresh user-data-dir (removed on close).
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: STEP_MS,
  }), STEP_MS + 2000, "Chromium to start");
  emit({ event: "browser", version: browser.version() });
}

/** A page in a new browser context, with its network and console watched. */
async function openPage(name, url) {
  const context = await withDeadline(browser.newContext({ viewport: { width: 1280, height: 900 } }), STEP_MS, "a browser context");
  const page = await withDeadline(context.newPage(), STEP_MS, "a new page");
  page.setDefaultTimeout(STEP_MS);
  const info = { name, page, websockets: [], pollingRequests: 0, navigations: 0, errors: [] };
  page.on("websocket", (ws) => {
    const entry = { url: ws.url(), at: now(), closed: false, framesReceived: 0 };
    info.websockets.push(entry);
    ws.on("framereceived", () => entry.framesReceived++);
    ws.on("close", () => { entry.closed = true; });
    emit({ event: "websocket-open", page: name, url: ws.url() });
  });
  page.on("request", (req) => { if (req.url().includes("transport=polling")) info.pollingRequests++; });
  page.on("framenavigated", (frame) => { if (frame === page.mainFrame()) info.navigations++; });
  page.on("pageerror", (e) => { info.errors.push(String(e)); emit({ event: "page-error", page: name, error: String(e) }); });
  page.on("console", (msg) => { if (msg.type() === "error") emit({ event: "console-error", page: name, text: msg.text() }); });
  pages.set(name, info);
  await page.goto(url, { waitUntil: "load", timeout: STEP_MS });
  emit({ event: "page-open", page: name, url });
  return info;
}

async function screenshot(info, step) {
  const file = path.join(artifacts, `${prefix}-${step}.png`);
  await info.page.screenshot({ path: file, fullPage: true, timeout: STEP_MS });
  screenshots.push(path.basename(file));
  emit({ event: "screenshot", file });
}

// ------------------------------------------------------------------ DOM contract

const text = (info, sel) => info.page.locator(sel).textContent({ timeout: STEP_MS }).then((t) => (t ?? "").trim());

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

/** The page's connection facts, as the DOM shows them. */
async function status(info) {
  return withDeadline(info.page.evaluate(() => {
    const t = (id) => (document.getElementById(id)?.textContent ?? "").trim();
    return {
      clientKind: t("client-kind"), state: t("state"), attempt: t("attempt"), nextDelay: t("next-delay"),
      transport: t("transport"), upgradedAt: t("upgraded-at"), rtt: t("rtt"), recovered: t("recovered"), outbox: t("outbox"),
    };
  }), STEP_MS, `${info.name}: the page to answer`);
}

const waitStatus = (info, what, ok, ms) => waitUntil(`${info.name}: ${what}`, () => status(info), ok, ms);

/** The messages in #messages: text, from and room of each li. */
async function messages(info) {
  return withDeadline(info.page.$$eval("#messages li", (lis) => lis.map((li) => ({
    text: li.querySelector(".text")?.textContent ?? null,
    from: li.dataset.from ?? null,
    room: li.dataset.room ?? null,
  }))), STEP_MS, `${info.name}: #messages`);
}

async function waitMessage(info, text, room, ms) {
  const sel = room === undefined ? "#messages li" : `#messages li[data-room="${room}"]`;
  return waitUntil(`${info.name}: ${sel} with .text ${JSON.stringify(text)}`,
    () => withDeadline(info.page.$$eval(sel, (lis, want) => lis.filter((li) => li.querySelector(".text")?.textContent === want)
      .map((li) => ({ text: li.querySelector(".text").textContent, from: li.dataset.from, room: li.dataset.room })), text),
    STEP_MS, `${info.name}: ${sel}`),
    (found) => found.length > 0, ms).then((found) => found[0]);
}

async function checkClientKind(info) {
  const kind = await waitUntil(`${info.name}: #client-kind to be set`, () => text(info, "#client-kind"), (k) => k && k !== "…");
  check(kind === expectedKind, `${info.name}: #client-kind is ${JSON.stringify(kind)}, expected ${JSON.stringify(expectedKind)}`);
  // The page says whether the gateway keeps sessions for recovery, and how
  // to turn it on when it does not.
  const setting = await waitUntil(`${info.name}: #recovery-setting to be set`, () => text(info, "#recovery-setting"), (t) => t && t !== "-");
  const expected = scenario === "recovery" ? /^on: .* within 120 s$/ : /^off: start the gateway with --recovery-ms 120000/;
  check(expected.test(setting), `${info.name}: #recovery-setting is ${JSON.stringify(setting)}, expected ${expected}`);
  return kind;
}

async function sendChat(info, message, how = "click") {
  await info.page.fill("#msg", message);
  if (how === "enter") await info.page.press("#msg", "Enter");
  else await info.page.click("#send");
  emit({ event: "sent", page: info.name, text: message, how });
}

/**
 * Sends a chat to everyone from `info` and waits until the page shows it.
 * The server sends one connection's packets in order, so whatever it sent
 * the page before (a leak, a duplicate) has arrived by then: a check for
 * "nothing else" after this needs no quiet period.
 */
async function settle(info) {
  const marker = `${info.name} settles at ${now()} ms`;
  await sendChat(info, marker);
  await waitMessage(info, marker);
}

async function joinRoom(info, room) {
  await info.page.fill("#room", room);
  await info.page.click("#join");
  emit({ event: "join", page: info.name, room });
}

const isNumber = (s) => s !== "" && Number.isFinite(Number(s));
const connectedOn = (transport) => (s) => s.state === "connected" && s.transport === transport;

// ------------------------------------------------------------------ scenarios

async function upgrade(url) {
  const a = await openPage("a", url);
  const clientKind = await checkClientKind(a);
  const s = await waitStatus(a, "connected over websocket, upgraded, with a round trip",
    (s) => connectedOn("websocket")(s) && s.upgradedAt !== "" && isNumber(s.rtt));
  const ws = a.websockets.filter((w) => w.url.includes("/socket.io/") && w.url.includes("transport=websocket"));
  check(ws.length >= 1 && ws.some((w) => !w.closed && w.framesReceived > 0),
    "the page says websocket, but the browser has no open engine.io WebSocket that received frames", { websockets: a.websockets });
  check(a.pollingRequests > 0, "the connection did not start with polling (no polling request seen)");
  await screenshot(a, "connected");
  return { clientKind, status: s, websockets: ws.length, pollingRequests: a.pollingRequests };
}

async function polling(url) {
  const a = await openPage("a", url);
  const clientKind = await checkClientKind(a);
  const before = await waitStatus(a, "connected over websocket", connectedOn("websocket"));
  await screenshot(a, "websocket");
  const wsBefore = a.websockets.length;
  await a.page.check("#block-ws");
  emit({ event: "blocked-websocket" });
  const after = await waitStatus(a, "connected again over polling", connectedOn("polling"));
  const pollsAtSwitch = a.pollingRequests;
  // It must stay on polling (no upgrade, no reconnect) for at least 2 s.
  const holdStart = Date.now();
  const samples = [];
  while (Date.now() - holdStart < 2500) {
    const s = await status(a);
    samples.push(s.state + "/" + s.transport);
    check(connectedOn("polling")(s), `left polling-only connected state during the hold: ${JSON.stringify(s)}`);
    await sleep(100);
  }
  check(a.websockets.length === wsBefore, "a WebSocket was opened while WebSocket was blocked", { websockets: a.websockets });
  check(a.pollingRequests > pollsAtSwitch, "no polling request during the 2.5 s hold: the transport is not really polling");
  const message = `over polling ${Date.now()}`;
  await sendChat(a, message);
  const got = await waitMessage(a, message);
  const final = await status(a);
  check(connectedOn("polling")(final), `not on polling after the chat: ${JSON.stringify(final)}`);
  await screenshot(a, "polling");
  return { clientKind, before, after, holdMs: Date.now() - holdStart, samples: samples.length, pollingRequests: a.pollingRequests - pollsAtSwitch, message: got };
}

async function chat(url) {
  const [a, b, c] = [await openPage("a", url), await openPage("b", url), await openPage("c", url)];
  const clientKind = await checkClientKind(a);
  await checkClientKind(b);
  for (const p of [a, b, c]) await waitStatus(p, "connected", (s) => s.state === "connected");
  await joinRoom(a, "lobby");
  await joinRoom(b, "lobby");
  // Each member sees its own message to the room once its join went through
  // (a join and the chat after it go out in order on the same connection).
  for (const p of [a, b]) {
    await sendChat(p, `${p.name} is here`);
    await waitMessage(p, `${p.name} is here`, "lobby");
  }
  await sendChat(a, "hello from A", "click");
  const atB = await waitMessage(b, "hello from A", "lobby");
  const ownAtA = await waitMessage(a, "hello from A", "lobby");
  check(atB.from && atB.from === ownAtA.from, "A and B disagree on the sender of \"hello from A\"", { atB, ownAtA });
  await sendChat(b, "hello from B", "enter");
  const atA = await waitMessage(a, "hello from B", "lobby");
  const ownAtB = await waitMessage(b, "hello from B", "lobby");
  check(atA.from && atA.from === ownAtB.from && atA.from !== atB.from, "wrong sender on \"hello from B\"", { atA, ownAtB, atB });
  check((await text(b, "#msg")) === "", "Enter sent the message but left it in #msg");
  for (const p of [a, b]) {
    const mine = (await messages(p)).filter((m) => m.text === "hello from A" || m.text === "hello from B");
    check(mine.length === 2, `${p.name}: each hello once`, { mine });
  }
  await settle(c); // C is in no room: the lobby messages must not reach it
  const atC = (await messages(c)).filter((m) => m.room === "lobby");
  check(atC.length === 0, "page C, in no room, got lobby messages", { atC });
  await screenshot(a, "a");
  await screenshot(b, "b");
  return { clientKind, atA, atB, senders: { a: ownAtA.from, b: ownAtB.from } };
}

async function recovery(url) {
  const [a, b] = [await openPage("a", url), await openPage("b", url)];
  const clientKind = await checkClientKind(a);
  await checkClientKind(b);
  await waitStatus(a, "connected over websocket", connectedOn("websocket"));
  await waitStatus(b, "connected", (s) => s.state === "connected");
  // A chat to everyone gives A an offset to recover from.
  await sendChat(a, "before the drop");
  const before = await waitMessage(a, "before the drop");
  await waitMessage(b, "before the drop");
  await a.page.click("#drop");
  emit({ event: "dropped", page: "a" });
  const away = await waitStatus(a, "reconnecting after the drop", (s) => s.state === "reconnecting", 3000);
  await sendChat(b, "while A was away");
  await waitMessage(b, "while A was away");
  const back = await waitStatus(a, "connected again, recovered", (s) => s.state === "connected" && s.recovered !== "-");
  check(back.recovered === "yes", `#recovered is ${JSON.stringify(back.recovered)} after a dropped connection, expected "yes"`, { back });
  const missed = await waitMessage(a, "while A was away");
  await sendChat(a, "after the drop");
  const after = await waitMessage(a, "after the drop");
  check(after.from === before.from, "A's socket id changed across the recovery", { before, after });
  await settle(a);
  const all = (await messages(a)).map((m) => m.text);
  for (const t of ["before the drop", "while A was away", "after the drop"]) {
    check(all.filter((x) => x === t).length === 1, `A shows ${JSON.stringify(t)} ${all.filter((x) => x === t).length} times`, { all });
  }
  check(all.indexOf("while A was away") < all.indexOf("after the drop"), "the replayed message came after a newer one", { all });
  await screenshot(a, "recovered");
  return { clientKind, away, back, socketId: before.from, missed };
}

async function restart(url, gateway, port) {
  const a = await openPage("a", url);
  const clientKind = await checkClientKind(a);
  const before = await waitStatus(a, "connected (and upgraded)", connectedOn("websocket"));
  await withDeadline(a.page.evaluate(() => { window.__e2eSamePage = true; }), STEP_MS, "a: the page to answer");
  const navigationsBefore = a.navigations;

  emit({ event: "sigterm", pid: gateway.child.pid });
  const t0 = Date.now();
  const exit = await withDeadline(gateway.stop(), 20_000, "the binary to exit after SIGTERM");
  const exitMs = Date.now() - t0;
  emit({ event: "gateway-exited", ...exit, ms: exitMs });
  check(exit.code === 0, `the binary exited with ${JSON.stringify(exit)} after SIGTERM, not 0`);

  const down = await waitStatus(a, "reconnecting with an attempt and a delay",
    (s) => s.state === "reconnecting" && Number(s.attempt) >= 1 && isNumber(s.nextDelay));
  const attempts = [{ attempt: down.attempt, nextDelay: down.nextDelay }];
  for (let i = 1; i <= 3; i++) await sendChat(a, `offline ${i}`);
  const queued = await waitStatus(a, "#outbox 3", (s) => s.outbox === "3", 3000);
  check(queued.state === "reconnecting", `not reconnecting while the server is down: ${queued.state}`);
  const early = (await messages(a)).filter((m) => /^offline \d$/.test(m.text ?? ""));
  check(early.length === 0, "offline messages appeared while the server was down", { early });
  // Let at least one more attempt fail while the server is down.
  const later = await waitStatus(a, "a further reconnect attempt", (s) => Number(s.attempt) > Number(down.attempt), 12_000);
  attempts.push({ attempt: later.attempt, nextDelay: later.nextDelay });
  check(later.outbox === "3", `#outbox is ${later.outbox} while still down`);
  await screenshot(a, "offline");

  const second = new Gateway(port, "restarted binary");
  await second.start();
  const t1 = Date.now();
  await waitStatus(a, "connected again by itself with an empty outbox",
    (s) => s.state === "connected" && s.outbox === "0", 15_000);
  const reconnectMs = Date.now() - t1;
  await waitUntil("offline 1..3 in #messages",
    async () => (await messages(a)).filter((m) => /^offline \d$/.test(m.text ?? "")).map((m) => m.text),
    (texts) => texts.length >= 3);
  await settle(a); // nothing sent twice
  const final = (await messages(a)).filter((m) => /^offline \d$/.test(m.text ?? "")).map((m) => m.text);
  check(JSON.stringify(final) === JSON.stringify(["offline 1", "offline 2", "offline 3"]),
    `the offline messages arrived as ${JSON.stringify(final)}, expected offline 1..3 once each, in order`);
  const samePage = await withDeadline(a.page.evaluate(() => window.__e2eSamePage === true), STEP_MS, "a: the page to answer");
  check(samePage && a.navigations === navigationsBefore,
    "the page was reloaded: it must reconnect by itself");
  const after = await waitStatus(a, "connected with a transport", (s) => s.state === "connected" && s.transport !== "");
  await screenshot(a, "reconnected");
  return { clientKind, before, exitMs, attempts, reconnectMs, after, recovered: after.recovered, messages: final };
}

// ------------------------------------------------------------------ main

initRunner({ scenario, mode: noBundle ? "no-bundle" : "bundle" }, { onFail: killAllSync });
armWatchdog(GLOBAL_MS);

async function main() {
  const port = await freePort();
  const gateway = new Gateway(port, "binary");
  const url = (await gateway.start()).replace(/\/?$/, "/");
  await launchBrowser();
  const run = { upgrade, polling, chat, recovery, restart }[scenario];
  const details = await run(url, gateway, port);
  const pageErrors = [...pages.values()].flatMap((p) => p.errors.map((e) => `${p.name}: ${e}`));
  check(pageErrors.length === 0, "uncaught exceptions in the page", { pageErrors });
  return details;
}

const started = Date.now();
main().then(
  async (details) => {
    await stopAll();
    finish(true, { ms: Date.now() - started, screenshots, ...details });
  },
  async (e) => {
    const details = e instanceof ScenarioError ? e.details : { stack: e && e.stack };
    for (const info of pages.values()) {
      try {
        details[`status_${info.name}`] = await withDeadline(status(info), 2000, "status");
        await withDeadline(screenshot(info, `failure-${info.name}`), 5000, "failure screenshot");
        details[`log_${info.name}`] = await withDeadline(info.page.$$eval("#log li", (lis) => lis.slice(0, 15).map((li) => li.textContent)), 2000, "log");
      } catch {}
    }
    details.gatewayLog = everyGateway.flatMap((g) => [`--- ${g.label}`, ...g.tail]);
    await stopAll().catch(() => {});
    fail(e, { ms: Date.now() - started, screenshots, ...details });
  },
);
