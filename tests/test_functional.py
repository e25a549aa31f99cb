"""fastoptim.functional: the same bits as the optimizer classes, and the same validation."""

import numpy as np
import pytest

import fastoptim
from fastoptim import functional as F


def trajectory(rng, n=37, steps=20):
    return [rng.standard_normal(n) for _ in range(steps)]


@pytest.mark.parametrize("kw", [dict(), dict(amsgrad=True, weight_decay=0.1), dict(maximize=True, weight_decay=0.1,
                                                                                    decoupled_weight_decay=True)])
def test_adam_matches_class(kw):
    rng = np.random.default_rng(0)
    grads = trajectory(rng)
    p1, p2 = np.ones(37), np.ones(37)
    opt = fastoptim.Adam([p1], lr=0.01, **kw)
    m, v, vmax = np.zeros(37), np.zeros(37), np.zeros(37)
    for t, g in enumerate(grads, 1):
        opt.step([g])
        F.adam_(p2, g, m, v, t, lr=0.01, max_exp_avg_sq=vmax if kw.get("amsgrad") else None, **kw)
    assert np.array_equal(p1, p2) and np.array_equal(opt.state[0]["exp_avg"], m)


def test_adamw_sgd_rmsprop_match_classes():
    rng = np.random.default_rng(1)
    grads = trajectory(rng)
    pa, pb = np.ones(37, np.float32), np.ones(37, np.float32)
    ps, pt = np.ones(37), np.ones(37)
    pr, pq = np.ones(37), np.ones(37)
    adamw = fastoptim.AdamW([pa], lr=0.01)
    sgd = fastoptim.SGD([ps], lr=0.1, momentum=0.9, nesterov=True)
    rms = fastoptim.RMSprop([pr], lr=0.01, centered=True, momentum=0.5)
    m, v = np.zeros(37, np.float32), np.zeros(37, np.float32)
    buf = np.zeros(37)
    sq, ga, mb = np.zeros(37), np.zeros(37), np.zeros(37)
    for t, g in enumerate(grads, 1):
        g32 = g.astype(np.float32)
        adamw.step([g32])
        F.adamw_(pb, g32, m, v, t, lr=0.01)
        sgd.step([g])
        F.sgd_(pt, g, buf, lr=0.1, momentum=0.9, nesterov=True, first_step=(t == 1))
        rms.step([g])
        F.rmsprop_(pq, g, sq, lr=0.01, centered=True, momentum=0.5, grad_avg=ga, momentum_buffer=mb)
    assert np.array_equal(pa, pb) and np.array_equal(ps, pt) and np.array_equal(pr, pq)


def test_validation_before_any_write():
    p, m, v = np.ones(3), np.zeros(3), np.zeros(3)
    with pytest.raises(TypeError, match="gradient of parameter 0 has dtype float32"):
        F.adam_(p, np.ones(3, np.float32), m, v, 1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        F.adam_(p, np.ones(3), m, v, 1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="overlap"):
        F.adam_(p, np.ones(3), p, v, 1)
    with pytest.raises(ValueError, match="step must be a positive integer"):
        F.adam_(p, np.ones(3), m, v, 0)
    with pytest.raises(ValueError, match="needs a momentum_buffer"):
        F.sgd_(p, np.ones(3), momentum=0.9)
    assert np.all(p == 1) and np.all(m == 0) and np.all(v == 0)
