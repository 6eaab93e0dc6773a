import json
import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.store.records import (
    CASE_KEYS,
    RESULTS_KIND,
    SCHEMA_VERSION,
    RecordError,
    ResultsFile,
    check_finite,
    load_results,
    new_results_path,
    write_json_atomic,
)
from tests.strategies import json_values


def results_payload(cases=()):
    return {"kind": RESULTS_KIND, "schema_version": SCHEMA_VERSION, "environment": {}, "options": {}, "cases": list(cases)}


@settings(max_examples=50)
@given(st.dictionaries(st.text(max_size=10).filter(lambda key: key not in CASE_KEYS), json_values, max_size=5))
def test_round_trip(tmp_path_factory, cases_extra):
    """Any JSON value under keys the record schema does not define, written to a results file, loads back
    equal (the documented keys are checked: tests/test_hostile_inputs.py)."""
    path = tmp_path_factory.mktemp("r") / "run.json"
    data = results_payload([cases_extra])
    write_json_atomic(path, data)
    assert load_results(path) == data


def test_written_json_has_sorted_keys_and_no_temp_files(tmp_path):
    """Written JSON has sorted keys and leaves no temporary file behind."""
    path = tmp_path / "run.json"
    write_json_atomic(path, {"b": 1, "a": 2})
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    assert os.listdir(tmp_path) == ["run.json"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected_where_they_arise(tmp_path, bad):
    """A non-finite number is refused, naming its JSON path, and nothing is written."""
    path = tmp_path / "run.json"
    with pytest.raises(ValueError, match=r"\$\.cases\[0\]\.tpot_s\[1\]"):
        write_json_atomic(path, results_payload([{"tpot_s": [1.0, bad]}]))
    assert not path.exists()
    with pytest.raises(ValueError):
        check_finite({"x": bad})


def test_results_file_rewrites_after_every_case(tmp_path):
    """A results file is rewritten after every case added to it."""
    results = ResultsFile(tmp_path / "run.json", {"python": "3"}, {"preset": "tiny"})
    results.add({"id": "a"})
    assert [c["id"] for c in load_results(results.path)["cases"]] == ["a"]
    results.add({"id": "b"})
    assert [c["id"] for c in load_results(results.path)["cases"]] == ["a", "b"]


def test_results_paths_never_collide(tmp_path):
    """New results paths never collide."""
    assert len({new_results_path(tmp_path) for _ in range(100)}) == 100


BAD_FILES = {
    "corrupt": ("{not json", "not valid JSON"),
    "truncated": (json.dumps(results_payload())[:-5], "not valid JSON"),
    "foreign": (json.dumps({"benchmarks": []}), "not a harness-results file"),
    "other-kind": (json.dumps({**results_payload(), "kind": "baseline"}), "not a harness-results file"),
    "newer": (json.dumps({**results_payload(), "schema_version": SCHEMA_VERSION + 1}), "newer than this harness reads"),
    "no-version": (json.dumps({k: v for k, v in results_payload().items() if k != "schema_version"}), "schema_version missing"),
    "nan": (json.dumps(results_payload()).replace('"cases": []', '"cases": [NaN]'), "NaN is not allowed"),
    "cases-not-list": (json.dumps({**results_payload(), "cases": {}}), "'cases' missing or not a list"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_name_the_file_and_stay_untouched(tmp_path, name):
    """A bad results file is refused, naming the file and the problem, and is left untouched."""
    text, problem = BAD_FILES[name]
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    with pytest.raises(RecordError) as info:
        load_results(path)
    assert str(path) in str(info.value) and problem in str(info.value)
    assert path.read_text() == text


def test_missing_file_is_a_clear_error(tmp_path):
    """A missing results file is an error saying it cannot be read."""
    with pytest.raises(RecordError, match="cannot read"):
        load_results(tmp_path / "absent.json")
