"""Checks shared by the tests."""

import os


def process_gone(pid: int) -> bool:
    """True when neither the process nor anything in its process group is left."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True
