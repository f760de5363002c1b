"""The only door out of a network namespace: listens on 127.0.0.1 inside the namespace and
relays each connection to 127.0.0.1:<target> in the namespace this process runs in (the
host's). test_egress_proxy.py puts an agent in a namespace with nothing but loopback and
this relay to the proxy, so the proxy is the agent's only route to the gateway.

Usage: nsrelay.py <pid whose network namespace to listen in> <target port>
Prints "ready <port>" with the port it listens on inside the namespace.
"""
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def listen_inside(pid):
    """A listening socket created in `pid`'s network namespace: a socket stays in the
    namespace it was made in, so this thread can return to its own afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    if libc.setns(target, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns into the namespace")
    try:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
    finally:
        if libc.setns(own, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(own)
        os.close(target)
    return s


def pump(src, dst):
    try:
        while data := src.recv(1 << 20):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, target_port):
    try:
        out = socket.create_connection(("127.0.0.1", target_port))
    except OSError:
        conn.close()
        return
    a = threading.Thread(target=pump, args=(conn, out), daemon=True)
    b = threading.Thread(target=pump, args=(out, conn), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    conn.close()
    out.close()


def main():
    pid, target_port = int(sys.argv[1]), int(sys.argv[2])
    listener = listen_inside(pid)
    print(f"ready {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, target_port), daemon=True).start()


if __name__ == "__main__":
    main()
