// Receivers for tests/api.rs: real socket.io-client 4.x sockets that report,
// one JSON line each on stdout, everything they get. The Rust test drives the
// server's HTTP API and checks these lines.
//
// usage: node api-client.mjs <baseUrl> <clients>
//   <clients>: JSON list of {"name": "a", "nsp": "/", "ack": "echo" | "none",
//   "transport": "websocket" | "polling"} (defaults: nsp "/", ack "echo",
//   transport "websocket").
//
// Lines:
//   {"type":"connect","client":"a","id":"<socket id>"}  each socket, then
//   {"type":"ready"}                                     once all are connected
//   {"type":"event","client":"a","event":"news","args":[…],"ackAsked":bool}
//       binary arguments as {"$binary":"<hex>","$class":"Buffer"}; with
//       "ack":"echo" a client acknowledges with (its name, …the arguments)
//       when asked, binary included
//   {"type":"disconnect","client":"a","reason":"io server disconnect"}
//   {"type":"connect_error","client":"a","message":"…"}
// Every socket is its own connection (forceNew) without reconnection. The
// script runs until the test kills it (at most 2 minutes).

import { io } from "socket.io-client";
import { isBinary, toBuffer } from "./harness.mjs";

const [baseUrl, clientsArg] = process.argv.slice(2);
if (!baseUrl || !clientsArg) {
  process.stderr.write("usage: node api-client.mjs <baseUrl> <clients-json>\n");
  process.exit(2);
}
const clients = JSON.parse(clientsArg);

const line = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

/** Arguments as JSON, each binary value as {"$binary": hex, "$class": its class}. */
function normalize(x) {
  if (isBinary(x)) return { $binary: toBuffer(x).toString("hex"), $class: x.constructor.name };
  if (Array.isArray(x)) return x.map(normalize);
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, normalize(v)]));
  }
  return x;
}

const sockets = [];
let connected = 0;
for (const spec of clients) {
  const { name, nsp = "/", ack = "echo", transport = "websocket" } = spec;
  const socket = io(baseUrl + nsp, { forceNew: true, reconnection: false, transports: [transport] });
  sockets.push(socket);
  socket.on("connect", () => {
    line({ type: "connect", client: name, id: socket.id });
    if (++connected === clients.length) line({ type: "ready" });
  });
  socket.on("connect_error", (e) => line({ type: "connect_error", client: name, message: e.message }));
  socket.on("disconnect", (reason) => line({ type: "disconnect", client: name, reason }));
  socket.onAny((event, ...args) => {
    const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
    line({ type: "event", client: name, event, args: normalize(args), ackAsked: !!callback });
    if (callback && ack === "echo") callback(name, ...args);
  });
}

// The test kills the script when it is done with it; should it not (a
// crashed runner), the script ends by itself.
setTimeout(() => {
  for (const s of sockets) s.close();
  process.exit(1);
}, Number(process.env.API_CLIENT_LIFETIME_MS || 120_000)).unref();
