"""Portable, safe checkpoints of an optimizer (and optionally its lr scheduler): ``fastoptim.save`` / ``fastoptim.load``.

File format (shared with the C++ ``fastoptim::save_checkpoint`` / ``load_checkpoint`` in
``cpp/include/fastoptim/checkpoint.hpp``) -- a safetensors file (https://huggingface.co/docs/safetensors):

* 8 bytes: N, the header length, unsigned 64-bit little-endian;
* N bytes: the header, a UTF-8 JSON object (padded with trailing spaces to a multiple of 8 bytes);
* the data section: raw little-endian tensor bytes, back to back.

Header entries: one per tensor, ``"<name>": {"dtype": "F32"|"F64"|..., "shape": [...], "data_offsets": [begin,
end]}`` (offsets relative to the data section; the regions tile it exactly, in order, without gaps or overlap),
and ``"__metadata__": {"fastoptim": "<JSON string>"}`` where the JSON string is::

    {"format": "fastoptim-checkpoint", "version": 1,
     "optimizer": {"class": "Adam", "param_groups": [... torch layout, incl. "params": [indices] ...],
                   "state_keys": {"<param index>": ["exp_avg", "exp_avg_sq", "step"], ...}},
     "scheduler": {"class": "StepLR", "children": [...] (composites only), "state": {...}} | null}

(this inner JSON may hold the tokens ``Infinity``, ``-Infinity`` and ``NaN``, as Python's json writes them:
ReduceLROnPlateau's ``best`` starts at infinity; MultiStepLR's milestones, a Counter, are a sorted list with
repeats). The C++ writer produces the same JSON (ints as ints, floats as floats), so a file resumes in either
language bit-identically. Tensors are named ``state.<param index>.<key>`` (e.g.
``state.0.exp_avg``) with the parameter's dtype and shape; ``step`` is an F32 scalar (shape ``[]``), as torch
keeps it, and other per-parameter scalars (ASGD's ``eta`` and ``mu``, NAdam's ``mu_product``) are F32 or F64
scalars. Low-precision storage (Python only) saves its buffers as they are: F16 or BF16 state (the
optimizer's ``state_dtype``), F32 ``master_param``, and with stochastic rounding an ``"rounding": {"seed": s,
"step": n}`` entry in ``"optimizer"`` so that the random bits resume where they were.

Version 2 (written only for a state that needs it: LBFGS, whose torch state holds lists and Python numbers)
adds two entries to ``"optimizer"``::

    "state_values": {"0": {"func_evals": 12, "n_iter": 10, "t": 0.5, "prev_loss": 0.25}},
    "state_lists": {"0": {"old_dirs": {"length": 3, "none": []}, "al": {"length": 100, "none": [3, ...]}}}

``state_values`` holds the Python numbers of a state (not tensors: a Python float and a 0-d tensor round
differently); element ``j`` of list ``key`` is the tensor ``state.<i>.<key>.<j>`` unless ``j`` is listed in
``none``. A key appears once per parameter across ``state_keys``, ``state_values`` and ``state_lists``; every
list element is checked (dtype, shape) like a state tensor, and a list's ``none`` must be increasing indices
below its ``length``. Readers of version 1 refuse version-2 files.

Saving is atomic (temporary file in the same directory, fsync, ``os.replace``, fsync of the directory), so
a crash leaves the previous checkpoint intact. Loading reads and checks everything -- sizes, offsets, dtypes,
shapes against the parameters, class names, the format version -- before anything is installed, and never
unpickles or evaluates anything; any problem raises ``ValueError("checkpoint <path>: <what>")`` and leaves the
optimizer and scheduler as they were.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["save", "load"]

FORMAT = "fastoptim-checkpoint"
VERSION = 1
VERSION_LISTS = 2  # adds "state_values" and "state_lists" (written only for a state that has them: LBFGS)
MAX_LIST = 1 << 32
MAX_HEADER = 100 * 1024 * 1024  # bytes
MAX_VALUES = 1 << 22  # JSON values in the header (checkpoint/json.hpp's kMaxValues)
MAX_DIMS = 64
MAX_TENSOR_BYTES = 1 << 50  # far above any real tensor; keeps every size arithmetic small

# safetensors dtype -> (itemsize, numpy dtype or None when we never load it)
_DTYPES: Dict[str, Tuple[int, Optional[str]]] = {
    "F64": (8, "<f8"), "F32": (4, "<f4"), "F16": (2, "<f2"), "BF16": (2, None), "F8_E4M3": (1, None),
    "F8_E5M2": (1, None), "I64": (8, "<i8"), "I32": (4, "<i4"), "I16": (2, "<i2"), "I8": (1, "i1"),
    "U64": (8, "<u8"), "U32": (4, "<u4"), "U16": (2, "<u2"), "U8": (1, "u1"), "BOOL": (1, None),
}
_NP_TO_ST = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16"}


def _st_dtype(dtype: np.dtype) -> Optional[str]:
    """The safetensors name of a dtype we save (bfloat16 is ml_dtypes', a numpy extension dtype)."""
    if dtype.kind == "V" and dtype.itemsize == 2 and dtype.name == "bfloat16":
        return "BF16"
    return _NP_TO_ST.get(dtype.newbyteorder("="))


def _np_dtype(st: str) -> np.dtype:
    if st == "BF16":
        from .optimizer import _bfloat16

        bf16 = _bfloat16()
        if bf16 is None:
            raise _Bad("holds bfloat16 tensors, which need the ml_dtypes package (pip install ml_dtypes)")
        return bf16
    return np.dtype(_DTYPES[st][1])


def _state_st_dtype(optimizer: Any, key: str, p: np.ndarray) -> Optional[str]:
    """The dtype a state buffer of p must have in a file: the optimizer's state dtype (float32 for master
    weights)."""
    if key == "master_param":
        return "F32"
    state_dtype = getattr(optimizer, "_state_dtype_of", None)
    return _st_dtype(state_dtype(p) if state_dtype is not None else p.dtype)


# ----------------------------------------------------------------------------------------------------- save


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON types (tuples become lists); anything else raises ValueError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
        return _jsonable(value.item(), where)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, collections.Counter):  # MultiStepLR's milestones: a sorted list with repeats
        return _jsonable(sorted(value.elements()), where)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"cannot save {where}: key {k!r} is not a string")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    raise ValueError(
        f"cannot save {where}: {type(value).__name__} is not JSON-serializable "
        "(checkpoints hold only numbers, strings, bools, None, lists and dicts; a scheduler holding a "
        "callable, such as LambdaLR, cannot be saved)"
    )


