"""`harness publish` over a history holding bad files (review probe C24, defect D8): each bad file is
skipped with a warning and listed, the rest is published, and the exit status says files were skipped."""

import json

from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR
from harness.publish.asv_run import EXIT_PUBLISHED_WITH_SKIPS
from harness.store.records import ResultsFile
from tests.test_baselines import record
from tests.test_publish import GPU_ENV, MACHINE, make_project, recorded


def bad_run(folder, name, environment):
    folder.mkdir(parents=True, exist_ok=True)
    results = ResultsFile(folder / f"run-{name}.json", {**GPU_ENV, **environment}, {})
    results.add(record("llama-tt-tiny-eager"))
    return results.path


def test_bad_files_are_skipped_and_the_history_still_builds(tmp_path, capsys):
    """A dirty-tree run, a run of a commit not in the repository, a corrupt file, a bad case and a git_commit
    that is a path are each skipped with a warning naming the file; the good run is published; the skipped
    files are listed and the exit status is 13 (probe C24: exit 10, nothing published)."""
    repo, commits = make_project(tmp_path)
    history = tmp_path / "history"
    good = recorded(history / "a", "20260101T120000Z-1-aaaaaa", commits[0], 1.0)
    skipped = {
        "dirty": bad_run(history / "b", "20260102T120000Z-1-bbbbbb", {"git_commit": commits[1], "git_dirty": True}),
        "unknown": bad_run(history / "c", "20260103T120000Z-1-cccccc", {"git_commit": "0" * 40, "git_dirty": False}),
        "path": bad_run(history / "d", "20260104T120000Z-1-dddddd", {"git_commit": "../../../escape", "git_dirty": False}),
    }
    skipped["corrupt"] = history / "e" / "run-20260105T120000Z-1-eeeeee.json"
    skipped["corrupt"].parent.mkdir()
    skipped["corrupt"].write_text('{"kind": "harness-results", "sch')
    negative = bad_run(history / "f", "20260106T120000Z-1-ffffff", {"git_commit": commits[1], "git_dirty": False})
    data = json.loads(negative.read_text())
    data["cases"][0]["e2e_s"] = [-1.0] * 12
    negative.write_text(json.dumps(data))
    skipped["negative"] = negative

    status = main(["publish", str(history), "--config", str(repo / "asv.conf.json")])
    captured = capsys.readouterr()
    assert status == EXIT_PUBLISHED_WITH_SKIPS == 13
    warnings = [line for line in captured.err.splitlines() if line.startswith("harness: warning: skipped ")]
    assert len(warnings) == len(skipped), captured.err
    for why, path in skipped.items():
        assert any(str(path) in line for line in warnings), why
        assert f"  {path}" in captured.out, f"{why} is listed as skipped"
    assert "--allow-dirty" in captured.err and "is not in the repository" in captured.err
    assert "not valid JSON" in captured.err and "e2e_s" in captured.err and "not a commit hash" in captured.err
    assert "Traceback" not in captured.err
    folder = repo / ".asv" / "results" / MACHINE
    published = sorted(p.name[:8] for p in folder.glob("*.json") if p.name != "machine.json")
    assert published == [commits[0][:8]], "the good run is in the history, the skipped ones are not"
    assert (repo / ".asv" / "html" / "index.json").exists()
    assert not list(tmp_path.rglob("escape*")), "a git_commit never becomes a path"
    assert good.exists()


def test_allow_dirty_still_publishes_a_dirty_run(tmp_path, capsys):
    """With --allow-dirty a dirty-tree run is published, and a clean publish exits 0."""
    repo, commits = make_project(tmp_path)
    bad_run(tmp_path / "h", "20260102T120000Z-1-bbbbbb", {"git_commit": commits[1], "git_dirty": True})
    config = str(repo / "asv.conf.json")
    assert main(["publish", str(tmp_path / "h"), "--config", config, "--allow-dirty"]) == 0
    assert "skipped" not in capsys.readouterr().err


def test_nothing_publishable_is_still_an_error(tmp_path, capsys):
    """When every file is skipped there is no history to build: exit 10, after a warning per file."""
    repo, _ = make_project(tmp_path)
    bad_run(tmp_path / "h", "x", {"git_commit": "0" * 40, "git_dirty": False})
    assert main(["publish", str(tmp_path / "h"), "--config", str(repo / "asv.conf.json")]) == EXIT_HARNESS_ERROR
    err = capsys.readouterr().err
    assert "harness: warning: skipped" in err and "nothing to publish" in err
