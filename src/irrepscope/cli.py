"""Command-line entry point: parses arguments and calls one library function per subcommand.

Each ``_add_*`` function owns one command group; the work lives in the library, imported lazily
so that ``irrepscope --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from irrepscope.errors import IrrepscopeError


def _print_json_or_text(result: dict, as_json: bool, text: str) -> None:
    print(json.dumps(result, indent=2, default=str) if as_json else text)


# --- sph -------------------------------------------------------------------------------------
def _add_sph(sub: argparse._SubParsersAction) -> None:
    sph = sub.add_parser("sph", help="spherical harmonics: info, opcount, accuracy, demo")
    cmds = sph.add_subparsers(dest="sph_command", required=True)

    info = cmds.add_parser("info", help="available backends and which one 'auto' picks")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_sph_info)

    opcount = cmds.add_parser("opcount", help="operation counts, direct vs recurrent (Figure 3)")
    opcount.add_argument("--out", type=Path, default=Path("docs"))
    opcount.set_defaults(func=_sph_opcount)

    accuracy = cmds.add_parser("accuracy", help="error per l and dtype against a 50-digit oracle")
    accuracy.add_argument("--out", type=Path, default=Path("docs"))
    accuracy.add_argument("--vectors", type=int, default=2000, help="random directions per l")
    accuracy.set_defaults(func=_sph_accuracy)

    demo = cmds.add_parser("demo", help="evaluate a few order sets and compare with e3nn")
    demo.set_defaults(func=_sph_demo)


def _sph_info(args: argparse.Namespace) -> None:
    from irrepscope.sph.api import backend_info

    info = backend_info()
    _print_json_or_text(info, args.json, "\n".join(f"{k}: {v}" for k, v in info.items()))


def _sph_opcount(args: argparse.Namespace) -> None:
    from irrepscope.sph.opcount import write_opcount_report

    for path in write_opcount_report(args.out):
        print(path)


def _sph_accuracy(args: argparse.Namespace) -> None:
    from irrepscope.sph.accuracy import write_accuracy_report

    for path in write_accuracy_report(args.out, num_vectors=args.vectors):
        print(path)


def _sph_demo(args: argparse.Namespace) -> None:
    from irrepscope.sph.demo import run_sph_demo

    run_sph_demo()


# --- data ------------------------------------------------------------------------------------
def _add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="QM9 / user data: info and cache")
    cmds = data.add_subparsers(dest="data_command", required=True)
    info = cmds.add_parser("info", help="counts, label statistics, bond check, cache")
    info.add_argument("--graph", choices=["bonds", "radius"], default="bonds")
    info.add_argument("--cutoff", type=float, default=6.0, help="radius-graph cutoff in Å")
    info.add_argument("--data-dir", type=Path, default=None)
    info.add_argument("--xyz", type=Path, default=None, help="extended-XYZ file instead of QM9")
    info.add_argument("--energy-key", default="energy", help="info key of the energy in --xyz")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_data_info)
    sample = cmds.add_parser("sample", help="write a seeded random sample of QM9 as CSV parts "
                                             "(train on it with data.qm9_dir)")
    sample.add_argument("--molecules", type=int, required=True)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=Path, required=True)
    sample.set_defaults(func=_data_sample)


def _data_sample(args: argparse.Namespace) -> None:
    from irrepscope.data.sample import write_qm9_sample

    out = write_qm9_sample(args.out, args.molecules, seed=args.seed)
    print(f"{args.molecules} QM9 molecules (seed {args.seed}) written to {out}")


def _data_info(args: argparse.Namespace) -> None:
    from irrepscope.data.info import data_info, format_data_info

    info = data_info(graph=args.graph, cutoff=args.cutoff, data_dir=args.data_dir,
                     xyz=args.xyz, energy_key=args.energy_key)
    _print_json_or_text(info, args.json, format_data_info(info))


# --- model -----------------------------------------------------------------------------------
def _add_model(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model inspection")
    cmds = model.add_subparsers(dest="model_command", required=True)
    info = cmds.add_parser("info", help="irreps of every block, tensor-product paths, parameters"
                                         " (and, with --run, test errors beside the baseline)")
    source = info.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path)
    source.add_argument("--run", type=Path, help="a run directory: its config and test metrics")
    info.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_model_info)


def _model_info(args: argparse.Namespace) -> None:
    from irrepscope.model.info import format_model_info, model_info
    from irrepscope.train.config import load_config

    if args.run is None:
        info = model_info(load_config(args.config, args.overrides))
        _print_json_or_text(info, args.json, format_model_info(info))
        return
    from irrepscope.errors import ConfigError
    from irrepscope.train.baseline import format_run_summary
    from irrepscope.train.run import read_run_config, read_test_metrics

    if args.overrides:
        raise ConfigError("model info --run describes the run as trained; --set only applies "
                          "to --config")
    info = model_info(read_run_config(args.run))
    info["test_metrics"] = read_test_metrics(args.run)
    _print_json_or_text(info, args.json, format_model_info(info) + "\n" + f"run {args.run}: "
                        + format_run_summary(info["test_metrics"]))


# --- train / sweep ---------------------------------------------------------------------------
def _add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train one config with Lightning")
    train.add_argument("--config", type=Path, required=True)
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE")
    train.add_argument("--run-dir", type=Path, default=None)
    train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.ckpt")
    train.add_argument("--devices", type=int, default=None)
    train.add_argument("--strategy", default=None, help="e.g. ddp (Lightning strategy name)")
    train.add_argument("--accelerator", default=None, help="cpu, gpu or auto")
    train.add_argument("--init-from", type=Path, default=None, metavar="RUN",
                       help="start from the matching weights of a run (its best.ckpt) or .ckpt")
    train.add_argument("--init-partial", action="store_true",
                       help="with --init-from: skip tensors of other shapes instead of stopping")
    train.set_defaults(func=_train)

    sweep = sub.add_parser("sweep", help="train several configs; Table 1-style CSV/Markdown")
    sweep.add_argument("configs", type=Path, nargs="+")
    sweep.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE")
    sweep.add_argument("--out", type=Path, default=Path("runs/sweep"))
    _add_seed_options(sweep)
    sweep.set_defaults(func=_sweep)


def _add_seed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", default=None, metavar="N|S,S,...",
                        help="train each config with N seeds (its seed, seed+1, ...) or with "
                             "the listed seeds; one run dir per seed, tables with mean ± std")
    parser.add_argument("--vary-split", action="store_true",
                        help="with --seeds: each seed draws its own split (default: the "
                             "config's split for every seed)")


def _train(args: argparse.Namespace) -> None:
    from irrepscope.train.run import train_from_config_file

    run_dir = train_from_config_file(args.config, overrides=args.overrides,
                                     run_dir=args.run_dir, resume=args.resume,
                                     devices=args.devices, strategy=args.strategy,
                                     accelerator=args.accelerator, init_from=args.init_from,
                                     init_partial=args.init_partial)
    print(run_dir)


def _sweep(args: argparse.Namespace) -> None:
    from irrepscope.train.run import sweep

    for path in sweep(args.configs, overrides=args.overrides, out_dir=args.out,
                      seeds=args.seeds, vary_split=args.vary_split):
        print(path)


# --- prune ---------------------------------------------------------------------------------
def _add_prune(sub: argparse._SubParsersAction) -> None:
    prune = sub.add_parser("prune", help="a smaller model from a trained run: drop orders, keep "
                                         "the remaining weights, fine-tune (docs/prune.md)")
    prune.add_argument("run_dir", type=Path)
    prune.add_argument("--out", type=Path, required=True, help="the new run directory")
    choice = prune.add_mutually_exclusive_group(required=True)
    choice.add_argument("--drop", metavar="L,L", help="orders to drop, e.g. 3,4")
    choice.add_argument("--auto", action="store_true",
                        help="drop every order l>0 whose ablation_rel_mse is below --threshold")
    prune.add_argument("--threshold", type=float, default=None,
                       help="--auto: ablation_rel_mse below which an order is dropped (0.5)")
    prune.add_argument("--drop-sh", action="store_true",
                       help="drop the orders from the spherical harmonics too (default: from "
                            "the hidden features only, exactly the ablated original)")
    prune.add_argument("--epochs", type=int, required=True,
                       help="fine-tuning epochs (0: prune and evaluate only)")
    prune.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="recipe change for the fine-tuning (train.*)")
    prune.add_argument("--checkpoint", default="best",
                       help="best, last or a .ckpt path (of the source run)")
    prune.add_argument("--resume", action="store_true",
                       help="continue an interrupted fine-tuning of --out")
    prune.add_argument("--speed-batches", type=int, default=8,
                       help="training batches timed per model and round (0: no timing)")
    prune.set_defaults(func=_prune)


def _prune(args: argparse.Namespace) -> None:
    from irrepscope.errors import ConfigError
    from irrepscope.pruning import prune_run
    from irrepscope.pruning.orders import AUTO_THRESHOLD, parse_orders

    if args.threshold is not None and not args.auto:
        raise ConfigError("--threshold applies to --auto only")
    threshold = AUTO_THRESHOLD if args.threshold is None else args.threshold
    print(prune_run(args.run_dir, args.out, epochs=args.epochs,
                    drop=None if args.drop is None else parse_orders(args.drop), auto=args.auto,
                    threshold=threshold, drop_sh=args.drop_sh, overrides=args.overrides,
                    checkpoint=args.checkpoint, resume=args.resume,
                    speed_batches=args.speed_batches,
                    command=shlex.join(["irrepscope", *args.argv])))


# --- predict -------------------------------------------------------------------------------
def _add_predict(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict",
                             help="energies (and forces) of a trained run on an xyz file")
    predict.add_argument("run_dir", type=Path)
    predict.add_argument("--xyz", type=Path, required=True, help="extended-XYZ file (ASE)")
    predict.add_argument("--out", type=Path, default=Path("predictions.csv"),
                         help=".csv (one row per frame) or .xyz/.extxyz (ASE reads it back)")
    predict.add_argument("--forces", action="store_true", help="also forces, eV/Å")
    predict.add_argument("--atom-energies", action="store_true", help="also per-atom energies")
    predict.add_argument("--checkpoint", default="best", help="best, last or a .ckpt path")
    predict.add_argument("--skip-invalid", action="store_true",
                         help="skip and count invalid frames instead of stopping at the first")
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--energy-key", default="energy",
                         help="info key of reference energies in --xyz (optional, copied to CSV)")
    predict.set_defaults(func=_predict)


def _predict(args: argparse.Namespace) -> None:
    from irrepscope.predict import predict_file

    files, prediction = predict_file(
        args.run_dir, args.xyz, args.out, checkpoint=args.checkpoint, forces=args.forces,
        atom_energies=args.atom_energies, skip_invalid=args.skip_invalid,
        batch_size=args.batch_size, energy_key=args.energy_key)
    print(f"irrepscope: predicted {len(prediction.energy)} frame(s) of {args.xyz}",
          file=sys.stderr)
    for path in files:
        print(path)


# --- analysis --------------------------------------------------------------------------------
def _add_analysis(sub: argparse._SubParsersAction) -> None:
    analyze = sub.add_parser("analyze", help="irrep analysis of a trained run or of any "
                             "model's features (--features)")
    analyze.add_argument("run_dir", type=Path, nargs="?", default=None)
    analyze.add_argument("--features", type=Path, default=None,
                         help="features file (.npz, layout in docs/analysis.md) instead of a run")
    analyze.add_argument("--out", type=Path, default=None,
                         help="with --features: output folder (default: <file>_analysis)")
    analyze.add_argument("--seed", type=int, default=0, help="with --features: PHATE/probe seed")
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
    _add_seed_options(demo)
    demo.set_defaults(func=_demo)


def _analyze(args: argparse.Namespace) -> None:
    if (args.run_dir is None) == (args.features is None):
        raise IrrepscopeError("analyze: give a run directory or --features FILE (one of them)")
    if args.features is not None:
        from irrepscope.analysis.features import analyze_features

        if args.block:
            raise IrrepscopeError("analyze --features: --block selects blocks of a run; every "
                                  "layer of a features file is analysed (drop --block)")

        out = args.out or args.features.with_name(f"{args.features.stem}_analysis")
        print(analyze_features(args.features, out, seed=args.seed, panel=args.panel))
        return
    if args.out is not None or args.seed != 0:
        raise IrrepscopeError("analyze RUN_DIR writes to RUN_DIR/analysis with the run's seed; "
                              "--out and --seed apply to --features only")
    from irrepscope.analysis.report import analyze_run

    print(analyze_run(args.run_dir, blocks=args.block, panel=args.panel))


def _compare(args: argparse.Namespace) -> None:
    from irrepscope.analysis.report import compare_runs

    print(compare_runs(args.run_dirs, args.out))


def _demo(args: argparse.Namespace) -> None:
    from irrepscope.analysis.demo import run_demo

    print(run_demo(args.out, overrides=args.overrides, seeds=args.seeds,
                   vary_split=args.vary_split))


# --- bench -----------------------------------------------------------------------------------
def _add_bench(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks; results go to docs/benchmarks.md")
    bench.add_argument("target", choices=["sph", "data", "train", "train-graphs", "train-gpu",
                                          "demo", "recipe", "explorer", "tracking", "all"])
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    bench.add_argument("--record", type=Path, default=Path("docs/benchmarks.md"),
                       help="Markdown file whose section for this benchmark is replaced")
    bench.add_argument("--no-record", action="store_true", help="print only")
    bench.add_argument("--sizes", type=_powers_of_two, metavar="K,K",
                       help="sph: numbers of vectors as powers of two, e.g. 20,24 (2^20, 2^24)")
    bench.add_argument("--orders", nargs="+", metavar="SET",
                       help="sph: order sets to measure, e.g. '[0..10]' '[0,3,4,5,6]' '[10]'")
    bench.add_argument("--no-compile", action="store_true",
                       help="sph: leave out the torch.compile columns")
    bench.add_argument("--graphs", type=lambda text: tuple(text.split(",")),
                       metavar="bonds,radius",
                       help="train-gpu, train-graphs: graph kinds (default both)")
    bench.add_argument("--configs", nargs="+", metavar="ORDERS:H",
                       help="train-gpu, train-graphs: configurations instead of the five, "
                            "e.g. '0,1,2:32' (train-graphs then skips its cutoff scaling)")
    bench.add_argument("--run", type=Path, default=None, dest="run_dir",
                       help="explorer: the trained run to embed molecules with "
                            "(default runs/demo/l03456_h16)")
    bench.set_defaults(func=_bench)


def _powers_of_two(text: str) -> list[int]:
    try:
        return [1 << int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes takes comma-separated exponents such as 20,24, got {text!r}") from None


def _configs(texts: list[str] | None) -> list[tuple[list[int], int]] | None:
    from irrepscope.bench.train import parse_config

    return None if texts is None else [parse_config(text) for text in texts]


def _bench(args: argparse.Namespace) -> None:
    from irrepscope.bench import run_benchmarks

    run_benchmarks(args.target, quick=args.quick,
                   record=None if args.no_record else args.record, sizes=args.sizes,
                   sets=args.orders, compiled=False if args.no_compile else None,
                   graphs=args.graphs, configs=_configs(args.configs), run_dir=args.run_dir,
                   # a chosen subset of train-graphs' configs leaves out its scaling table
                   scaling_configs=[] if args.target == "train-graphs" and args.configs else None)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="irrepscope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_sph, _add_data, _add_model, _add_train, _add_prune, _add_predict,
                _add_analysis, _add_bench):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # as typed, for records
    try:
        args.func(args)
    except IrrepscopeError as err:
        print(f"irrepscope: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
