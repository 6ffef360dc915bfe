"""Command-line chat against the socketgate gateway with python-socketio, over HTTP
long-polling only. Joins a room, sends each stdin line (and a line every few seconds),
prints what arrives, and reconnects by itself when the server goes away.

    python client-demo/python/demo.py [--room R] [--every S] [--once] [URL]

URL defaults to http://127.0.0.1:3000; --every 0 sends stdin lines only; --once sends
one chat, waits for it to come back and exits 0 (1 when nothing came within 10 s).
"""
import argparse, logging, os, sys, threading, time
import socketio

p = argparse.ArgumentParser()
p.add_argument("url", nargs="?", default="http://127.0.0.1:3000")
p.add_argument("--room", default="lobby")
p.add_argument("--every", type=float, default=5)
p.add_argument("--once", action="store_true")
args = p.parse_args()
name = f"python-{os.getpid()}"
lock = threading.Lock()  # handlers run on several threads

def log(*a):
    with lock:
        print(time.strftime("%H:%M:%S"), *a, flush=True)

# python-socketio reports its reconnect attempts only through its logger.
class Attempts(logging.Handler):
    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith(("Connection failed", "Reconnection successful")):
            log(msg.lower())
logger = logging.getLogger("demo.socketio")
logger.setLevel(logging.INFO)
logger.propagate = False
logger.addHandler(Attempts())

sio = socketio.Client(logger=logger, reconnection_delay_max=5)
joined, outbox, echoed = threading.Event(), [], threading.Event()

def send(text):  # lines typed while offline wait until the room is joined again
    if joined.is_set():
        sio.emit("chat", {"room": args.room, "text": text, "name": name})
    else:
        outbox.append(text)

@sio.event
def connect():
    log(f"connected as {sio.get_sid()} ({sio.transport()})")
    sio.emit("join", args.room, callback=on_joined)

def on_joined(room, *_offset):
    log(f"joined {room}")
    joined.set()
    if args.once:
        send(f"once {name}")
    while outbox:
        send(outbox.pop(0))

@sio.on("chat")
def chat(msg, *_offset):  # with --recovery-ms on, a recovery offset follows: ignore it
    log(f"[{msg.get('room', 'everyone')}] {msg.get('name', msg.get('from'))}: {msg.get('text')}")
    if msg.get("from") == sio.get_sid() and msg.get("text") == f"once {name}":
        echoed.set()

@sio.event
def disconnect(reason=None):
    joined.clear()
    log(f"disconnected: {reason}")
    # A server shutting down closes polling sessions with an engine.io close packet,
    # which python-socketio takes for a deliberate disconnect and does not retry.
    if reason == sio.reason.SERVER_DISCONNECT and not args.once:
        threading.Thread(target=reconnect, daemon=True).start()

def reconnect():
    time.sleep(1)
    try:
        sio.connect(args.url, transports=["polling"], retry=True, wait_timeout=5)
    except socketio.exceptions.ConnectionError as e:
        log(f"gave up reconnecting: {e}")

@sio.event
def connect_error(data):
    log(f"connect error: {data}")

sio.connect(args.url, transports=["polling"], retry=not args.once, wait_timeout=5)
if args.once:
    ok = echoed.wait(10)
    # python-engineio's polling write loop can stop before it posts the close
    # packet (it checks its state between two sends), and its disconnect then
    # waits for the long poll, which ends only at the server's next ping
    # (25 s by default). Wait a few seconds for a clean disconnect, then exit
    # anyway: the server times the session out by its heartbeat.
    bye = threading.Thread(target=sio.disconnect, daemon=True)
    bye.start()
    bye.join(5)
    if bye.is_alive():
        log("disconnect still waiting on the long poll after 5 s; exiting")
    sys.exit(0 if ok else 1)
if args.every > 0:
    def ticker(n=0):
        while True:
            time.sleep(args.every)
            n += 1
            send(f"tick {n} from {name}")
    threading.Thread(target=ticker, daemon=True).start()
try:
    for line in sys.stdin:
        if line.strip():
            send(line.strip())
    while True:  # stdin closed: keep receiving (and reconnecting)
        time.sleep(3600)
except KeyboardInterrupt:
    sio.disconnect()
