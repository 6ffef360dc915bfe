// The client side of tests/hooks.rs: socket.io-client 4.8 against a
// socketgate whose main namespace is driven by backend hooks (the test's
// backend allows token "good" with data {user:"alice"} and room "vip",
// "guest" with data {user:"guest"}, and refuses "bad" with message
// "invalid token" and data {code:4001}; its events hook answers `chat.*`).
//
//   node hooks-client.mjs <scenario> <baseUrl>
//
// | scenario | checks |
// |---|---|
// | `refuse` | token "bad": one `connect_error` with the backend's message and data; no reconnect attempt, no second engine.io connection and the socket inactive after 1.5 s (reconnection is on, 100–300 ms delays) |
// | `allow` | A ("good", extra headers and a query) and B ("guest") connect; `chat.say` from A is acked `["stored","alice"]` after A (in "vip") got `chat.said`; B's `chat.say` reaches A, not B; a binary argument comes back as binary; 20 `chat.order` acks; an event outside the patterns is not answered |
// | `recover` | token "good" against a failing backend: the engine.io connection closes (`transport close`) and the Manager reconnects, at least twice, with no `connect_error`; then `{"ready":true}` is printed, the test brings the backend back, and the socket connects by itself and gets an ack |
//
// The last stdout line is the verdict (see harness.mjs).
import { io } from "socket.io-client";
import { armWatchdog, check, emit, initRunner, runScenario, sleep, usageExit, withDeadline } from "./harness.mjs";

const USAGE = "usage: node hooks-client.mjs <refuse|allow|recover> <baseUrl>\n";
const [scenario, url] = process.argv.slice(2);
if (!["refuse", "allow", "recover"].includes(scenario) || !url) usageExit(USAGE, "bad arguments");
armWatchdog(45_000);
const STEP = 10_000;

const sockets = [];
function client(token, extra = {}) {
  const s = io(url, {
    forceNew: true,
    auth: { token },
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    ...extra,
  });
  sockets.push(s);
  return s;
}

/** Resolves once `cond()` holds, re-checking every 10 ms. */
function until(cond) {
  return new Promise((resolve) => {
    const tick = () => (cond() ? resolve() : setTimeout(tick, 10));
    tick();
  });
}

function connected(s, what) {
  return withDeadline(
    new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", (e) => reject(new Error(`${what}: connect_error ${e.message}`)));
    }),
    STEP,
    `${what} to connect`,
  );
}

/** Emits with an acknowledgement and resolves with all its arguments. */
function ack(s, ...args) {
  return new Promise((resolve, reject) => {
    s.timeout(STEP).emit(...args, (err, ...answer) => (err ? reject(err) : resolve(answer)));
  });
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function refuse() {
  const s = client("bad");
  const errors = [];
  let attempts = 0;
  let opens = 0;
  s.on("connect_error", (e) => errors.push({ message: e.message, data: e.data }));
  s.on("connect", () => errors.push({ connected: true }));
  s.io.on("reconnect_attempt", () => attempts++);
  s.io.on("open", () => opens++);
  await withDeadline(until(() => errors.length > 0), STEP, "connect_error");
  // Several reconnection delays: a retry would show by now.
  await sleep(1500);
  check(errors.length === 1, "one connect_error and nothing else", { errors });
  check(errors[0].message === "invalid token", "the backend's message", { errors });
  check(same(errors[0].data, { code: 4001 }), "the backend's data", { errors });
  check(attempts === 0 && opens === 1, "no reconnection", { attempts, opens });
  check(!s.active, "the socket gave up (inactive)");
  return { errors, attempts, opens };
}

async function allow() {
  const a = client("good", {
    extraHeaders: { authorization: "Bearer good", cookie: "sid=1", "x-secret": "must-not-leak" },
    query: { room: "lobby" },
  });
  await connected(a, "A");
  const b = client("guest");
  await connected(b, "B");
  const saidA = [];
  const saidB = [];
  a.on("chat.said", (m) => saidA.push(m));
  b.on("chat.said", (m) => saidB.push(m));

  // Emits go out before the ack: A, in "vip", has the message by then.
  const ackA = await ack(a, "chat.say", "hello");
  check(same(ackA, ["stored", "alice"]), "A's ack from the backend", { ackA });
  check(same(saidA, [{ text: "hello", user: "alice" }]), "A got the emit to vip", { saidA });

  const ackB = await ack(b, "chat.say", "from guest");
  check(same(ackB, ["stored", "guest"]), "B's ack from the backend", { ackB });
  await withDeadline(until(() => saidA.length === 2), STEP, "B's message at A");
  check(same(saidA[1], { text: "from guest", user: "guest" }), "B's message", { saidA });
  // The backend's emits go out before its ack: anything for B came first.
  check(saidB.length === 0, "B is not in vip", { saidB });

  const [bin] = await ack(a, "chat.bin", Buffer.from([1, 2, 3]), "label");
  check(Buffer.isBuffer(bin) && same([...bin], [1, 2, 3]), "binary through the backend", { bin: String(bin) });

  const orders = await Promise.all(Array.from({ length: 20 }, (_, i) => ack(a, "chat.order", i)));
  check(same(orders, Array.from({ length: 20 }, (_, i) => [i])), "20 acks", { orders });

  let unanswered = false;
  try {
    await new Promise((resolve, reject) =>
      a.timeout(300).emit("other", 1, (err) => (err ? reject(err) : resolve())),
    );
  } catch {
    unanswered = true;
  }
  check(unanswered, "an event outside the patterns goes nowhere");

  const ids = { a: a.id, b: b.id };
  a.disconnect();
  b.disconnect();
  return { ids, saidA };
}

async function recover() {
  const s = client("good");
  const closes = [];
  let connectErrors = 0;
  let opens = 0;
  s.io.on("open", () => opens++);
  s.io.on("close", (reason) => {
    closes.push(reason);
    emit({ event: "manager-close", reason });
  });
  s.on("connect_error", (e) => {
    connectErrors++;
    emit({ event: "connect_error", message: e.message });
  });
  await withDeadline(until(() => closes.length >= 2), STEP, "two closed engine.io connections");
  check(!s.connected && connectErrors === 0, "not connected, not refused", { connectErrors });
  const connect = connected(s, "the socket, once the backend is back");
  emit({ ready: true, closes: closes.length });
  await connect;
  check(connectErrors === 0, "a backend failure is never a refusal", { connectErrors });
  check(closes.every((r) => r === "transport close"), "closed transports", { closes });
  const answer = await ack(s, "chat.say", "back");
  check(same(answer, ["stored", "alice"]), "an ack once in", { answer });
  s.disconnect();
  return { closes: closes.length, opens, connectErrors };
}

initRunner({ scenario }, { onFail: () => sockets.forEach((s) => s.close()) });
runScenario(async () => {
  const result = await { refuse, allow, recover }[scenario]();
  sockets.forEach((s) => s.close());
  return result;
});