def _sched_desc(scheduler: Any) -> Dict[str, Any]:
    desc: Dict[str, Any] = {"class": type(scheduler).__name__}
    children = getattr(scheduler, "_schedulers", None)
    if isinstance(children, (list, tuple)):
        desc["children"] = [_sched_desc(c) for c in children]
    return desc


def _build(optimizer: Any, scheduler: Any) -> bytes:
    sd = optimizer.state_dict()
    groups = _jsonable(sd["param_groups"], "optimizer param_groups")
    tensors: List[Tuple[str, np.ndarray]] = []
    state_keys: Dict[str, List[str]] = {}
    state_values: Dict[str, Dict[str, Any]] = {}
    state_lists: Dict[str, Dict[str, Dict[str, Any]]] = {}

    def tensor(name: str, value: Any, what: str) -> None:
        arr = np.asarray(value)
        if _st_dtype(arr.dtype) is None:
            raise ValueError(f"cannot save {what}: dtype {arr.dtype}")
        if arr.dtype.kind != "V":  # bfloat16 has no byte order of its own (little-endian machines only)
            arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        tensors.append((name, np.array(arr, order="C", copy=True)))

    for index, entry in sorted(sd["state"].items()):
        keys = []
        where = str(int(index))
        for key in sorted(entry):
            value = entry[key]
            if value is None:
                continue
            if "." in key:
                raise ValueError(f"cannot save state key {key!r}: keys may not contain '.'")
            what = f"state '{key}' of parameter {index}"
            if key == "step":
                keys.append(key)
                tensors.append((f"state.{where}.{key}", np.asarray(value, dtype=np.float32).reshape(())))
            elif isinstance(value, (list, tuple)):  # LBFGS's history: tensors "state.<i>.<key>.<j>"
                none = []
                for j, item in enumerate(value):
                    if item is None:
                        none.append(j)
                    else:
                        tensor(f"state.{where}.{key}.{j}", item, f"{what}[{j}]")
                state_lists.setdefault(where, {})[key] = {"length": len(value), "none": none}
            elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
                state_values.setdefault(where, {})[key] = _jsonable(value, what)  # a Python number, not a tensor
            else:
                keys.append(key)
                tensor(f"state.{where}.{key}", value, what)
        state_keys[where] = keys
    optimizer_entry: Dict[str, Any] = {"class": type(optimizer).__name__, "param_groups": groups,
                                       "state_keys": state_keys}
    if state_values or state_lists:
        optimizer_entry.update(state_values=state_values, state_lists=state_lists)
    if "rounding" in sd:  # stochastic rounding: where its random bits resume
        optimizer_entry["rounding"] = _jsonable(sd["rounding"], "optimizer rounding")
    sched = None
    if scheduler is not None:
        sched = _sched_desc(scheduler)
        sched["state"] = _jsonable(scheduler.state_dict(), "scheduler state")
    meta = {
        "format": FORMAT, "version": VERSION_LISTS if (state_values or state_lists) else VERSION,
        "optimizer": optimizer_entry,
        "scheduler": sched,
    }
    header: Dict[str, Any] = {"__metadata__": {"fastoptim": json.dumps(meta, separators=(",", ":"))}}
    offset = 0
    for name, arr in tensors:
        header[name] = {"dtype": _st_dtype(arr.dtype), "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    head += b" " * (-len(head) % 8)
    return b"".join([len(head).to_bytes(8, "little"), head] + [arr.tobytes() for _, arr in tensors])


def save(path: "os.PathLike[str] | str", optimizer: Any, scheduler: Any = None) -> None:
    """Writes ``optimizer``'s state (and ``scheduler``'s) to ``path`` atomically (see the module docstring)."""
    blob = _build(optimizer, scheduler)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        try:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)


