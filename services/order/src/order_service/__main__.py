"""`python -m order_service`: run the API, consumer, relay and timeout sweep in one process."""

from chassis.app import serve
from order_service.main import create_app
from order_service.settings import Settings

settings = Settings()
serve(create_app(settings), settings)
