"""Fitness tests: each guards against one symptom of a distributed monolith.

Every test says which symptom it prevents; "Fitness tests" in docs/architecture.md
lists them all, with why each boundary matters. These read the code and the
configuration only (no I/O beyond files); `test_installed_alone.py` and
`test_previous_chassis.py` install packages into temporary environments.
"""

import ast
import importlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from .isolation import REPO, SERVICES

IMPORT_RULES = Path(__file__).with_name("importlinter.toml")


def settings_of(service: str) -> type[BaseSettings]:
    """The service's `Settings` class (`<svc>_service.settings.Settings`)."""
    settings: type[BaseSettings] = importlib.import_module(f"{service}_service.settings").Settings
    return settings


def lint_imports(contract: str) -> subprocess.CompletedProcess[str]:
    """Run one import-linter contract of `importlinter.toml` on the installed packages."""
    lint = str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run(
        [lint, str(IMPORT_RULES), "--contract", contract, "--no-cache", "--no-logo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "contract",
    ["services-independent", "shared-code-below-services"],
)
def test_no_service_imports_another_services_code(contract):
    """Symptom: services that must be changed and deployed together because one imports
    another's code (or the shared libraries grow a dependency on a service).

    import-linter: the three services are independent of each other, and the chassis and
    shared-contracts import no service. See "Fitness tests" in docs/architecture.md.
    """
    result = lint_imports(contract)
    assert result.returncode == 0, result.stdout + result.stderr


def contract(rules: dict[str, Any], contract_id: str) -> dict[str, Any]:
    (found,) = [c for c in rules["tool"]["importlinter"]["contracts"] if c["id"] == contract_id]
    return found


def test_every_service_is_under_the_import_rules():
    """Symptom: a new service that the import rules silently leave out, so that it can
    import its siblings (or they it) and nothing fails.

    Every `services/<svc>` is a root package of `importlinter.toml` and appears in each of
    its contracts. See "Fitness tests" in docs/architecture.md.
    """
    rules = tomllib.loads(IMPORT_RULES.read_text())
    packages = {f"{service}_service" for service in SERVICES}
    missing = {
        "root_packages": packages - set(rules["tool"]["importlinter"]["root_packages"]),
        "services-independent": packages - set(contract(rules, "services-independent")["modules"]),
        "shared-code-below-services": packages
        - {
            m.strip() for m in contract(rules, "shared-code-below-services")["layers"][1].split("|")
        },
        "service-layers": packages - set(contract(rules, "service-layers")["containers"]),
        "pure-domain": {f"{p}.domain" for p in packages}
        - set(contract(rules, "pure-domain")["source_modules"]),
        "no-http-clients": packages - set(contract(rules, "no-http-clients")["source_modules"]),
    }
    assert {k: sorted(v) for k, v in missing.items() if v} == {}, (
        f"add every service to {IMPORT_RULES.relative_to(REPO)}"
    )


def test_a_services_layers_point_inward():
    """Symptom: business rules tangled with HTTP and SQL, so a service cannot change one
    without the other (and a template whose shape rots).

    import-linter, per service: `__main__` > `main` > `api` > `service_layer` > `adapters`
    > `domain | settings`, every module in one of them. See docs/architecture.md.
    """
    result = lint_imports("service-layers")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_domain_imports_no_framework():
    """Symptom: domain rules that need a web server, a database or the broker to run,
    and that move whenever the chassis or a contract moves.

    import-linter: `<svc>.domain` imports none of fastapi, sqlalchemy, aiokafka, pydantic,
    pydantic-settings, the chassis or shared-contracts. See docs/architecture.md.
    """
    result = lint_imports("pure-domain")
    assert result.returncode == 0, result.stdout + result.stderr


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads, upper-cased."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
        names |= {str(c).upper() for c in choices if isinstance(c, str)}
        names.add(f"{prefix}{name}".upper())
    return names


def compose_services() -> dict[str, dict[str, object]]:
    """The services of docker-compose.yml, YAML anchors resolved."""
    services: dict[str, dict[str, object]] = yaml.safe_load(
        (REPO / "docker-compose.yml").read_text()
    )["services"]
    return services


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_configuration_names_another_services_database(service):
    """Symptom: a shared database, the tightest coupling there is: one service reading or
    writing another's tables, so neither can change its schema alone.

    A service's settings read only its own `<SVC>_DATABASE_URL`; no file of the service
    (code, Alembic, Dockerfile, README) names another's; in docker-compose.yml its
    containers get only their own database URL, on their own database server.
    See "Fitness tests" and "Services and boundaries" in docs/architecture.md.
    """
    others = [o for o in SERVICES if o != service]
    names = env_names(settings_of(service))
    assert [n for n in names if n.endswith("DATABASE_URL")] == [f"{service.upper()}_DATABASE_URL"]
    assert not [n for n in names if n.startswith(tuple(f"{o.upper()}_" for o in others))]
    for path in (REPO / "services" / service).rglob("*"):
        if path.is_file() and path.suffix in {".py", ".ini", ".md", ".toml", ".yaml", ""}:
            text = path.read_text(errors="replace")
            assert not [o for o in others if f"{o.upper()}_DATABASE_URL" in text], path
    # A service that compose does not run yet has no compose configuration to check.
    for name in {service, f"{service}-migrate"} & compose_services().keys():
        environment = compose_services()[name].get("environment", {})
        assert isinstance(environment, dict)
        urls = {k: str(v) for k, v in environment.items() if k.endswith("DATABASE_URL")}
        assert list(urls) == [f"{service.upper()}_DATABASE_URL"], name
        assert f"@{service}-db:" in urls[f"{service.upper()}_DATABASE_URL"], name


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_calls_another_synchronously(service):
    """Symptom: a chain of synchronous calls on the order path, so that one service down
    (or slow) takes the others with it and they must be scaled and deployed together.

    import-linter: no HTTP client (httpx, requests, aiohttp, urllib3, urllib) in any
    service's runtime code or the chassis (tests may use one); and no setting of the
    service is a URL, host or port of a sibling. See docs/architecture.md.
    """
    result = lint_imports("no-http-clients")
    assert result.returncode == 0, result.stdout + result.stderr
    settings = settings_of(service)
    others = [o for o in SERVICES if o != service]
    for name, field in settings.model_fields.items():
        assert not set(re.split(r"_+", name)) & set(others), name
        assert not re.match(r"https?://", str(field.default)), name
    sibling_ports = {settings_of(o).model_fields["port"].default for o in others}
    assert settings.model_fields["port"].default not in sibling_ports


CONTRACTS_SOURCE = REPO / "shared-contracts" / "src" / "shared_contracts"
ALLOWED_CONTRACT_IMPORTS = {"shared_contracts", "pydantic", "enum", "uuid", "typing", "datetime"}
"""Data needs nothing more: no I/O, no framework, no clock or randomness."""


def docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def behaviour(tree: ast.Module) -> Iterator[str]:
    """What in a module is behaviour rather than a data declaration, as readable lines."""
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign):
            continue
        if docstring(node):
            continue
        if isinstance(node, ast.ClassDef):
            yield from class_behaviour(node)
        elif isinstance(node, ast.FunctionDef):
            yield from function_behaviour(node, node.name)
        else:
            yield f"line {node.lineno}: a {type(node).__name__} statement runs at import"


