"""The pytest plugin end to end, in a subprocess per run (pytester)."""

import json

import pytest

from harness.errors import EXIT_HARNESS_ERROR, EXIT_UNJUDGED
from harness.levers import LEVERS
from harness.store.records import load_results

# The plugin's own behaviour, without the llama suite's profile checks (tests/test_profile_run.py has those).
SUITE = '''
import pytest

pytestmark = pytest.mark.family("llama")


def test_llama(case, harness):
    harness(case)
'''
CONFTEST = 'pytest_plugins = ("harness.pytest_plugin",)\n'
FAST = ["-p", "no:cacheprovider", "--stacks", "eager,sdpa", "--iterations", "3", "--warmup", "1", "--contention-ratio", "0"]
REQUIRED_KEYS = {
    "family", "task", "preset", "stack", "batch_size", "prompt_len", "gen_len", "ttft_s", "tpot_s",
    "e2e_s", "peak_mem_bytes", "evidence", "outputs_match",
}


@pytest.fixture
def suite(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_llama=SUITE)
    return pytester


def test_benchmark_run_writes_json_results_and_table(suite):
    """A benchmark run through the plugin measures every case and writes pytest-benchmark JSON with the
    harness's fields, a results file with its environment, the results table, and the lever ladder with its
    chart; with no baselines for this machine class nothing is judged, which fails closed with exit 12."""
    result = suite.runpytest_subprocess(*FAST, "--benchmark", "--benchmark-json=out.json", "--results-dir=res", "--tables")
    result.assert_outcomes(passed=10)  # eager and sdpa on 5 workloads (one with draft-friendly weights, one HumanEval)
    assert result.ret == EXIT_UNJUDGED
    out = result.stdout.str()
    assert "not judged: 10 case(s): exit 12; --allow-unjudged no_baseline would accept them" in out
    assert "harness results" in out and "speed-up e2e" in out  # --tables: every table, as harness show prints them
    assert "llama-tt-tiny-b1-p128-g64-fp32-sdpa" in out
    # A pipe gets one line per case, numbered in run order, and no line per phase.
    progress = [line for line in out.splitlines() if line.startswith("[") and "] llama-" in line]
    assert [line.split("]")[0] for line in progress] == [f"[{i}/10" for i in range(1, 11)]
    assert all(": ok, e2e p50 " in line and " elapsed" in line for line in progress)
    assert "warm-up" not in out and "schedule" not in out
    assert "harness: 10 case(s): 10 ok" in out and "Name (time in" not in out  # pytest-benchmark's table is off
    benchmarks = json.loads((suite.path / "out.json").read_text())["benchmarks"]
    assert len(benchmarks) == 10
    for bench in benchmarks:
        info = bench["extra_info"]
        assert REQUIRED_KEYS <= set(info)
        assert info["outputs_match"] is True
        assert len(info["ttft_s"]) == len(info["e2e_s"]) == 3 and info["tpot_s"]
        assert bench["stats"]["rounds"] == 3 and bench["stats"]["min"] == pytest.approx(min(info["e2e_s"]))
        assert info["rounds"]["mode"] == "interleaved" and info["rounds"]["clean_rounds"] == 3
        assert set(info["breakdown"]) == {"prefill", "decode"} and set(info["sol_frac"]) == {"prefill", "decode"}
    (results_file,) = (suite.path / "res").glob("run-*.json")
    data = load_results(results_file)
    assert [case["status"] for case in data["cases"]] == ["ok"] * 10
    assert {"torch", "transformers", "python", "cpu_model", "git_commit"} <= set(data["environment"])
    # The ladder comes out of the run itself: eager -> +sdpa per workload, and its chart.
    assert "lever ladder" in out and "+sdpa" in out and "all families: geometric mean (1)" in out
    for fmt in ("png", "svg"):
        assert results_file.with_name(f"{results_file.stem}-ladder.{fmt}").stat().st_size > 1000
    page = results_file.with_suffix(".html")  # the run's HTML report, beside its results file
    assert any("HTML report of the run written to" in line and line.endswith(page.name) for line in out.splitlines())
    assert "llama-tt-tiny-b1-p128-g64-fp32-sdpa" in page.read_text()


def test_without_tables_the_end_of_a_run_is_a_short_summary(suite):
    """Without --tables a benchmark run ends with the summary (no per-family tables), still writes
    pytest-benchmark's JSON, and --pytest-benchmark-table brings its table back."""
    args = (*FAST, "--benchmark", "-k", "b1-p128-g64-fp32-eager or b1-p128-g64-fp32-sdpa", "--results-dir=res")
    result = suite.runpytest_subprocess(*args, "--benchmark-json=out.json", "--allow-unjudged", "no_baseline")
    assert result.ret == 0
    out = result.stdout.str()
    assert "harness results" not in out and "Name (time in" not in out
    assert "harness: 2 case(s): 2 ok" in out and "llama  " in out and "every table of this run: harness show" in out
    assert len(json.loads((suite.path / "out.json").read_text())["benchmarks"]) == 2
    assert len(out.splitlines()) < 45, out
    again = suite.runpytest_subprocess(*args, "--allow-unjudged", "no_baseline", "--pytest-benchmark-table")
    assert "Name (time in" in again.stdout.str()


