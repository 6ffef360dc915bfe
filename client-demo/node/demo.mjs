// Command-line chat against the socketgate gateway with the real socket.io-client,
// over HTTP long-polling only. Joins a room, sends each stdin line (and a line every
// few seconds), prints what arrives, and reconnects by itself when the server goes away.
//
//   node client-demo/node/demo.mjs [--room R] [--every S] [--once] [URL]
//   (URL defaults to http://127.0.0.1:3000; --every 0 sends stdin lines only;
//    --once: send one chat, wait for it to come back, exit 0, or 1 after 10 s)
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(name); return i < 0 ? dflt : argv.splice(i, 2)[1]; };
const room = opt("--room", "lobby");
const every = Number(opt("--every", "5"));
const once = argv.includes("--once");
const url = argv.find((a) => a !== "--once") ?? "http://127.0.0.1:3000";
const name = `node-${process.pid}`;
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);

const watchdog = once && setTimeout(() => { log("no echo of the chat within 10 s"); process.exit(1); }, 10_000);
const socket = io(url, { transports: ["polling"], reconnectionDelayMax: 5000 });
// Lines typed while offline wait here until the room is joined again (a new session
// after a server restart is in no room yet, and a chat to the room would miss us).
let joined = false;
const outbox = [];
const send = (text) => (joined ? socket.emit("chat", { room, text, name }) : outbox.push(text));

socket.on("connect", async () => {
  log(`connected as ${socket.id} (${socket.io.engine.transport.name}, recovered: ${socket.recovered})`);
  log(`joined ${await socket.timeout(5000).emitWithAck("join", room).catch((e) => `nothing: ${e.message}`)}`);
  joined = true;
  if (once) send(`once ${name}`);
  outbox.splice(0).forEach(send);
});
socket.on("chat", (msg) => {
  log(`[${msg.room ?? "everyone"}] ${msg.name ?? msg.from}: ${msg.text}`);
  if (once && msg.from === socket.id && msg.text === `once ${name}`) { clearTimeout(watchdog); socket.close(); } // Node exits once the close is sent
});
socket.on("disconnect", (reason) => { joined = false; log(`disconnected: ${reason}`); });
socket.on("connect_error", (e) => log(`connect error: ${e.message}`));
socket.io.on("reconnect_attempt", (n) => log(`reconnect attempt ${n}`));
socket.io.on("reconnect", (n) => log(`reconnected after ${n} attempt(s)`));

if (!once) {
  let n = 0;
  const ticker = every > 0 && setInterval(() => send(`tick ${++n} from ${name}`), every * 1000);
  const input = createInterface({ input: process.stdin }).on("line", (line) => line.trim() && send(line));
  process.on("SIGINT", () => { // Ctrl-C: say goodbye to the server, then exit once that is sent
    clearInterval(ticker);
    input.close();
    socket.close();
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
