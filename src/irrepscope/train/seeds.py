"""Several seeds of one config: which seeds, each seed's config overrides, each seed's run dir.

``seeds`` is a count ``N`` (the config's own seed and the next N-1 integers: ``seed``,
``seed + 1``, ...), an explicit list (``[3, 7, 11]``, on the command line ``3,7,11``) or None
(one run at the config's own seed, as without seeds). A seed changes the model's initial
weights and the data order; the train/val/test split stays the one of the config's own seed
(``data.split_seed`` is pinned to it) unless ``vary_split`` lets every seed draw its own split.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from irrepscope.errors import ConfigError, quoted
from irrepscope.train.config import MAX_SEED, RunConfig

SeedSpec = int | str | Sequence[int] | None
MAX_SEEDS = 1000  # runs per config; checked before any list is built
_SEED_SUFFIX = re.compile(r"^(?P<stem>.+)_s(?P<seed>\d+)$")
_HELP = (f"give a count N from 1 to {MAX_SEEDS} (the config's seed and the next N-1) or a "
         f"comma-separated list of at most {MAX_SEEDS} distinct seeds from 0 to {MAX_SEED} "
         f"such as 3,7,11")


def parse_seeds(text: str) -> int | list[int]:
    """``"3"`` -> the count 3; ``"3,7,11"`` (any comma) -> the list [3, 7, 11]."""
    items = [item.strip() for item in str(text).split(",")]
    try:
        values = [int(item) for item in items if item]
    except ValueError:
        raise ConfigError(f"--seeds {text}: not integers; {_HELP}") from None
    if "," in str(text):
        return values
    if not values:
        raise ConfigError(f"--seeds is empty; {_HELP}")
    return values[0]


def resolve_seeds(seeds: SeedSpec, base: int) -> list[int]:
    """The seed list of ``seeds`` (count, list, its text, or None) for a config seeded ``base``."""
    if seeds is None:
        return [base]
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    if isinstance(seeds, bool):
        raise ConfigError(f"--seeds {seeds}: {_HELP}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"--seeds {seeds}: at least one seed is needed; {_HELP}")
        if seeds > MAX_SEEDS:
            raise ConfigError(f"--seeds {quoted(seeds)}: more than {MAX_SEEDS} runs per config; "
                              f"{_HELP}")
        if base + seeds - 1 > MAX_SEED:
            raise ConfigError(f"--seeds {seeds} from seed {base} goes past {MAX_SEED}; {_HELP}")
        return [base + i for i in range(seeds)]
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds lists {len(seeds)} seeds: more than {MAX_SEEDS} runs per "
                          f"config; {_HELP}")
    values = list(seeds)
    if not values:
        raise ConfigError(f"--seeds is an empty list; {_HELP}")
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SEED
           for v in values):
        raise ConfigError(f"--seeds {quoted(values)}: seeds must be integers from 0 to "
                          f"{MAX_SEED}; {_HELP}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ConfigError(f"--seeds {quoted(values)}: {quoted(repeated)} given more than once (a "
                          f"repeated seed trains the same run twice); {_HELP}")
    return values


def seed_overrides(config: RunConfig, seed: int, vary_split: bool = False) -> list[str]:
    """``--set`` overrides that turn ``config`` into its run at ``seed``.

    The config's own seed needs none. Otherwise the split is pinned to the config's split seed,
    or, with ``vary_split``, left to follow the run seed.
    """
    if vary_split and config.data.split_seed is not None:
        raise ConfigError(f"--vary-split draws each seed's split from its seed, but the config "
                          f"sets data.split_seed={config.data.split_seed}; remove that setting "
                          f"or drop --vary-split")
    if seed == config.seed:
        return []
    pinned = [] if vary_split else [f"data.split_seed={config.split_seed}"]
    return [f"seed={seed}", *pinned]


def seed_run_name(stem: str, seed: int, seeds: Sequence[int], config_seed: int) -> str:
    """``stem`` for a single run at the config's own seed, else ``<stem>_s<seed>``."""
    return stem if list(seeds) == [config_seed] else f"{stem}_s{seed}"


def seed_run_dirs(out_dir: Path, stem: str, config: RunConfig, seeds: SeedSpec,
                  vary_split: bool = False) -> list[tuple[Path, list[str]]]:
    """(run dir, overrides) of every seed of ``config`` (named ``stem``) under ``out_dir``."""
    if vary_split and seeds is None:
        raise ConfigError("--vary-split varies the split between seeds; give --seeds too")
    values = resolve_seeds(seeds, config.seed)
    return [(out_dir / seed_run_name(stem, s, values, config.seed),
             seed_overrides(config, s, vary_split)) for s in values]


def strip_seed_suffix(name: str) -> tuple[str, int | None]:
    """(``stem``, seed) of a run dir named ``<stem>_s<seed>``; (name, None) otherwise."""
    match = _SEED_SUFFIX.match(name)
    return (match["stem"], int(match["seed"])) if match else (name, None)
