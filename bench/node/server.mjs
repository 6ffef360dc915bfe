// The benchmark contract (socketgate DESIGN.md §6) on the reference Node
// server, socket.io 4.8.4 with its default settings: namespace "/",
// `echo` emitted back to the sender with the same arguments, `broadcast`
// emitted as `bcast` to every connected socket, sender included.
// Polling and WebSocket, heartbeat 25 s / 20 s, maxHttpBufferSize 1e6.
//
// Besides the contract, `chat` behaves as in socketgate's gateway relay
// (src/gateway.rs) when sent without a room: the object argument is
// emitted as `chat` to everyone, sender included, with `from` (the
// sender's socket id) added. The two-node benchmark
// (socketgate-load --scenario cluster-broadcast --via chat) uses it, so the
// gateway binary and this server are measured on the same messages.
//
// With --redis-url (or REDIS_URL) the server joins a cluster through
// @socket.io/redis-adapter 8.3.0 on node-redis 4.7.1 (pinned in
// package.json): broadcasts reach the clients of every server on that Redis.
//
//   node server.mjs [--port P] [--redis-url redis://127.0.0.1:6379]
//   (or PORT=P REDIS_URL=redis://… node server.mjs)

import { createServer } from "node:http";
import { Server } from "socket.io";

const USAGE = "usage: server.mjs [--port P] [--redis-url redis://HOST:PORT]";

function parseArgs(argv, env) {
  let port = env.PORT ?? "3000";
  let redisUrl = env.REDIS_URL || null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port" && i + 1 < argv.length) {
      port = argv[++i];
    } else if (argv[i] === "--redis-url" && i + 1 < argv.length) {
      redisUrl = argv[++i];
    } else {
      throw new Error(`unknown argument ${JSON.stringify(argv[i])}; ${USAGE}`);
    }
  }
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`bad port ${JSON.stringify(port)}`);
  }
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) {
    throw new Error(`bad Redis URL ${JSON.stringify(redisUrl)}; ${USAGE}`);
  }
  return { port: n, redisUrl };
}

let port, redisUrl;
try {
  ({ port, redisUrl } = parseArgs(process.argv.slice(2), process.env));
} catch (e) {
  console.error(`server.mjs: ${e.message}`);
  process.exit(2);
}

const httpServer = createServer();
const io = new Server(httpServer, {
  maxHttpBufferSize: 1e6,
  transports: ["polling", "websocket"],
});

if (redisUrl !== null) {
  // Loaded only when asked for, so the single-node server does not depend
  // on them being installed.
  const { createClient } = await import("redis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) {
    c.on("error", (e) => console.error(`server.mjs: redis: ${e.message}`));
  }
  // node-redis retries a refused connection forever: give up after 10 s,
  // so that a wrong URL ends the server instead of leaving it unbound.
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no connection within 10 s")), 10_000);
  });
  try {
    await Promise.race([Promise.all([pubClient.connect(), subClient.connect()]), deadline]);
    clearTimeout(timer);
  } catch (e) {
    console.error(`server.mjs: cannot connect to ${redisUrl}: ${e.message}`);
    process.exit(1);
  }
  io.adapter(createAdapter(pubClient, subClient));
  console.error(`node socket.io server on Redis ${redisUrl} (@socket.io/redis-adapter)`);
}

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    socket.emit("echo", ...args);
  });
  socket.on("broadcast", (...args) => {
    io.emit("bcast", ...args);
  });
  socket.on("chat", (msg) => {
    const obj = msg !== null && typeof msg === "object" && !Array.isArray(msg) ? msg : { text: msg };
    obj.from = socket.id;
    io.emit("chat", obj);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const { port: bound } = httpServer.address();
  console.error(`node socket.io server on http://127.0.0.1:${bound}`);
});

// Stop promptly on the signals compare.sh sends.
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
