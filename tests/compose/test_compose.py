"""Static checks of the full-stack docker-compose.yml, its config files and the Dockerfiles.

Docker does not run on the development machines or in CI, so nothing here builds or
starts a container: the compose file and the files it mounts (Kong, Prometheus, Grafana)
are parsed and checked for the wiring the stack relies on (each service sees only its
own database, migrations run first, Kafka in KRaft mode with every topic created up
front, traces to Jaeger, every service scraped, the gateway routing each path to its
service, and a dashboard that reads only the metrics the services export).
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devstack.stack import discover_services, service_ports
from shared_contracts.topics import ALL_TOPICS

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_CONFIG = REPO / "infra" / "compose"
SERVICES = {svc: service_ports(REPO, svc)[0] for svc in discover_services(REPO)}
"""Every service in services/ and its port: a new one must join the compose file too
(`make new-service` prints its blocks)."""
BEHIND_THE_GATEWAY = ("order", "inventory", "payment")
"""The services Kong routes to (and waits for)."""
JAEGER_OTLP_HTTP_PORT = 4318

# The metrics the services export (the names the dashboard may read), histograms by
# their `_bucket` series.
EXPORTED_METRICS = frozenset(
    {
        "sagas_started_total",
        "sagas_finished_total",
        "saga_duration_seconds_bucket",
        "outbox_backlog",
        "outbox_publish_lag_seconds_bucket",
        "events_consumed_total",
        "events_retried_total",
        "events_dead_lettered_total",
        "consumer_lag",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_refused_total",
    }
)
PROMQL_FUNCTIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "rate", "irate", "increase", "histogram_quantile"}
)


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
        "jaeger": "service_started",
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
    """The Dockerfiles differ only in the service's name and port (they come from the template)."""

    def shape(svc: str) -> str:
        text = dockerfile(svc).replace(str(SERVICES[svc]), "<PORT>")
        return text.replace(svc.upper(), "<SVC>").replace(svc, "<svc>")

    order = shape("order")
    for svc in set(SERVICES) - {"order"}:
        assert shape(svc).splitlines() == order.splitlines(), f"{svc} differs from order"


@pytest.mark.parametrize("svc", SERVICES)
def test_an_image_needs_no_other_services_manifest(svc):
    """Adding or changing a service never changes another service's image."""
    manifests = re.findall(r"^COPY services/([^/]+)/", dockerfile(svc), flags=re.MULTILINE)
    assert set(manifests) == {svc}


# ---------------------------------------------------------------- every container


def load_yaml(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path.relative_to(REPO)} is not a YAML mapping"
    return loaded


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's bind mounts as {path relative to the repo: path in the container}.

    Named volumes (no `./` or `/` in front) are left out; so is a `:ro` suffix.
    """
    mounts: dict[str, str] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
        else:
            source, target, *_ = f"{volume}:".split(":")
        if source.startswith(("./", "/")):
            mounts[source.removeprefix("./").rstrip("/")] = target
    return mounts


def mounted_at(service: dict[str, Any], repo_path: str) -> str:
    """Where in the container a file or directory of the repository is mounted."""
    mounts = bind_mounts(service)
    assert repo_path in mounts, f"{repo_path} is not mounted (mounts: {mounts})"
    return mounts[repo_path]


def published(service: dict[str, Any]) -> list[str]:
    return [str(port) for port in service.get("ports") or []]


def image_tag(image: str) -> str:
    """The tag of an image reference, "" when it has none; a digest counts as a tag."""
    name = image.rpartition("/")[2]
    return name.partition("@")[2] if "@" in name else name.partition(":")[2]


def test_every_image_from_a_registry_is_pinned_to_a_tag(services):
    unpinned = {
        name: svc["image"]
        for name, svc in services.items()
        if "build" not in svc  # ours are built and tagged ${IMAGE_TAG}
        and image_tag(str(svc["image"])) in {"", "latest"}
    }
    assert not unpinned, f"images without a version tag: {unpinned}"


def test_every_mounted_file_exists_in_the_repo(services):
    missing = [
        f"{name}: {source}"
        for name, svc in services.items()
        for source in bind_mounts(svc)
        if not (REPO / source).exists()
    ]
    assert not missing, f"bind mounts of files that are not in the repository: {missing}"


def test_every_long_running_container_has_a_healthcheck(services):
    unchecked = [
        name
        for name, svc in services.items()
        if str(svc.get("restart")) != "no" and "test" not in (svc.get("healthcheck") or {})
    ]
    assert not unchecked, f"no healthcheck: {unchecked}"


@pytest.mark.parametrize(
    ("name", "port"), [("kong", 8000), ("jaeger", 16686), ("prometheus", 9090), ("grafana", 3000)]
)
def test_each_ui_and_the_gateway_are_published(services, name, port):
    assert f"{port}:{port}" in published(services[name])


# ---------------------------------------------------------------- tracing and logs


def test_jaeger_receives_otlp_over_http(services):
    jaeger = services["jaeger"]
    assert str(jaeger["image"]).startswith("jaegertracing/all-in-one:1.")
    assert environment(jaeger)["COLLECTOR_OTLP_ENABLED"] == "true"
    assert f"{JAEGER_OTLP_HTTP_PORT}:{JAEGER_OTLP_HTTP_PORT}" in published(jaeger)


@pytest.mark.parametrize("name", [*SERVICES, *(f"{svc}-migrate" for svc in SERVICES)])
def test_each_service_exports_traces_to_jaeger_and_logs_json(services, name):
    env = environment(services[name])
    endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.scheme == "http"
    assert endpoint.hostname == "jaeger"
    assert endpoint.port == JAEGER_OTLP_HTTP_PORT
    assert endpoint.path in {"", "/"}, "the exporter appends /v1/traces itself"
    assert env["LOG_FORMAT"] == "json"


def test_no_service_waits_for_jaeger_to_be_healthy(services):
    """Tracing is best-effort: a service starts (and stays up) whatever Jaeger's state."""
    waiting = {
        name: condition
        for name, svc in services.items()
        if (condition := depends_on(svc).get("jaeger", "service_started")) != "service_started"
    }
    assert not waiting, f"waiting for jaeger: {waiting}"


