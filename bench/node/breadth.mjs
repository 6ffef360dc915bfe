// Figures for the protocol options of the socketgate gateway binary: JSON
// vs msgpack parser, permessage-deflate on vs off. It drives the gateway's
// relay (`echo`, `chat`) with the real socket.io-client over WebSocket and
// prints one JSON line of figures; the server's CPU comes from
// /proc/<pid>/stat, its memory from /proc/<pid>/status.
//
//   node breadth.mjs <url> <server-pid> <scenario> [options]
//     scenario: echo       N clients in a closed loop of `echo` acks
//               broadcast  N receivers, one sender: `chat` to everyone at RATE/s
//               idle       N connections held; KiB per connection (VmRSS)
//     --parser json|msgpack   (the gateway must run with the same --parser)
//     --deflate               offer permessage-deflate (the gateway needs --ws-compression)
//     --clients N (50) --duration S (5) --rate R (50) --size BYTES (2048)
//
// Loopback only; every run is bounded by --duration plus a few seconds.
import fs from "node:fs";
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

const [url, pidArg, scenario, ...rest] = process.argv.slice(2);
if (!url || !pidArg || !scenario) {
  console.error("usage: node breadth.mjs <url> <server-pid> <echo|broadcast|idle> [--parser json|msgpack] [--deflate] [--clients N] [--duration S] [--rate R] [--size B]");
  process.exit(2);
}
if (!/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(url)) {
  console.error("loopback URLs only");
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = rest.indexOf(`--${name}`);
  return i >= 0 ? rest[i + 1] : dflt;
};
const parser = opt("parser", "json");
const deflate = rest.includes("--deflate");
const clients = Number(opt("clients", 50));
const duration = Number(opt("duration", 5));
const rate = Number(opt("rate", 50));
const size = Number(opt("size", 2048));
const pid = Number(pidArg);
const TICK_US = 1e6 / 100; // clock ticks per second on Linux: 100

setTimeout(() => {
  console.error("watchdog: the run overstayed");
  process.exit(1);
}, (duration + 30) * 1000).unref();

const cpuTicks = () => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
};
const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

const connect = () =>
  new Promise((resolve, reject) => {
    const s = io(url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      perMessageDeflate: deflate ? { threshold: 1024 } : false,
      ...(parser === "msgpack" ? { parser: msgpackParser } : {}),
    });
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });

const text = "x".repeat(Math.max(0, size - 40)) + " the end";
const rssBefore = rssKiB();
const sockets = [];
for (let i = 0; i < clients; i++) sockets.push(await connect());
const out = { scenario, parser, deflate, clients, duration };

if (scenario === "echo") {
  let ops = 0;
  let stop = false;
  const t0 = cpuTicks();
  const start = process.hrtime.bigint();
  await Promise.all(
    sockets.map(async (s) => {
      while (!stop) {
        await s.timeout(5000).emitWithAck("echo", { text });
        ops++;
      }
    }).concat([new Promise((r) => setTimeout(() => { stop = true; r(); }, duration * 1000))]),
  );
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  Object.assign(out, { round_trips: ops, round_trips_per_s: Math.round(ops / secs), server_cpu_us_per_op: +(((cpuTicks() - t0) * TICK_US) / ops).toFixed(2) });
} else if (scenario === "broadcast") {
  const [sender, ...receivers] = sockets;
  let delivered = 0;
  for (const r of receivers) r.on("chat", () => delivered++);
  const t0 = cpuTicks();
  let sent = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      sender.emit("chat", { text, seq: sent++ });
      if (sent >= rate * duration) {
        clearInterval(timer);
        resolve();
      }
    }, 1000 / rate);
  });
  const expected = sent * receivers.length;
  const until = Date.now() + 5000;
  while (delivered < expected && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  Object.assign(out, { sent, delivered, missing: expected - delivered, server_cpu_us_per_delivery: +(((cpuTicks() - t0) * TICK_US) / delivered).toFixed(2) });
} else if (scenario === "idle") {
  // The RSS with the connections held, minus the RSS once they are gone
  // (the allocator keeps some, so this is a lower bound per connection).
  await new Promise((r) => setTimeout(r, duration * 1000));
  const held = rssKiB();
  for (const s of sockets) s.close();
  await new Promise((r) => setTimeout(r, 2000));
  Object.assign(out, { rss_before_kib: rssBefore, rss_held_kib: held, kib_per_connection: +((held - rssBefore) / clients).toFixed(2) });
} else {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
for (const s of sockets) s.close();
console.log(JSON.stringify(out));
process.exit(0);
