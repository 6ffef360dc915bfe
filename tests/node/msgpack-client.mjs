#!/usr/bin/env node
// What only the msgpack parser needs on top of socketio-client.mjs (which
// runs its scenarios with the real `socket.io-msgpack-parser` when
// SIO_PARSER=msgpack): connection state recovery, and a client built with
// the other parser than the server's.
//
// Usage: node msgpack-client.mjs <scenario> <mode> <baseUrl> [path]
//   scenario: recovery     -> server: the test contract, msgpack parser,
//                             recovery on. Events carry their offset as a
//                             last argument; after a transport close the
//                             client gets its socket back (socket.recovered),
//                             with its room and the events it missed.
//             wrong-parser -> the client uses the other parser than the
//                             server's (SIO_SERVER_PARSER, default msgpack):
//                             it must get a connect_error naming the
//                             server's parser within SIO_STEP_TIMEOUT_MS, and
//                             must not reconnect in a loop.
//   mode:     polling | websocket | default (see sio-shared.mjs)
//
// Output and exit codes come from harness.mjs.

import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { initRunner, emit, check, sleep, withDeadline } from "./harness.mjs";
import {
  scenario, mode, baseUrl, path, STEP_TIMEOUT_MS, GRACE_MS, runSioScript, ownManagerOpts, transportOpts,
  normalize, checkEqual, errorMessage, checkTransportMode, trackManager, disconnectAll, closeManagers,
} from "./sio-shared.mjs";

const GLOBAL_TIMEOUT_MS = Number(process.env.SIO_GLOBAL_TIMEOUT_MS || 30_000);
const SERVER_PARSER = process.env.SIO_SERVER_PARSER || "msgpack";
const BURST = 3;

initRunner({ scenario, mode }, { onFail: disconnectAll });

/** Resolves with the next `name` event's arguments. */
function next(socket, name, what = name) {
  return withDeadline(new Promise((resolve) => socket.once(name, (...args) => resolve(args))), STEP_TIMEOUT_MS, what);
}

/** emit with an ack; resolves with the answer's arguments. */
function ack(socket, event, ...args) {
  return withDeadline(socket.timeout(STEP_TIMEOUT_MS).emitWithAck(event, ...args).then((a) => [a]), STEP_TIMEOUT_MS + 1000, `ack of ${event}`);
}

async function recoveryScenario() {
  const socket = io(baseUrl + "/", ownManagerOpts({ reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200, randomizationFactor: 0 }));
  check(socket.io.opts.parser === msgpackParser, "the client does not use socket.io-msgpack-parser (run with SIO_PARSER=msgpack)");
  const info = trackManager(socket.io, "main");
  const events = [];
  socket.onAny((name, ...args) => {
    events.push({ name, args });
    emit({ event: "recv", name, args: normalize(args) });
  });
  const auth = next(socket, "auth");
  await next(socket, "connect");
  check(!socket.recovered, "a first connection cannot be recovered");
  const id = socket.id;
  // With recovery on the server appends the packet's offset, which the
  // client keeps to present when it reconnects.
  const authArgs = await auth;
  check(authArgs.length === 2 && typeof authArgs[1] === "string", `auth event without an offset: ${JSON.stringify(authArgs)}`);
  check(socket._lastOffset === authArgs[1], `the client's offset ${socket._lastOffset} is not the event's ${authArgs[1]}`);
  checkEqual(await ack(socket, "join", "r"), ["r"], "join ack");
  checkEqual(await ack(socket, "burst-on-disconnect", { room: "r", count: BURST }), ["armed"], "burst-on-disconnect ack");
  // A broadcast with binary (encoded once for every recipient) carries the
  // bin inline and the offset last.
  const bb = next(socket, "bb");
  checkEqual(await ack(socket, "bcast", { event: "bb", data: { k: 1 }, withBinary: true }), ["sent"], "bcast ack");
  const bbArgs = await bb;
  checkEqual(bbArgs.slice(0, 2), [{ k: 1 }, Buffer.from([1, 2, 3])], "binary broadcast");
  check(typeof bbArgs[2] === "string", `binary broadcast without an offset: ${JSON.stringify(normalize(bbArgs))}`);
  const transport = await checkTransportMode(info);

  // The server closes the transport; the socket's handler emits while it is away.
  events.length = 0;
  const reconnected = next(socket, "connect", "the reconnection");
  const gone = next(socket, "disconnect", "the disconnect");
  socket.emit("close-transport");
  const [reason] = await gone;
  await reconnected;
  check(socket.recovered === true, `socket.recovered is ${socket.recovered} after a ${reason}`);
  check(socket.id === id, `the socket id changed from ${id} to ${socket.id}`);
  const who = (await ack(socket, "whoami"))[0];
  check(who.recovered === true && who.id === id && who.rooms.includes("r"), `whoami after recovery: ${JSON.stringify(who)}`);
  await sleep(GRACE_MS);
  // Every missed event arrived once, in order, with its offset.
  for (const kind of ["direct", "room"]) {
    const got = events.filter((e) => e.name === kind);
    checkEqual(got.map((e) => e.args[0]), [...Array(BURST).keys()], `missed ${kind} events`);
    check(got.every((e) => typeof e.args[1] === "string"), `missed ${kind} events without an offset: ${JSON.stringify(normalize(got))}`);
  }
  // Binary still travels both ways on the recovered socket.
  socket.emit("message", "after", { bin: Buffer.from([1, 2, 3]) });
  const back = await next(socket, "message-back");
  checkEqual(back.slice(0, 2), ["after", { bin: Buffer.from([1, 2, 3]) }], "echo after recovery");
  socket.disconnect();
  await closeManagers();
  return { transport: transport.transport, reason, recovered: socket.recovered };
}

async function wrongParserScenario() {
  const clientParser = SERVER_PARSER === "msgpack" ? {} : { parser: msgpackParser };
  // Reconnection on: a failure the client understands stops it; a bare
  // close would have it reconnect forever.
  const socket = io(baseUrl + "/", { path, forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 100, timeout: STEP_TIMEOUT_MS, ...transportOpts(), ...clientParser });
  let opens = 0;
  socket.io.on("open", () => opens++);
  const outcome = await withDeadline(
    new Promise((resolve) => {
      socket.on("connect", () => resolve({ event: "connect" }));
      socket.on("connect_error", (e) => resolve({ event: "connect_error", message: errorMessage(e) }));
      socket.on("disconnect", (reason) => resolve({ event: "disconnect", reason }));
    }),
    STEP_TIMEOUT_MS,
    "a connect_error or a disconnect",
  );
  emit({ event: "outcome", ...outcome });
  check(outcome.event === "connect_error", `expected a connect_error, got ${JSON.stringify(outcome)}`);
  check(outcome.message.includes(SERVER_PARSER === "msgpack" ? "msgpack" : "JSON"), `the connect_error does not name the server's parser: ${outcome.message}`);
  await sleep(1000);
  check(opens === 1, `the client opened ${opens} engine.io connections: it reconnects in a loop`);
  socket.close();
  return { transport: mode, message: outcome.message, opens };
}

runSioScript("msgpack-client.mjs", { recovery: recoveryScenario, "wrong-parser": wrongParserScenario }, GLOBAL_TIMEOUT_MS);
