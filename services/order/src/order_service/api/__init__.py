"""HTTP API: routes and their request/response shapes."""
