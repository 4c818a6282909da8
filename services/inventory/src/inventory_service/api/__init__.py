"""HTTP API: routes and request/response schemas."""
