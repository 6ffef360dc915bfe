// Headless Chromium (Debian's, driven by playwright-core) opens a raw
// engine.io v4 WebSocket to each URL given (the echoing engine-only test
// server), sends a large text and a large binary message and checks the
// echoes, from a page of the server's origin. Chromium always offers permessage-deflate and, once it is
// negotiated, compresses what it sends, so an intact echo means the server
// inflated Chromium's frames and Chromium inflated the server's.
//
//   node chromium-deflate.mjs <ws url>...
//
// One JSON verdict line: {"ok":true,"results":[{url,extensions,same}...]}.
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const done = (v) => {
  console.log(JSON.stringify(v));
  process.exit(v.ok ? 0 : 1);
};
setTimeout(() => done({ ok: false, error: "timed out" }), 40_000).unref();

try {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    timeout: 20_000,
  });
  const page = await browser.newPage();
  const results = [];
  for (const url of process.argv.slice(2)) {
    // From a page of the server's own origin (the test server's /hello).
    await page.goto(new URL("/hello", url.replace(/^ws/, "http")).href);
    results.push(
      await page.evaluate(async (url) => {
        const ws = new WebSocket(url);
        ws.binaryType = "arraybuffer";
        const inbox = [];
        let waiting = null;
        ws.onmessage = (e) => (waiting ? (waiting(e.data), (waiting = null)) : inbox.push(e.data));
        const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => (waiting = r)));
        const opened = await new Promise((resolve) => {
          ws.onopen = () => resolve(true);
          ws.onerror = () => resolve(false);
        });
        if (!opened) return { url, same: false, error: "WebSocket error" };
        const open = await next();
        const text = "4" + '{"user":"ada","text":"é✓ hello"}'.repeat(2000);
        const bin = new Uint8Array(100_000).map((_, i) => i % 13);
        ws.send(text);
        const gotText = await next();
        ws.send(bin);
        const gotBin = new Uint8Array(await next());
        const same =
          String(open).startsWith("0{") &&
          gotText === text &&
          gotBin.length === bin.length &&
          gotBin.every((b, i) => b === bin[i]);
        const extensions = ws.extensions;
        ws.close();
        return { url, extensions, same };
      }, url),
    );
  }
  await browser.close();
  done({ ok: results.every((r) => r.same), results });
} catch (e) {
  done({ ok: false, error: String(e) });
}
