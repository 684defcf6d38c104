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

from irrepscope.cli_analysis import add_analysis
from irrepscope.cli_options import add_seed_options
from irrepscope.errors import DiskFullError, IrrepscopeError
from irrepscope.files import disk_full_error, is_disk_full
from irrepscope.train.stopping import Stopped, stop_on_signals, stopped_line


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
    export = cmds.add_parser("export", help="molecules as extended XYZ (energies in eV) that "
                                             "mace_run_train and nequip read: a run's split or a "
                                             "seeded QM9 sample")
    export.add_argument("--out", type=Path, required=True, help="the .xyz file to write")
    export.add_argument("--run", type=Path, default=None, help="a run directory: its data set")
    export.add_argument("--split", choices=["train", "val", "test"], default=None,
                        help="with --run: which part of its split.npz (default test)")
    export.add_argument("--molecules", type=int, default=None,
                        help="a seeded sample of this many (default all)")
    export.add_argument("--seed", type=int, default=0, help="seed of the --molecules sample")
    export.add_argument("--energy-key", default="REF_energy",
                        help="info key of the energy (MACE's default REF_energy)")
    export.add_argument("--qm9-dir", type=Path, default=None,
                        help="without --run: folder of QM9 CSV parts (e.g. from data sample)")
    export.add_argument("--data-dir", type=Path, default=None, help="processed-data cache")
    export.set_defaults(func=_data_export)


def _data_sample(args: argparse.Namespace) -> None:
    from irrepscope.data.sample import write_qm9_sample

    out = write_qm9_sample(args.out, args.molecules, seed=args.seed)
    print(f"{args.molecules} QM9 molecules (seed {args.seed}) written to {out}")


def _data_export(args: argparse.Namespace) -> None:
    from irrepscope.data.export import export_molecules

    if args.run is None:
        if args.split is not None:
            raise IrrepscopeError("data export: --split selects part of a run's split; give "
                                  "--run RUN with it")
        if args.qm9_dir is None and args.molecules is None:
            raise IrrepscopeError("data export without --run: give --molecules N (a seeded "
                                  "sample; all of QM9 is 130,831 molecules)")
        from irrepscope.data import load_dataset

        dataset = load_dataset("qm9", data_dir=args.data_dir, qm9_dir=args.qm9_dir)
        positions = range(len(dataset))
    else:
        from irrepscope.train.run import load_run_dataset, load_run_split

        if args.qm9_dir is not None or args.data_dir is not None:
            raise IrrepscopeError("data export --run reads the run's own data set; drop "
                                  "--qm9-dir / --data-dir")
        dataset = load_run_dataset(args.run)
        positions = getattr(load_run_split(args.run), args.split or "test")
    path, count = export_molecules(dataset, positions, args.out, args.molecules, args.seed,
                                   args.energy_key)
    print(f"{count} molecules written to {path} (energies in eV under {args.energy_key!r})")


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
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run files in RUN_DIR first (a run of another config)")
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
    add_seed_options(sweep)
    sweep.set_defaults(func=_sweep)


def _train(args: argparse.Namespace) -> None:
    from irrepscope.train.run import train_from_config_file

    run_dir = train_from_config_file(args.config, overrides=args.overrides,
                                     run_dir=args.run_dir, resume=args.resume,
                                     devices=args.devices, strategy=args.strategy,
                                     accelerator=args.accelerator, init_from=args.init_from,
                                     init_partial=args.init_partial, overwrite=args.overwrite)
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
    prune.add_argument("--overwrite", action="store_true",
                       help="delete the run files in --out first (another run)")
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
                    speed_batches=args.speed_batches, overwrite=args.overwrite,
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
                add_analysis, _add_bench):
        add(sub)
    return parser


def _error(err: Exception, status: int) -> int:
    print(f"irrepscope: error: {err}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and exit with status 2, a full disk with 1, a
    signal with 128 + its number (SIGTERM: 143, SIGINT: 130; ``irrepscope.train.stopping``)."""
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # as typed, for records
    try:
        with stop_on_signals():
            args.func(args)
    except Stopped as stopped:
        if stopped.main:  # the other processes of a distributed run stop with it, silently
            print(stopped_line(stopped, args.command, args.argv), file=sys.stderr)
        return stopped.exit_status
    except IrrepscopeError as err:
        return _error(err, 1 if isinstance(err, DiskFullError) else 2)
    except OSError as err:  # a full disk under a writer that is not irrepscope's (logs)
        if not is_disk_full(err):
            raise
        return _error(disk_full_error(Path(err.filename or Path.cwd() / "(a file)")), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
