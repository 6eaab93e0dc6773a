"""Hostile and careless inputs to the CLI (review probes C5-C23, P15; defects D1-D4, D14): every file is
checked as its loader checks it before anything is written, each failure is one line naming the file and
the key with exit 10, and no output ever replaces an input."""

import json
from pathlib import Path

import pytest

from harness.analyse.policy import parse_thresholds
from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR, EXIT_REGRESSION, HarnessError
from harness.store.baselines import load_baseline, update_baselines
from harness.store.machine import machine_class
from harness.store.records import RESULTS_KIND, SCHEMA_VERSION, RecordError, ResultsFile, load_results
from tests.test_baselines import ENV, record

MACHINE = "cpu-amd-epyc-2c"


def results(folder: Path, name: str, *records, env=ENV) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = ResultsFile(folder / f"run-{name}.json", env, {})
    for item in records:
        file.add(item)
    return file.path


def raw_results(folder: Path, name: str, cases, env=ENV) -> Path:
    """A results file written as JSON by hand (ResultsFile would write the same envelope)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{name}.json"
    path.write_text(json.dumps({"kind": RESULTS_KIND, "schema_version": SCHEMA_VERSION, "environment": env,
                                "options": {}, "cases": cases}))
    return path


def one_error_line(capsys, *needles: str) -> str:
    """The command printed exactly one line, a harness error naming each needle, and no traceback."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- D1: baseline update writes only what its loader reads back ----------------------------------------

