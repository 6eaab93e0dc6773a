"""The A/B record (versioned JSON), its verdict table (terminal and Markdown) and its exit status.
Pure functions over the driver's case states; no torch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.table import Table

from harness.ab.decide import IMPROVED, REGRESSED, TEST_NAME, UNCHANGED, Rule
from harness.ab.driver import CONTENDED, FAILED, MISMATCH, ONE_SIDED, CaseState, case_verdict
from harness.analyse.stats import median
from harness.errors import EXIT_REGRESSION, EXIT_UNJUDGED
from harness.publish.console import markdown_table

AB_KIND, AB_SCHEMA_VERSION = "harness-ab", 1
EXIT_CASE_FAILED = 1  # as a failing test under pytest: an error, or HEAD changed the answer
PASSING = (UNCHANGED, IMPROVED)
STYLE = {REGRESSED: "bold red", FAILED: "red", MISMATCH: "red", IMPROVED: "green"}
COLUMNS = ("case", "metric", "verdict", "HEAD/BASE", "interval", "p slower", "pairs", "note")


def exit_status(states: Sequence[CaseState]) -> int:
    """1: a case failed or changed its answer; 11: one regressed; 12: one could not be judged; else 0."""
    verdicts = {case_verdict(state) for state in states}
    if verdicts & {FAILED, MISMATCH}:
        return EXIT_CASE_FAILED
    if REGRESSED in verdicts:
        return EXIT_REGRESSION
    return 0 if verdicts <= set(PASSING) else EXIT_UNJUDGED


def savings(states: Sequence[CaseState], rule: Rule) -> dict:
    """Pairs early stopping used against the fixed maximum, and the time the rest would have taken."""
    measured = [s for s in states if s.pair_wall_s]
    used = sum(s.pairs for s in measured)
    saved_s = sum(max(0, rule.max_pairs - s.pairs) * median(s.pair_wall_s) for s in measured)
    return {"cases": len(measured), "pairs_used": used, "pairs_max": rule.max_pairs * len(measured),
            "contended_pairs": sum(s.contended for s in states), "saved_s": saved_s}


def record(sides: dict, environments: dict, options: dict, rule: Rule, states: Sequence[CaseState], wall_s: float) -> dict:
    return {"kind": AB_KIND, "schema_version": AB_SCHEMA_VERSION, "sides": sides, "environments": environments,
            "options": options, "rule": {"test": TEST_NAME, **vars(rule)}, "wall_s": wall_s,
            "savings": savings(states, rule), "counts": dict(Counter(case_verdict(s) for s in states)),
            "exit_status": exit_status(states), "cases": [s.to_dict() for s in states]}


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def rows(states: Sequence[CaseState]) -> list[list[str]]:
    """One row per judged metric; a case that was not judged gets one row saying why."""
    found = []
    for state in states:
        if state.status in (FAILED, MISMATCH, CONTENDED, ONE_SIDED) or not state.decisions:
            found.append([state.case_id, "", case_verdict(state), "", "", "", str(state.pairs), state.message])
            continue
        for metric, d in sorted(state.decisions.items()):
            interval = f"[{d.low:.3f}, {d.high:.3f}]" if d.low is not None and d.high is not None else ""
            note = state.attribution.get(metric) or d.reason
            found.append([state.case_id, metric, d.status, _fmt(d.ratio, ".3f"), interval, _fmt(d.p_slower, ".2g"),
                          str(d.pairs), note])
    return found


def headline(data: dict) -> list[str]:
    sides, saved, rule = data["sides"], data["savings"], data["rule"]
    counts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(data["counts"].items()))
    return [
        f"BASE {sides['base']['label']} ({sides['base']['commit'][:12]}, {sides['base']['python']}) vs "
        f"HEAD {sides['head']['label']} ({sides['head']['commit'][:12]}, {sides['head']['python']})",
        f"{len(data['cases'])} case(s): {counts}; exit status {data['exit_status']}",
        f"test: {rule['test']}; threshold {rule['threshold']:.0%}, alpha {rule['alpha']:g} per metric",
        f"early stopping: {saved['pairs_used']} of at most {saved['pairs_max']} pairs over {saved['cases']} case(s), "
        f"about {saved['saved_s']:.0f} s saved; {saved['contended_pairs']} contended pair(s) re-run; "
        f"{data['wall_s']:.0f} s in all",
    ]


def table(data: dict, states: Sequence[CaseState]) -> Table:
    found = Table(title="A/B verdicts: " + headline(data)[0], caption="\n".join(headline(data)[1:]))
    for column in COLUMNS:
        found.add_column(column, overflow="fold")
    for row in rows(states):
        found.add_row(*row, style=STYLE.get(row[2], ""))
    return found


def markdown(data: dict, states: Sequence[CaseState]) -> str:
    lines = [f"### A/B gate: {headline(data)[0]}", "", *(f"- {line}" for line in headline(data)[1:]), ""]
    return "\n".join(lines + markdown_table(COLUMNS, rows(states))) + "\n"
