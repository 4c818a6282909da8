"""The comparison's table (stdout and docs/comparison.md) and plot (PNG)."""

from pathlib import Path
from typing import Any

START = "<!-- compare:table:start (written by make compare; do not edit) -->"
END = "<!-- compare:table:end -->"

COLUMNS = (
    "design",
    "fault",
    "placed",
    "succeeded",
    "failed",
    "lost sales",
    "inconsistent",
    "p50 ms",
    "p99 ms",
)


def _cells(row: dict[str, Any]) -> list[str]:
    latency = row["latency_ms"]
    return [
        row["design"],
        row["fault"],
        str(row["placed"]),
        str(row["succeeded"]),
        str(row["failed"]) + (f" (+{row['pending']} pending)" if row["pending"] else ""),
        str(row["lost_sales"]),
        f"**{row['inconsistent']}**" if row["inconsistent"] else "0",
        f"{latency.get('p50', float('nan')):,.0f}",
        f"{latency.get('p99', float('nan')):,.0f}",
    ]


def table(result: dict[str, Any]) -> list[str]:
    """The rows as a Markdown table, with the workload it measured above it."""
    load = result["workload"]
    mix = ", ".join(f"{kind} {share}%" for kind, share in load["mix_percent"].items())
    lines = [
        f"{load['orders_per_cell']} orders per cell ({load['rate_per_second']:g}/s for "
        f"{load['seconds_per_cell']:g} s; {mix}), run {result['started_at']} on "
        f"{result['machine']['cpus']} CPUs (load average {_load(result)} when it began), "
        f"{result['run_seconds']:.0f} s in all.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i < 2 else "--:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in result["rows"]]
    details = [
        f"- {row['design']}, {row['fault']}: "
        + "; ".join(f"{what} ({n})" for what, n in row["inconsistencies"].items())
        for row in result["rows"]
        if row["inconsistencies"]
    ]
    if details:
        lines += ["", "What was inconsistent:", "", *details]
    done = [
        f"- {row['design']}, {row['fault']}: {did}"
        for row in result["rows"]
        if (did := _fault_did(row))
    ]
    if done:
        lines += ["", "What the faults did:", "", *done]
    return lines


def _fault_did(row: dict[str, Any]) -> str:
    """The fault's log and the proxy's counts for one cell, as a phrase."""
    proxy = row["proxy"]
    kind = "Kafka requests" if row["design"].startswith("event") else "HTTP calls"
    parts = list(row["fault_log"])
    if proxy["delayed"]:
        parts.append(f"{proxy['delayed']} of {proxy['requests']} {kind} to payment delayed")
    if proxy["reset"]:
        parts.append(f"{proxy['reset']} of {proxy['requests']} {kind} to payment reset")
    return "; ".join(parts)


def _load(result: dict[str, Any]) -> str:
    load = result["machine"].get("load_average_1min_at_start")
    return "not recorded" if load is None else f"{load:.1f}"


def row_summary(row: dict[str, Any]) -> str:
    """One line for the progress log."""
    latency = row["latency_ms"]
    return (
        f"placed {row['placed']}, succeeded {row['succeeded']}, failed {row['failed']}, "
        f"pending {row['pending']}, inconsistent {row['inconsistent']}, "
        f"p50 {latency.get('p50')} ms, p99 {latency.get('p99')} ms"
    )


def update_doc(path: Path, result: dict[str, Any]) -> None:
    """Replace the table between the markers of `path` (they must be there)."""
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + START + "\n" + "\n".join(table(result)) + "\n" + END + tail)


def plot(result: dict[str, Any], path: Path) -> None:
    """Per fault, both designs side by side: outcomes (share of orders) and latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    designs = list(dict.fromkeys(row["design"] for row in rows))
    faults = list(dict.fromkeys(row["fault"] for row in rows))
    by = {(row["design"], row["fault"]): row for row in rows}
    width = 0.8 / len(designs)
    figure, (outcomes, latency) = plt.subplots(2, 1, figsize=(13, 7))
    for d, design in enumerate(designs):
        xs = [f + (d - (len(designs) - 1) / 2) * width for f in range(len(faults))]
        cells = [by.get((design, fault)) for fault in faults]
        share = [
            [100 * c[key] / max(1, c["placed"]) if c else 0 for c in cells]
            for key in ("succeeded", "failed", "inconsistent")
        ]
        hatch = "//" if d else ""
        outcomes.bar(
            xs, share[0], width, color="tab:green", hatch=hatch, label=f"{design}: succeeded"
        )
        outcomes.bar(
            xs,
            share[1],
            width,
            bottom=share[0],
            color="tab:orange",
            hatch=hatch,
            label=f"{design}: failed",
        )
        outcomes.scatter(
            xs,
            share[2],
            color="tab:red",
            marker="x" if d else "o",
            zorder=3,
            label=f"{design}: inconsistent",
        )
        for key, alpha in (("p99", 0.4), ("p50", 1.0)):
            values = [c["latency_ms"].get(key, 0) if c else 0 for c in cells]
            latency.bar(
                xs, values, width, alpha=alpha, hatch=hatch, color=f"C{d}", label=f"{design}: {key}"
            )
    for axis in (outcomes, latency):
        axis.set_xticks(range(len(faults)), faults)
    outcomes.set_ylabel("% of orders placed")
    outcomes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    latency.set_yscale("log")
    latency.set_ylabel("latency (ms, log)\nsaga: placed -> terminal\nmonolith: the HTTP call")
    latency.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    load = result["workload"]
    figure.suptitle(
        f"event-driven saga vs distributed monolith: {load['orders_per_cell']} orders per cell "
        f"at {load['rate_per_second']:g}/s"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
