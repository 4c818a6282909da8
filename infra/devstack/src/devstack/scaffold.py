"""`python -m devstack.scaffold NAME [--topic T]`: stamp a new service from the template.

What `make new-service NAME=...` runs. It renders `templates/service/` (copier, answers
in `copier.yml` at the repository root) into `services/<name>/`, formats it, writes its
OpenAPI document, adds it to `uv.lock`, and prints what to add to docker-compose. The
local stack (`make up`) and the lint, type and test configuration find it by themselves.
`update` (`make update-service NAME=...`) takes later template changes into a service
made this way, with `copier update`.
"""

import argparse
import contextlib
import datetime
import keyword
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import copier
from copier.errors import DirtyLocalWarning

from devstack.errors import DevstackError
from devstack.stack import discover_services, find_repo_root, service_ports
from shared_contracts import Topic

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]{1,19}")
"""Lower-case letters and digits: the name is also a Python package (`<name>_service`),
an environment prefix (`<NAME>_`), a database and role name, and a compose service."""

RESERVED = frozenset({"chassis", "shared", "devstack", "test", "tests", "services", "kafka"})
"""Names that would shadow a workspace package or a compose service."""

TEMPLATE_TOPICS = ("orders.events", "payments.events", "inventory.events", "inventory.products")
"""The topics the template has an example event for (`copier.yml`)."""

SERVICES_DIR = Path("services")
ANSWERS_FILE = ".copier-answers.yml"


def check_name(root: Path, name: str) -> None:
    """Raise `DevstackError` saying what is wrong with `name` as a new service's name."""
    if not NAME_PATTERN.fullmatch(name):
        raise DevstackError(
            f"bad service name {name!r}: use 2-20 lower-case letters and digits, "
            "starting with a letter (e.g. shipping)"
        )
    if keyword.iskeyword(name) or name in RESERVED:
        raise DevstackError(f"bad service name {name!r}: it is reserved")
    if (root / SERVICES_DIR / name).exists():
        raise DevstackError(f"service {name!r} already exists: {SERVICES_DIR / name}/")


def check_topic(topic: str) -> None:
    """Raise `DevstackError` unless the template can make a consumer of `topic`."""
    known = {t.value for t in Topic}
    if topic not in known or topic not in TEMPLATE_TOPICS:
        raise DevstackError(
            f"bad topic {topic!r}: the template makes a consumer of {', '.join(TEMPLATE_TOPICS)}"
        )


def next_ports(root: Path) -> tuple[int, int]:
    """The HTTP and PostgreSQL ports after the highest ones the existing services use."""
    ports = [service_ports(root, svc) for svc in discover_services(root)]
    return max(p for p, _ in ports) + 1, max(pg for _, pg in ports) + 1


def new_service(root: Path, name: str, topic: str = "orders.events", lock: bool = True) -> Path:
    """Render the template into `services/<name>/` under `root`; return its directory.

    `root` must be a git repository (copier renders the committed template, plus any
    uncommitted changes to it). `lock=False` leaves `uv.lock` alone (the template test).
    """
    check_name(root, name)
    check_topic(topic)
    head = _template_commit(root)
    port, postgres_port = next_ports(root)
    answers = {
        "name": name,
        "topic": topic,
        "port": port,
        "postgres_port": postgres_port,
        "migration_date": datetime.date.today().isoformat(),
    }
    target = SERVICES_DIR / name
    # The template's source is recorded as ".": `copier update` runs from the root too.
    with contextlib.chdir(root), warnings.catch_warnings():
        # Uncommitted changes elsewhere in the repository make copier say it rendered a
        # dirty template; the template itself was checked clean above.
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_copy(".", target, data=answers, vcs_ref="HEAD", defaults=True, quiet=True)
        _record_commit(target / ANSWERS_FILE, head)
        _run([sys.executable, "-m", "ruff", "check", "--fix-only", "--quiet", str(target)])
        _run([sys.executable, "-m", "ruff", "format", "--quiet", str(target)])
        _write_openapi(name)
        if lock:
            _run([str(root / ".uv" / "bin" / "uv"), "lock", "--quiet"])
    return root / target


def _template_commit(root: Path) -> str:
    """The commit the template is rendered from; refuses uncommitted template changes.

    Copier renders a dirty repository from a throwaway commit of its own and records
    that one, which no later `copier update` could find: so the template must be
    committed, and the service records the repository's real HEAD.
    """
    git = ["git", "-C", str(root)]
    changed = _output([*git, "status", "--porcelain", "--", "copier.yml", "templates"])
    if changed:
        raise DevstackError(f"commit the template's changes first:\n{changed}")
    return _output([*git, "rev-parse", "HEAD"])


