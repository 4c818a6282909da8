"""Use cases: the event handlers and the commands behind the HTTP API."""
