#!/usr/bin/env python3
"""A recording HTTP endpoint on 127.0.0.1 for the fault-injection suite.

It does not check signatures: it stands in for a registry so that the suite
can see what a client sent and control when (and whether) it answers.

  server.py --log FILE [--port N] [--delay-ms LO-HI] [--mode MODE]

Modes:
  answer        (default) read the request, wait a random delay, answer 204
  never         accept connections and hold them open without answering
  second-fails  per Idempotency-Key: the first request gets 204 at once, every
                later one waits 1 s and gets 503
  first-fails   per Idempotency-Key: the first request gets 503, every later one
                204 (each after the random delay): a sender has to retry

The log gets one line per event, flushed at once:
  recv KEY     the whole request (headers and body) was read
  sent KEY STATUS
  accept       (mode never) a connection was accepted
The port is printed as 'listening PORT' on stdout once it listens. It stops
on SIGTERM or SIGINT, or after --max-seconds (a bound, default 600).
"""
import argparse
import random
import signal
import socket
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", default="0-0")
    ap.add_argument("--mode", choices=["answer", "never", "second-fails", "first-fails"], default="answer")
    ap.add_argument("--max-seconds", type=float, default=600)
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.delay_ms.split("-"))
    log_lock = threading.Lock()
    log = open(args.log, "a", buffering=1)
    seen = {}
    seen_lock = threading.Lock()
    held = []

    def record(line):
        with log_lock:
            log.write(line + "\n")
            log.flush()

    def read_request(conn):
        conn.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
            if len(data) > 1 << 20:
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        return headers

    def answer(conn, status, reason):
        conn.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )

    reasons = {204: "No Content", 503: "Service Unavailable"}

    def reply(conn, key, status):
        answer(conn, status, reasons[status])
        record(f"sent {key} {status}")

    def earlier(key):
        """How many requests with this Idempotency-Key came before this one."""
        with seen_lock:
            n = seen.get(key, 0)
            seen[key] = n + 1
        return n

    def handle(conn):
        try:
            headers = read_request(conn)
            if headers is None:
                return
            key = headers.get("idempotency-key", "-")
            record(f"recv {key}")
            if args.mode == "second-fails":
                if earlier(key) == 0:
                    reply(conn, key, 204)
                else:
                    time.sleep(1.0)
                    reply(conn, key, 503)
                return
            time.sleep(random.randint(lo, hi) / 1000)
            if args.mode == "first-fails" and earlier(key) == 0:
                reply(conn, key, 503)
                return
            reply(conn, key, 204)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(256)
    srv.settimeout(0.2)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening {srv.getsockname()[1]}", flush=True)
    deadline = time.monotonic() + args.max_seconds
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        if args.mode == "never":
            held.append(conn)
            record("accept")
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
    for conn in held:
        conn.close()
    srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
