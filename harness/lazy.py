"""Entry points named as "module:attribute" strings, imported on first use.

Light declarations (a family's spec, a lever's row) name their heavy implementations this way,
so that reading the matrix, the records or the lever slots imports no torch.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import Any

from harness.errors import HarnessError


@cache
def resolve(ref: str) -> Any:
    """The object a "package.module:attribute" string names (the attribute may be dotted).

    Any: what a name imports is known only at run time (a runner class, a function, a table)."""
    module, _, attribute = ref.partition(":")
    if not module or not attribute:
        raise HarnessError(f"entry point {ref!r} is not of the form 'module:attribute'")
    found: object = import_module(module)
    for name in attribute.split("."):
        found = getattr(found, name)
    return found