def class_behaviour(node: ast.ClassDef) -> Iterator[str]:
    """A class is a pydantic model or an enum: fields, `model_config`, plain properties."""
    bases = {ast.unparse(b) for b in node.bases}
    if not bases & {"BaseModel", "StrEnum", "IntEnum", "Enum"}:
        yield f"{node.name}: neither a pydantic model nor an enum (bases {sorted(bases)})"
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            decorators = {ast.unparse(d) for d in item.decorator_list}
            if decorators != {"property"}:
                yield f"{node.name}.{item.name}: a method (only @property may be defined)"
            yield from function_behaviour(item, f"{node.name}.{item.name}")
        elif not isinstance(item, ast.Assign | ast.AnnAssign) and not docstring(item):
            yield f"{node.name}: a {type(item).__name__} in the class body"


def function_behaviour(node: ast.FunctionDef, name: str) -> Iterator[str]:
    """A function may only derive a value from its arguments: one `return` expression."""
    body = node.body[1:] if docstring(node.body[0]) else node.body
    if len(body) != 1 or not isinstance(body[0], ast.Return):
        yield f"{name}: more than one `return <expression>` (control flow or state)"


def test_shared_contracts_hold_data_not_behaviour():
    """Symptom: logic shared through the contracts package, so that a change to one
    service's rules ships to every service and they move in lockstep.

    Every module of `shared_contracts` only declares: pydantic models and enums, constants
    (the topic names, the registry of event versions), and functions or properties that are
    a single `return` of a value derived from their arguments (`Topic.dlq`, `event_key`).
    No other statement, no I/O, no imports but pydantic and a few stdlib type modules.
    See "Fitness tests" in docs/architecture.md.
    """
    found: list[str] = []
    imported: set[str] = set()
    for path in sorted(CONTRACTS_SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        found += [f"{path.relative_to(REPO)}: {line}" for line in behaviour(tree)]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert found == []
    assert imported <= ALLOWED_CONTRACT_IMPORTS


DOMAIN_TERMS = frozenset(
    {
        *("order", "orders", "payment", "payments", "inventory", "stock", "customer"),
        *("customers", "sku", "skus", "refund", "refunds", "charge", "charges", "product"),
        *("products", "catalog", "reservation", "reservations", "reserve", "account"),
        *("accounts", "balance", "cents", "price", "money", "shipment", "shipments"),
        "shipping",
    }
)
"""The business's words: what the services are about, which the chassis must not know."""

ALLOWED_NAMES = frozenset({"order_by"})
"""SQLAlchemy's `order_by`: "order" as in sorting, not the business's orders."""


def words(text: str) -> set[str]:
    """The lower-case words of an identifier or a string: snake_case, CamelCase, prose."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return {w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w}


def docstrings(tree: ast.Module) -> set[int]:
    """The ids of the string nodes that are documentation (docstrings, attribute docs)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def names_and_strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every identifier the code defines or uses, and every string it holds (not its docs)."""
    documentation = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.lineno, node.name
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            yield getattr(node, "lineno", 0), node.arg
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in documentation
        ):
            yield node.lineno, node.value


def test_the_chassis_knows_no_domain_terms():
    """Symptom: business rules creeping into the shared library, so that every service
    must take (and redeploy with) a chassis release for one service's feature.

    No identifier or string in `libs/chassis/src` is made of the business's words (order,
    payment, stock, sku, refund, ...). Documentation may name the services as examples of
    use; code may not rely on them. The one exception is `ALLOWED_NAMES`. See "Fitness
    tests" in docs/architecture.md.
    """
    found = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for path in sorted((REPO / "libs" / "chassis" / "src").rglob("*.py"))
        for line, text in names_and_strings(ast.parse(path.read_text(), str(path)))
        if text not in ALLOWED_NAMES and words(text) & DOMAIN_TERMS
    ]
    assert found == []
