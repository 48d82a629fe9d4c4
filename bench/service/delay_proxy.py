#!/usr/bin/env python3
# A TCP proxy that delays what the server sends by DELAY seconds (as a pipe: each chunk leaves
# DELAY after it arrived, so answers sent together arrive together), to model a database one
# network round trip away; what the client sends passes at once. Used by
# builds_side_by_side.sh (DELAY_MS).
#
#     python3 bench/service/delay_proxy.py LISTEN_PORT SERVER_PORT DELAY_SECONDS
import socket, sys, threading, time, queue
LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def pump(src, dst, delay):
    q = queue.Queue()
    def reader():
        while True:
            try: data = src.recv(65536)
            except OSError: data = b''
            q.put((time.monotonic() + delay, data))
            if not data: return
    def writer():
        while True:
            due, data = q.get()
            if not data:
                try: dst.shutdown(socket.SHUT_WR)
                except OSError: pass
                return
            wait = due - time.monotonic()
            if wait > 0: time.sleep(wait)
            try: dst.sendall(data)
            except OSError: return
    threading.Thread(target=reader, daemon=True).start()
    threading.Thread(target=writer, daemon=True).start()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', LISTEN)); s.listen(128)
while True:
    c, _ = s.accept()
    u = socket.create_connection(('127.0.0.1', TARGET))
    for x in (c, u): x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pump(c, u, 0.0); pump(u, c, DELAY)
