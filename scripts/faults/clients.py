#!/usr/bin/env python3
"""Hostile HTTP clients against a receiver on 127.0.0.1, with its RSS sampled.

  clients.py slow  --port P --pid PID --headers 200 --bodies 50 --seconds S
  clients.py flood --port P --pid PID --clients 4 --seconds S --rss-limit-kib K

slow:  --headers connections send a request line, then one header byte per
       second; --bodies connections send complete headers with
       'Content-Length: 1000000', then one body byte per second. Once every
       connection is open it prints 'ready OPEN' and keeps dripping until
       --seconds pass or it gets SIGTERM/SIGINT.
flood: --clients connections each stream one endless header line as fast as
       the receiver takes it, until --seconds pass, the receiver closes them,
       or the receiver's RSS passes --rss-limit-kib (stopped early so that a
       receiver without limits cannot exhaust the machine).

Both end by printing 'max_rss_kib N', 'closed_by_server N' and 'sent_bytes N'
and close every socket they opened.
"""
import argparse
import asyncio
import signal
import sys


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Stats:
    def __init__(self):
        self.max_rss = 0
        self.closed = 0
        self.sent = 0
        self.open = 0


async def sampler(pid, stats, stop, limit=None):
    while not stop.is_set():
        stats.max_rss = max(stats.max_rss, rss_kib(pid))
        if limit and stats.max_rss > limit:
            stop.set()
            return
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


async def connect(port, stats, writers):
    """Open a connection (bounded) and count it in stats: (reader, writer),
    or None if it could not be opened."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    except (OSError, asyncio.TimeoutError):
        stats.closed += 1
        return None
    writers.append(writer)
    stats.open += 1
    return reader, writer


async def drip(port, kind, stats, stop, writers):
    conn = await connect(port, stats, writers)
    if conn is None:
        return
    reader, writer = conn
    head = f"POST /hooks/spawn HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if kind == "body":
        head += "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
    else:
        head += "X-Slow: "
    try:
        writer.write(head.encode())
        await writer.drain()
        stats.sent += len(head)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
                break
            except asyncio.TimeoutError:
                pass
            if reader.at_eof():
                raise ConnectionResetError
            writer.write(b"a")
            await writer.drain()
            stats.sent += 1
    except (OSError, ConnectionError):
        stats.closed += 1


async def flood(port, stats, stop, writers):
    conn = await connect(port, stats, writers)
    if conn is None:
        return
    reader, writer = conn
    chunk = b"a" * 65536
    try:
        writer.write(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Flood: ".encode())
        while not stop.is_set():
            if reader.at_eof():
                raise ConnectionResetError
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 1.0)
            stats.sent += len(chunk)
    except asyncio.TimeoutError:
        # The receiver stopped reading: flow control works; keep waiting.
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
    except (OSError, ConnectionError):
        stats.closed += 1


async def run(args):
    stats = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(args.seconds, stop.set)
    writers = []
    tasks = []
    if args.cmd == "slow":
        limit = None
        kinds = ["header"] * args.headers + ["body"] * args.bodies
        for kind in kinds:
            tasks.append(asyncio.create_task(drip(args.port, kind, stats, stop, writers)))
            await asyncio.sleep(0)
        # Wait until every connection is open (or failed), bounded.
        for _ in range(200):
            if stats.open + stats.closed >= len(kinds):
                break
            await asyncio.sleep(0.05)
        print(f"ready {stats.open}", flush=True)
    else:
        limit = args.rss_limit_kib
        for _ in range(args.clients):
            tasks.append(asyncio.create_task(flood(args.port, stats, stop, writers)))
    samp = asyncio.create_task(sampler(args.pid, stats, stop, limit))
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)
    await samp
    for w in writers:
        w.close()
    for w in writers:
        try:
            await asyncio.wait_for(w.wait_closed(), 1)
        except Exception:
            pass
    stats.max_rss = max(stats.max_rss, rss_kib(args.pid))
    print(f"max_rss_kib {stats.max_rss}")
    print(f"closed_by_server {stats.closed}")
    print(f"sent_bytes {stats.sent}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["slow", "flood"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--headers", type=int, default=200)
    ap.add_argument("--bodies", type=int, default=50)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rss-limit-kib", type=int, default=65536)
    asyncio.run(run(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
