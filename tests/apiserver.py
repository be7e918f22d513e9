"""Serve a Veille API app with a real uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import socket
import threading

import httpx
import uvicorn

from api.app import create_app
from api.service import Service


class ServedApi:
    """``with ServedApi(settings, store, searcher) as api: api.client(key).get(...)``"""

    def __init__(self, settings, store, searcher) -> None:
        self.settings = settings
        self.store = store
        self.app = create_app(settings, store=store, service=Service(settings, store, searcher))
        self._sock = socket.socket()
        # as uvicorn does for the sockets it opens itself: answers are not held back by Nagle
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> ServedApi:
        self.thread.start()
        pause = threading.Event()
        # uvicorn sets `started` once it accepts connections: wait on the flag, not a clock
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API server did not start")
            pause.wait(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self._sock.close()
        if self.thread.is_alive():
            raise RuntimeError("the API server thread did not stop")

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def __enter__(self) -> ServedApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
