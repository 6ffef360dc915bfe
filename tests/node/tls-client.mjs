// socket.io-client 4.x over TLS (https polling, wss) against a gateway with a
// certificate the test generated: the client trusts that certificate only.
//
//   node tls-client.mjs <https-url> <ca.pem> <polling|websocket|upgrade>
//
// Connects, has the relay echo one message (acked), checks the transport it
// ended on, and prints one JSON verdict line ({"ok":true,...} exit 0, or
// {"ok":false,"error":...} exit 1). Everything has a deadline.
import fs from "node:fs";
import { io } from "socket.io-client";

const [url, caPath, mode] = process.argv.slice(2);
const ca = fs.readFileSync(caPath);
const transports = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] }[mode];
const done = (verdict) => {
  console.log(JSON.stringify(verdict));
  process.exit(verdict.ok ? 0 : 1);
};
setTimeout(() => done({ ok: false, error: "timed out" }), 10_000).unref();

const socket = io(url, { transports, ca, reconnection: false, timeout: 5000 });
socket.on("connect_error", (e) => done({ ok: false, error: `connect_error: ${e.message}`, description: String(e.description?.message || e.description || "") }));
socket.on("connect", async () => {
  try {
    if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") {
      await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
    }
    // emitWithAck resolves with the ack's first argument.
    const echoed = await socket.timeout(5000).emitWithAck("echo", { text: "over tls", n: 42 });
    const transport = socket.io.engine.transport.name;
    socket.close();
    done({ ok: echoed?.text === "over tls" && echoed?.n === 42, echoed, transport, mode });
  } catch (e) {
    done({ ok: false, error: String(e) });
  }
});
