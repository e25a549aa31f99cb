"""Command line: ``python -m fastoptim demo [--optimizer Adam] [--epochs 8]``."""

from __future__ import annotations

import argparse
import sys

from . import _demo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastoptim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small MLP on generated data and print loss and LR per epoch")
    demo.add_argument("--optimizer", default="Adam", choices=sorted(_demo.OPTIMIZERS))
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo.run(args.optimizer, args.epochs, args.seed)
    return 2


if __name__ == "__main__":
    sys.exit(main())
