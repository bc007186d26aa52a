"""The Python API as a library: every public name documented and typed."""

from __future__ import annotations

import inspect
from importlib import resources

import clrnet


def test_every_public_name_is_documented():
    for name in clrnet.__all__:
        obj = getattr(clrnet, name)
        assert (inspect.getdoc(obj) or "").strip(), f"clrnet.{name} has no docstring"


def test_public_functions_are_annotated():
    for name in clrnet.__all__:
        obj = getattr(clrnet, name)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            missing = [p for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
            assert not missing and sig.return_annotation is not inspect.Signature.empty, name


def test_package_ships_its_type_marker():
    assert (resources.files("clrnet") / "py.typed").is_file()
