#!/usr/bin/env python3
"""prehello — what sockets that never say hello cost a running meshd.

    python3 contrib/abuse/prehello.py PID N idle
    python3 contrib/abuse/prehello.py PID N partial SIZE SENT

Opens N WebSocket connections to the broker whose port is in
$MESHD_PORT_FILE (default /tmp/att/port) and whose process is PID; with
`partial`, each then sends the head of a SIZE-byte text frame and SENT bytes
of it, and never the rest.  Prints the broker's RSS before, after the
upgrades and after the partial frames (KiB, from /proc/PID/status), per
socket, and how many sockets the broker closed (1009 message_budget, see
README "Limits").  Python's standard library only; needs `ulimit -n` > N.
"""
import os
import socket
import struct
import sys
import time


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return -1


def main():
    pid, n, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    port = int(open(os.environ.get("MESHD_PORT_FILE", "/tmp/att/port")).read())
    upgrade = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    before = rss(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(upgrade)
        socks.append(s)
    for s in socks:
        s.settimeout(5)
        s.recv(4096)  # the 101
    time.sleep(1)
    idle = rss(pid)
    closed = 0
    if mode == "partial":
        size, sent = int(sys.argv[4]), int(sys.argv[5])
        # Masked (key 0, so the payload goes as is), 64-bit length.
        head = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", size) + b"\0\0\0\0"
        for s in socks:
            try:
                s.sendall(head + b"A" * sent)
            except OSError:
                closed += 1
        time.sleep(2)
    after = rss(pid)
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(65536)
            if d == b"" or d[:1] == b"\x88":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(f"n={n} mode={mode} rss before={before} upgraded={idle} after={after} KiB;"
          f" per socket: upgraded {(idle - before) / n:.1f} KiB,"
          f" partial {(after - idle) / n:.1f} KiB; closed by the broker {closed}")


if __name__ == "__main__":
    main()
