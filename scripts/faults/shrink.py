#!/usr/bin/env python3
"""Make a file shrink and grow again, over and over, while others read it.

  shrink.py FILE SIZE SECONDS

Alternates ftruncate(FILE, 0) and ftruncate(FILE, SIZE) (sparse: no data is
written, so each flip is cheap) until SECONDS pass or SIGTERM/SIGINT, then
leaves the file at SIZE. A reader that maps FILE sees its pages vanish under
it; one that reads it sees it change.
"""
import os
import signal
import sys
import time


def main():
    path, size, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    deadline = time.monotonic() + seconds
    flips = 0
    fd = os.open(path, os.O_WRONLY)
    try:
        while not stop and time.monotonic() < deadline:
            os.ftruncate(fd, 0)
            time.sleep(0.001)
            os.ftruncate(fd, size)
            time.sleep(0.001)
            flips += 1
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    print(f"flips {flips}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
