// The runner shared by the interop scripts (engineio-client.mjs,
// socketio-client.mjs, legacy-client.mjs, recovery-client.mjs,
// browser-e2e.mjs): JSON output lines, the verdict and exit codes, the global
// watchdog, deadlines and small binary helpers. What the scripts do
// differently (arguments, timeouts and their environment variables, clients,
// scenarios) stays in the scripts; what only the three socket.io scripts share
// is in sio-shared.mjs.
//
// Output (stdout): one JSON object per line. Progress lines look like
// {"t":<ms since start>,"event":"..." ...}; the last line is always the verdict,
// {"ok":true,<verdict fields>,...details} (exit code 0) or
// {"ok":false,<verdict fields>,"error":"..."} (exit code 1). Exit code 2 means a
// usage error.
//
// Importing this module installs handlers that turn an uncaught exception or
// an unhandled rejection into a failed verdict.

export const T0 = Date.now();
export const now = () => Date.now() - T0;

// ---------------------------------------------------------------- output ---

/** A progress line: {"t":<ms since start>,...obj}. */
export function emit(obj) {
  process.stdout.write(JSON.stringify({ t: now(), ...obj }) + "\n");
}

// The fields every verdict carries after "ok" (e.g. scenario, mode), and what
// to do before a failed verdict is written (e.g. close the clients).
let verdictFields = {};
let beforeFail = null;

/** Sets the verdict fields and an optional `onFail` hook; call once, after parsing argv. */
export function initRunner(fields, { onFail = null } = {}) {
  verdictFields = fields;
  beforeFail = onFail;
}

let finished = false;
/** Writes the verdict line and exits (0 when ok, else 1). Only the first call counts. */
export function finish(ok, details) {
  if (finished) return;
  finished = true;
  if (!ok && beforeFail) beforeFail();
  const line = ok ? { ok: true, ...verdictFields, ...details } : { ok: false, ...verdictFields, ...details };
  // stdout to a pipe or file is synchronous on Linux, so exiting right after
  // the write does not lose the verdict line.
  process.stdout.write(JSON.stringify(line) + "\n");
  process.exit(ok ? 0 : 1);
}
export function fail(error, details = {}) {
  finish(false, { error: String(error && error.message ? error.message : error), ...details });
}

/** Usage error: the usage text on stderr, {"ok":false,"error":...} on stdout, exit code 2. */
export function usageExit(usage, error) {
  process.stderr.write(usage);
  process.stdout.write(JSON.stringify({ ok: false, error }) + "\n");
  process.exit(2);
}

export class ScenarioError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.details = details;
  }
}
export function check(cond, message, details) {
  if (!cond) throw new ScenarioError(message, details);
}

process.on("uncaughtException", (e) => fail(`uncaught exception: ${e && e.stack ? e.stack : e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e && e.stack ? e.stack : e}`));

let watchdog = null;
/** (Re)arms the global deadline: when it fires, the run fails. */
export function armWatchdog(ms) {
  if (watchdog) clearTimeout(watchdog);
  watchdog = setTimeout(() => fail(`global deadline of ${ms} ms exceeded`), ms);
}

/** Fails the run unless `path` resolves against `baseUrl`. */
export function checkUrl(path, baseUrl) {
  try {
    new URL(path, baseUrl);
  } catch (e) {
    fail(`invalid baseUrl/path: ${e.message}`);
  }
}

/** Runs the scenario; its result becomes the details of an ok verdict, an error a failed one. */
export function runScenario(scenarioFn) {
  scenarioFn().then(
    (details) => finish(true, details),
    (e) => fail(e, e instanceof ScenarioError ? e.details : { stack: e && e.stack }),
  );
}

// --------------------------------------------------------------- helpers ---

/** The engine.io path with a leading and a trailing slash, like the clients normalise it. */
export function normalizePath(pathArg, defaultPath) {
  return pathArg ? `/${pathArg.replace(/^\/+|\/+$/g, "")}/`.replace(/^\/\/$/, "/") : defaultPath;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function withDeadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ScenarioError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function isBinary(x) {
  return x instanceof ArrayBuffer || ArrayBuffer.isView(x);
}
export function toBuffer(x) {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}
