"""The gate's fail-open probes (review P7, C11, section 4.1; defects D5, D6) and the small ones of D14 (P10,
the progress count, git_dirty), through the CLI, a pytest run and the environment only, so that the same tests
also run against the code before the fixes (docs/hostile-inputs.md): a gate that could not judge exits 12."""

import subprocess

from harness.cli import main
from harness.measure.env import git_state
from harness.pytest_plugin import RUN_KEY
from tests.test_baselines import ENV, record
from tests.test_cli_compare import results

# docs/gating.md, "Exit statuses" (harness.errors.EXIT_UNJUDGED): spelled out here so that this module also
# imports against the code before the fix, where the status did not exist.
UNJUDGED = 12
SUITE = "import pytest\npytestmark = pytest.mark.family('llama')\n\ndef test_llama(case):\n    pass\n"


def few(case: dict, n: int) -> dict:
    """The case with only its first n iterations (a run with --iterations n)."""
    per_iteration = ("ttft_s", "e2e_s", "gen_lens", "calibration_s")
    return {**case, **{key: case[key][:n] for key in per_iteration}, "tpot_s": case["tpot_s"][:3 * n]}


def test_too_few_iterations_cannot_pass_a_threefold_slowdown(tmp_path, capsys):
    """Three iterations a side can never reach alpha (probe P7: a 3x slowdown passed, exit 0): exit 12, saying
    too few samples."""
    old = results(tmp_path / "old", "a", few(record("llama-x"), 3))
    new = results(tmp_path / "new", "b", few(record("llama-x", scale=3), 3))
    assert main(["compare", str(old), str(new)]) == UNJUDGED
    assert "too few samples" in capsys.readouterr().out


def test_a_case_with_no_samples_is_not_a_pass(tmp_path):
    """A case recorded ok but without samples (probe C11: `noisy`, exit 0) is not judged: exit 12."""
    empty = {**record("llama-x"), "ttft_s": [], "tpot_s": [], "e2e_s": [], "gen_lens": [], "calibration_s": []}
    old = results(tmp_path / "old", "a", record("llama-x"))
    new = results(tmp_path / "new", "b", empty)
    assert main(["compare", str(old), str(new)]) == UNJUDGED


def test_a_torch_bump_does_not_turn_the_gate_off(tmp_path, capsys):
    """A fivefold slowdown measured under another torch (section 4.1: env_mismatch, exit 0, so each torch release
    silenced the gate) exits 12 naming the field; --allow-env-diff torch judges it and it regresses (11)."""
    old = results(tmp_path / "old", "a", record("llama-x"))
    new = results(tmp_path / "new", "b", record("llama-x", scale=5), env={**ENV, "torch": "2.14.0+cpu"})
    assert main(["compare", str(old), str(new)]) == UNJUDGED
    assert "torch" in capsys.readouterr().out
    assert main(["compare", str(old), str(new), "--allow-env-diff", "torch"]) == 11


def test_a_case_without_a_baseline_is_not_a_pass(tmp_path):
    """A case NEW measured that OLD lacks (no_baseline, exit 0 before) exits 12."""
    old = results(tmp_path / "old", "a", record("llama-x"))
    new = results(tmp_path / "new", "b", record("llama-x"), record("llama-y", scale=5))
    assert main(["compare", str(old), str(new)]) == UNJUDGED


def test_an_unwritable_trace_dir_is_named_as_such(pytester):
    """`pytest --trace-dir /proc/nope` exits 10 naming the trace directory (probe P10: "results directory")."""
    pytester.makeconftest('pytest_plugins = ("harness.pytest_plugin",)\n')
    pytester.makepyfile(test_llama_suite=SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only", "--trace-dir", "/proc/nope")
    assert result.ret == 10
    result.stderr.fnmatch_lines(["*trace directory '/proc/nope' is not writable*"])
    assert "results directory" not in result.stderr.str()


def test_progress_counts_only_the_selected_cases(pytester):
    """With -k selecting 2 of the llama cases, the progress total is 2 (D14: `[1/8]`, deselected items counted)."""
    pytester.makeconftest('pytest_plugins = ("harness.pytest_plugin",)\n')
    pytester.makepyfile(test_llama_suite=SUITE)
    recorder = pytester.inline_run("-p", "no:cacheprovider", "--collect-only", "--stacks", "eager,sdpa",
                                   "-k", "b1-p128-g64-fp32-sdpa or b1-p128-g64-fp32-eager")
    session = recorder.getcalls("pytest_collection_finish")[0].session
    assert len(session.items) == 2, [item.name for item in session.items]
    assert session.config.stash[RUN_KEY].total == 2


def test_an_untracked_file_makes_the_tree_dirty(tmp_path):
    """An untracked, not ignored file (an untracked conftest.py can change timing) makes git_dirty true (D14:
    untracked files were ignored), while an ignored one does not."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("/results/\n")
    git("add", ".gitignore")
    git("commit", "-q", "-m", "c")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run-x.json").write_text("{}")
    assert git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "conftest.py").write_text("import time\n")
    assert git_state(tmp_path)["git_dirty"] is True
