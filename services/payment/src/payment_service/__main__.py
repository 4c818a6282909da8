"""Run the payment service: `python -m payment_service`."""

from chassis.app import serve
from payment_service.main import create_app
from payment_service.settings import Settings


def main() -> None:
    """Serve the app on `PAYMENT_HOST`:`PAYMENT_PORT` until stopped."""
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
