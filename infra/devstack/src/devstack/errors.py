"""The one error type the launcher raises for problems a user can cause or fix."""

from pathlib import Path


class DevstackError(Exception):
    """A failure to report as one line (plus where to look), not as a traceback.

    `message` is the one-line summary; `detail` (often the tail of a log) and
    `log_path` help whoever reads a test failure or a terminal.
    """

    def __init__(self, message: str, *, log_path: Path | None = None, detail: str = "") -> None:
        self.message = message
        self.log_path = log_path
        self.detail = detail
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        if self.log_path is not None:
            parts.append(f"(log: {self.log_path})")
        text = " ".join(parts)
        return f"{text}\n{self.detail}" if self.detail else text
