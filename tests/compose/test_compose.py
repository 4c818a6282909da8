"""Static checks of the full-stack docker-compose.yml and the service Dockerfiles.

Docker does not run on the development machines or in CI, so nothing here builds or
starts a container: the compose file is parsed as YAML and checked for the wiring the
stack relies on (each service sees only its own database, migrations run first, Kafka
in KRaft mode with every topic created up front).
"""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared_contracts.topics import ALL_TOPICS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SERVICES = {"order": 8001, "inventory": 8002, "payment": 8003}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(compose, dict)
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml defines no services"
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, in either of compose's two spellings, as a dict."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """`depends_on` as {target: condition}; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else str(command)


def test_every_service_has_an_image_or_a_build(services):
    missing = [name for name, svc in services.items() if not (svc.get("image") or svc.get("build"))]
    assert not missing, f"services without image or build: {missing}"


def test_every_depends_on_target_exists(services):
    dangling = {
        name: target
        for name, svc in services.items()
        for target in depends_on(svc)
        if target not in services
    }
    assert not dangling, f"depends_on names unknown services: {dangling}"


@pytest.mark.parametrize("name", [*SERVICES, *(f"{svc}-migrate" for svc in SERVICES)])
def test_each_service_gets_only_its_own_database_url(services, name):
    svc = name.removesuffix("-migrate")
    env = environment(services[name])
    urls = {key: value for key, value in env.items() if key.endswith("_DATABASE_URL")}
    assert list(urls) == [f"{svc.upper()}_DATABASE_URL"], f"{name} sees {sorted(urls)}"

    url = urlsplit(urls[f"{svc.upper()}_DATABASE_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == f"{svc}-db", f"{name} points at {url.hostname}"
    assert url.username == svc
    assert url.path == f"/{svc}"

    db_env = environment(services[f"{svc}-db"])
    assert db_env["POSTGRES_DB"] == svc
    assert db_env["POSTGRES_USER"] == svc
    assert url.password == db_env["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("svc", SERVICES)
def test_each_database_has_its_own_volume_and_a_healthcheck(services, svc):
    db = services[f"{svc}-db"]
    assert str(db["image"]).startswith("postgres:17")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volumes = [str(v).split(":", 1)[0] for v in db.get("volumes", [])]
    assert volumes == [f"{svc}-db-data"]


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_runs_its_migrations_first(services, svc):
    migrate = services[f"{svc}-migrate"]
    assert command_text(migrate) == "alembic -c alembic.ini upgrade head"
    assert str(migrate.get("restart")) == "no"
    assert depends_on(migrate) == {f"{svc}-db": "service_healthy"}

    assert depends_on(services[svc]) == {
        f"{svc}-db": "service_healthy",
        f"{svc}-migrate": "service_completed_successfully",
        "kafka-init": "service_completed_successfully",
    }


@pytest.mark.parametrize("svc", SERVICES)
def test_service_and_migration_use_the_service_dockerfile(services, svc):
    for name in (svc, f"{svc}-migrate"):
        build = services[name]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == f"services/{svc}/Dockerfile"
    assert services[svc]["image"] == services[f"{svc}-migrate"]["image"]


@pytest.mark.parametrize(("svc", "port"), SERVICES.items())
def test_service_listens_publishes_and_checks_readiness(services, svc, port):
    service = services[svc]
    env = environment(service)
    assert env[f"{svc.upper()}_HOST"] == "0.0.0.0"
    assert env[f"{svc.upper()}_PORT"] == str(port)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert f"{port}:{port}" in [str(p) for p in service["ports"]]
    assert f"127.0.0.1:{port}/health/ready" in " ".join(service["healthcheck"]["test"])


def test_kafka_runs_in_kraft_mode(services):
    assert not [name for name in services if "zookeeper" in name.lower()]
    kafka = services["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "healthcheck" in kafka


def test_kafka_init_creates_every_topic(services):
    init = services["kafka-init"]
    assert depends_on(init) == {"kafka": "service_healthy"}
    assert str(init.get("restart")) == "no"
    script = command_text(init)
    assert "--create" in script
    assert "--if-not-exists" in script
    words = set(re.split(r"[\s\\;\"']+", script))
    missing = [topic for topic in ALL_TOPICS if topic not in words]
    assert not missing, f"kafka-init does not create {missing}"


def dockerfile(svc: str) -> str:
    return (REPO / "services" / svc / "Dockerfile").read_text()


@pytest.mark.parametrize(("svc", "port"), SERVICES.items())
def test_dockerfile_builds_its_own_package_and_runs_unprivileged(svc, port):
    path = REPO / "services" / svc / "Dockerfile"
    assert path.is_file(), f"{path} is missing"
    text = dockerfile(svc)

    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "no USER instruction: the container would run as root"
    assert users[-1] not in {"root", "0", "0:0"}

    packages = re.findall(r"--package\s+(\S+)", text)
    assert packages, "no `uv sync --package ...`"
    assert set(packages) == {f"{svc}-service"}

    assert f"WORKDIR /app/services/{svc}\n" in text
    assert re.search(rf"^EXPOSE {port}$", text, flags=re.MULTILINE)
    assert f'CMD ["python", "-m", "{svc}_service"]' in text


def test_dockerfiles_have_the_same_shape():
    """The three Dockerfiles differ only in the service's name and port."""

    member_manifests = re.compile(r"^COPY services/([^/]+)/pyproject\.toml .*\n", re.MULTILINE)

    def shape(svc: str) -> str:
        # uv needs every member's pyproject.toml, so each Dockerfile copies all of them.
        text = dockerfile(svc)
        assert set(member_manifests.findall(text)) == set(SERVICES)
        text = member_manifests.sub("", text).replace(str(SERVICES[svc]), "<PORT>")
        return text.replace(svc.upper(), "<SVC>").replace(svc, "<svc>")

    order = shape("order")
    for svc in ("inventory", "payment"):
        assert shape(svc).splitlines() == order.splitlines(), f"{svc} differs from order"