def test_baseline_update_refuses_negative_samples_and_writes_nothing(tmp_path, capsys):
    """`harness baseline update` refuses a results file with negative samples (probe C22: it used to write a
    baseline its own loader then refused), exit 10, and writes no baseline."""
    bad = record("llama-x")
    bad["e2e_s"] = [-v for v in bad["e2e_s"]]
    path = results(tmp_path / "res", "neg", record("llama-ok"), bad)
    baselines = tmp_path / "bl"
    assert main(["baseline", "update", str(path), "--baseline-dir", str(baselines)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(path), "'llama-x'", "e2e_s", "positive")
    assert not baselines.exists() or not list(baselines.rglob("*.json"))


def test_baseline_update_refuses_a_family_that_is_a_path(tmp_path, capsys):
    """A case whose family is `../../escaped` (probe C23: written outside the baseline folder) is refused with
    exit 10, and nothing is written inside or outside the baseline folder."""
    evil = dict(record("llama-x"), family="../../../../escaped")
    path = results(tmp_path / "res", "evil", evil)
    baselines = tmp_path / "deep" / "bl"
    before = tree(tmp_path)
    assert main(["baseline", "update", str(path), "--baseline-dir", str(baselines)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(path), "family", "escaped")
    assert tree(tmp_path) == before
    assert not (tmp_path / "escaped.json").exists() and not list(tmp_path.parent.glob("escaped*"))


def test_baseline_update_checks_every_file_before_writing_any(tmp_path, capsys):
    """With a good and a bad results file, `harness baseline update` writes nothing at all (the bad one is
    found before the good one's cases are merged)."""
    good = results(tmp_path / "res", "a", record("llama-a"))
    bad = results(tmp_path / "res", "b", dict(record("llama-b"), calibration_s=[0.0] * 12))
    baselines = tmp_path / "bl"
    assert main(["baseline", "update", str(good), str(bad), "--baseline-dir", str(baselines)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(bad), "calibration_s")
    assert not baselines.exists() or not list(baselines.rglob("*.json"))


@pytest.mark.parametrize("change, key", [
    ({"e2e_s": [-0.01] * 12}, "e2e_s"),
    ({"ttft_s": [0.0] * 12}, "ttft_s"),
    ({"tpot_s": ["fast"] * 36}, "tpot_s"),
    ({"fingerprint": None}, "fingerprint"),
    ({"family": "../x"}, "family"),
    ({"id": "../../x"}, "id"),
])
def test_library_update_refuses_what_the_loader_would(tmp_path, change, key):
    """update_baselines itself refuses a record the baseline loader would refuse (RecordError naming the case
    and the key) and writes nothing; a good merge still reads back."""
    with pytest.raises(RecordError, match=key):
        update_baselines(tmp_path, "m", [record("llama-good"), {**record("llama-bad"), **change}], ENV)
    assert not list(tmp_path.rglob("*.json"))
    (path, added, _), = update_baselines(tmp_path, "m", [record("llama-good")], ENV)
    assert added == 1 and "llama-good" in load_baseline(path)["cases"]


def test_a_zero_sample_baseline_is_refused_on_load(tmp_path):
    """A baseline holding a zero time sample is refused by its loader (probe P15: accepted, then log(0))."""
    (path, _, _), = update_baselines(tmp_path, "m", [record("llama-a")], ENV)
    data = json.loads(path.read_text())
    data["cases"]["llama-a"]["samples"]["e2e_s"][0] = 0.0
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"llama-a.*samples\.e2e_s must be a list of positive finite numbers"):
        load_baseline(path)


def test_machine_class_never_leaves_its_folder():
    """A results file's environment cannot make the machine class a path (gpu_count `../../x`)."""
    assert machine_class({"gpu_count": "../../x", "device_name": "../y"}) == "gpu-xx-y"
    assert machine_class({**ENV, "cpu_cores": "/etc"}) == "cpu-amd-epyc-etcc"
    assert "/" not in machine_class({"cpu_model": "a/../../b", "cpu_cores": 2})


# -- D3: compare, show, ladder and report on bad contents: exit 10, one line -----------------------------

BAD_CASES = {
    "negative samples": (lambda: dict(record("llama-x"), e2e_s=[-0.01] * 12, ttft_s=[-0.004] * 12), "ttft_s"),
    "zero samples": (lambda: dict(record("llama-x"), e2e_s=[0.0] * 12), "e2e_s"),
    "string samples": (lambda: dict(record("llama-x"), e2e_s=["fast"] * 12), "e2e_s"),
    "zero probe": (lambda: dict(record("llama-x"), calibration_s=[0.0] * 12), "calibration_s"),
    "no id": (lambda: {k: v for k, v in record("llama-x").items() if k != "id"}, "id"),
    "no fingerprint": (lambda: {k: v for k, v in record("llama-x").items() if k != "fingerprint"}, "fingerprint"),
    "a string for a case": (lambda: "llama-x", "cases[0]"),
    "unknown family": (lambda: dict(record("llama-x"), family="gpt"), "family"),
    "gen_lens of strings": (lambda: dict(record("llama-x"), gen_lens=["4"] * 12), "gen_lens"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
@pytest.mark.parametrize("side", ["new", "old"])
def test_compare_on_bad_contents_is_one_line_exit_10(tmp_path, capsys, name, side):
    """`harness compare` on a results file with a bad case, on either side (probes C5-C9: tracebacks, exit
    1), exits 10 with one line naming the file and the key."""
    make, key = BAD_CASES[name]
    good = results(tmp_path / "good", "a", record("llama-x"))
    bad = raw_results(tmp_path / "bad", "b", [make()])
    old, new = (good, bad) if side == "new" else (bad, good)
    assert main(["compare", str(old), str(new)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(bad), key)


def test_compare_refuses_an_environment_that_is_not_an_object(tmp_path, capsys):
    """A results file whose environment is a string (probe C8) is refused with one line naming the key."""
    good = results(tmp_path / "good", "a", record("llama-x"))
    bad = raw_results(tmp_path / "bad", "b", [record("llama-x")], env="cpu")
    assert main(["compare", str(good), str(bad)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(bad), "environment")


def show_case(**changes):
    case = {
        "id": "llama-x-eager", "workload_id": "llama-x", "family": "llama", "stack": "eager", "status": "ok",
        "message": "", "batch_size": 1, "gen_lens": [4], "ttft_s": [0.01], "tpot_s": [0.002] * 3,
        "e2e_s": [0.02], "peak_mem_bytes": 0, "outputs_match": True, "evidence": {},
    }
    case.update(changes)
    return {key: value for key, value in case.items() if value is not None}


@pytest.mark.parametrize("changes, key", [
    ({"stack": None}, "stack"),
    ({"workload_id": None}, "workload_id"),
    ({"e2e_s": [-0.02]}, "e2e_s"),
    ({"evidence": "none"}, "evidence"),
    ({"batch_size": "1"}, "batch_size"),
])
def test_show_on_bad_contents_is_one_line_exit_10(tmp_path, capsys, changes, key):
    """`harness show` on a case missing a documented key or holding a bad value (probe C10: KeyError
    tracebacks) exits 10 with one line naming the file and the key."""
    path = raw_results(tmp_path, "x", [show_case(**changes)])
    assert main(["show", str(path)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(path), key)


def ladder_records(e2e_eager, e2e_sdpa):
    base = {"workload_id": "llama-w", "family": "llama", "task": "tt", "status": "ok", "outputs_match": True}
    return [dict(base, id="llama-w-eager", stack="eager", e2e_s=e2e_eager),
            dict(base, id="llama-w-sdpa", stack="sdpa", e2e_s=e2e_sdpa)]


def test_ladder_on_negative_times_is_one_line_exit_10(tmp_path, capsys):
    """`harness ladder` on negative times (probe C10: ValueError traceback) exits 10 with one line, and a
    case without its workload_id is refused naming the key."""
    path = raw_results(tmp_path, "neg", ladder_records([0.1] * 5, [-0.05] * 5))
    assert main(["ladder", str(path), "--out", str(tmp_path / "charts")]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(path), "e2e_s")
    records = ladder_records([0.1] * 5, [0.05] * 5)
    del records[0]["workload_id"]
    path = raw_results(tmp_path, "nowl", records)
    assert main(["ladder", str(path), "--out", str(tmp_path / "charts")]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(path), "workload_id")
    assert not (tmp_path / "charts").exists(), "nothing written"


def test_report_refuses_a_case_id_that_is_a_path(tmp_path, capsys):
    """`harness report` refuses a case id with path separators (its charts are named by the id) and an --out
    that is an existing file (probe C20: FileExistsError traceback), exit 10 with one line each."""
    path = raw_results(tmp_path, "x", [show_case(id="../../outside")])
    assert main(["report", str(path), "--out", str(tmp_path / "charts")]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, str(path), "id")
    good = raw_results(tmp_path, "y", [show_case()])
    assert main(["report", str(good), "--out", str(good)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "--out", "is a file")


def test_unwritable_outputs_are_one_line_exit_10(tmp_path, capsys):
    """An unwritable --markdown (probe C13) or --baseline-dir (probe C21) is one line with exit 10, not a
    traceback."""
    old = results(tmp_path, "a", record("llama-x"))
    new = results(tmp_path, "b", record("llama-x"))
    assert main(["compare", str(old), str(new), "--markdown", "/proc/no/x.md"]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "/proc/no/x.md")
    assert main(["baseline", "update", str(new), "--baseline-dir", "/proc/no-such-baselines"]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "/proc/no-such-baselines")


# -- D2: no output is an input; an existing output needs --force -----------------------------------------

def test_markdown_never_overwrites_an_input(tmp_path, capsys):
    """`harness compare OLD NEW --markdown OLD` (probe C12: the reference results file was overwritten) is
    refused with exit 10, even with --force, and the file is unchanged; the same through a folder or a link."""
    old = results(tmp_path / "old", "a", record("llama-x"))
    new = results(tmp_path / "new", "b", record("llama-x", scale=2))
    before = old.read_bytes(), new.read_bytes()
    for target in (old, new):
        for force in ([], ["--force"]):
            assert main(["compare", str(old), str(new), "--markdown", str(target), *force]) == EXIT_HARNESS_ERROR
            one_error_line(capsys, "is an input")
    link = tmp_path / "table.md"
    link.symlink_to(old)
    assert main(["compare", str(tmp_path / "old"), str(new), "--markdown", str(link), "--force"]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "is an input")
    assert (old.read_bytes(), new.read_bytes()) == before
    load_results(old)


def test_an_existing_markdown_needs_force(tmp_path, capsys):
    """An existing --markdown file is replaced only with --force; a new one is written as before."""
    old = results(tmp_path, "a", record("llama-x"))
    new = results(tmp_path, "b", record("llama-x", scale=2))
    table = tmp_path / "table.md"
    table.write_text("keep me")
    assert main(["compare", str(old), str(new), "--markdown", str(table)]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "exists", "--force")
    assert table.read_text() == "keep me"
    assert main(["compare", str(old), str(new), "--markdown", str(table), "--force"]) == EXIT_REGRESSION
    assert "**regressed**" in table.read_text()
    fresh = tmp_path / "fresh.md"
    assert main(["compare", str(old), str(new), "--markdown", str(fresh)]) == EXIT_REGRESSION
    assert fresh.read_text() == table.read_text()


# -- D4, D14: numbers checked as the plugin checks them ------------------------------------------------

@pytest.mark.parametrize("alpha", ["nan", "2", "abc", "0", "1", "-0.1", "inf"])
def test_compare_alpha_must_be_between_0_and_1(tmp_path, capsys, alpha):
    """`harness compare --alpha` outside (0, 1), NaN or not a number (probes C14, C15: NaN disabled the gate
    silently, others were tracebacks) exits 10 with one line."""
    old = results(tmp_path, "a", record("llama-x"))
    new = results(tmp_path, "b", record("llama-x", scale=2))
    assert main(["compare", str(old), str(new), "--alpha", alpha]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "--alpha")


def test_a_valid_alpha_still_gates(tmp_path):
    """A valid --alpha still gates: a 2x slowdown regresses at alpha 0.01."""
    old = results(tmp_path, "a", record("llama-x"))
    new = results(tmp_path, "b", record("llama-x", scale=2))
    assert main(["compare", str(old), str(new), "--alpha", "0.01"]) == EXIT_REGRESSION


@pytest.mark.parametrize("text", ["e2e_s=0.05,e2e_s=5", "ttft_s=0.1, ttft_s=0.1", "e2e_s=inf", "e2e_s=nan", "e2e_s=0"])
def test_thresholds_are_finite_positive_and_named_once(tmp_path, capsys, text):
    """--thresholds naming a metric twice (probe C17: the last won silently), or a threshold that is not a
    finite positive fraction, is refused with one line, in the CLI and in the plugin's parser."""
    with pytest.raises(HarnessError):
        parse_thresholds(text)
    old = results(tmp_path, "a", record("llama-x"))
    new = results(tmp_path, "b", record("llama-x"))
    assert main(["compare", str(old), str(new), "--thresholds", text]) == EXIT_HARNESS_ERROR
    one_error_line(capsys, "e2e_s" if "e2e_s" in text else "ttft_s")
