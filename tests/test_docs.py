"""docs/generate.py renders a page for every optimizer and scheduler and an LR curve for every scheduler,
and the committed docs/ cover every public class (regenerate with `python docs/generate.py`)."""

import importlib.util
import os
import struct

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("matplotlib")


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", os.path.join(ROOT, "docs", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_generate_writes_every_page_and_figure(tmp_path):
    gen = _generator()
    gen.generate(str(tmp_path))
    for cls in gen.public_optimizers():
        text = (tmp_path / "optimizers" / f"{cls.__name__}.md").read_text()
        assert text.startswith(f"# {cls.__name__}") and ">>>" in text
    schedulers = gen.public_schedulers()
    assert len(schedulers) == 16
    for cls in schedulers:
        text = (tmp_path / "schedulers" / f"{cls.__name__}.md").read_text()
        assert f"]({cls.__name__}.png)" in text
        assert _png_size(tmp_path / "schedulers" / f"{cls.__name__}.png") == (700, 320)
    index = (tmp_path / "index.md").read_text()
    assert all(f"[{c.__name__}]" in index for c in gen.public_optimizers() + schedulers)


def test_committed_docs_cover_every_public_class():
    gen = _generator()
    missing = [c.__name__ for c in gen.public_optimizers()
               if not os.path.exists(os.path.join(ROOT, "docs", "optimizers", f"{c.__name__}.md"))]
    missing += [c.__name__ for c in gen.public_schedulers()
                if not os.path.exists(os.path.join(ROOT, "docs", "schedulers", f"{c.__name__}.png"))]
    assert not missing, f"run `python docs/generate.py`: no page for {missing}"
