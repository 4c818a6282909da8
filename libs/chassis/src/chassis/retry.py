"""Exponential backoff with jitter, for reconnecting and retrying transient failures."""

import random


class Backoff:
    """Delays of `base`, `2*base`, ... capped at `cap` seconds, each with ±20% jitter."""

    def __init__(self, base: float = 0.1, cap: float = 5.0) -> None:
        self._base = base
        self._cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles it up to the cap."""
        delay = min(self._cap, self._base * 2**self.attempts)
        self.attempts += 1
        return float(delay * random.uniform(0.8, 1.2))

    def reset(self) -> None:
        """Start again from `base` after a success."""
        self.attempts = 0
