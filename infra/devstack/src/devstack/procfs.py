"""What Linux says of a process of the stack (/proc): its memory and its CPU time."""

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    # The command name, field 2, may hold spaces: split after its closing parenthesis.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def memory_bytes(pid: int, field: str = "VmRSS") -> int:
    """`VmRSS` (resident now) or `VmHWM` (peak resident) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # the kernel writes it in kB
    raise RuntimeError(f"no {field} for process {pid} (a zombie?)")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, plus that of its live children and of those it reaped.

    A PostgreSQL server is a postmaster and a backend per connection: counting the
    children is what makes its figure the database's, not just the postmaster's.
    """
    fields = _stat(pid)  # fields[11:15]: utime stime cutime cstime
    total = sum(int(value) for value in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(child[1]) == pid:  # fields[1]: ppid
                total += int(child[11]) + int(child[12])
    return total / _TICKS
