"""Run the inventory service: `python -m inventory_service`."""

from chassis.app import serve
from inventory_service.main import create_app
from inventory_service.settings import Settings


def main() -> None:
    """Serve the API, the consumer and the outbox relay until SIGINT/SIGTERM."""
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
