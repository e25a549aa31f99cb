"""Command line:

    python -m fastoptim demo [--optimizer Adam] [--scheduler ReduceLROnPlateau] [--epochs 30] [--plot out.png]
                             [--compare torch] (--help for all)
    python -m fastoptim schedule StepLR --arg step_size=3 --steps 10 [--lr 0.1] [--plot lr.png]
    python -m fastoptim bench [--optimizers Adam SGD] [--cases 1x1e7 148x] [--threads 1 2] [--big]
                              [--json out.json] [--markdown out.md] [--plot out.png] (--help for all)
"""

from __future__ import annotations

import argparse
import shlex
import sys

from . import _demo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastoptim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train an MLP on the digits data set; print loss, accuracy, LR and "
                                       "what the scheduler did per epoch")
    _demo.add_arguments(demo)
    schedule = sub.add_parser("schedule", help="print (and optionally plot) the LR a scheduler produces")
    schedule.add_argument("name", help="a fastoptim.lr_scheduler class, e.g. StepLR")
    schedule.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                          help="a scheduler argument (value parsed as a Python literal, else a string); repeatable")
    schedule.add_argument("--steps", type=int, default=20)
    schedule.add_argument("--lr", type=float, default=0.1, help="the optimizer's initial learning rate")
    schedule.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "adamw", "rmsprop"])
    schedule.add_argument("--metric-file", help="metrics, one per step (whitespace separated), for ReduceLROnPlateau")
    schedule.add_argument("--plot", metavar="OUT.png", help="also draw LR vs step (needs matplotlib)")
    bench = sub.add_parser("bench", help="time optimizer steps against torch and numpy, with a bandwidth roofline")
    _bench_arguments(bench)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo.cli(demo, args)
    if args.command == "bench":
        from . import _bench

        command = "python -m fastoptim " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
        _bench.run(args.optimizers, args.threads, args.repeat, args.big, args.json, args.plot, args.markdown,
                   args.cases, args.quick, not args.no_torch, command)
        return 0
    if args.command == "schedule":
        from .lr_scheduler import _preview

        return _preview.cli(parser, args)
    return 2


def _bench_arguments(bench: argparse.ArgumentParser) -> None:
    from ._bench import BIG_CASES, CASES, SPECS  # cheap: torch is imported when the benchmark runs

    optimizers, cases = list(SPECS), list(CASES)
    bench.add_argument("--optimizers", nargs="+", choices=optimizers, metavar="NAME",
                       help="default: all (" + " ".join(optimizers) + "; the -bf16 rows only where the optimizer "
                            "takes state_dtype=)")
    bench.add_argument("--cases", nargs="+", choices=cases, metavar="CASE",
                       help=f"default: all but {' '.join(BIG_CASES)} (" + " ".join(cases) + ")")
    bench.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    bench.add_argument("--repeat", type=int, default=30, help="at least this many timed steps per median")
    bench.add_argument("--big", action="store_true", help="also 1 tensor of 1e8 (DRAM-bound; a few GB)")
    bench.add_argument("--quick", action="store_true", help="tiny cases and 3 steps (a smoke test, not figures)")
    bench.add_argument("--no-torch", action="store_true", help="leave torch out even when it is installed")
    bench.add_argument("--json", metavar="OUT.json")
    bench.add_argument("--markdown", metavar="OUT.md", help="the tables with machine info (bench/results/*.md)")
    bench.add_argument("--plot", metavar="OUT.png", help="ns/param per case, one panel per optimizer "
                                                       "(needs matplotlib)")


if __name__ == "__main__":
    sys.exit(main())
