"""`make compare`: the event-driven saga against a synchronous distributed monolith, under the same faults."""
