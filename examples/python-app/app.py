#!/usr/bin/env python3
"""A small app (stdlib only) that takes rotated credentials without a restart.

It reads a JSON config file rendered by infisical-reloader (templates/json/config.json.hbs:
{"KEY": "value", ...}), keeps one credential from it in memory, and re-reads the file on
SIGHUP -- the reloader's `reload: { signal: HUP, pidFile: ... }`.

It never prints or serves the credential. GET /fingerprint answers with its SHA-256 instead, so
a test (or a curious operator) can see which value is in use:

    {"key": "DB_PASSWORD", "sha256": "9f86...", "pid": 123, "reloads": 1, "loadedAt": "..."}

Usage:
    python3 app.py --config out/config.json [--key DB_PASSWORD] [--port 8000] [--pid-file out/app.pid]

--port 0 picks a free port; the app prints `listening on http://127.0.0.1:PORT` once it serves.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log(message):
    """One line on stderr; never a secret value."""
    sys.stderr.write(f"[app {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


class Credential:
    """The credential in use. `state` is replaced as a whole (one reference assignment, atomic in
    CPython), so request threads never see half of a reload and no lock is needed -- a lock
    taken inside a signal handler could deadlock against the main thread."""

    def __init__(self, path, key):
        self.path = path
        self.key = key
        self.state = None  # {"sha256", "loadedAt"} once a load succeeded
        self.reloads = 0

    def load(self):
        """Read the file; on any problem keep the previous value (a torn or missing file must
        not take the app down) and say why, by file and key name only."""
        try:
            with open(self.path, encoding="utf-8") as f:
                config = json.load(f)
            value = config[self.key]
            if not isinstance(value, str):
                raise ValueError(f"{self.key} is not a string")
        except FileNotFoundError:
            log(f"{self.path} does not exist yet; waiting for the reloader to render it")
            return False
        except KeyError:
            log(f"{self.path} has no key {self.key}; keeping the previous value")
            return False
        except (OSError, ValueError) as err:
            # json.JSONDecodeError messages name a line and column, never the content
            log(f"cannot read {self.path}: {err}; keeping the previous value")
            return False
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
        first = self.state is None
        self.state = {"sha256": digest, "loadedAt": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        if not first:
            self.reloads += 1
        log(f"{'loaded' if first else 'reloaded'} {self.key} from {self.path} (sha256 {digest[:12]})")
        return True


def make_handler(credential):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/healthz":
                self.reply(200, {"ok": True})
            elif self.path == "/fingerprint":
                state = credential.state
                if state is None:
                    self.reply(503, {"error": "no credential loaded yet"})
                else:
                    self.reply(
                        200,
                        {
                            "key": credential.key,
                            "sha256": state["sha256"],
                            "loadedAt": state["loadedAt"],
                            "reloads": credential.reloads,
                            "pid": os.getpid(),
                        },
                    )
            else:
                self.reply(404, {"error": "not found"})

        def reply(self, status, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass  # no access log

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file rendered by the reloader")
    parser.add_argument("--key", default="DB_PASSWORD", help="credential key in the file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--pid-file", help="written once SIGHUP is handled; removed at exit")
    args = parser.parse_args()

    credential = Credential(args.config, args.key)
    # (1) handle SIGHUP *before* anyone can find our pid: Python's default for SIGHUP is to
    #     terminate, so a reloader that signalled us earlier would kill the app.
    #     The handler runs in the main thread between bytecodes; it only reads a small file.
    signal.signal(signal.SIGHUP, lambda *_: credential.load())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # (2) the first load: the reloader normally rendered the file already (init container or
    #     first pass); if not, we serve 503 until its first SIGHUP.
    credential.load()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(credential))
    server.daemon_threads = True
    # (3) only now publish the pid
    if args.pid_file:
        with open(args.pid_file + ".tmp", "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(args.pid_file + ".tmp", args.pid_file)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
        if args.pid_file:
            try:
                os.remove(args.pid_file)
            except OSError:
                pass
    log("stopped")


if __name__ == "__main__":
    main()
