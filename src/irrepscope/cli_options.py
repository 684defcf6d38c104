"""Argument groups that several CLI commands share."""

from __future__ import annotations

import argparse


def add_seed_options(parser: argparse.ArgumentParser) -> None:
    """--seeds and --vary-split (train, sweep and demo: one run dir per seed)."""
    parser.add_argument("--seeds", default=None, metavar="N|S,S,...",
                        help="train each config with N seeds (its seed, seed+1, ...) or with "
                             "the listed seeds; one run dir per seed, tables with mean ± std")
    parser.add_argument("--vary-split", action="store_true",
                        help="with --seeds: each seed draws its own split (default: the "
                             "config's split for every seed)")
