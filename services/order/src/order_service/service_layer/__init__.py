"""Use cases: place and cancel orders, apply the saga's results, time out stale orders."""
