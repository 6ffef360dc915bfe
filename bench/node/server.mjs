// The benchmark contract (socketgate DESIGN.md §6) on the reference Node
// server, socket.io 4.8.4 with its default settings: namespace "/",
// `echo` emitted back to the sender with the same arguments, `broadcast`
// emitted as `bcast` to every connected socket, sender included.
// Polling and WebSocket, heartbeat 25 s / 20 s, maxHttpBufferSize 1e6.
//
//   node server.mjs [--port P]        (or PORT=P node server.mjs)

import { createServer } from "node:http";
import { Server } from "socket.io";

function parsePort(argv, env) {
  let port = env.PORT ?? "3000";
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--port" && i + 1 < argv.length) {
      port = argv[++i];
    } else {
      throw new Error(`unknown argument ${JSON.stringify(argv[i])}; usage: server.mjs [--port P]`);
    }
  }
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`bad port ${JSON.stringify(port)}`);
  }
  return n;
}

let port;
try {
  port = parsePort(process.argv.slice(2), process.env);
} catch (e) {
  console.error(`server.mjs: ${e.message}`);
  process.exit(2);
}

const httpServer = createServer();
const io = new Server(httpServer, {
  maxHttpBufferSize: 1e6,
  transports: ["polling", "websocket"],
});

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    socket.emit("echo", ...args);
  });
  socket.on("broadcast", (...args) => {
    io.emit("bcast", ...args);
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
