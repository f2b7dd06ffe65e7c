"""A TCP forwarder from the test's own loopback into a simulated node's network namespace.

The nodes live in network namespaces that the host has no interface in (hwcluster.py), so
Chromium, run on the host, cannot reach cockpit-ws in a node. The forwarder listens on
127.0.0.1 (an ephemeral port) here, and for each connection opens one to an address in the
node's namespace: from a thread of its own that entered the namespace with setns(2) (a
network namespace is per thread), so nothing else of this process moves. Stdlib only."""

from __future__ import annotations

import ctypes
import os
import queue
import socket
import threading

CLONE_NEWNET = 0x40000000


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # the other direction may still have something to say
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


class Forwarder:
    """with Forwarder("/run/netns/X", "127.0.0.1", 9090) as fw: fw.port is the local port."""

    def __init__(self, netns_path: str, host: str, port: int):
        self.target = (host, port)
        self._netns_path = netns_path
        self._requests: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]

    # The thread that lives in the node's namespace: it only creates connected sockets.
    def _connector(self, ready: queue.Queue) -> None:
        try:
            _setns(self._netns_path)
        except OSError as e:
            ready.put(e)
            return
        ready.put(None)
        while (reply := self._requests.get()) is not None:
            try:
                reply.put(socket.create_connection(self.target, timeout=10))
            except OSError as e:
                reply.put(e)

    def _connect(self) -> socket.socket:
        reply: queue.Queue = queue.Queue()
        self._requests.put(reply)
        result = reply.get()
        if isinstance(result, Exception):
            raise result
        result.settimeout(None)
        return result

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed: the forwarder stops
            try:
                upstream = self._connect()
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._sockets += [conn, upstream]
                for a, b in ((conn, upstream), (upstream, conn)):
                    t = threading.Thread(target=_pipe, args=(a, b), daemon=True)
                    t.start()
                    self._threads.append(t)

    def start(self) -> "Forwarder":
        ready: queue.Queue = queue.Queue()
        for target, args in ((self._connector, (ready,)), (self._serve, ())):
            t = threading.Thread(target=target, args=args, daemon=True)
            t.start()
            self._threads.append(t)
            if target == self._connector and (error := ready.get()) is not None:
                self.stop()
                raise error
        return self

    def stop(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of _serve
        except OSError:
            pass
        self._listener.close()
        self._requests.put(None)
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        for t in self._threads:
            t.join(10)
        alive = [t for t in self._threads if t.is_alive()]
        assert not alive, f"forwarder threads still running: {alive}"

    def __enter__(self) -> "Forwarder":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
