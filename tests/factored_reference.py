"""torch's own Adafactor and SparseAdam with two of its roundings replaced by fastoptim's, so that every other
rounding can be checked bit for bit (tests/test_factored.py, cpp/tests/make_golden_opt_factored.py):

* ``fastoptim_reductions()``: torch.norm / Tensor.norm / Tensor.mean, as torch's Adafactor calls them,
  summed in fastoptim's documented order (cpp/include/fastoptim/adafactor/adafactor_kernel.hpp): squares
  summed in double in blocks / tiles with 8 interleaved partial sums, the sum rounded to the dtype once;
* ``correctly_rounded_sqrt()``: torch's elementwise sqrt (MKL, not correctly rounded) by numpy's.

Written from the header's description, in plain Python floats (float64 squares fused into the sum
exactly, with fractions), so it checks the C++ against the documented order, not against itself.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import List, Sequence

import numpy as np

BLOCK = 1 << 14  # kAdafactorBlock


def tiling(rows: int, cols: int):
    """AdafactorTiling: (tile_rows, tile_cols)."""
    min_rows = 64 if cols >= 256 else max(64, BLOCK // max(cols, 1))
    tile_rows = max(1, min(rows, min_rows))
    tile_cols = max(1, min(cols, max(256, BLOCK // tile_rows)))
    return tile_rows, tile_cols


def _add_square(acc: float, x, exact_square: bool) -> float:
    if exact_square:  # a float32 square is exact in double
        return acc + float(x) * float(x)
    return float(Fraction(float(x)) ** 2 + Fraction(acc))  # fma(x, x, acc), one rounding


def _combine(s):
    return ((s[..., 0] + s[..., 1]) + (s[..., 2] + s[..., 3])) + ((s[..., 4] + s[..., 5]) + (s[..., 6] + s[..., 7]))


def lane_sums(x: np.ndarray, square: bool) -> np.ndarray:
    """Sums over the last axis: element k into partial sum k mod 8, combined ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)).
    float32 values (and plain sums) vectorized: their terms are exact in double and np.add.accumulate adds in
    order. float64 squares are fused into the sum (fma), one element at a time."""
    if x.dtype == np.float64 and square:
        out = np.zeros(x.shape[:-1])
        for idx in np.ndindex(*x.shape[:-1]):
            lanes = [0.0] * 8
            for k, v in enumerate(x[idx]):
                lanes[k % 8] = _add_square(lanes[k % 8], v, False)
            out[idx] = _combine(np.array(lanes))
        return out
    terms = x.astype(np.float64)
    if square:
        terms = terms * terms
    n = terms.shape[-1]
    padded = np.zeros(terms.shape[:-1] + (-(-n // 8) * 8,))  # adding zeros changes no partial sum
    padded[..., :n] = terms
    lanes = padded.reshape(terms.shape[:-1] + (-1, 8))
    partial = np.add.accumulate(lanes, axis=-2)[..., -1, :] if n else np.zeros(terms.shape[:-1] + (8,))
    return _combine(partial)


def sum_in_order(parts) -> float:
    total = 0.0
    for p in parts:
        total += p
    return total


def total_sum_squares(x: np.ndarray) -> float:
    """A whole tensor's sum of squares (||p||^2, ||U||^2) in fastoptim's order."""
    if x.ndim < 2:
        flat = x.reshape(-1)
        return sum_in_order(lane_sums(flat[b:b + BLOCK], True) for b in range(0, flat.size, BLOCK))
    rows, cols = x.shape[-2:]
    tr, tc = tiling(rows, cols)
    total = 0.0
    for m in x.reshape(-1, rows, cols):
        for i0 in range(0, rows, tr):
            for j0 in range(0, cols, tc):
                total += sum_in_order(lane_sums(m[i0:i0 + tr, j0:j0 + tc], True))  # its row segments in order
    return total


def row_sums(x: np.ndarray) -> np.ndarray:
    """Sum of squares over the last dimension: tiles of columns left to right, each with 8 lanes."""
    cols = x.shape[-1]
    tc = tiling(x.shape[-2], cols)[1]
    out = np.zeros(x.shape[:-1])
    for j0 in range(0, cols, tc):
        out = out + lane_sums(x[..., j0:j0 + tc], True)
    return out


def col_sums(x: np.ndarray) -> np.ndarray:
    """Sum of squares over the second last dimension: tiles of rows top to bottom, rows in order within."""
    rows = x.shape[-2]
    tr = tiling(rows, x.shape[-1])[0]
    out = np.zeros(x.shape[:-2] + (x.shape[-1],))
    for i0 in range(0, rows, tr):
        tile = x[..., i0:i0 + tr, :]
        if x.dtype == np.float32:
            part = np.add.accumulate(tile.astype(np.float64) ** 2, axis=-2)[..., -1, :]
        else:
            part = np.zeros(out.shape)
            for idx in np.ndindex(*out.shape):
                acc = 0.0
                for v in tile[idx[:-1] + (slice(None), idx[-1])]:
                    acc = _add_square(acc, v, False)
                part[idx] = acc
        out = out + part
    return out


@contextlib.contextmanager
def fastoptim_reductions():
    """Replaces the reductions torch's Adafactor makes by fastoptim's; yields the list of calls made."""
    import torch

    calls: List[str] = []
    saved = torch.norm, torch.Tensor.norm, torch.Tensor.mean

    # Each returns sqrt of the double sum rounded to the dtype, in the dtype, as the kernel does.
    def norm(x, p="fro", dim=None, keepdim=False, **kw):
        assert not kw and p in (2, "fro"), (p, kw)
        a = x.detach().numpy()
        if dim is None:
            calls.append("total")
            return torch.from_numpy(np.asarray(np.sqrt(np.asarray(total_sum_squares(a), dtype=a.dtype))))
        assert keepdim and dim in (-1, -2) and a.ndim >= 2
        calls.append("rows" if dim == -1 else "cols")
        sums = row_sums(a) if dim == -1 else col_sums(a)
        out = np.sqrt(sums.astype(a.dtype))
        return torch.from_numpy(np.expand_dims(out, dim))

    def mean(x, dim=None, keepdim=False, **kw):
        assert not kw and dim == -2 and keepdim and x.shape[-1] == 1
        calls.append("mean")
        a = x.detach().numpy()[..., 0]  # (..., R)
        out = lane_sums(a, square=False).astype(a.dtype) / a.dtype.type(a.shape[-1])
        return torch.from_numpy(out[..., None, None])

    torch.norm, torch.Tensor.norm, torch.Tensor.mean = norm, norm, mean
    try:
        yield calls
    finally:
        torch.norm, torch.Tensor.norm, torch.Tensor.mean = saved


@contextlib.contextmanager
def correctly_rounded_sqrt():
    """Replaces torch's elementwise sqrt (Tensor.sqrt, Tensor.sqrt_, torch.sqrt) by numpy's, which is
    correctly rounded, 0-d tensors included; yields the list of calls (one entry each). torch's x86 builds
    take sqrt from MKL's VML, which is not (about 17% of float32 and 1% of float64 results are one ulp off)."""
    import torch

    calls: List[int] = []
    saved = torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.sqrt

    def sqrt(x):
        assert x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
        calls.append(1)
        return torch.from_numpy(np.asarray(np.sqrt(x.detach().numpy())))

    def sqrt_(x):
        return x.copy_(sqrt(x))

    torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.sqrt = sqrt, sqrt_, sqrt
    try:
        yield calls
    finally:
        torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.sqrt = saved



