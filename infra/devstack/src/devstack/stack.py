"""The whole local system: a PostgreSQL per service, the broker, migrations, the services.

Everything runs as a child process in its own session, started and stopped by pid,
so `stop()` can always take down exactly what `start()` brought up.
"""

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from devstack import _aio, _process
from devstack.broker import Broker
from devstack.errors import DevstackError
from devstack.faults import FaultProxy
from devstack.ports import check_port_free, free_port, release_port
from devstack.postgres import PostgresServer
from devstack.topics import create_topics

logger = logging.getLogger(__name__)

SERVICES: tuple[str, ...] = ("order", "inventory", "payment")
"""The saga's participants: what the demo, the end-to-end and chaos tests run."""
DEFAULT_BROKER_PORT = 9092
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
BROKER_PORT_ENV = "BROKER_PORT"


def database_url_env(svc: str) -> str:
    """The variable holding a service's database URL, e.g. `ORDER_DATABASE_URL`."""
    return f"{svc.upper()}_DATABASE_URL"


def port_env(svc: str) -> str:
    """The variable holding a service's HTTP port, e.g. `ORDER_PORT`."""
    return f"{svc.upper()}_PORT"


def pg_port_env(svc: str) -> str:
    """The variable holding the port of a service's local PostgreSQL, e.g. `ORDER_PG_PORT`."""
    return f"{svc.upper()}_PG_PORT"


def discover_services(repo_root: Path) -> tuple[str, ...]:
    """Every service in `services/` (a directory with a `pyproject.toml` and an `alembic.ini`).

    The saga's three come first, in their usual order; services added later (from the
    template) follow by name, so `make up` runs a new service without a list to edit.
    """
    found = {
        path.name
        for path in (repo_root / "services").iterdir()
        if (path / "pyproject.toml").is_file() and (path / "alembic.ini").is_file()
    }
    return (*(s for s in SERVICES if s in found), *sorted(found - set(SERVICES)))


@functools.cache
def service_ports(repo_root: Path, svc: str) -> tuple[int, int]:
    """A service's HTTP port and its PostgreSQL's port in the local stack.

    Each service declares them in `[tool.devstack]` of its own `pyproject.toml`
    (`port`, `postgres-port`), so a new service brings its ports along.
    """
    path = repo_root / "services" / svc / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text())["tool"]["devstack"]
        return int(table["port"]), int(table["postgres-port"])
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise DevstackError(f"{path}: no [tool.devstack] port and postgres-port ({exc})") from exc


def service_urls(environ: Mapping[str, str]) -> dict[str, str]:
    """Where a running stack's services answer: `<SVC>_URL`, else 127.0.0.1 at their port."""
    ports = Ports.defaults(SERVICES, environ).services
    return {
        svc: environ.get(f"{svc.upper()}_URL", f"http://127.0.0.1:{ports[svc]}") for svc in SERVICES
    }


def find_repo_root(start: Path | None = None) -> Path:
    """The workspace root: the nearest directory above `start` (or this file) with `services/`."""
    for base in (start or Path(__file__).resolve(), Path.cwd()):
        for candidate in (base, *base.parents):
            if (candidate / "services").is_dir() and (candidate / "pyproject.toml").is_file():
                return candidate
    raise DevstackError("cannot find the repository root (a directory with services/)")


@dataclass(frozen=True)
class Ports:
    """The TCP ports the stack uses on 127.0.0.1."""

    services: Mapping[str, int]
    postgres: Mapping[str, int]
    broker: int

    @classmethod
    def defaults(
        cls, services: Sequence[str], environ: Mapping[str, str], repo_root: Path | None = None
    ) -> "Ports":
        """The services' declared ports (`service_ports`), each overridable by its variable."""
        root = repo_root or find_repo_root()
        declared = {s: service_ports(root, s) for s in services}
        return cls(
            services={s: env_port(environ, port_env(s), declared[s][0]) for s in services},
            postgres={s: env_port(environ, pg_port_env(s), declared[s][1]) for s in services},
            broker=env_port(environ, BROKER_PORT_ENV, DEFAULT_BROKER_PORT),
        )

    @classmethod
    def free(cls, services: Sequence[str]) -> "Ports":
        """Ports nothing listens on now, so that parallel test runs do not collide."""
        return cls(
            services={s: free_port() for s in services},
            postgres={s: free_port() for s in services},
            broker=free_port(),
        )