def test_observability_does_not_wait_for_the_services(services):
    ours = {*SERVICES, *(f"{svc}-migrate" for svc in SERVICES)}
    for name in ("jaeger", "prometheus", "grafana"):
        assert not ours & set(depends_on(services[name])), f"{name} waits for a service"
    assert depends_on(services["grafana"])["prometheus"] == "service_started"


# ---------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def scrape_jobs(services) -> dict[str, dict[str, Any]]:
    prometheus = services["prometheus"]
    assert str(prometheus["image"]).startswith("prom/prometheus:v")
    path = "infra/compose/prometheus/prometheus.yml"
    assert mounted_at(prometheus, path) == "/etc/prometheus/prometheus.yml"
    config = load_yaml(REPO / path)
    assert config["global"]["scrape_interval"] == "5s"
    return {job["job_name"]: job for job in config["scrape_configs"]}


@pytest.mark.parametrize(("svc", "port"), SERVICES.items())
def test_prometheus_scrapes_each_service_every_five_seconds(scrape_jobs, svc, port):
    # The job is named after the service: the dashboard groups by `job`.
    job = scrape_jobs[svc]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scrape_interval", "5s") == "5s"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == [f"{svc}:{port}"]


# ---------------------------------------------------------------- dashboards

GRAFANA_CONFIG = "infra/compose/grafana"


def test_grafana_lets_anyone_view_and_takes_the_admin_password_from_the_env(services):
    grafana = services["grafana"]
    assert str(grafana["image"]).startswith("grafana/grafana:")
    env = environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-admin}"
    provisioning = f"{GRAFANA_CONFIG}/provisioning"
    assert mounted_at(grafana, provisioning) == "/etc/grafana/provisioning"


def test_grafana_datasources_are_prometheus_by_default_and_jaeger(services):
    path = REPO / GRAFANA_CONFIG / "provisioning" / "datasources" / "datasources.yml"
    by_uid = {source["uid"]: source for source in load_yaml(path)["datasources"]}
    assert set(by_uid) == {"prometheus", "jaeger"}

    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert by_uid["prometheus"]["isDefault"] is True
    assert by_uid["jaeger"]["type"] == "jaeger"
    assert by_uid["jaeger"]["url"] == "http://jaeger:16686"
    assert not by_uid["jaeger"].get("isDefault", False)
    for source in by_uid.values():
        assert urlsplit(source["url"]).hostname in services


def test_grafana_loads_the_saga_dashboard_from_the_repo(services):
    path = REPO / GRAFANA_CONFIG / "provisioning" / "dashboards" / "dashboards.yml"
    (provider,) = load_yaml(path)["providers"]
    assert provider["type"] == "file"
    dashboards = f"{GRAFANA_CONFIG}/dashboards"
    assert provider["options"]["path"] == mounted_at(services["grafana"], dashboards)
    assert (REPO / dashboards / "saga.json").is_file()


@pytest.fixture(scope="module")
def saga_dashboard() -> dict[str, Any]:
    dashboard = json.loads((REPO / GRAFANA_CONFIG / "dashboards" / "saga.json").read_text())
    assert isinstance(dashboard, dict)
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads.

    Strings, label matchers, range selectors and `by (...)` label lists are cut out
    first; what is left are metric names, and function names (followed by `(`).
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", text)
    functions = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", text))
    assert functions <= PROMQL_FUNCTIONS, f"unexpected functions in {expr!r}"
    return set(re.findall(r"\b[A-Za-z_:][\w:]*\b(?!\s*\()", text))


def test_metric_names_finds_the_metrics_and_nothing_else():
    expr = 'histogram_quantile(0.95, sum by (le, job) (rate(a_bucket{status=~"5.."}[5m]))) / b'
    assert metric_names(expr) == {"a_bucket", "b"}


