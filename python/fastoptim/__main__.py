"""Command line:

    python -m fastoptim demo [--optimizer Adam] [--scheduler ReduceLROnPlateau] [--epochs 30] [--plot out.png]
                             [--compare torch] (--help for all)
    python -m fastoptim schedule StepLR --arg step_size=3 --steps 10 [--lr 0.1] [--plot lr.png]
    python -m fastoptim bench [--optimizers Adam SGD] [--threads 1 2] [--big] [--json out.json] [--plot out.png]
"""

from __future__ import annotations

import argparse
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
    bench.add_argument("--optimizers", nargs="+", default=["Adam", "SGD"], choices=["Adam", "AdamW", "SGD", "RMSprop"])
    bench.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    bench.add_argument("--repeat", type=int, default=30)
    bench.add_argument("--big", action="store_true", help="also 1e8 parameters (DRAM-bound; ~3 GB)")
    bench.add_argument("--json", metavar="OUT.json")
    bench.add_argument("--plot", metavar="OUT.png", help="Adam's ns/param per case (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo.cli(demo, args)
    if args.command == "bench":
        from . import _bench

        _bench.run(args.optimizers, args.threads, args.repeat, args.big, args.json, args.plot)
        return 0
    if args.command == "schedule":
        from .lr_scheduler import _preview

        return _preview.cli(parser, args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
