"""Routes of the shipping API: thin, each one calls a use case in `service_layer`.

`/health/live`, `/health/ready` and `/metrics` come from the chassis.
"""

from fastapi import APIRouter

from chassis.api import UNAVAILABLE

router = APIRouter(prefix="/v1", tags=["shipping"], responses=UNAVAILABLE)
