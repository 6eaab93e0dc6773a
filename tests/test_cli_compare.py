"""`harness compare` and `harness baseline update` on results files written here."""

from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR, EXIT_REGRESSION
from harness.store.records import ResultsFile
from tests.test_baselines import ENV, record


def results(folder, name, *records, env=ENV):
    folder.mkdir(parents=True, exist_ok=True)
    file = ResultsFile(folder / f"run-{name}.json", env, {})
    for item in records:
        file.add(item)
    return file.path


def test_compare_two_result_sets(tmp_path, capsys, monkeypatch):
    """`harness compare` exits with the regression code, prints the change, and writes the same markdown to
    --markdown and to the GitHub step summary."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    old = results(tmp_path / "old", "a", record("x"), record("y"))
    results(tmp_path / "new", "b", record("x", scale=1.8), record("y"))
    assert main(["compare", str(old), str(tmp_path / "new"), "--markdown", str(tmp_path / "out.md")]) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "regressed" in out and "+80.0%" in out
    text = (tmp_path / "out.md").read_text()
    assert "| x | e2e_s | **regressed** |" in text
    assert summary.read_text().strip() == text.strip()


def test_compare_unchanged_exits_zero(tmp_path):
    """Comparing unchanged results exits zero."""
    old = results(tmp_path, "a", record("x"))
    new = results(tmp_path, "b", record("x"))
    assert main(["compare", str(old), str(new)]) == 0


def test_compare_thresholds_option(tmp_path):
    """--thresholds loosens per-metric thresholds, and an unknown metric name is a harness error."""
    old = results(tmp_path, "a", record("x"))
    new = results(tmp_path, "b", record("x", scale=1.3))
    assert main(["compare", str(old), str(new), "--thresholds", "ttft_s=0.5,tpot_s=0.5,e2e_s=0.5"]) == 0
    assert main(["compare", str(old), str(new), "--thresholds", "speed=0.5"]) == EXIT_HARNESS_ERROR


def test_compare_empty_folder_is_a_clear_error(tmp_path, capsys):
    """Comparing against a folder without results files is an error that says so."""
    (tmp_path / "empty").mkdir()
    old = results(tmp_path, "a", record("x"))
    assert main(["compare", str(old), str(tmp_path / "empty")]) == EXIT_HARNESS_ERROR
    assert "no run-*.json results files" in capsys.readouterr().err


def test_baseline_update_from_results(tmp_path, capsys):
    """`harness baseline update` adds a results file's ok cases under its machine class and reports the count."""
    path = results(tmp_path / "res", "a", record("x"), record("z", status="error"))
    assert main(["baseline", "update", str(path), "--baseline-dir", str(tmp_path / "bl")]) == 0
    assert "1 case(s) added, 0 replaced (machine class cpu-amd-epyc-2c)" in capsys.readouterr().out
    assert (tmp_path / "bl" / "cpu-amd-epyc-2c" / "llama.json").exists()
