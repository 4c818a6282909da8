"""The HTTP API of the shipping service."""
