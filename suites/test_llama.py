"""Llama (code generation, task tt) over the matrix declared in harness/families.py."""

import pytest

pytestmark = pytest.mark.family("llama")


def test_llama(case, harness):
    harness(case)
