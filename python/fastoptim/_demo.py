"""The demo: a two-layer MLP, gradients by hand in numpy, trained with a fastoptim optimizer stepping per
batch and ReduceLROnPlateau per epoch on the validation loss, as the seed describes.

The table shows, per epoch: train loss, validation loss and accuracy, the learning rate after the
scheduler's step, and what the scheduler did (improved / no improvement k of patience / LR reduced).
"""

from __future__ import annotations

import time

import numpy as np

from . import SGD, Adam, AdamW, RMSprop, _core
from .lr_scheduler import ReduceLROnPlateau

OPTIMIZERS = {
    "SGD": lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "Adam": lambda p: Adam(p, lr=2e-2),
    "AdamW": lambda p: AdamW(p, lr=2e-2, weight_decay=1e-2),
    "RMSprop": lambda p: RMSprop(p, lr=5e-3, momentum=0.5),
}


def make_spirals(n: int, rng: np.random.Generator):
    """Two interleaved spirals (not linearly separable, so the hidden layer has to learn), 5% labels flipped."""
    t = np.sqrt(rng.random(n)) * 2 * np.pi
    label = rng.integers(0, 2, n)
    r = t / (2 * np.pi)
    angle = t + np.pi * label
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1) + rng.normal(0, 0.02, (n, 2))
    flip = rng.random(n) < 0.05  # label noise: the validation loss has a floor, so it plateaus
    label = np.where(flip, 1 - label, label)
    return x.astype(np.float32), label.astype(np.float32)


def forward(params, x):
    w1, w2, b1, b2 = params
    h = np.tanh(x @ w1 + b1)
    return h, (h @ w2 + b2)[:, 0]


def loss_and_accuracy(params, x, y):
    _, logit = forward(params, x)
    loss = float(np.mean(np.logaddexp(0, logit) - y * logit))
    return loss, float(np.mean((logit > 0) == (y > 0.5)))


def run(name: str, epochs: int, seed: int, patience: int = 2) -> int:
    rng = np.random.default_rng(seed)
    x, y = make_spirals(2560, rng)
    x_train, y_train, x_val, y_val = x[:2048], y[:2048], x[2048:], y[2048:]
    hidden = 64
    w1 = (rng.normal(0, 1, (2, hidden)) / np.sqrt(2)).astype(np.float32)
    w2 = (rng.normal(0, 1, (hidden, 1)) / np.sqrt(hidden)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32)
    b2 = np.zeros(1, np.float32)
    params = [w1, w2, b1, b2]  # param-group order: weights, then biases (no weight decay)
    opt = OPTIMIZERS[name]([{"params": [w1, w2]}, {"params": [b1, b2], "weight_decay": 0.0}])
    sched = ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=patience, threshold=0.01)
    batch = 64
    print(f"fastoptim demo: {name} + ReduceLROnPlateau(patience={patience}, factor=0.5) on 2-D spirals, "
          f"MLP 2-{hidden}-1, {len(x_train)} train / {len(x_val)} val, batch {batch} "
          f"(kernels: {_core.cpu_capability()}, {_core.max_threads()} threads)")
    print(f"{'epoch':>5} {'train':>8} {'val':>8} {'val acc':>8} {'lr':>10} {'time':>8}  scheduler")
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(x_train), batch):
            idx = order[i : i + batch]
            xb, yb = x_train[idx], y_train[idx]
            h, logit = forward(params, xb)
            prob = 1 / (1 + np.exp(-logit))
            total += float(np.sum(np.logaddexp(0, logit) - yb * logit))
            dlogit = ((prob - yb) / len(idx))[:, None].astype(np.float32)
            dh = (dlogit @ w2.T) * (1 - h * h)
            grads = [xb.T @ dh, h.T @ dlogit, dh.sum(0), dlogit.sum(0)]
            opt.step([np.ascontiguousarray(g, dtype=np.float32) for g in grads])
        elapsed = time.perf_counter() - start
        val_loss, val_acc = loss_and_accuracy(params, x_val, y_val)
        sched.step(val_loss)
        lr = opt.param_groups[0]["lr"]
        print(f"{epoch:>5} {total / len(x_train):>8.4f} {val_loss:>8.4f} {val_acc:>8.3f} {lr:>10.2e} "
              f"{1e3 * elapsed:>6.1f}ms  {sched.last_event}")
    assert all(np.all(np.isfinite(p)) for p in params)
    return 0
