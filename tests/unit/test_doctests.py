"""The examples in the docstrings run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "heaplens",
    "heaplens._census",
    "heaplens._growth",
    "heaplens._leaks",
    "heaplens._middleware",
    "heaplens._paths",
    "heaplens._pictures",
    "heaplens._snapshot",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
