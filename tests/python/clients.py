"""python-socketio (the real client, sync or asyncio) against the socketgate binary's relay,
over one transport. Run by tests/third_party_clients.rs:

    python tests/python/clients.py {sync|asyncio} {polling|websocket} URL

Checks, each with a bounded wait:
- `echo` with one argument and with several (binary included) reaches a handler declared
  with exactly that many parameters, with exactly those values; `call('echo', ...)` gets
  them back as the ack (and the event again);
- `join` acks with the room; a `chat` to "room-x" reaches both members (the sender and
  another client) with `from` equal to the sender's sid, and not a client outside the room:
  that one gets a later `chat` to everyone (the marker) first, which it could only get after
  the room message.

Prints one JSON line, {"ok": true, ...} or {"ok": false, "error": ...}, and exits 0 or 1.
A watchdog ends the process when anything hangs.
"""
import asyncio, json, os, queue, sys, threading
from importlib.metadata import version
import socketio

WAIT = 5  # seconds for any one thing to arrive
WATCHDOG = 45  # seconds for the whole run

mode, transport, url = sys.argv[1:4]
if mode not in ("sync", "asyncio") or transport not in ("polling", "websocket"):
    sys.exit(f"usage: {sys.argv[0]} sync|asyncio polling|websocket URL")


def verdict(ok, **fields):
    client = f"python-socketio {version('python-socketio')}, python-engineio {version('python-engineio')}"
    print(json.dumps({"ok": ok, "client": client, "mode": mode, "transport": transport, **fields},
                     default=repr), flush=True)
    # python-engineio's threads and tasks can outlive a disconnect that waits on a long
    # poll (see below); the verdict is out, so leave without waiting for them.
    os._exit(0 if ok else 1)


# python-socketio imports its transports lazily and only logs when one is missing.
try:
    if mode == "asyncio":
        import aiohttp  # noqa: F401
    elif transport == "websocket":
        import websocket  # noqa: F401
except ImportError as e:
    verdict(False, error=f"{e}: install tests/python/requirements.txt into this venv "
                         "(the README's test command, bash tests/run.sh, does)")


def watchdog():
    verdict(False, error=f"watchdog: still running after {WATCHDOG} s", step=step)


step = "start"  # what the verdict says was under way
timer = threading.Timer(WATCHDOG, watchdog)
timer.daemon = True
timer.start()



def expected(name, what, event, value):
    """The value of the inbox entry that should be the event `what` (an error reported by a
    handler fails the run)."""
    if event == "error":
        raise Failed(f"{name}: {value}")
    check(f"{name}: the event after {what}", event, what)
    return value

class Failed(Exception):
    pass


def check(what, got, expected):
    if got != expected or type(got) is not type(expected):
        raise Failed(f"{what}: expected {expected!r}, got {got!r}")


# Cases for `echo`: the handler for each takes exactly that many arguments, so an extra
# one (a recovery offset, say) raises TypeError, which the handler wrapper reports.
BIN = b"\x00\x01\xff"
CASES = [("a",), (1, "two", {"three": 3}, BIN), (BIN,), ({"nested": [BIN, "x"]},)]


def one(a):
    return (a,)


def four(a, b, c, d):
    return (a, b, c, d)


HANDLERS = {1: one, 4: four}


def call_result(args):
    # python-socketio's call() returns the only ack argument, or a tuple of several.
    return args[0] if len(args) == 1 else tuple(args)


# ---- sync: socketio.Client --------------------------------------------------------------

class SyncPeer:
    def __init__(self, name):
        self.name = name
        self.inbox = queue.Queue()  # ("echo" | "chat" | "error", value)
        self.sio = socketio.Client(reconnection=False)
        self.on("echo", one)
        self.on("chat", self.chat)

    def chat(self, msg):
        return msg

    def on(self, event, handler):
        def strict(*args):  # python-socketio would only log the exception
            try:
                self.inbox.put((event, handler(*args)))
            except Exception as e:
                self.inbox.put(("error", f"{event} handler {handler.__name__}{args!r}: {e!r}"))
        self.sio.on(event, strict)

    def connect(self):
        self.sio.connect(url, transports=[transport], wait_timeout=WAIT)
        check(f"{self.name} transport", self.sio.transport(), transport)

    def next(self, what):
        try:
            event, value = self.inbox.get(timeout=WAIT)
        except queue.Empty:
            raise Failed(f"{self.name}: no {what} within {WAIT} s")
        return expected(self.name, what, event, value)

    def disconnect(self):
        # python-engineio 4.15.1's polling disconnect can miss its close packet and then
        # waits for the long poll (up to pingInterval, 25 s): give it a few seconds only.
        bye = threading.Thread(target=self.sio.disconnect, daemon=True)
        bye.start()
        bye.join(WAIT)


