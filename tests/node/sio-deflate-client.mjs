// socket.io-client 4.x over WebSocket with permessage-deflate offered (the
// ws transport's perMessageDeflate option, threshold 1024), against the
// socket.io test contract ("message" comes back as "message-back"): a
// large text event and one with a large binary attachment round-trip
// intact. Reports the extensions the WebSocket negotiated and the bytes
// the echo took on the wire.
//
//   node sio-deflate-client.mjs <base url> [upgrade]
//
// With `upgrade`, the client starts on polling and the echo runs once it
// has upgraded to WebSocket.
//
// One JSON verdict line: {"ok":true,...} exit 0, {"ok":false,"error":...} exit 1.
import { io } from "socket.io-client";

const [url, mode] = process.argv.slice(2);
const done = (v) => {
  console.log(JSON.stringify(v));
  process.exit(v.ok ? 0 : 1);
};
setTimeout(() => done({ ok: false, error: "timed out" }), 10_000).unref();

const socket = io(url, {
  transports: mode === "upgrade" ? ["polling", "websocket"] : ["websocket"],
  perMessageDeflate: { threshold: 1024 },
  reconnection: false,
});
socket.on("connect_error", (e) => done({ ok: false, error: `connect_error: ${e.message}` }));
socket.on("connect", async () => {
  try {
    if (socket.io.engine.transport.name !== "websocket") {
      await new Promise((resolve) => socket.io.engine.once("upgrade", resolve));
    }
    const ws = socket.io.engine.transport.ws;
    const text = "é✓ hello, ".repeat(5000);
    const bin = Buffer.alloc(80_000);
    for (let i = 0; i < bin.length; i++) bin[i] = i % 11;
    const [read0, written0] = [ws._socket.bytesRead, ws._socket.bytesWritten];
    const got = await new Promise((resolve) => {
      socket.once("message-back", (...args) => resolve(args));
      socket.emit("message", { text }, bin);
    });
    const sameText = got[0]?.text === text;
    const sameBin = Buffer.isBuffer(got[1]) && Buffer.compare(got[1], bin) === 0;
    const verdict = {
      ok: sameText && sameBin,
      sameText,
      sameBin,
      extensions: ws.extensions,
      size: Buffer.byteLength(text) + bin.length,
      read: ws._socket.bytesRead - read0,
      written: ws._socket.bytesWritten - written0,
    };
    socket.close();
    done(verdict);
  } catch (e) {
    done({ ok: false, error: String(e) });
  }
});
