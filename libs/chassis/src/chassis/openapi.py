"""Write a service's OpenAPI document, the HTTP contract checked in beside its code.

`python -m chassis.openapi <service> <path>` builds the app of `<service>_service`
(its `main.create_app` with its `settings.Settings`, the shape every service has)
without starting it, and writes the document to `<path>` as stable, sorted JSON.
`make contracts` runs it for every service; a test fails when a checked-in document
differs from what the code serves.
"""

import argparse
import importlib
import json
from pathlib import Path

from fastapi import FastAPI

UNUSED_DATABASE_URL = "postgresql+asyncpg://openapi.invalid/unused"
"""Building the app needs settings; nothing connects until it starts, which it does not."""


def build_app(service: str) -> FastAPI:
    """The FastAPI app of the package `<service>_service`, not started."""
    main = importlib.import_module(f"{service}_service.main")
    settings = importlib.import_module(f"{service}_service.settings")
    app: FastAPI = main.create_app(settings.Settings(database_url=UNUSED_DATABASE_URL, port=0))
    return app


def render(app: FastAPI) -> str:
    """The app's OpenAPI document as the text of the checked-in file."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chassis.openapi", description=__doc__)
    parser.add_argument("service", help="the service's name: its package is <service>_service")
    parser.add_argument("path", type=Path, help="where to write the document")
    args = parser.parse_args(argv)
    args.path.write_text(render(build_app(args.service)))


if __name__ == "__main__":
    main()