def env_port(environ: Mapping[str, str], name: str, default: int) -> int:
    """The TCP port in variable `name` of `environ`, or `default`; a clear error if it is no port."""
    raw = environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DevstackError(f"{name}={raw!r} is not a TCP port number")
    return int(raw)


def service_env(
    svc: str,
    environ: Mapping[str, str],
    *,
    database_url: str,
    port: int,
    bootstrap: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one service process: it sees only its own database URL."""
    env = {k: v for k, v in environ.items() if not k.endswith("_DATABASE_URL")}
    env[database_url_env(svc)] = database_url
    env[port_env(svc)] = str(port)
    env[BOOTSTRAP_ENV] = bootstrap
    env.update(extra or {})
    return env


class Stack:
    """Starts and stops the local system under `base_dir` (data dirs, logs).

    `<SVC>_DATABASE_URL` or `KAFKA_BOOTSTRAP_SERVERS` in `environ` replace the local
    PostgreSQL or broker. `free_ports=True` picks unused ports (tests), held by `free_port`
    until `stop`; otherwise the defaults apply, overridable by `ORDER_PORT`,
    `ORDER_PG_PORT`, `BROKER_PORT`, ...
    `extra_env` is added to every service's environment.

    Each service named in `fault_proxies` reaches the broker through a `FaultProxy` of
    its own (its `KAFKA_BOOTSTRAP_SERVERS` is the proxy), so that a test or a trainer
    can slow its Kafka traffic down or break it: `stack.fault_proxy("payment").slow(200)`.
    Each service named in `database_proxies` reaches its database through one (protocol
    `"tcp"`), so that its database can be made far away: `stack.database_proxy(svc).slow(5)`
    adds 5 ms to every round trip of every instance of it.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        repo_root: Path | None = None,
        services: Sequence[str] = SERVICES,
        free_ports: bool = False,
        environ: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
        ready_timeout: float = 60.0,
        python: str = sys.executable,
        fault_proxies: Sequence[str] = (),
        database_proxies: Sequence[str] = (),
    ) -> None:
        self.base_dir = base_dir.resolve()
        self.repo_root = repo_root or find_repo_root()
        self.services = tuple(services)
        self.environ = dict(os.environ if environ is None else environ)
        self.extra_env = dict(extra_env or {})
        self.progress = progress or logger.info
        self.ready_timeout = ready_timeout
        self.python = python
        self._free_ports = free_ports
        self.ports = self._pick_ports(self.services)
        self._postgres: dict[str, PostgresServer] = {}
        self._database_urls: dict[str, str] = {}
        self._broker: Broker | None = None
        self._bootstrap = self.environ.get(BOOTSTRAP_ENV, "")
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._instances: dict[str, tuple[str, int]] = {}
        """Extra instances started by `start_instance`: name -> (service, HTTP port)."""
        for option, named in (
            ("fault_proxies", fault_proxies),
            ("database_proxies", database_proxies),
        ):
            if unknown := set(named) - set(self.services):
                raise ValueError(f"{option} names no service of this stack: {sorted(unknown)}")
        self._fault_proxy_services = tuple(fault_proxies)
        self._fault_proxies: dict[str, FaultProxy] = {}
        self._database_proxy_services = tuple(database_proxies)
        self._database_proxies: dict[str, FaultProxy] = {}

    # -- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bring everything up and wait until every service is ready; on failure, stop all."""
        try:
            self.start_infrastructure()
            self.migrate()
            self.start_services()
        except BaseException:
            # Ctrl-C or a failed step: take down what is already running, then report.
            self.stop()
            raise

    def start_infrastructure(self) -> None:
        """Start the databases and the broker, provision them and create the topics."""
        self._check_ports()
        (self.base_dir / "logs").mkdir(parents=True, exist_ok=True)
        _each_at_once(self._start_database, self.services)
        self._start_broker()

    def migrate(self) -> None:
        """Run each service's Alembic migrations (`alembic upgrade head`) against its database."""
        _each_at_once(self._migrate_step, self.services)

    def start_services(self) -> None:
        """Start every service process, then wait until each answers /health/ready."""
        for svc in self.services:
            self._spawn_service(svc)
        for svc in self.services:
            with self._step(f"starting {svc} service on :{self.ports.services[svc]}"):
                self._wait_ready(svc)

    def stop(self) -> None:
        """Stop everything this object started, services first; safe to call more than once.

        Each process is stopped even when stopping another one, or reporting it (a
        closed stdout), fails; the first such error is raised once all are stopped.
        """
        actions: list[tuple[str, Callable[[], object]]] = [
            (f"stopping {name} service", functools.partial(self.stop_service, name))
            for name in [*reversed(self._instances), *reversed(self.services)]
            if name in self._procs
        ]
        actions += [
            (f"stopping the fault proxy of {svc}", proxy.stop)
            for svc, proxy in self._fault_proxies.items()
        ]
        actions += [
            (f"stopping the database proxy of {svc}", proxy.stop)
            for svc, proxy in self._database_proxies.items()
        ]
        self._fault_proxies, self._database_proxies = {}, {}
        if self._broker is not None:
            actions.append(("stopping broker", self._broker.stop))
        actions += [
            (f"stopping PostgreSQL for {svc}", self._postgres[svc].stop)
            for svc in reversed(self.services)
            if svc in self._postgres
        ]
        self._broker = None
        self._postgres.clear()
        errors: list[BaseException] = []
        for label, action in actions:
            try:
                with self._step(label):
                    action()
            except BaseException as exc:
                errors.append(exc)
        if self._free_ports:
            # The servers are down: their ports may be picked again.
            ports = self.ports
            for port in (*ports.services.values(), *ports.postgres.values(), ports.broker):
                release_port(port)
            for _, port in self._instances.values():
                release_port(port)
        if errors:
            raise errors[0]

    # -- what tests use ---------------------------------------------------------------

    def url(self, svc: str) -> str:
        """The base HTTP URL of a service or instance, e.g. `http://127.0.0.1:8001`."""
        return f"http://127.0.0.1:{self._service_and_port(svc)[1]}"

    def database_url(self, svc: str) -> str:
        """The SQLAlchemy URL the service uses (its own role and database; its proxy's
        address for a service named in `database_proxies`)."""
        return self._database_urls[svc]

    @property
    def bootstrap_servers(self) -> str:
        """Where Kafka clients connect: the local broker or `KAFKA_BOOTSTRAP_SERVERS`."""
        return self._bootstrap

    def postgres(self, svc: str) -> PostgresServer:
        """The local PostgreSQL of a service (not when its URL came from the environment)."""
        return self._postgres[svc]

    @property
    def broker(self) -> Broker:
        """The local broker (not when `KAFKA_BOOTSTRAP_SERVERS` was set)."""
        if self._broker is None:
            raise RuntimeError("no local broker: KAFKA_BOOTSTRAP_SERVERS was set or not started")
        return self._broker

    def fault_proxy(self, svc: str) -> FaultProxy:
        """The proxy between `svc` (all its instances) and the broker, to inject faults.

        Only for services named in `fault_proxies`; see `devstack.faults` for exactly
        what `slow`, `fail` and `clear` do to the Kafka traffic.
        """
        return _proxy_of(self._fault_proxies, svc, "fault")

    def database_proxy(self, svc: str) -> FaultProxy:
        """The proxy between `svc` (all its instances) and its database; see `__init__`."""
        return _proxy_of(self._database_proxies, svc, "database")

    def restart_broker(self) -> None:
        """Stop the local broker, start it again on the same port and re-create the topics.

        The local broker keeps everything in memory, so the restarted one is empty: topics,
        messages in flight, consumer groups and committed offsets are gone (Apache Kafka
        would keep them all). The services are not told; they reconnect by themselves.
        To keep the broker down for a while, call `broker.stop()` first and this later.
        """
        broker = self.broker
        with self._step("stopping broker"):
            broker.stop()
        with self._step(f"starting broker on :{broker.port}"):
            broker.start()
        self._create_topics()

    def pid(self, svc: str) -> int:
        """The process id of a running service, e.g. to read its memory from /proc."""
        proc = self._procs.get(svc)
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"{svc} service is not running")
        return proc.pid

    def log_path(self, svc: str) -> Path:
        """The log file a service's (or instance's) output goes to, appended across restarts."""
        return self.base_dir / "logs" / f"{svc}.log"

    def start_service(self, svc: str) -> None:
        """(Re)start one service process, or an instance by name, and wait until it is ready."""
        self._spawn_service(svc)
        self._wait_ready(svc)

    def add_service(self, svc: str) -> None:
        """Start one more service beside the running ones: its database, migrations, process.

        How a new service joins a stack that is already serving orders: nothing else is
        restarted or told. Its consumer group is new, so it reads its topics from the
        earliest offset the broker still holds and catches up on what happened before.
        """
        if svc in self.services:
            raise RuntimeError(f"{svc} service is already part of the stack")
        added = self._pick_ports((svc,))
        self.ports = Ports(
            services={**self.ports.services, **added.services},
            postgres={**self.ports.postgres, **added.postgres},
            broker=self.ports.broker,
        )
        self.services = (*self.services, svc)
        self._start_database(svc)
        self._migrate_step(svc)
        with self._step(f"starting {svc} service on :{self.ports.services[svc]}"):
            self.start_service(svc)

    def _pick_ports(self, services: Sequence[str]) -> Ports:
        """Free ports (tests), or the services' declared ones overridden by the environment."""
        if self._free_ports:
            return Ports.free(services)
        return Ports.defaults(services, self.environ, self.repo_root)

    def start_instance(self, svc: str) -> str:
        """Start one more process of `svc` and wait until it is ready; return its name.

        The instance is named `<svc>-2`, `<svc>-3`, ...: it uses the service's database
        and consumer group (so the group shares the topics' partitions among all
        instances), has its own free HTTP port and log file, and answers to its name
        in `url`, `log_path`, `kill`, `stop_service` and `start_service`.
        """
        number = 2 + sum(instance == svc for instance, _ in self._instances.values())
        name = f"{svc}-{number}"
        self._instances[name] = (svc, free_port())
        self.start_service(name)
        return name

    def stop_service(self, svc: str, timeout: float = 10.0) -> int | None:
        """SIGTERM a service or instance (graceful shutdown), SIGKILL after `timeout` s.

        Returns its exit status (None if it was not running).
        """
        proc = self._procs.pop(svc, None)
        if proc is None:
            return None
        return _process.stop_process(proc, signal.SIGTERM, timeout)

    def kill(self, svc: str) -> None:
        """SIGKILL a service or instance, as a crash would; `start_service` brings it back."""
        proc = self._procs.pop(svc, None)
        if proc is not None:
            _process.kill_process(proc)

    # -- steps ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self, label: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.progress(f"{label} ... failed")
            raise
        self.progress(f"{label} ... ok ({time.monotonic() - started:.1f} s)")

    def _check_ports(self) -> None:
        if self._free_ports:
            return
        for svc in self.services:
            check_port_free(self.ports.services[svc], f"{svc} service", port_env(svc))
            if database_url_env(svc) not in self.environ:
                port = self.ports.postgres[svc]
                check_port_free(port, f"PostgreSQL for {svc}", pg_port_env(svc))
        if not self._bootstrap:
            check_port_free(self.ports.broker, "broker", BROKER_PORT_ENV)

    def _start_database(self, svc: str) -> None:
        external = self.environ.get(database_url_env(svc))
        if external:
            self.progress(f"using {database_url_env(svc)} for {svc}")
            url = external
        else:
            port = self.ports.postgres[svc]
            server = PostgresServer(self.base_dir / f"pg-{svc}", port)
            with self._step(f"starting PostgreSQL for {svc} on :{port}"):
                self._postgres[svc] = server
                server.start()
                url = server.provision(svc, svc, secrets.token_urlsafe(18))
        if svc in self._database_proxy_services:
            url = self._start_database_proxy(svc, url)
        self._database_urls[svc] = url

    def _start_database_proxy(self, svc: str, url: str) -> str:
        """Start the proxy to the database at `url`; the same URL with the proxy's port."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise DevstackError(f"database proxy for {svc}: no host:port in its URL {url!r}")
        proxy = FaultProxy(parts.hostname, parts.port, protocol="tcp", name=f"{svc} -> database")
        with self._step(f"starting the database proxy of {svc}"):
            proxy.start()
        self._database_proxies[svc] = proxy
        credentials, _, _ = parts.netloc.rpartition("@")
        netloc = f"{credentials}@{proxy.address}" if credentials else proxy.address
        return urlunsplit(parts._replace(netloc=netloc))

    def _start_broker(self) -> None:
        if self._bootstrap:
            self.progress(f"using {BOOTSTRAP_ENV}={self._bootstrap}")
        else:
            broker = Broker(self.ports.broker, self.base_dir / "logs" / "broker.log")
            with self._step(f"starting broker on :{broker.port}"):
                self._broker = broker
                broker.start()
            self._bootstrap = broker.bootstrap_servers
        self._create_topics()
        self._start_fault_proxies()

    def _start_fault_proxies(self) -> None:
        # The first bootstrap server: the proxy keeps a client behind it only when
        # that broker is the only one (see devstack.faults).
        host, _, port = self._bootstrap.split(",")[0].strip().rpartition(":")
        for svc in self._fault_proxy_services:
            if svc in self._fault_proxies:
                continue
            proxy = FaultProxy(host, int(port), protocol="kafka", name=f"{svc} -> broker")
            with self._step(f"starting the fault proxy of {svc}"):
                proxy.start()
            self._fault_proxies[svc] = proxy

    def _create_topics(self) -> None:
        with self._step("creating topics"):
            _aio.run_sync(asyncio.wait_for(create_topics(self._bootstrap), timeout=30))

    def _migrate_step(self, svc: str) -> None:
        with self._step(f"migrating {svc} database"):
            self._migrate(svc)

    def _migrate(self, svc: str) -> None:
        service_dir = self.repo_root / "services" / svc
        if not (service_dir / "alembic.ini").is_file():
            raise DevstackError(f"migrations for {svc}: {service_dir / 'alembic.ini'} not found")
        env = {k: v for k, v in self.environ.items() if not k.endswith("_DATABASE_URL")}
        env[database_url_env(svc)] = self._database_urls[svc]
        log_path = self.base_dir / "logs" / f"{svc}-migrate.log"
        with log_path.open("ab") as log:
            result = _process.run(
                [self.python, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
                capture=False,
                cwd=service_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            raise DevstackError(
                f"migrations for {svc} failed (alembic exit {result.returncode})",
                log_path=log_path,
                detail=_process.log_tail(log_path),
            )

    def _service_and_port(self, name: str) -> tuple[str, int]:
        """The service a process name runs and its HTTP port (a service is its own first instance)."""
        return self._instances.get(name) or (name, self.ports.services[name])

    def _spawn_service(self, name: str) -> None:
        if name in self._procs and self._procs[name].poll() is None:
            raise RuntimeError(f"{name} service is already running")
        svc, port = self._service_and_port(name)
        env = service_env(
            svc,
            self.environ,
            database_url=self._database_urls[svc],
            port=port,
            bootstrap=self._fault_proxies[svc].address
            if svc in self._fault_proxies
            else self._bootstrap,
            extra=self.extra_env,
        )
        with self.log_path(name).open("ab") as log:
            self._procs[name] = subprocess.Popen(
                [self.python, "-m", f"{svc}_service"],
                cwd=self.repo_root / "services" / svc,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, svc: str) -> None:
        wait_healthy(
            self._procs[svc],
            f"{self.url(svc)}/health/ready",
            name=f"{svc} service",
            log_path=self.log_path(svc),
            timeout=self.ready_timeout,
        )


def _each_at_once(step: Callable[[str], None], services: Sequence[str]) -> None:
    """Run `step` for every service at once, each in a thread; raise the first failure.

    The steps wait on processes of their own (initdb and PostgreSQL, Alembic), so
    overlapping them takes a stack's start from the sum of their times to about the
    longest. Every step has ended, failed or not, when this returns.
    """
    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        for _ in pool.map(step, services):
            pass


def _proxy_of(proxies: Mapping[str, FaultProxy], svc: str, kind: str) -> FaultProxy:
    try:
        return proxies[svc]
    except KeyError:
        raise KeyError(f"{svc} has no {kind} proxy: name it in Stack({kind}_proxies=...)") from None


def wait_healthy(
    proc: subprocess.Popen[bytes], url: str, *, name: str, log_path: Path, timeout: float
) -> None:
    """Poll `url` until it answers 200; a `DevstackError` with the log's tail if `proc`
    exits first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise DevstackError(
                    f"{name} not ready after {timeout:.0f} s",
                    log_path=log_path,
                    detail=_process.log_tail(log_path),
                )
            time.sleep(0.2)
    raise DevstackError(
        f"{name} exited during startup (exit {proc.returncode})",
        log_path=log_path,
        detail=_process.log_tail(log_path),
    )
