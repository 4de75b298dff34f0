"""Scenarios for the socketio-tokio interoperability tests, driven with
python-socketio's client. Usage: client.py <scenario> <url> [transports]

Prints one JSON line with what it saw; on a failure the line has an "error"
field and the exit code is 1.
"""

import json
import queue
import sys
import threading
import time
import traceback

import socketio

TIMEOUT = 10


def wait(q):
    return q.get(timeout=TIMEOUT)


def roundtrip(url, transports, result):
    sio = socketio.Client(reconnection=False)
    inbox = {name: queue.Queue() for name in ["echo-back", "bin", "disconnect"]}

    @sio.on("echo-back")
    def echo_back(*args):
        inbox["echo-back"].put(list(args))

    @sio.on("bin")
    def binary(*args):
        inbox["bin"].put(list(args))

    @sio.on("question")
    def question(q):
        return "answer to " + q, b"\x09\x08"

    @sio.on("silent")
    def silent(*args):
        # python-socketio always acknowledges: answer after the server gave up.
        time.sleep(1)

    @sio.event
    def disconnect(reason=None):
        inbox["disconnect"].put(reason)

    sio.connect(url, transports=transports, wait_timeout=TIMEOUT)
    result["transport"] = sio.transport()

    sio.emit("echo", ("hello", {"n": 1}))
    result["echo"] = wait(inbox["echo-back"])
    # Over polling, an answer this large comes compressed (httpCompression).
    sio.emit("echo", ("x" * 5000,))
    (large,) = wait(inbox["echo-back"])
    result["largeEcho"] = len(large) if large == "x" * 5000 else large
    sio.emit("echo", (b"\x01\x02\x03",))
    result["binaryEcho"] = [list(b) for b in wait(inbox["echo-back"])]

    sio.emit("send-bin")
    b, label = wait(inbox["bin"])
    result["serverBinary"] = [list(b), label]

    result["sum"] = sio.call("sum", (1, 2), timeout=TIMEOUT)
    result["ackBinary"] = list(sio.call("bin-ack", timeout=TIMEOUT))
    result["serverAck"] = sio.call("ask-me", timeout=TIMEOUT)
    result["serverAckTimeout"] = sio.call("ask-silent", timeout=TIMEOUT)

    sio.disconnect()
    result["clientReason"] = str(wait(inbox["disconnect"]))


def auth(url, transports, result):
    ok = socketio.Client(reconnection=False)
    hello = queue.Queue()
    ok.on("hello", lambda token: hello.put(token), namespace="/admin")
    ok.connect(url, namespaces=["/admin"], auth={"token": "good"},
               transports=transports, wait_timeout=TIMEOUT)
    result["accepted"] = wait(hello)
    ok.disconnect()

    bad = socketio.Client(reconnection=False)
    errors = queue.Queue()
    bad.on("connect_error", lambda data=None: errors.put(data), namespace="/admin")
    try:
        bad.connect(url, namespaces=["/admin"], auth={"token": "bad"},
                    transports=transports, wait_timeout=TIMEOUT)
        result["rejected"] = "connected"
    except socketio.exceptions.ConnectionError as e:
        result["rejectedError"] = str(e)
        result["rejected"] = wait(errors)
    finally:
        bad.disconnect()


def reasons(url, transports, result):
    sio = socketio.Client(reconnection=False)
    gone = queue.Queue()

    @sio.event
    def disconnect(reason=None):
        gone.put(reason)

    sio.connect(url, transports=transports, wait_timeout=TIMEOUT)
    sio.emit("kick-me")
    result["serverDisconnect"] = str(wait(gone))


SCENARIOS = {"roundtrip": roundtrip, "auth": auth, "reasons": reasons}


def main():
    scenario, url = sys.argv[1], sys.argv[2]
    transports = (sys.argv[3] if len(sys.argv) > 3 else "polling,websocket").split(",")
    result = {"scenario": scenario, "transports": transports}
    code = 0
    try:
        SCENARIOS[scenario](url, transports, result)
    except Exception:  # noqa: BLE001 - reported to the test
        result["error"] = traceback.format_exc()
        code = 1
    print(json.dumps(result), flush=True)
    # Leave the client's threads behind.
    import os
    os._exit(code)


if __name__ == "__main__":
    threading.Timer(30, lambda: (print(json.dumps({"error": "timed out"}), flush=True),
                                 __import__("os")._exit(1))).start()
    main()
