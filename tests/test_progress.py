"""Progress lines, the live bar and the end-of-run summary (harness/publish/progress.py, summary.py)."""

from harness.analyse.gate import MetricResult
from harness.analyse.intervals import Interval
from harness.analyse.ladder import LadderSummary
from harness.analyse.verdict import Verdict
from harness.publish.progress import CLEAR_LINE, ProgressDisplay, clock_text, left_s, live_text
from harness.publish.summary import counts_line, dropped_lines, failed_lines, ladder_lines, verdict_lines


def record(case_id: str, status: str = "ok", e2e_s=(0.010, 0.012, 0.011), message: str = "") -> dict:
    return {"id": case_id, "status": status, "e2e_s": list(e2e_s), "message": message}


class Screen:
    """What a display wrote, and how many times it asked for a fresh line."""

    def __init__(self) -> None:
        self.text = ""
        self.new_lines = 0

    def write(self, text: str) -> None:
        self.text += text

    def new_line(self) -> None:
        self.new_lines += 1


def display(live: bool, total: int = 3) -> tuple[ProgressDisplay, Screen]:
    screen, ticks = Screen(), iter(float(t) for t in range(0, 1000, 10))  # each reading of the clock 10 s on
    shown = ProgressDisplay(0, screen.write, screen.new_line, live=live, width=100, clock=lambda: next(ticks))
    shown.start(total)
    return shown, screen


def test_the_estimate_left_is_the_pace_so_far_times_the_cases_left():
    """After 2 of 8 cases in 60 s, 6 are left at 30 s each; before the first case there is no estimate."""
    assert left_s(2, 8, 60.0) == 180.0
    assert left_s(0, 8, 60.0) is None
    assert left_s(8, 8, 60.0) == 0.0
    assert clock_text(3723) == "1:02:03" and clock_text(65) == "1:05"


def test_a_log_gets_one_line_per_case_and_nothing_per_phase():
    """Without a terminal, phases write nothing and each finished case writes one line with its outcome."""
    shown, screen = display(live=False)
    shown.phase("llama-x: warm-up 1/2")
    shown.phase("llama-x: round 3 (schedule 3/12)")
    assert screen.text == ""
    shown.case_done(record("llama-x"))
    shown.case_done(record("llama-y", status="mismatch", message="outputs differ at row 0\nmore"))
    lines = screen.text.splitlines()
    assert len(lines) == 2 and screen.text.endswith("\n")
    assert lines[0] == "[1/3] llama-x: ok, e2e p50 11.0 ms (0:10 elapsed, about 0:20 left)"
    assert "MISMATCH: outputs differ at row 0 (" in lines[1] and "more" not in lines[1]
    assert "about" in lines[1] and "left" in lines[1]


def test_the_pace_counts_a_workloads_cases_measured_together():
    """Cases measured together (one workload) set the pace when the first is handed out: 3 of 6 finished
    after 10 s leaves about 10 s, not the 50 s that counting only the one handed out would say."""
    shown, screen = display(live=False, total=6)
    shown.case_done(record("a"), finished=3)
    assert screen.text.startswith("[1/6] a: ok") and "(0:10 elapsed, about 0:10 left)" in screen.text


def test_a_terminal_gets_one_line_redrawn_in_place_and_cleared_before_others_write():
    """On a terminal every phase redraws the same line (a clear, then the bar), and clear() erases it once."""
    shown, screen = display(live=True)
    shown.phase("llama-x: warm-up 1/2")
    shown.phase("llama-x: round 3 (schedule 3/12)")
    assert screen.new_lines == 1  # only before the first draw
    assert "\n" not in screen.text and screen.text.count(CLEAR_LINE) == 2
    assert "0/3" in screen.text and "round 3" in screen.text
    shown.clear()
    shown.clear()
    assert screen.text.endswith(CLEAR_LINE) and screen.text.count(CLEAR_LINE) == 3


def test_the_live_text_is_one_line_within_the_width():
    """A long case id is cut to the terminal's width, so the carriage return redraws the same line."""
    text = live_text(4, 105, "seamless-" + "x" * 300 + ": round 7", 125.0, width=90, color=False)
    assert "\n" not in text and len(text) <= 89
    assert "4/105" in text and "2:05 elapsed" in text


def test_dropped_cells_are_grouped_by_reason_most_first():
    """53 cells of one reason and 2 of another give two lines, the larger first; --collect-only lists each."""
    dropped = {f"c{i}": "cudagraphs needs a cuda device" for i in range(53)} | {"d1": "costly", "d2": "costly"}
    lines = dropped_lines(dropped, full=False)
    assert lines[1:] == ["  53 cell(s): cudagraphs needs a cuda device", "  2 cell(s): costly"]
    assert "55 matrix cell(s)" in lines[0]
    assert len(dropped_lines(dropped, full=True)) == 56
    assert dropped_lines({}, full=False) == []


def test_counts_and_failures_name_what_did_not_measure():
    """The counts line counts each status (ok first) and dropped cells; a failed case gets its own line."""
    records = [record("a"), record("b"), record("c", status="error", message="boom\ntrace"), record("d", "contended")]
    assert counts_line(records, 7) == (
        "harness: 4 case(s): 2 ok, 1 contended, 1 error; 7 matrix cell(s) dropped at expansion (harness matrix lists them)")
    assert failed_lines(records) == ["  c: error: boom"]


def verdict(case_id: str, status: str) -> MetricResult:
    return MetricResult(case_id, "e2e_s", Verdict(status, 0.01, 0.02, 1.0, 0.01, 0.05))


def test_verdicts_name_the_news_and_say_when_there_is_none():
    """Regressed cases are named; with none, one line says so; unjudged kinds give the exit status."""
    found = verdict_lines([verdict("a", "regressed"), verdict("b", "unchanged")], (), "baselines (m)")
    assert found[0] == "harness: verdicts against baselines (m): 1 regressed, 1 unchanged"
    assert found[1] == "  regressed: a e2e_s"
    quiet = verdict_lines([verdict("b", "unchanged"), verdict("c", "no_baseline")], (), "baselines (m)")
    assert "  none regressed or improved" in quiet
    assert any("exit 12" in line and "--allow-unjudged no_baseline" in line for line in quiet)
    assert verdict_lines([], (), "x") == []


def test_the_ladder_headline_gives_each_family_its_interval():
    """One line per family with its combined speed-up and interval, then all families."""
    llama = Interval(1.78, 1.60, 1.95)
    summary = LadderSummary((), {"llama": llama}, llama, (("w1", "baseline eager: contended"),))
    lines = ladder_lines(summary)
    assert lines[1] == "  llama  1.78x [1.60, 1.95]  (geomean of 0 workload(s))"
    assert lines[2].startswith("  all    1.78x") and "no ladder for 1 workload(s): w1" in lines[3]
    assert "no lever ladder" in ladder_lines(LadderSummary((), {}, None))[0]