def run_sync():
    global step
    a, b, c = SyncPeer("a"), SyncPeer("b"), SyncPeer("c")
    peers = [a, b, c]
    step = "connect"
    for p in peers:
        p.connect()
    for args in CASES:
        step = f"echo {args!r}"
        a.on("echo", HANDLERS[len(args)])
        a.sio.emit("echo", args if len(args) > 1 else args[0])
        check("echo event", a.next("echo"), args)
        step = f"call echo {args!r}"
        got = a.sio.call("echo", args if len(args) > 1 else args[0], timeout=WAIT)
        check("echo ack", got, call_result(args))
        check("echo event after the call", a.next("echo"), args)
    step = "join"
    for p in (a, b):
        check(f"{p.name} join ack", p.sio.call("join", "room-x", timeout=WAIT), "room-x")
    step = "room chat"
    a.sio.emit("chat", {"room": "room-x", "text": "hello room-x"})
    a.sio.emit("chat", {"text": "marker"})
    sid = a.sio.get_sid()
    room_msg = {"room": "room-x", "text": "hello room-x", "from": sid}
    marker = {"text": "marker", "from": sid}
    for p in (a, b):
        check(f"{p.name} first chat", p.next("chat"), room_msg)
        check(f"{p.name} second chat", p.next("chat"), marker)
    check("c (not in room-x) first chat", c.next("chat"), marker)
    step = "disconnect"
    for p in peers:
        p.disconnect()
    return {"sid": sid}


# ---- asyncio: socketio.AsyncClient ------------------------------------------------------

async def one_async(a):
    return (a,)


async def four_async(a, b, c, d):
    return (a, b, c, d)


ASYNC_HANDLERS = {1: one_async, 4: four_async}


class AsyncPeer:
    def __init__(self, name):
        self.name = name
        self.inbox = asyncio.Queue()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.on("echo", one_async)
        self.on("chat", self.chat)

    async def chat(self, msg):
        return msg

    def on(self, event, handler):
        async def strict(*args):
            try:
                self.inbox.put_nowait((event, await handler(*args)))
            except Exception as e:
                self.inbox.put_nowait(("error", f"{event} handler {handler.__name__}{args!r}: {e!r}"))
        self.sio.on(event, strict)

    async def connect(self):
        await self.sio.connect(url, transports=[transport], wait_timeout=WAIT)
        check(f"{self.name} transport", self.sio.transport(), transport)

    async def next(self, what):
        try:
            event, value = await asyncio.wait_for(self.inbox.get(), WAIT)
        except asyncio.TimeoutError:
            raise Failed(f"{self.name}: no {what} within {WAIT} s")
        return expected(self.name, what, event, value)

    async def disconnect(self):
        # Bounded, as for the sync client: the verdict must not wait on a long poll.
        try:
            await asyncio.wait_for(self.sio.disconnect(), WAIT)
        except asyncio.TimeoutError:
            pass


async def run_asyncio():
    global step
    a, b, c = AsyncPeer("a"), AsyncPeer("b"), AsyncPeer("c")
    peers = [a, b, c]
    step = "connect"
    for p in peers:
        await p.connect()
    for args in CASES:
        step = f"echo {args!r}"
        a.on("echo", ASYNC_HANDLERS[len(args)])
        await a.sio.emit("echo", args if len(args) > 1 else args[0])
        check("echo event", await a.next("echo"), args)
        step = f"call echo {args!r}"
        got = await a.sio.call("echo", args if len(args) > 1 else args[0], timeout=WAIT)
        check("echo ack", got, call_result(args))
        check("echo event after the call", await a.next("echo"), args)
    step = "join"
    for p in (a, b):
        check(f"{p.name} join ack", await p.sio.call("join", "room-x", timeout=WAIT), "room-x")
    step = "room chat"
    await a.sio.emit("chat", {"room": "room-x", "text": "hello room-x"})
    await a.sio.emit("chat", {"text": "marker"})
    sid = a.sio.get_sid()
    room_msg = {"room": "room-x", "text": "hello room-x", "from": sid}
    marker = {"text": "marker", "from": sid}
    for p in (a, b):
        check(f"{p.name} first chat", await p.next("chat"), room_msg)
        check(f"{p.name} second chat", await p.next("chat"), marker)
    check("c (not in room-x) first chat", await c.next("chat"), marker)
    step = "disconnect"
    for p in peers:
        await p.disconnect()
    return {"sid": sid}


def report(run):
    try:
        result = run()
    except Exception as e:  # a failed check, a timeout or a connection error
        verdict(False, error=f"{type(e).__name__}: {e}", step=step)
    verdict(True, **result)


async def report_async():
    # The verdict is given inside the loop: leaving asyncio.run would first wait for
    # the clients' tasks to be cancelled.
    try:
        result = await run_asyncio()
    except Exception as e:
        verdict(False, error=f"{type(e).__name__}: {e}", step=step)
    verdict(True, **result)


if mode == "sync":
    report(run_sync)
else:
    asyncio.run(report_async())