def test_dropped_cells_are_grouped_by_reason_before_a_run(suite):
    """Before a run, the cells dropped at expansion take one line per reason with their count, not one per cell
    (--collect-only lists each)."""
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark", "--stacks", "sdpa+static+cudagraphs")
    result.assert_outcomes(skipped=1)  # every cell dropped: pytest's one "empty parameter set" item
    lines = result.stdout.str().splitlines()
    grouped = [line for line in lines if line.endswith(" cell(s): cudagraphs needs a cuda device (this run: cpu)")]
    assert len(grouped) == 1 and not any(line.startswith("  llama-tt-") for line in lines)


def test_quick_mode_checks_without_measuring(suite):
    """Without --benchmark the plugin checks each case's outputs against the baseline stack and writes no
    results."""
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--stacks", "eager,sdpa+static", "--results-dir=res")
    result.assert_outcomes(passed=8)  # the draft-friendly and HumanEval workloads run eager, not sdpa+static
    result.stdout.fnmatch_lines(["*8 case(s) checked, 8 matched the baseline outputs*"])
    assert not (suite.path / "res").exists()


def test_collect_only_lists_dropped_cells_with_reasons(suite):
    """--collect-only lists the cells dropped at expansion with their reasons."""
    result = suite.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "*matrix cell(s) dropped at expansion:*",
        "*llama-tt-tiny-b1-p128-g64-fp32-sdpa+static+cudagraphs: cudagraphs needs a cuda device (this run: cpu)",
    ])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--preset", "huge"], "Exit: harness error: unknown preset for llama 'huge'; allowed: paper, paper-7b, small, tiny"),
        (["--stacks", "sdpa+warp"], f"Exit: harness error: unknown lever 'warp'; allowed: {', '.join(sorted(LEVERS.names()))}"),
        (["--device", "npu"], "Exit: harness error: unknown device 'npu'; allowed: auto, cpu, cuda, cuda:N"),
    ],
)
def test_bad_input_is_one_line_not_a_traceback(suite, args, message):
    """Bad input to the plugin exits with one harness-error line, not a traceback."""
    result = suite.runpytest_subprocess(*args)
    assert result.ret == EXIT_HARNESS_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_unwritable_results_dir_is_reported_before_any_model_is_built(suite):
    """An unwritable results directory is reported as a harness error before any case runs."""
    (suite.path / "blocker").write_text("a file, not a folder")
    result = suite.runpytest_subprocess("--benchmark", "--results-dir", "blocker/results")
    assert result.ret == EXIT_HARNESS_ERROR
    result.stderr.fnmatch_lines(["Exit: harness error: results directory 'blocker/results' is not writable*"])
    assert "passed" not in result.stdout.str()


PLANTED_CONFTEST = CONFTEST + '''
import dataclasses
from harness.families import FAMILIES
from harness.levers import LEVERS, Lever

class Corrupt:
    def __init__(self, step, session):
        self.step, self.calls = step, 0
    def __call__(self, *args):
        self.calls += 1
        token = self.step(*args)
        return (token + 1) % 1024 if self.calls == 3 else token

LEVERS._levers["planted"] = Lever(
    "planted", "planted", "corrupts token 3",
    configure=lambda plan: dataclasses.replace(plan, step_wrappers=plan.step_wrappers + (("planted", Corrupt),)),
    evidence=lambda session: {},
)
FAMILIES["llama"] = dataclasses.replace(FAMILIES["llama"], stacks=(("eager",), ("sdpa", "planted")))
'''


def test_planted_mismatch_fails_the_case_through_the_plugin(pytester):
    """Through the plugin, a lever that changes the answer fails its cases as a mismatch, and the results file
    records it."""
    pytester.makeconftest(PLANTED_CONFTEST)
    pytester.makepyfile(test_llama=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--benchmark", "--iterations", "2", "--warmup", "0", "--results-dir=res", "--contention-ratio", "0"
    )
    # the draft-friendly and the tiny HumanEval workloads run only eager of these
    result.assert_outcomes(passed=5, failed=3)
    result.stdout.fnmatch_lines(["*sdpa+planted: mismatch: outputs differ from the baseline stack at batch row 0, token 3*"])
    (results_file,) = (pytester.path / "res").glob("run-*.json")
    statuses = {case["stack"]: case["status"] for case in load_results(results_file)["cases"]}
    assert statuses == {"eager": "ok", "sdpa+planted": "mismatch"}
