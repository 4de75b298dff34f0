"""python-socketio's server with the application of interop/servers/node-server.mjs,
for the Rust client's interoperability tests. Usage: server.py <port> [--recovery]

Port 0 picks a free port; prints {"ready": port} once listening. Serves long-polling and
WebSocket (python-engineio's threading mode, simple-websocket, on werkzeug's server).
python-socketio has no connection state recovery: --recovery is refused.
"""

import json
import logging
import sys
import threading
import time

import socketio
from werkzeug.serving import make_server


def main():
    args = sys.argv[1:]
    port = int(args[0]) if args else 0
    if "--recovery" in args:
        print(json.dumps({"error": "python-socketio has no connection state recovery"}), flush=True)
        sys.exit(2)

    sio = socketio.Server(async_mode="threading", ping_interval=2, ping_timeout=1.5,
                          max_http_buffer_size=1_000_000)
    counts = {}

    def setup(nsp):
        @sio.on("connect", namespace=nsp)
        def connect(sid, environ, auth):
            if nsp == "/private" and (auth or {}).get("token") != "secret":
                raise socketio.exceptions.ConnectionRefusedError("not authorized", {"code": 403})
            auth = dict(auth or {})
            auth.pop("pid", None)
            auth.pop("offset", None)
            counts[(nsp, sid)] = 0
            sio.emit("welcome", (auth, False, nsp), to=sid, namespace=nsp)

        @sio.on("echo", namespace=nsp)
        def echo(sid, *a):
            sio.emit("echo-back", a, to=sid, namespace=nsp)

        @sio.on("ack", namespace=nsp)
        def ack(sid, *a):
            return a

        @sio.on("ask", namespace=nsp)
        def ask(sid, n):
            def run():
                try:
                    answer = sio.call("question", n, to=sid, namespace=nsp, timeout=5)
                    sio.emit("answered", answer, to=sid, namespace=nsp)
                except Exception as e:
                    sio.emit("answered", "error: " + str(e), to=sid, namespace=nsp)
            sio.start_background_task(run)

        @sio.on("count", namespace=nsp)
        def count(sid, *a):
            counts[(nsp, sid)] = counts.get((nsp, sid), 0) + 1

        @sio.on("get-count", namespace=nsp)
        def get_count(sid, *a):
            return counts.get((nsp, sid), 0)

        @sio.on("kick", namespace=nsp)
        def kick(sid, *a):
            sio.disconnect(sid, namespace=nsp)

        @sio.on("ticks", namespace=nsp)
        def ticks(sid, n, ms):
            def run():
                for i in range(1, n + 1):
                    time.sleep(ms / 1000)
                    sio.emit("tick", i, namespace=nsp)
            sio.start_background_task(run)

    for nsp in ["/", "/admin", "/private"]:
        setup(nsp)

    # Werkzeug logs every request, and an error when a WebSocket handler returns (simple-websocket
    # answers the upgrade itself): the tests read what the client saw instead.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    app = socketio.WSGIApp(sio)
    server = make_server("127.0.0.1", port, app, threaded=True)
    print(json.dumps({"ready": server.server_port}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
