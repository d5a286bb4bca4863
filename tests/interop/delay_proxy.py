#!/usr/bin/env python3
"""A TCP proxy that delays what it forwards, each way, by a fixed time.

examples/delay_proxy.rs is the one the benchmark uses now (this one,
under the GIL, was the bottleneck of a walk through it); this one stays
for comparison: tests/interop/nfs.sh serve runs it with
CBR_NFS_PROXY=python.

`tc netem` is not available on these kernels; this stands in for a
network with a round trip: every piece of data read on one side is
written to the other side DELAY_MS after it was read (order kept; the
delay does not add up along a stream, so bandwidth is not limited). It
also counts the ONC RPC records the client sends (record marking: a
fragment with its last bit set ends a record), which are the calls the
server receives.

    delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS CONTROL_PORT

listens on 127.0.0.1:LISTEN_PORT and forwards to 127.0.0.1:TARGET_PORT.
A connection to 127.0.0.1:CONTROL_PORT reads "calls N" (the calls
forwarded so far) and is closed. Runs until killed.
"""
import heapq
import socket
import sys
import threading
import time

LOCK = threading.Lock()
CALLS = 0


class Counter:
    """Counts complete RPC records in a client-to-server stream."""

    def __init__(self):
        self.header = b""
        self.left = 0  # bytes of the current fragment still to come
        self.last = False

    def feed(self, data):
        global CALLS
        i = 0
        n = len(data)
        while i < n:
            if self.left == 0:
                need = 4 - len(self.header)
                self.header += data[i:i + need]
                i += need
                if len(self.header) < 4:
                    return
                mark = int.from_bytes(self.header, "big")
                self.header = b""
                self.last = bool(mark & 0x80000000)
                self.left = mark & 0x7FFFFFFF
                if self.left == 0 and self.last:
                    with LOCK:
                        CALLS += 1
                continue
            take = min(self.left, n - i)
            i += take
            self.left -= take
            if self.left == 0 and self.last:
                with LOCK:
                    CALLS += 1


def pump(src, dst, delay, counter):
    """Read from src; write each piece to dst `delay` seconds after it came."""
    queue = []
    cond = threading.Condition()
    done = [False]
    seq = [0]

    def writer():
        while True:
            with cond:
                while not queue and not done[0]:
                    cond.wait()
                if not queue and done[0]:
                    break
                due, _, data = queue[0]
                now = time.monotonic()
                if due > now:
                    cond.wait(due - now)
                    continue
                heapq.heappop(queue)
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while True:
        try:
            data = src.recv(1 << 20)
        except OSError:
            data = b""
        if counter is not None and data:
            counter.feed(data)
        with cond:
            if not data:
                done[0] = True
                cond.notify()
                break
            seq[0] += 1
            heapq.heappush(queue, (time.monotonic() + delay, seq[0], data))
            cond.notify()
    t.join()


def serve_conn(client, target, delay):
    try:
        server = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.close()
        return
    for s in (client, server):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a = threading.Thread(target=pump, args=(client, server, delay, Counter()), daemon=True)
    b = threading.Thread(target=pump, args=(server, client, delay, None), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    client.close()
    server.close()


def control(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        with LOCK:
            n = CALLS
        try:
            c.sendall(f"calls {n}\n".encode())
        except OSError:
            pass
        c.close()


def main():
    listen, target, delay_ms, ctl = (int(a) for a in sys.argv[1:5])
    threading.Thread(target=control, args=(ctl,), daemon=True).start()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", listen))
    s.listen(256)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_conn, args=(c, target, delay_ms / 1000.0), daemon=True).start()


if __name__ == "__main__":
    main()
