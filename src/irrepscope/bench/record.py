"""Recording benchmark results: machine facts and one replaceable section per benchmark."""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

# Shared with the other layers; imported from here by the benchmark modules.
from irrepscope.tables import machine_description, markdown_table

__all__ = ["HEADER", "load_average", "load_note", "machine_description", "markdown_table",
           "median_time", "publish", "write_section"]

HEADER = (
    "# Benchmarks\n\n"
    "Every table below was written by the command named above it (`irrepscope bench ...`);\n"
    "rerun that command to reproduce it. Sections are replaced independently.\n"
)


def load_note(start: float, end: float) -> str:
    """A sentence on the machine's 1-minute load average at the start and end of a benchmark."""
    cores = os.cpu_count() or 1
    busy = max(start, end) > cores + 0.5
    return (f"Load average (1 min) {start:.1f} at the start and {end:.1f} at the end, on {cores} "
            f"cores" + ("; other processes were running, so wall times are inflated."
                        if busy else "."))


def load_average() -> float:
    """The machine's 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def write_section(path: Path, name: str, command: str, body: str) -> Path:
    """Replace (or append) the section ``name`` of the Markdown file ``path`` with ``body``."""
    path = Path(path)
    text = path.read_text() if path.exists() else HEADER
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = (f"{start}\n## {name}\n\nCommand: `{command}`  \nMachine: {machine_description()}"
               f"  \nDate: {stamp}\n\n{body.rstrip()}\n{end}")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + section + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def publish(body: str, record: Path | None, target: str, quick: bool, options: str = "",
            section: str | None = None, echo: bool = True) -> None:
    """Print ``body``; with ``record``, write it as the section of ``irrepscope bench <target>``.

    Quick (smoke) runs get a section of their own, so they never replace a full run's numbers.
    ``options``: the flags that reproduce the run, shown in the command; ``section``: the
    section's name when it is not ``target`` (a GPU run of a benchmark that also runs on CPUs);
    ``echo``: print the body (False for the partial records of a run still measuring).
    """
    if echo:
        print(body)
    if record is not None:
        suffix = " (quick)" if quick else ""
        command = " ".join(part for part in (f"irrepscope bench {target}",
                                             "--quick" if quick else "", options) if part)
        write_section(Path(record), (section or target) + suffix, command, body)


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]
