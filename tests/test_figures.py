"""`harness figures`: the characterization drawn from a real tiny recorded run and from hand-built
records, and its self-contained page in headless chromium."""

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR
from harness.publish.characterize import e2e_split
from harness.publish.figures_page import PAGE
from harness.publish.length_data import drawn_lengths, percentile, real_columns, source_curve, workload_lengths
from harness.publish.profile_table import recorded_phases
from harness.store.records import ResultsFile, load_results
from tests.test_report import record as table_record

FIGURES = ("breakdown-llama", "idle", "e2e-split", "tpot-llama", "lengths-llama", "lengths-real-vs-synthetic", "ladder")


@pytest.fixture(scope="module")
def recorded(recorded_run) -> Path:
    """The results file of one real tiny `pytest suites/test_llama.py --benchmark` run (tests/conftest.py)."""
    return recorded_run


@pytest.fixture(scope="module")
def figures(recorded, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures") / "out"
    assert main(["figures", str(recorded), "--out", str(out)]) == 0
    return out


def results(folder: Path, *cases, environment=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = ResultsFile(folder / "run-hand.json", environment or {"git_commit": "ab" * 20, "git_dirty": False}, {})
    for case in cases:
        file.add(case)
    return file.path


def record(stack: str, e2e: list[float], **extra) -> dict:
    """A results-table case (tests/test_report.py) with the task and preset the ladder reads."""
    return table_record(stack, e2e, **{"task": "tt", "preset": "tiny", "prompt_lens": [8] * len(e2e), **extra})


def hstu(stack: str) -> dict:
    workload = "hstu-rank-tiny-b8-ml100k-x0.25-p184-g16-i20000-fp32"
    return record(stack, [0.03, 0.031], workload=workload, family="hstu", task="rank", preset="tiny", ttft_s=[],
                  tpot_s=[], length_dist="ml100k", prompt_len=184, gen_len=16, prompt_lens=[69, 6], gen_lens=[16, 16],
                  stages_s={"embedding": [0.001, 0.001], "encoder": [0.027, 0.028], "score": [0.001, 0.001]})


def test_every_figure_is_written_as_png_and_svg_with_its_caption(figures, recorded):
    """A real recorded run gives every figure as PNG and SVG, and the page captions each with the run's file
    name and commit."""
    for stem in FIGURES:
        assert (figures / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert b"<svg" in (figures / f"{stem}.svg").read_bytes()[:2000], stem
    page = (figures / PAGE).read_text()
    commit = load_results(recorded)["environment"]["git_commit"][:10]
    assert page.count("<figcaption>") == len(FIGURES) and page.count("data:image/svg+xml;base64,") == len(FIGURES)
    assert page.count(f"{recorded.name} (commit {commit}") >= len(FIGURES) - 1, "each run figure names its run"
    assert "not from a run" in page, "the tables' figure says it comes from the package"


def test_a_record_without_profiles_leaves_those_figures_out_with_the_reason(tmp_path, capsys):
    """Records without a profiled iteration leave the breakdown and idle figures out with the reason on the
    page, while the figures their samples allow are still drawn, stages included."""
    path = results(tmp_path / "res", record("eager", [0.4, 0.41]), record("sdpa", [0.2, 0.21]), hstu("padded"), hstu("jagged"))
    out = tmp_path / "out"
    assert main(["figures", str(path), "--out", str(out)]) == 0
    assert not list(out.glob("breakdown-*")) and not (out / "idle.png").exists()
    for stem in ("e2e-split", "tpot-llama", "lengths-llama", "lengths-hstu", "lengths-real-vs-synthetic", "ladder"):
        assert (out / f"{stem}.png").exists() and (out / f"{stem}.svg").exists(), stem
    page = (out / PAGE).read_text()
    assert "operator categories: llama: left out: no ok llama case has a profiled iteration" in page
    assert "idle share per phase: left out: no ok case has a reliable idle share" in page
    assert "per-token latency: hstu: left out" in page
    assert "per-token latency: hstu: no ok hstu case" in capsys.readouterr().out


def test_a_family_stage_profile_keeps_its_own_phases():
    """A profile with a family's own stages keeps them all, in the order an iteration runs them and unknown ones
    after, and the e2e split names stages without their `_s` suffix."""
    profiled = record("eager", [0.4], breakdown={s: {"linear": 0.01} for s in ("vq_encode", "decode", "prefill", "cfg")},
                      profile_wall_s={"vq_encode": 0.1, "decode": 0.2, "prefill": 0.1, "cfg": 0.05, "new": 0.1},
                      stages_s={"text_decode_s": [0.3], "prefill_s": [0.1], "vq_encode_s": [0.1]}, e2e_s=[0.5])
    profiled["breakdown"]["new"] = {"other": 0.1}
    assert recorded_phases(profiled) == ["vq_encode", "prefill", "decode", "cfg", "new"]
    assert list(e2e_split(profiled)) == ["vq_encode", "prefill", "text_decode"]


def test_the_length_figures_include_the_real_tables():
    """The real-vs-synthetic figure reads every committed table whole, and a recorded HumanEval workload is
    drawn beside its scaled, capped table."""
    columns = real_columns()
    assert [len(column.real) for column in columns] == [164, 164, 943, 290, 290]
    humaneval_prompts = columns[0].real
    assert (percentile(humaneval_prompts, 0.5), max(humaneval_prompts)) == (136, 433)  # docs/workloads.md
    assert all(len(values) == 4000 for column in columns for values in column.synthetic.values())
    case = record("eager", [0.4], workload="llama-tt-tiny-b1-humaneval-x0.2-p87-g60-fp32", length_dist="humaneval",
                  prompt_len=87, gen_len=60, prompt_lens=[38, 42], gen_lens=[10, 11])
    lengths = workload_lengths(case)
    assert lengths is not None and (lengths.dist, lengths.scale) == ("humaneval", 0.2)
    prompts, gens = source_curve(lengths)
    assert len(prompts) == 164 and max(prompts) <= 87 and max(gens) <= 60
    assert drawn_lengths([case, dict(case, stack="sdpa")])[0].prompt_lens == [38, 42], "one entry per workload"


def test_bad_inputs_and_existing_outputs_are_refused_without_writing(tmp_path, capsys):
    """A corrupt results file, a case whose profile is not numbers, an output folder that is a file, and existing
    figures without --force each end in one line and exit 10 with nothing written; --force replaces them."""
    bad = tmp_path / "run-bad.json"
    bad.write_text("{not json")
    out = tmp_path / "out"
    assert main(["figures", str(bad), "--out", str(out)]) == EXIT_HARNESS_ERROR
    assert capsys.readouterr().err.strip().count("\n") == 0 and not out.exists()
    torn = results(tmp_path / "torn", record("eager", [0.4], breakdown={"decode": "linear"}, profile_wall_s={"decode": 1.0}))
    assert main(["figures", str(torn), "--out", str(out)]) == EXIT_HARNESS_ERROR
    error = capsys.readouterr().err
    assert str(torn) in error and "breakdown.decode must be an object of category -> seconds" in error
    assert not out.exists()
    good = results(tmp_path / "res", record("eager", [0.4, 0.41]))
    assert main(["figures", str(good), "--out", str(bad)]) == EXIT_HARNESS_ERROR
    assert "is a file" in capsys.readouterr().err
    assert main(["figures", str(good), "--out", str(out)]) == 0
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    assert main(["figures", str(good), "--out", str(out)]) == EXIT_HARNESS_ERROR
    assert "exists; pass --force to replace it" in capsys.readouterr().err
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    assert main(["figures", str(good), "--out", str(out), "--force"]) == 0


def test_the_page_in_a_headless_browser(figures, tmp_path, browser):
    """The page, copied alone into an empty folder, loads in headless chromium with every image present and
    decoded, no console errors and no request beyond itself and its data: URIs."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(figures / PAGE, alone / PAGE)
    browser.watch_network()
    url = (alone / PAGE).as_uri()
    browser.open(url)
    images = browser.poll("Array.from(document.images).every(i => i.complete) && "
                          "Array.from(document.images).map(i => [i.alt, i.naturalWidth])")
    assert images and len(images) == len(FIGURES), images
    assert all(width > 0 for _, width in images), f"every image decoded: {images}"
    assert browser.errors == [], "no console errors, exceptions or failed loads"
    assert [u for u in browser.requests if u != url and not u.startswith("data:")] == [], "no network loads"
    browser.screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"
