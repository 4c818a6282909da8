"""Run the payment service: `python -m payment_service`."""

from chassis.app import serve
from payment_service.main import create_app
from payment_service.settings import Settings


def main() -> None:
    """Serve the API, the consumer and the outbox relay until SIGINT/SIGTERM."""
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
