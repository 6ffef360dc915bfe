// A raw engine.io v4 session over the `ws` package's WebSocket, with
// permessage-deflate offered or not, against the engine-only test server
// (which echoes every message): large text and binary messages go out and
// must come back intact. Reports the negotiated extensions and how many
// bytes each echo took on the wire each way (much fewer than the message
// when it travelled compressed).
//
//   node ws-deflate-client.mjs <ws url> on|off
//
// One JSON verdict line: {"ok":true,...} exit 0, {"ok":false,"error":...} exit 1.
import WebSocket from "ws";

const [url, mode] = process.argv.slice(2);
const done = (v) => {
  console.log(JSON.stringify(v));
  process.exit(v.ok ? 0 : 1);
};
setTimeout(() => done({ ok: false, error: "timed out" }), 10_000).unref();

const ws = new WebSocket(url, { perMessageDeflate: mode === "on" });
let extensions = null;
ws.on("upgrade", (res) => {
  extensions = res.headers["sec-websocket-extensions"] ?? null;
});
ws.on("error", (e) => done({ ok: false, error: String(e) }));

const inbox = [];
let waiting = null;
ws.on("message", (data, isBinary) => {
  const m = { data, isBinary };
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(m);
  } else {
    inbox.push(m);
  }
});
const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiting = r)));

ws.on("open", async () => {
  try {
    const open = await next();
    if (!String(open.data).startsWith("0{")) throw new Error(`no open packet: ${open.data}`);
    // Compressible, with multi-byte characters, over the 1024-byte threshold.
    const text = "4" + '{"user":"ada","text":"é✓ hello"}'.repeat(2000);
    const binary = Buffer.alloc(100_000);
    for (let i = 0; i < binary.length; i++) binary[i] = i % 7;
    const echoes = [];
    for (const [payload, isBinary] of [[text, false], [binary, true], ["4small", false]]) {
      const [read0, written0] = [ws._socket.bytesRead, ws._socket.bytesWritten];
      ws.send(payload, { binary: isBinary });
      const got = await next();
      const same = isBinary
        ? got.isBinary && Buffer.compare(got.data, payload) === 0
        : !got.isBinary && got.data.toString() === payload;
      echoes.push({
        size: isBinary ? payload.length : Buffer.byteLength(payload),
        same,
        read: ws._socket.bytesRead - read0,
        written: ws._socket.bytesWritten - written0,
      });
    }
    ws.close();
    done({ ok: echoes.every((e) => e.same), extensions, echoes });
  } catch (e) {
    done({ ok: false, error: String(e) });
  }
});
