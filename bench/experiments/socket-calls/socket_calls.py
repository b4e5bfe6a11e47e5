#!/usr/bin/env python3
"""Socket calls against file calls on loopback TCP, per call (ADR 0019).

Opens N connected loopback pairs, then in alternating rounds writes one
small WebSocket-sized frame to every server-side socket with `writev`
(what a tokio TcpStream's vectored write makes), `sendmsg` and `send`,
and reads it on the client side with `read` and `recv`. Prints the median
and best CPU time per call (this process's user + system time, which on
loopback includes the receiving side's TCP work), and the ratios.

Python adds the same interpreter cost to each call (a little more for
`sendmsg`, which builds a message header), so the ratios understate the
kernel's difference rather than overstate it.

    python3 socket_calls.py [pairs] [rounds]
"""
import os
import resource
import socket
import statistics
import sys
import time

PAIRS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 12

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if 2 * PAIRS + 16 > hard:
    sys.exit(f"{PAIRS} pairs need {2 * PAIRS + 16} descriptors; the limit is {hard}")

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
pairs = []
for _ in range(PAIRS):
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pairs.append((server, client))

header, payload = b"\x81\x64", b"x" * 100
frame = header + payload


def per_call(calls):
    start = time.process_time()
    calls()
    return (time.process_time() - start) / PAIRS * 1e9


def drain():
    for _, client in pairs:
        client.recv(65536)


writes = {
    "writev": lambda: [os.writev(server.fileno(), [header, payload]) for server, _ in pairs],
    "sendmsg": lambda: [server.sendmsg([header, payload]) for server, _ in pairs],
    "send": lambda: [server.send(frame) for server, _ in pairs],
}
reads = {
    "read": lambda: [os.read(client.fileno(), 65536) for _, client in pairs],
    "recv": lambda: [client.recv(65536) for _, client in pairs],
}
results = {name: [] for name in [*writes, *reads]}
for _ in range(ROUNDS):
    for name, calls in writes.items():
        results[name].append(per_call(calls))
        drain()
    for name, calls in reads.items():
        for server, _ in pairs:
            server.send(frame)
        results[name].append(per_call(calls))

median = {name: statistics.median(times) for name, times in results.items()}
for name, times in results.items():
    print(f"{name:8} median {median[name]:6.0f} ns/call   best {min(times):6.0f}")
print(f"writev / sendmsg {median['writev'] / median['sendmsg']:.2f}x   read / recv {median['read'] / median['recv']:.2f}x")
