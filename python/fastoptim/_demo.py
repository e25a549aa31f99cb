"""The demo: a two-layer MLP, gradients by hand in numpy, trained with a fastoptim optimizer.

Each epoch runs mini-batches (``optimizer.step`` per batch), then halves the learning rate every four
epochs by editing ``param_groups`` (what a scheduler does), and prints loss, accuracy and LR.
"""

from __future__ import annotations

import time

import numpy as np

from . import SGD, Adam, AdamW, RMSprop, _core

OPTIMIZERS = {
    "SGD": lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda p: Adam(p, lr=2e-2),
    "AdamW": lambda p: AdamW(p, lr=2e-2, weight_decay=1e-2),
    "RMSprop": lambda p: RMSprop(p, lr=5e-3, momentum=0.5),
}


def make_spirals(n: int, rng: np.random.Generator):
    """Two interleaved spirals: not linearly separable, so the hidden layer has to learn."""
    t = np.sqrt(rng.random(n)) * 2 * np.pi
    label = rng.integers(0, 2, n)
    r = t / (2 * np.pi)
    angle = t + np.pi * label
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1) + rng.normal(0, 0.02, (n, 2))
    return x.astype(np.float32), label.astype(np.float32)


def run(name: str, epochs: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    x, y = make_spirals(2048, rng)
    hidden = 64
    w1 = (rng.normal(0, 1, (2, hidden)) / np.sqrt(2)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    w2 = (rng.normal(0, 1, (hidden, 1)) / np.sqrt(hidden)).astype(np.float32)
    b2 = np.zeros(1, np.float32)
    params = [w1, b1, w2, b2]
    opt = OPTIMIZERS[name]([{"params": [w1, w2]}, {"params": [b1, b2], "weight_decay": 0.0}])
    batch = 64
    print(f"fastoptim demo: {name} on 2-D spirals, MLP 2-{hidden}-1, {len(x)} samples, batch {batch} "
          f"(kernels: {_core.cpu_capability()}, {_core.max_threads()} threads)")
    print(f"{'epoch':>5} {'loss':>9} {'accuracy':>9} {'lr':>10} {'time':>8}")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            xb, yb = x[idx], y[idx]
            h = np.tanh(xb @ w1 + b1)
            logit = (h @ w2 + b2)[:, 0]
            prob = 1 / (1 + np.exp(-logit))
            total += float(np.sum(np.logaddexp(0, logit) - yb * logit))
            dlogit = ((prob - yb) / len(idx))[:, None].astype(np.float32)
            dh = (dlogit @ w2.T) * (1 - h * h)
            grads = [xb.T @ dh, h.T @ dlogit, dh.sum(0), dlogit.sum(0)]  # group order: w1, w2 | b1, b2
            opt.step([np.ascontiguousarray(g, dtype=np.float32) for g in grads])
        lr = opt.param_groups[0]["lr"]
        h = np.tanh(x @ w1 + b1)
        acc = float(np.mean(((h @ w2 + b2)[:, 0] > 0) == (y > 0.5)))
        print(f"{epoch:>5} {total / len(x):>9.4f} {acc:>9.3f} {lr:>10.2e} {1e3 * (time.perf_counter() - start):>6.1f}ms")
        if epoch % 4 == 0:  # step decay, as StepLR(step_size=4, gamma=0.5) would do
            for group in opt.param_groups:
                group["lr"] *= 0.5
    assert all(np.all(np.isfinite(p)) for p in params)
    return 0
