"""The HTTP API: accounts and the payments of an order."""
