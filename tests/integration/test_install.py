"""Installing heaplens on an interpreter it does not support stops at once, with one sentence
(pip reads requires-python before building anything), never a Rust compile error."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python_310():
    """A CPython 3.10 that runs (pyenv's shims exist whether or not the version is selected)."""
    candidates = []
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = Path(pyenv) / "versions"
    if versions.is_dir():
        candidates += [str(p / "bin" / "python3.10") for p in sorted(versions.glob("3.10*"))]
    candidates.append(shutil.which("python3.10"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            ok = subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0
            if ok:
                return candidate
    return None


def test_pip_refuses_an_unsupported_python_with_one_sentence(tmp_path):
    python = _python_310()
    if python is None:
        pytest.skip("no CPython 3.10 here to try")
    subprocess.run([python, "-m", "venv", str(tmp_path / "venv")], check=True)
    r = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install", "--no-deps", str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode != 0
    assert "requires a different Python: 3.10" in r.stderr, r.stderr
    assert "<3.16,>=3.11" in r.stderr
    assert "error[E" not in r.stdout + r.stderr  # no Rust compiler ran


def test_the_supported_versions_are_the_ones_the_capture_reads():
    import heaplens._native as native

    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11,<3.16"' in text
    for minor in range(11, 16):
        assert f'"Programming Language :: Python :: 3.{minor}"' in text
    assert native.capture_support() is None
    assert sys.version_info[:2] >= (3, 11)
