"""The analysis commands of the CLI (``analyze``, ``compare``, ``demo``): arguments and one call
into the library each (``irrepscope.cli`` assembles the command groups)."""

from __future__ import annotations

import argparse
from pathlib import Path

from irrepscope.cli_options import add_seed_options
from irrepscope.errors import IrrepscopeError

# Which options belong to which source of ``analyze`` (a run, --features, --model).
_MODEL_ONLY = ("xyz", "layers", "family", "trust_model_code", "energy_key")


def add_analysis(sub: argparse._SubParsersAction) -> None:
    """The ``analyze``, ``compare`` and ``demo`` subcommands."""
    analyze = sub.add_parser("analyze", help="irrep analysis of a trained run, of a MACE / "
                             "NequIP / Allegro model file (--model) or of any model's features "
                             "(--features)")
    analyze.add_argument("run_dir", type=Path, nargs="?", default=None)
    analyze.add_argument("--features", type=Path, default=None,
                         help="features file (.npz, layout in docs/analysis.md) instead of a run")
    analyze.add_argument("--model", type=Path, default=None,
                         help="a MACE .model, nequip / Allegro .ckpt or .nequip.zip (with --xyz)")
    analyze.add_argument("--xyz", type=Path, default=None,
                         help="with --model: extended-XYZ molecules with energies (eV)")
    analyze.add_argument("--energy-key", default=None,
                         help="with --model: info key of the energies in --xyz (REF_energy)")
    analyze.add_argument("--layers", default=None, metavar="NAME,NAME",
                         help="with --model: layers to analyse (default: the family's; an "
                              "unknown name lists them)")
    analyze.add_argument("--family", choices=["mace", "nequip", "allegro"], default=None,
                         help="with --model: assert the family (read from the file otherwise)")
    analyze.add_argument("--trust-model-code", action="store_true",
                         help="with --model: allow loading it (these files run code stored "
                              "in them when loaded)")
    analyze.add_argument("--out", type=Path, default=None,
                         help="with --features / --model: output folder (default: "
                              "<file>_analysis)")
    analyze.add_argument("--seed", type=int, default=0,
                         help="with --features / --model: PHATE/probe seed")
    analyze.add_argument("--block", type=int, action="append", default=None,
                         help="block index to analyse besides the last (repeatable)")
    analyze.add_argument("--panel", default=None,
                         help="panel for the Figure 7-style extremes plot, e.g. 'invariant:l=4'")
    analyze.set_defaults(func=_analyze)

    compare = sub.add_parser("compare", help="several analysed runs side by side")
    compare.add_argument("run_dirs", type=Path, nargs="+")
    compare.add_argument("--out", type=Path, required=True)
    compare.set_defaults(func=_compare)

    demo = sub.add_parser("demo", help="the main job: train, analyse and compare two L sets")
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override applied to both demo configs")
    add_seed_options(demo)
    demo.set_defaults(func=_demo)


def _analyze(args: argparse.Namespace) -> None:
    sources = [name for name in ("run_dir", "features", "model") if getattr(args, name)]
    if len(sources) != 1:
        raise IrrepscopeError("analyze: give a run directory, --features FILE or --model FILE "
                              "(one of them)")
    given = [f"--{name.replace('_', '-')}" for name in _MODEL_ONLY
             if getattr(args, name) not in (None, False)]
    if args.model is None and given:
        raise IrrepscopeError(f"analyze: {', '.join(given)} apply to --model only")
    if args.block and args.run_dir is None:
        raise IrrepscopeError("analyze --features / --model: --block selects blocks of a run; "
                              "every layer of a features file or model is analysed (drop "
                              "--block; with --model, choose layers with --layers)")
    if args.model is not None:
        _analyze_model(args)
    elif args.features is not None:
        from irrepscope.analysis.features import analyze_features

        out = args.out or args.features.with_name(f"{args.features.stem}_analysis")
        print(analyze_features(args.features, out, seed=args.seed, panel=args.panel))
    else:
        if args.out is not None or args.seed != 0:
            raise IrrepscopeError("analyze RUN_DIR writes to RUN_DIR/analysis with the run's "
                                  "seed; --out and --seed apply to --features / --model only")
        from irrepscope.analysis.report import analyze_run

        print(analyze_run(args.run_dir, blocks=args.block, panel=args.panel))


def _analyze_model(args: argparse.Namespace) -> None:
    if args.xyz is None:
        raise IrrepscopeError("analyze --model needs --xyz DATA.xyz: the molecules (with "
                              "energies in eV) to analyse it on")
    from irrepscope.analysis.model_file import analyze_model_file

    layers = None if args.layers is None else [n.strip() for n in args.layers.split(",")
                                               if n.strip()]
    print(analyze_model_file(args.model, args.xyz, args.out, layers=layers,
                             family=args.family, trust_code=args.trust_model_code,
                             energy_key=args.energy_key or "REF_energy", seed=args.seed,
                             panel=args.panel))


def _compare(args: argparse.Namespace) -> None:
    from irrepscope.analysis.report import compare_runs

    print(compare_runs(args.run_dirs, args.out))


def _demo(args: argparse.Namespace) -> None:
    from irrepscope.analysis.demo import run_demo

    print(run_demo(args.out, overrides=args.overrides, seeds=args.seeds,
                   vary_split=args.vary_split))
