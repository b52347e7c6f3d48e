#!/usr/bin/env python3
"""The two ends of a request/reply exchange whose waiting side does not block on the socket
but polls it in a sleep loop, as retry loops do; used to see what hangscope says when the
path drops everything.

usage: retry_peer.py echo ADDR       answer each line with the same line; prints "port N"
       retry_peer.py client ADDR PORT
            connect, one exchange, print "ready"; on a line from stdin send a request with
            the socket non-blocking and print "sent", then look for the answer every 100 ms
            in clock_nanosleep (prints "answer" when it comes)
       retry_peer.py server ADDR
            listen (prints "port N"), accept, read one request, print "request"; on a line
            from stdin send the answer non-blocking and print "sent", then sleep in a loop
Ends after 120 s.
"""
import socket
import sys
import time

END = time.monotonic() + 120
ANSWER = b"answer\n" * 40


def sleep_loop(s, say_answer):
    while time.monotonic() < END:
        try:
            if s.recv(4096) and say_answer:
                print("answer", flush=True)
                say_answer = False
        except BlockingIOError:
            pass
        time.sleep(0.1)


def main():
    mode, addr = sys.argv[1], sys.argv[2]
    if mode == "client":
        s = socket.create_connection((addr, int(sys.argv[3])), timeout=30)
        s.sendall(b"hello\n")
        s.recv(100)
        print("ready", flush=True)
        sys.stdin.readline()
        s.setblocking(False)
        s.send(b"request\n" * 20)
        print("sent", flush=True)
        sleep_loop(s, True)
        return
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, 0))
    listener.listen()
    print("port", listener.getsockname()[1], flush=True)
    c, _ = listener.accept()
    if mode == "echo":
        while time.monotonic() < END:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(d)
        return
    c.recv(4096)
    print("request", flush=True)
    sys.stdin.readline()
    c.setblocking(False)
    c.send(ANSWER)
    print("sent", flush=True)
    sleep_loop(c, False)


main()
