// socket.io-client 4.x with the real socket.io-msgpack-parser against the
// gateway binary's relay: an echo with a binary argument, acked.
//
//   node parser-echo.mjs <url>
//
// One JSON verdict line: {"ok":true,...} exit 0, or {"ok":false,"error":...} exit 1.
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

const url = process.argv[2];
const done = (v) => {
  console.log(JSON.stringify(v));
  process.exit(v.ok ? 0 : 1);
};
setTimeout(() => done({ ok: false, error: "timed out" }), 10_000).unref();

const socket = io(url, { parser: msgpackParser, reconnection: false });
socket.on("connect_error", (e) => done({ ok: false, error: `connect_error: ${e.message}` }));
socket.on("connect", async () => {
  try {
    const acked = await socket.timeout(5000).emitWithAck("echo", { text: "hi", bin: Buffer.from([1, 2, 3]) });
    const ok = acked.text === "hi" && Buffer.isBuffer(acked.bin) && acked.bin.equals(Buffer.from([1, 2, 3]));
    socket.close();
    done({ ok, text: acked.text, bin: Buffer.isBuffer(acked.bin) ? [...acked.bin] : String(acked.bin) });
  } catch (e) {
    done({ ok: false, error: String(e) });
  }
});