def _record_commit(answers: Path, commit: str) -> None:
    lines = answers.read_text().splitlines(keepends=True)
    answers.write_text(
        "".join(f"_commit: {commit}\n" if line.startswith("_commit:") else line for line in lines)
    )


def _output(command: Sequence[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DevstackError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def update_service(root: Path, name: str) -> None:
    """Replay the template's changes since the service was made onto `services/<name>/`.

    Copier merges them with the service's own changes (conflicts are marked inline);
    the service's directory must be committed first, so the result can be reviewed
    with `git diff`.
    """
    target = SERVICES_DIR / name
    if not (root / target / ANSWERS_FILE).is_file():
        raise DevstackError(f"{target}/ was not made from the template (no .copier-answers.yml)")
    head = _template_commit(root)
    with contextlib.chdir(root), warnings.catch_warnings():
        warnings.simplefilter("ignore", DirtyLocalWarning)
        copier.run_update(target, vcs_ref="HEAD", defaults=True, overwrite=True, quiet=True)
        _record_commit(target / ANSWERS_FILE, head)
        _write_openapi(name)


def _write_openapi(name: str) -> None:
    # The new package is not installed yet (`make install` does that next): import it
    # from its source.
    env = {**os.environ, "PYTHONPATH": str(Path.cwd() / SERVICES_DIR / name / "src")}
    document = SERVICES_DIR / name / "openapi.json"
    _run([sys.executable, "-m", "chassis.openapi", name, str(document)], env=env)


def _run(command: Sequence[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise DevstackError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def compose_blocks(name: str, port: int) -> str:
    """The docker-compose blocks of `name`, in the shape of payment's, to paste beside them."""
    upper = name.upper()
    password = f"${{{upper}_DB_PASSWORD:-{name}-dev-password}}"
    ready = f"urllib.request.urlopen('http://127.0.0.1:{port}/health/ready', timeout=4)"
    return f"""\
# docker-compose.yml, after x-payment:
x-{name}: &{name}
  build:
    context: .
    dockerfile: services/{name}/Dockerfile
  image: saga-reference/{name}-service:${{IMAGE_TAG:-dev}}
  environment:
    {upper}_DATABASE_URL: postgresql+asyncpg://{name}:{password}@{name}-db:5432/{name}
    KAFKA_BOOTSTRAP_SERVERS: kafka:9092
    {upper}_HOST: 0.0.0.0
    {upper}_PORT: "{port}"
    {upper}_LOG_LEVEL: ${{{upper}_LOG_LEVEL:-INFO}}
    LOG_FORMAT: json
    OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4318

# under services:, after payment-db:
  {name}-db:
    <<: *postgres
    environment:
      POSTGRES_DB: {name}
      POSTGRES_USER: {name}
      POSTGRES_PASSWORD: {password}
    volumes:
      - {name}-db-data:/var/lib/postgresql/data

# under services:, after payment:
  # ---------------------------------------------------------------- {name}
  {name}-migrate:
    <<: [*{name}, *migrate]
    depends_on:
      {name}-db:
        condition: service_healthy

  {name}:
    <<: [*{name}, *app]
    depends_on:
      {name}-db:
        condition: service_healthy
      {name}-migrate:
        condition: service_completed_successfully
      kafka-init:
        condition: service_completed_successfully
      jaeger:
        condition: service_started
    ports:
      - "{port}:{port}"
    healthcheck:
      <<: *healthcheck-timing
      test: ["CMD", "python", "-c", "import urllib.request; {ready}"]

# under volumes:
  {name}-db-data:

# and in infra/compose/prometheus/prometheus.yml, the scrape target "{name}:{port}".
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.scaffold", description=__doc__)
    parser.add_argument("name", help="the new service's name, e.g. shipping")
    parser.add_argument("--topic", default="orders.events", help="the topic it consumes")
    parser.add_argument("--update", action="store_true", help="update an existing service")
    parser.add_argument(
        "--root", type=Path, help="the workspace (default: the one devstack is installed from)"
    )
    parser.add_argument("--no-lock", action="store_true", help="leave uv.lock alone")
    args = parser.parse_args(argv)
    root = (args.root or find_repo_root()).resolve()
    try:
        if args.update:
            update_service(root, args.name)
            print(f"updated services/{args.name}/ from the template: review `git diff`")
            return 0
        directory = new_service(root, args.name, args.topic, lock=not args.no_lock)
    except (DevstackError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    port, _ = service_ports(root, args.name)
    print(f"created {directory.relative_to(root)}/ (port {port}, consuming {args.topic})")
    print("`make up` runs it beside the others; `make test SERVICE=" + args.name + "` tests it.")
    print("To run it in docker compose too, add:\n")
    print(compose_blocks(args.name, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
