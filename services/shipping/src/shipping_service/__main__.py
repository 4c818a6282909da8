"""Run the shipping service: `python -m shipping_service`."""

from chassis.app import serve
from shipping_service.main import create_app
from shipping_service.settings import Settings


def main() -> None:
    """Serve the API, the consumer and the outbox relay until SIGINT/SIGTERM."""
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
