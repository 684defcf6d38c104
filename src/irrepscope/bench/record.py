"""Recording benchmark results: machine facts and one replaceable section per benchmark."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

HEADER = (
    "# Benchmarks\n\n"
    "Every table below was written by the command named above it (`irrepscope bench ...`);\n"
    "rerun that command to reproduce it. Sections are replaced independently.\n"
)


def machine_description() -> str:
    """One line naming the CPU, core count, memory, GPU and library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}; torch {torch.__version__}, "
            f"{threads} torch thread{'' if threads == 1 else 's'}")


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


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
