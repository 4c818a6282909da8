"""Serve the console from a thread of the calling process, on 127.0.0.1 only.

It runs inside the process that owns the stack (`python -m devstack up`, or a test), so
its controls can stop and start that stack's processes directly.
"""

import threading
import time
from typing import Self

import uvicorn
from fastapi import FastAPI

HOST = "127.0.0.1"
"""Loopback only: the controls stop and start processes, so nobody else may reach them."""


class ConsoleServer:
    """uvicorn serving `app` on 127.0.0.1:`port` in a background thread."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        # A page's event stream never ends by itself: give open streams a second to
        # close after the server stops accepting, then cancel them.
        config = uvicorn.Config(
            app, host=HOST, port=port, log_level="warning", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="saga-console", daemon=True)

    @property
    def url(self) -> str:
        """Where the page is, e.g. `http://127.0.0.1:8000/`."""
        return f"http://{HOST}:{self.port}/"

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; return once the server listens (its lifespan has started)."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the console could not start on {self.url} (port taken?)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the console did not start on {self.url} in {timeout:.0f} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (the lifespan's shutdown runs) and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
