// socket.io-client 4.x over polling with the Fetch transport (Node's fetch
// sends Accept-Encoding and inflates gzip by itself, as browsers do):
// large echoes (over the gateway's 1024-byte compression threshold) and
// small ones round-trip intact.
//
//   node compression-client.mjs <url>
//
// One JSON verdict line: {"ok":true,...} exit 0, {"ok":false,"error":...} exit 1.
import { io, Fetch } from "socket.io-client";

const url = process.argv[2];
const done = (v) => {
  console.log(JSON.stringify(v));
  process.exit(v.ok ? 0 : 1);
};
setTimeout(() => done({ ok: false, error: "timed out" }), 10_000).unref();

const socket = io(url, { transports: [Fetch], upgrade: false, reconnection: false });
socket.on("connect_error", (e) => done({ ok: false, error: `connect_error: ${e.message}` }));
socket.on("connect", async () => {
  try {
    const big = "x".repeat(5000) + "é✓";
    const results = [];
    for (const text of [big, "small", big + big]) {
      const got = await new Promise((resolve) => {
        socket.once("echo", (v) => resolve(v));
        socket.emit("echo", { text });
      });
      results.push(got.text === text);
    }
    const transport = socket.io.engine.transport.name;
    socket.close();
    done({ ok: results.every(Boolean), results, transport });
  } catch (e) {
    done({ ok: false, error: String(e) });
  }
});
