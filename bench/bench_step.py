"""Median optimizer-step time, fastoptim vs torch.optim and numpy, with a bandwidth roofline, in one run.

Same as ``python -m fastoptim bench`` (see python/fastoptim/_bench.py); e.g.

    python bench/bench_step.py --optimizers Adam SGD --threads 1 2 --json bench/results/latest.json \
        --markdown bench/results/latest.md --plot bench/results/latest.png
"""

import sys

from fastoptim.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
