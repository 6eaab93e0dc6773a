"""Properties of matrix expansion and of cases, over every family's declared matrix (no model is built)."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.families import FAMILIES
from harness.spec.matrix import Case, expand, fingerprint, stack_params
from tests.strategies import LEVER_PARAMS, dtype_sets, family_cases, family_presets

PARAMS = LEVER_PARAMS  # the speculative levers' parameters, as tests/test_matrix.py passes them
DEVICES = ("cpu", "cuda:0")
CASE_ID = re.compile(r"[a-z0-9+.-]+")
FEW = settings(max_examples=15, deadline=None)  # CI is a 2-core machine

expansions = st.tuples(family_presets, st.sampled_from(DEVICES), dtype_sets)


def expanded(family, preset, device, dtypes):
    return expand(FAMILIES[family], preset, dtypes, device, lever_params=PARAMS)


def declared_cells(family, preset, dtypes):
    """The (task, workload, stack, dtype) combinations the family declares for this preset, counted
    from its spec alone: each workload's tasks and stacks, with () meaning all of the family's."""
    spec = FAMILIES[family]
    return [
        (task, workload, stack, dtype)
        for dtype in dtypes
        for task in spec.tasks
        for workload in spec.workloads[preset]
        if not workload.tasks or task in workload.tasks
        for stack in spec.stacks
        if not workload.stacks or stack in workload.stacks
    ]


@FEW
@given(expansions)
def test_expanded_ids_are_unique_and_stable(expansion):
    """Expanding any family's preset on either device gives unique case ids, and expanding it again gives the
    same ids in the same order."""
    (family, preset), device, dtypes = expansion
    cases, dropped = expanded(family, preset, device, dtypes)
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids))
    again, dropped_again = expanded(family, preset, device, dtypes)
    assert [case.id for case in again] == ids
    assert dropped_again == dropped


@FEW
@given(expansions)
def test_every_dropped_cell_has_a_reason_and_is_not_kept(expansion):
    """Every dropped cell carries a non-empty reason, and no dropped case id is among the kept ones."""
    (family, preset), device, dtypes = expansion
    cases, dropped = expanded(family, preset, device, dtypes)
    kept = {case.id for case in cases}
    for cell in dropped:
        assert cell.reason.strip(), cell
        assert cell.case_id not in kept, cell


@FEW
@given(expansions)
def test_kept_and_dropped_cover_every_declared_cell_once(expansion):
    """Kept and dropped cells are disjoint and together are exactly the declared (task, workload, stack,
    dtype) combinations that each workload admits."""
    (family, preset), device, dtypes = expansion
    cases, dropped = expanded(family, preset, device, dtypes)
    kept, gone = [case.id for case in cases], [cell.case_id for cell in dropped]
    assert not set(kept) & set(gone)
    cells = declared_cells(family, preset, dtypes)
    assert len(kept) + len(gone) == len(cells)
    expected = [
        Case(family, task, preset, dtype, w.batch_size, w.lengths, stack, w.items, w.weights, stack_params(stack, PARAMS), w.beams).id
        for task, w, stack, dtype in cells
    ]
    assert len(set(expected)) == len(expected)
    assert set(kept) | set(gone) == set(expected)


@FEW
@given(family_cases)
def test_a_family_case_round_trips_and_keeps_its_fingerprint(case):
    """Any family's case round-trips through its dict, and its fingerprint is the same for the copy and on
    every call."""
    copy = Case.from_dict(case.to_dict())
    assert copy == case
    model = {"hidden_size": 64, "num_layers": 2}
    assert fingerprint(copy, dict(model)) == fingerprint(case, model) == fingerprint(case, model)


@FEW
@given(family_cases)
def test_a_family_case_id_is_lower_case_digits_and_plus_dot_dash(case):
    """Any family's case id and workload id use only lower-case letters, digits, '+', '.' and '-'."""
    assert CASE_ID.fullmatch(case.id), case.id
    assert CASE_ID.fullmatch(case.workload_id) and case.id.startswith(case.workload_id + "-")


@FEW
@given(expansions)
def test_expanded_case_ids_are_lower_case_digits_and_plus_dot_dash(expansion):
    """Every case id that expansion keeps or drops uses only lower-case letters, digits, '+', '.' and '-'."""
    (family, preset), device, dtypes = expansion
    cases, dropped = expanded(family, preset, device, dtypes)
    for case_id in [case.id for case in cases] + [cell.case_id for cell in dropped]:
        assert CASE_ID.fullmatch(case_id), case_id