@contextlib.contextmanager
def reordered_reductions(seed: int):
    """torch's Adafactor with its norms and means summed in other orders: squares and sums rounded in the
    dtype as torch's accumulators do, the elements added one by one in a random order (a hash of ``seed``
    and the call number). torch's own summation order is not fixed (it depends on its vector width and thread
    count) and its foreach path shares the single-tensor reductions, so runs like these measure the spread
    that a different order -- fastoptim's among them -- causes (tests/parity.py torch_spread)."""
    import torch

    saved = torch.norm, torch.Tensor.norm, torch.Tensor.mean
    calls = [0]

    def ordered_sum(a: np.ndarray, axis: int) -> np.ndarray:
        calls[0] += 1
        order = np.random.default_rng((seed, calls[0])).permutation(a.shape[axis])
        return np.cumsum(np.take(a, order, axis=axis), axis=axis, dtype=a.dtype).take(-1, axis=axis)

    def norm(x, p="fro", dim=None, keepdim=False, **kw):
        assert not kw and p in (2, "fro"), (p, kw)
        a = x.detach().numpy()
        if dim is None:
            return torch.from_numpy(np.asarray(np.sqrt(ordered_sum((a * a).reshape(-1), 0))))
        out = np.sqrt(ordered_sum(a * a, dim))
        return torch.from_numpy(np.expand_dims(out, dim) if keepdim else out)

    def mean(x, dim=None, keepdim=False, **kw):
        assert not kw and dim is not None
        a = x.detach().numpy()
        out = ordered_sum(a, dim) / a.dtype.type(a.shape[dim])
        return torch.from_numpy(np.asarray(np.expand_dims(out, dim) if keepdim else out))

    torch.norm, torch.Tensor.norm, torch.Tensor.mean = norm, norm, mean
    try:
        yield calls
    finally:
        torch.norm, torch.Tensor.norm, torch.Tensor.mean = saved
