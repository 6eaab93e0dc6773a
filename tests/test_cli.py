import json

from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR
from harness.store.records import RESULTS_KIND, SCHEMA_VERSION, write_json_atomic


def test_matrix_lists_cases_and_dropped_cells(capsys):
    """`harness matrix` lists the kept cases and each dropped cell with its reason."""
    assert main(["matrix", "--stacks", "eager,sdpa+static+cudagraphs"]) == 0
    out = capsys.readouterr().out
    assert "llama-tt-tiny-b1-p128-g64-fp32-eager" in out
    assert "llama-tt-tiny-b1-p128-g64-fp32-sdpa+static+cudagraphs: cudagraphs needs a cuda device (this run: cpu)" in out


def test_matrix_bad_preset_is_one_line(capsys):
    """An unknown preset is a one-line error that lists the allowed presets."""
    assert main(["matrix", "--preset", "giant"]) == EXIT_HARNESS_ERROR
    err = capsys.readouterr().err
    assert err.strip() == "harness: error: unknown preset for llama 'giant'; allowed: paper, paper-7b, small, tiny"


def test_show_renders_a_results_file(tmp_path, capsys):
    """`harness show` renders the cases of a results file."""
    path = tmp_path / "run.json"
    case = {
        "id": "llama-x-eager", "workload_id": "llama-x", "family": "llama", "stack": "eager", "status": "ok",
        "message": "", "batch_size": 1, "gen_lens": [4], "ttft_s": [0.01], "tpot_s": [0.002] * 3,
        "e2e_s": [0.02], "peak_mem_bytes": 0, "outputs_match": True, "evidence": {},
    }
    write_json_atomic(path, {"kind": RESULTS_KIND, "schema_version": SCHEMA_VERSION, "cases": [case]})
    assert main(["show", str(path)]) == 0
    assert "llama-x-eager" in capsys.readouterr().out


def test_show_refuses_a_foreign_file(tmp_path, capsys):
    """`harness show` refuses a file that is not a results file, naming it, and leaves it untouched."""
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps({"benchmarks": []}))
    assert main(["show", str(path)]) == EXIT_HARNESS_ERROR
    assert f"{path}: not a harness-results file" in capsys.readouterr().err
    assert json.loads(path.read_text()) == {"benchmarks": []}
