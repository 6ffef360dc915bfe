// Drives the `socketgate` binary's relay with the real socket.io-client:
// echo with ack, join + chat in a room, then waits for the server to go
// away and reports the disconnect reason. Usage: node gateway-client.mjs <url>
import { io } from "socket.io-client";

const url = process.argv[2];
const out = (o) => console.log(JSON.stringify(o));
const fail = (error) => { out({ ok: false, error: String(error) }); process.exit(1); };
const watchdog = setTimeout(() => fail("watchdog: no verdict within 30 s"), 30_000);

const within = (p, what, ms = 10_000) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))]);

try {
  const socket = io(url, { reconnection: false });
  await within(new Promise((res, rej) => { socket.on("connect", res); socket.on("connect_error", rej); }), "connect");

  const echoed = await within(socket.emitWithAck("echo", "hi", { n: 1 }), "echo ack");
  if (echoed !== "hi") throw new Error(`echo ack ${JSON.stringify(echoed)}`);

  await within(socket.emitWithAck("join", "lobby"), "join");
  const chat = within(new Promise((res) => socket.once("chat", res)), "chat");
  socket.emit("chat", { room: "lobby", text: "hello" });
  const msg = await chat;
  if (msg.text !== "hello" || msg.from !== socket.id || msg.room !== "lobby") throw new Error(`chat ${JSON.stringify(msg)}`);

  const gone = within(new Promise((res) => socket.on("disconnect", res)), "disconnect on server shutdown", 20_000);
  out({ ready: true, id: socket.id });
  const reason = await gone;
  clearTimeout(watchdog);
  out({ ok: true, reason });
  process.exit(0);
} catch (e) {
  fail(e.message ?? e);
}