# ----------------------------------------------------------------------------------------------------- load


class _Bad(Exception):
    pass


def _no_dupes(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Bad(f"duplicate key {k!r} in JSON")
        out[k] = v
    return out


def _parse_json(text: str, what: str, allow_nan: bool) -> Any:
    def no_constant(name: str) -> Any:
        raise _Bad(f"{what} holds {name}, which is not JSON")

    # A parsed value costs tens of bytes: a 100 MB header of tiny values would take gigabytes. Every value
    # after a container's first follows a comma, so this bounds them as the C++ reader does (kMaxValues).
    if text.count(",") >= MAX_VALUES:
        raise _Bad(f"{what} holds more than {MAX_VALUES} values")
    try:
        if allow_nan:
            return json.loads(text, object_pairs_hook=_no_dupes)
        return json.loads(text, object_pairs_hook=_no_dupes, parse_constant=no_constant)
    except _Bad:
        raise
    except (ValueError, RecursionError) as e:
        raise _Bad(f"{what} is not valid JSON ({e})") from None


def _int(value: Any, what: str, lo: int = 0, hi: int = MAX_TENSOR_BYTES) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _Bad(f"{what} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _read_file(path: str) -> Tuple[Dict[str, Any], bytes]:
    """The validated header and the data section."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise _Bad(f"file is {size} bytes, shorter than the 8-byte header length")
            n = int.from_bytes(f.read(8), "little")
            if n == 0:
                raise _Bad("header length is 0")
            if n > MAX_HEADER:
                raise _Bad(f"header length {n} exceeds the {MAX_HEADER}-byte limit")
            if n > size - 8:
                raise _Bad(f"header length {n} runs past the end of the {size}-byte file")
            head = f.read(n)
            data = f.read(size - 8 - n)
            if len(head) != n or len(data) != size - 8 - n or f.read(1):
                raise _Bad("file changed size while being read")
    except OSError as e:
        raise ValueError(f"checkpoint {path}: cannot read ({e})") from None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Bad(f"header is not UTF-8 ({e})") from None
    header = _parse_json(text, "header", allow_nan=False)
    if not isinstance(header, dict):
        raise _Bad("header is not a JSON object")
    return header, data


def _tensors(header: Dict[str, Any], data: bytes) -> Dict[str, Tuple[str, Tuple[int, ...], int, int]]:
    """name -> (dtype, shape, begin, end), all checked against the data section."""
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise _Bad(f"tensor {name!r} must have exactly 'dtype', 'shape' and 'data_offsets'")
        dtype = entry["dtype"]
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise _Bad(f"tensor {name!r} has unknown dtype {dtype!r}")
        shape = entry["shape"]
        if not isinstance(shape, list) or len(shape) > MAX_DIMS:
            raise _Bad(f"tensor {name!r} has an invalid shape {shape!r}")
        count = 1
        for d in shape:
            _int(d, f"tensor {name!r} shape entry")
            count *= d
            if count > MAX_TENSOR_BYTES:
                raise _Bad(f"tensor {name!r} is too large (shape {shape})")
        offsets = entry["data_offsets"]
        if not isinstance(offsets, list) or len(offsets) != 2:
            raise _Bad(f"tensor {name!r} data_offsets must be [begin, end]")
        begin = _int(offsets[0], f"tensor {name!r} data_offsets begin", hi=len(data))
        end = _int(offsets[1], f"tensor {name!r} data_offsets end", hi=len(data))
        if end < begin:
            raise _Bad(f"tensor {name!r} data_offsets {offsets} are reversed")
        if end - begin != count * _DTYPES[dtype][0]:
            raise _Bad(f"tensor {name!r} holds {end - begin} bytes, but {dtype} {shape} needs "
                       f"{count * _DTYPES[dtype][0]}")
        out[name] = (dtype, tuple(shape), begin, end)
    # The regions must tile the data section exactly, as safetensors requires.
    position = 0
    for name, (_, _, begin, end) in sorted(out.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != position:
            raise _Bad(f"tensor {name!r} starts at {begin}, expected {position} (gap or overlap)")
        position = end
    if position != len(data):
        raise _Bad(f"tensors cover {position} bytes of a {len(data)}-byte data section")
    return out


def _array(data: bytes, entry: Tuple[str, Tuple[int, ...], int, int]) -> np.ndarray:
    dtype, shape, begin, end = entry
    arr = np.frombuffer(data, dtype=_np_dtype(dtype), count=(end - begin) // _DTYPES[dtype][0], offset=begin)
    if arr.dtype.kind == "V":
        return arr.reshape(shape).copy()
    return arr.reshape(shape).astype(arr.dtype.newbyteorder("="), copy=True)


def _meta(header: Dict[str, Any]) -> Dict[str, Any]:
    md = header.get("__metadata__")
    if not isinstance(md, dict) or not all(isinstance(v, str) for v in md.values()):
        raise _Bad("missing __metadata__ (an object of strings)")
    if "fastoptim" not in md:
        raise _Bad("no 'fastoptim' entry in __metadata__ (not a fastoptim checkpoint)")
    meta = _parse_json(md["fastoptim"], "metadata 'fastoptim'", allow_nan=True)
    if not isinstance(meta, dict):
        raise _Bad("metadata 'fastoptim' is not a JSON object")
    if meta.get("format") != FORMAT:
        raise _Bad(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    if type(meta.get("version")) is not int or meta["version"] not in (VERSION, VERSION_LISTS):
        raise _Bad(f"unsupported version {meta.get('version')!r} "
                   f"(this fastoptim reads versions {VERSION} and {VERSION_LISTS})")
    return meta


def _check_sched_desc(desc: Any, scheduler: Any, where: str) -> None:
    if not isinstance(desc, dict) or not isinstance(desc.get("class"), str):
        raise _Bad(f"{where} entry is malformed")
    if desc["class"] != type(scheduler).__name__:
        raise _Bad(f"{where} is a {desc['class']}, but a {type(scheduler).__name__} was given")
    children = getattr(scheduler, "_schedulers", None)
    if isinstance(children, (list, tuple)):
        saved = desc.get("children")
        if not isinstance(saved, list) or len(saved) != len(children):
            raise _Bad(f"{where} does not have the given {type(scheduler).__name__}'s {len(children)} schedulers")
        for i, (d, c) in enumerate(zip(saved, children)):
            _check_sched_desc(d, c, f"{where} child {i}")


def _prepare(path: str, optimizer: Any, scheduler: Any) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
    header, data = _read_file(path)
    tensors = _tensors(header, data)
    meta = _meta(header)
    opt = meta.get("optimizer")
    if not isinstance(opt, dict):
        raise _Bad("no 'optimizer' entry")
    if opt.get("class") != type(optimizer).__name__:
        raise _Bad(f"holds a {opt.get('class')!r} optimizer, but a {type(optimizer).__name__} was given")
    groups, state_keys = opt.get("param_groups"), opt.get("state_keys")
    if not isinstance(groups, list) or not isinstance(state_keys, dict):
        raise _Bad("optimizer entry needs 'param_groups' (a list) and 'state_keys' (an object)")
    if len(groups) != len(optimizer.param_groups):
        raise _Bad(f"has {len(groups)} parameter groups, the optimizer has {len(optimizer.param_groups)}")
    id_map: Dict[int, np.ndarray] = {}
    for gi, (saved, group) in enumerate(zip(groups, optimizer.param_groups)):
        ids = saved.get("params") if isinstance(saved, dict) else None
        if not isinstance(ids, list):
            raise _Bad(f"parameter group {gi} has no 'params' list")
        if len(ids) != len(group["params"]):
            raise _Bad(f"parameter group {gi} has {len(ids)} parameters, the optimizer's has {len(group['params'])}")
        for key, value in saved.items():  # JSON turns tuples (betas, Adafactor's eps) into lists
            if isinstance(value, list) and isinstance(group.get(key), tuple):
                saved[key] = tuple(value)
        for saved_id, p in zip(ids, group["params"]):
            _int(saved_id, f"parameter group {gi} parameter id", hi=1 << 62)
            if saved_id in id_map:
                raise _Bad(f"parameter id {saved_id} appears twice")
            id_map[saved_id] = p
    state: Dict[int, Dict[str, Any]] = {}
    scalar_keys = getattr(optimizer, "_scalar_state_keys", ())
    expected = set()
    for key, keys in state_keys.items():
        if not (isinstance(key, str) and key.isdigit() and key.isascii() and len(key) < 20):
            raise _Bad(f"state_keys has a non-index key {key!r}")
        index = int(key)
        if index not in id_map:
            raise _Bad(f"state of parameter {index}, which no parameter group holds")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
            raise _Bad(f"state_keys of parameter {index} must be a list of distinct strings")
        p = id_map[index]
        entry: Dict[str, Any] = {}
        for k in keys:
            name = f"state.{index}.{k}"
            if name not in tensors:
                raise _Bad(f"tensor {name!r} is missing")
            expected.add(name)
            dtype, shape, _, _ = tensors[name]
            if k == "step":
                if dtype != "F32" or shape != ():
                    raise _Bad(f"tensor {name!r} must be an F32 scalar, got {dtype} {list(shape)}")
                step = _array(data, tensors[name])
                if not (np.isfinite(step) and step >= 0):
                    raise _Bad(f"tensor {name!r} is not a finite count >= 0 ({step})")
                entry[k] = step
            elif k in scalar_keys:
                # A per-parameter scalar with its own float dtype (NAdam's mu_product).
                if dtype not in ("F32", "F64") or shape != ():
                    raise _Bad(f"tensor {name!r} must be an F32 or F64 scalar, got {dtype} {list(shape)}")
                entry[k] = _array(data, tensors[name])
            else:
                want = _state_st_dtype(optimizer, k, p)
                if dtype != want:
                    what = "the parameter is" if want == _st_dtype(p.dtype) else "the optimizer's state dtype is"
                    raise _Bad(f"tensor {name!r} has dtype {dtype}, {what} {want}")
                want = optimizer._state_shape(k, p)  # the parameter's, or e.g. Adafactor's factored shapes
                if want is None or shape != tuple(want):
                    raise _Bad(f"tensor {name!r} has shape {list(shape)}, the parameter has {list(p.shape)}"
                               + ("" if want is None or tuple(want) == p.shape else f" (expected {list(want)})"))
                entry[k] = _array(data, tensors[name])
        state[index] = entry
    # Version 2: Python numbers and lists of the state.
    values, lists = opt.get("state_values"), opt.get("state_lists")
    if (values is not None or lists is not None) and meta["version"] < VERSION_LISTS:
        raise _Bad(f"state_values and state_lists need version {VERSION_LISTS}")

    def entry_of(key: Any, what: str) -> Tuple[int, Dict[str, Any], Any]:
        if not (isinstance(key, str) and key.isdigit() and key.isascii() and len(key) < 20):
            raise _Bad(f"{what} has a non-index key {key!r}")
        if int(key) not in state:
            raise _Bad(f"{what} of parameter {key} is not in state_keys")
        return int(key), state[int(key)], id_map[int(key)]

    def new_key(entry: Dict[str, Any], k: Any, index: int) -> None:
        if not isinstance(k, str) or not k or "." in k:
            raise _Bad(f"state key {k!r} of parameter {index} is invalid")
        if k in entry:
            raise _Bad(f"state {k!r} of parameter {index} appears twice")

    if values is not None:
        if not isinstance(values, dict):
            raise _Bad("state_values is not an object")
        for key, obj in values.items():
            index, entry, _ = entry_of(key, "state_values")
            if not isinstance(obj, dict):
                raise _Bad(f"state_values of parameter {index} is not an object")
            for k, v in obj.items():
                new_key(entry, k, index)
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise _Bad(f"state value {k!r} of parameter {index} must be a number, got {v!r}")
                entry[k] = v
    if lists is not None:
        if not isinstance(lists, dict):
            raise _Bad("state_lists is not an object")
        for key, obj in lists.items():
            index, entry, p = entry_of(key, "state_lists")
            if not isinstance(obj, dict):
                raise _Bad(f"state_lists of parameter {index} is not an object")
            for k, desc in obj.items():
                new_key(entry, k, index)
                where = f"state list {k!r} of parameter {index}"
                if not isinstance(desc, dict) or set(desc) != {"length", "none"}:
                    raise _Bad(f"{where} must be {{'length': n, 'none': [indices]}}")
                length = _int(desc["length"], f"{where} length", hi=MAX_LIST)
                none = desc["none"]
                if (not isinstance(none, list) or len(none) > length
                        or any(type(j) is not int for j in none)
                        or any(not 0 <= j < length for j in none) or none != sorted(set(none))):
                    raise _Bad(f"{where}: 'none' must list increasing indices below its length {length}")
                if length - len(none) > len(tensors):  # each other element is a tensor: allocate nothing first
                    raise _Bad(f"{where} has length {length}, more elements than the file has tensors")
                items: List[Any] = [None] * length
                absent = set(none)
                want_dtype = _st_dtype(p.dtype)
                want = optimizer._state_shape(k, p)
                for j in range(length):
                    if j in absent:
                        continue
                    name = f"state.{index}.{k}.{j}"
                    if name not in tensors:
                        raise _Bad(f"tensor {name!r} is missing")
                    expected.add(name)
                    dtype, shape, _, _ = tensors[name]
                    if dtype != want_dtype:
                        raise _Bad(f"tensor {name!r} has dtype {dtype}, the parameter is {want_dtype}")
                    if want is None or shape != tuple(want):
                        raise _Bad(f"tensor {name!r} has shape {list(shape)}"
                                   + ("" if want is None else f", expected {list(want)}"))
                    items[j] = _array(data, tensors[name])
                entry[k] = items
    extra = sorted(set(tensors) - expected)
    if extra:
        raise _Bad(f"unexpected tensor {extra[0]!r}")
    sd = {"state": state, "param_groups": groups}
    rounding = opt.get("rounding")
    if rounding is not None:
        if (not isinstance(rounding, dict) or set(rounding) != {"seed", "step"}
                or any(type(v) is not int for v in rounding.values())
                or not 0 <= rounding["seed"] < 2**64 or not 0 <= rounding["step"] < 2**63):
            raise _Bad("optimizer 'rounding' must be {'seed': s, 'step': n}, integers with 0 <= s < 2**64, "
                       "0 <= n < 2**63")
        sd["rounding"] = rounding
    sched = meta.get("scheduler")
    if scheduler is not None:
        if sched is None:
            raise _Bad("holds no scheduler state, but a scheduler was given")
        _check_sched_desc(sched, scheduler, "scheduler")
        if not isinstance(sched.get("state"), dict):
            raise _Bad("scheduler entry has no 'state' object")
        return sd, sched["state"]
    if sched is not None and not isinstance(sched, dict):
        raise _Bad("scheduler entry is malformed")
    return sd, None


def load(path: "os.PathLike[str] | str", optimizer: Any, scheduler: Any = None) -> None:
    """Loads a checkpoint written by :func:`save` (or by C++ ``fastoptim::save_checkpoint``) into ``optimizer``
    (and ``scheduler``; a file's scheduler state is ignored when none is given). Raises ValueError, changing
    nothing, if the file is malformed or does not fit the given objects."""
    path = os.fspath(path)
    try:
        sd, sched_state = _prepare(path, optimizer, scheduler)
    except _Bad as e:
        raise ValueError(f"checkpoint {path}: {e}") from None
    # load_state_dict replaces what it changes (groups, state, LBFGS's C++ state, the stochastic rounding
    # counter) with new objects, so the old attributes are the way back if the scheduler's part fails. (Not
    # vars(optimizer): reading __dict__ turns the instance's attributes into a plain dict, slower to read.)
    replaced = getattr(optimizer, "_load_replaces", ("param_groups", "state"))
    old_attrs = {name: getattr(optimizer, name) for name in replaced}
    old_sched = scheduler.state_dict() if scheduler is not None else None
    try:
        optimizer.load_state_dict(sd)
        # load_state_dict casts 0-d state (NAdam's mu_product, ASGD's eta and mu) to the parameter's dtype,
        # as torch's does; a checkpoint resumes bit for bit, so each keeps the dtype it was saved with
        for index, entry in sd["state"].items():
            for key in getattr(optimizer, "_scalar_state_keys", ()):
                if key in entry:
                    optimizer.state[int(index)][key] = np.array(entry[key], copy=True)
        if scheduler is not None:
            scheduler.load_state_dict(sched_state)
    except Exception as e:
        for name, value in old_attrs.items():
            setattr(optimizer, name, value)
        if scheduler is not None:
            scheduler.load_state_dict(old_sched)
        raise ValueError(f"checkpoint {path}: does not fit the given objects ({type(e).__name__}: {e})") from None