def test_the_saga_dashboard_has_unique_panel_ids(saga_dashboard):
    assert saga_dashboard["title"] == "Saga"
    ids = [panel["id"] for panel in panels(saga_dashboard)]
    assert len(ids) == len(set(ids))


def test_every_dashboard_query_reads_only_exported_metrics(saga_dashboard):
    unknown = {
        expr: sorted(metric_names(expr) - EXPORTED_METRICS)
        for expr in expressions(saga_dashboard)
        if metric_names(expr) - EXPORTED_METRICS
    }
    assert not unknown, f"queries of metrics no service exports: {unknown}"


def test_the_dashboard_shows_every_exported_metric(saga_dashboard):
    shown = set().union(*map(metric_names, expressions(saga_dashboard)))
    assert sorted(EXPORTED_METRICS - shown) == []


def test_every_dashboard_query_uses_the_provisioned_prometheus(saga_dashboard):
    for panel in panels(saga_dashboard):
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource")
            assert source == {"type": "prometheus", "uid": "prometheus"}, panel["title"]


# ---------------------------------------------------------------- gateway

KONG_CONFIG = "infra/compose/kong/kong.yml"


@pytest.fixture(scope="module")
def kong_config() -> dict[str, Any]:
    config = load_yaml(REPO / KONG_CONFIG)
    assert config["_format_version"] == "3.0"
    assert config.get("services"), f"{KONG_CONFIG} defines no services"
    return config


def kong_path_matches(pattern: str, path: str) -> bool:
    """Kong's path matching: a prefix, or after `~` a regex anchored at the start."""
    if pattern.startswith("~"):
        return re.match(pattern[1:], path) is not None
    return path.startswith(pattern)


def kong_route(kong_config: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The route Kong picks for a request, with its `service` added.

    Of the routes that match, one that also names methods wins, as in Kong's router.
    """
    matching = [
        {**route, "service": service}
        for service in kong_config["services"]
        for route in service.get("routes", [])
        if method in route.get("methods", [method])
        and any(kong_path_matches(pattern, path) for pattern in route.get("paths", []))
    ]
    assert matching, f"no route for {method} {path}"
    return max(matching, key=lambda route: "methods" in route)


def rate_limits(kong_config: dict[str, Any], route: dict[str, Any]) -> list[dict[str, Any]]:
    """The rate-limiting plugins that apply to a route: its own, its service's, and global ones."""
    service = route["service"]
    top_level = [
        plugin
        for plugin in kong_config.get("plugins", [])
        if plugin.get("route", route["name"]) == route["name"]
        and plugin.get("service", service["name"]) == service["name"]
    ]
    plugins = [*route.get("plugins", []), *service.get("plugins", []), *top_level]
    return [plugin for plugin in plugins if plugin["name"] == "rate-limiting"]


def test_kong_runs_db_less_from_the_repo_config_once_the_services_are_ready(services):
    kong = services["kong"]
    assert str(kong["image"]).startswith("kong:3.")
    env = environment(kong)
    assert env["KONG_DATABASE"] == "off"
    assert env["KONG_DECLARATIVE_CONFIG"] == mounted_at(kong, KONG_CONFIG)
    assert depends_on(kong) == dict.fromkeys(BEHIND_THE_GATEWAY, "service_healthy")


@pytest.mark.parametrize(
    ("method", "path", "upstream"),
    [
        ("POST", "/v1/orders", "order"),
        ("GET", "/v1/orders/0b5e6c4e", "order"),
        ("POST", "/v1/orders/0b5e6c4e/cancel", "order"),
        ("POST", "/v2/orders", "order"),
        ("GET", "/v2/orders/0b5e6c4e", "order"),
        ("GET", "/v1/catalog/book", "order"),
        ("PUT", "/v1/products/book", "inventory"),
        ("GET", "/v1/products", "inventory"),
        ("PUT", "/v1/accounts/ada", "payment"),
        ("GET", "/v1/payments", "payment"),
    ],
)
def test_kong_routes_each_path_unchanged_to_its_service(kong_config, method, path, upstream):
    route = kong_route(kong_config, method, path)
    url = urlsplit(route["service"]["url"])
    assert f"{url.hostname}:{url.port}" == f"{upstream}:{SERVICES[upstream]}"
    assert url.path in {"", "/"}
    assert route["strip_path"] is False, "the service must see the full path"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_kong_rate_limits_placing_an_order_on_a_post_only_route(kong_config, version):
    route = kong_route(kong_config, "POST", f"/{version}/orders")
    assert route["methods"] == ["POST"]
    (limit,) = rate_limits(kong_config, route)
    assert limit["config"]["policy"] == "local"
    assert limit["config"]["second"] > 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/orders/0b5e6c4e"),
        ("POST", "/v1/orders/0b5e6c4e/cancel"),
        ("GET", "/v2/orders"),
        ("PUT", "/v1/products/book"),
        ("PUT", "/v1/accounts/ada"),
    ],
)
def test_kong_does_not_rate_limit_anything_else(kong_config, method, path):
    assert rate_limits(kong_config, kong_route(kong_config, method, path)) == []
