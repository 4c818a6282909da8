"""Use cases: the event handlers of the saga and the commands behind the HTTP API."""
