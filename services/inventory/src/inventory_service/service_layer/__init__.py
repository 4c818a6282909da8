"""Use cases: the HTTP commands and the consumers of order events."""
