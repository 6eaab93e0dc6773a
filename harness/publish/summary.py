"""The end-of-run summary: what a person reads first, on one screen.

Counts (measured, failed, contended, dropped), each family's ladder headline with its interval,
the verdicts that are news (regressed, improved, not judged) or one line saying there are none,
how the rounds went, and where the files are. The full tables are `harness show RESULTS` (and the
run's HTML report); pure functions from the run's records and verdicts to lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.analyse.gate import MetricResult
from harness.analyse.ladder import LadderSummary
from harness.publish.ladder import interval_text
from harness.publish.verdicts import summary_line, unjudged_lines

LISTED = 5  # case ids named per line; the rest are counted
NEWS = ("regressed", "improved")  # verdicts a summary names case by case


def _listed(ids: Sequence[str]) -> str:
    more = f" and {len(ids) - LISTED} more" if len(ids) > LISTED else ""
    return ", ".join(ids[:LISTED]) + more


def counts_line(records: Sequence[Mapping], dropped: int) -> str:
    """'105 cases: 103 ok, 1 mismatch, 1 contended; 91 matrix cells dropped at expansion'."""
    statuses = Counter(str(record.get("status")) for record in records)
    parts = [f"{n} {status}" for status, n in sorted(statuses.items(), key=lambda item: (item[0] != "ok", item[0]))]
    dropped_text = f"; {dropped} matrix cell(s) dropped at expansion (harness matrix lists them)" if dropped else ""
    return f"harness: {len(records)} case(s): {', '.join(parts)}{dropped_text}"


def failed_lines(records: Sequence[Mapping]) -> list[str]:
    """One line per case that did not measure: its status and the first line of why."""
    lines = []
    for record in records:
        if record.get("status") not in ("ok", "contended"):
            why = (str(record.get("message") or "").splitlines() or [""])[0][:120]
            lines.append(f"  {record.get('id')}: {record.get('status')}: {why}")
    return lines


def ladder_lines(summary: LadderSummary) -> list[str]:
    """Each family's combined speed-up (geomean of its workloads' ladders), then across families."""
    if not summary.per_family:
        return ["harness: no lever ladder (no workload measured its baseline and a lever on top of it)"]
    workloads = Counter(item.family for item in summary.ladders)
    width = max(len(family) for family in summary.per_family)
    lines = ["harness: lever ladder, e2e speed-up of each family's longest lever chain over its baseline:"]
    for family, interval in summary.per_family.items():
        lines.append(f"  {family:<{width}}  {interval_text(interval)}  (geomean of {workloads[family]} workload(s))")
    if summary.overall is not None:
        lines.append(f"  {'all':<{width}}  {interval_text(summary.overall)}  (geomean of {len(summary.per_family)} families)")
    if summary.missing:
        lines.append(f"  no ladder for {len(summary.missing)} workload(s): {_listed([w for w, _ in summary.missing])}")
    return lines


def verdict_lines(verdicts: Sequence[MetricResult], allowed: tuple[str, ...], judged_against: str) -> list[str]:
    """The verdicts that are news, case by case; what could not be judged, kind by kind, with the
    exit status it gives and the allowance that would accept it; the unchanged ones counted."""
    if not verdicts:
        return []
    by_status: dict[str, list[str]] = {}
    for result in verdicts:
        by_status.setdefault(result.verdict.status, []).append(f"{result.case_id} {result.metric}")
    lines = [f"harness: verdicts against {judged_against}: {summary_line(list(verdicts))}"]
    news = [status for status in NEWS if status in by_status]
    lines += [f"  {status}: {_listed(by_status[status])}" for status in news]
    if not news:
        lines.append("  none regressed or improved")
    return lines + [f"  {line}" for line in unjudged_lines(list(verdicts), allowed)]


def files_lines(results_path: Path, extra: Sequence[str]) -> list[str]:
    lines = [f"harness: results written to {results_path}"]
    lines += [f"harness: {line}" for line in extra]
    lines.append(f"harness: every table of this run: harness show {results_path}")
    return lines


def dropped_lines(dropped: Mapping[str, str], full: bool) -> list[str]:
    """The cells dropped at expansion: grouped by reason, most first (the full list, one cell a
    line, with `full`: --collect-only, and always in `harness matrix`)."""
    if not dropped:
        return []
    if full:
        return [f"harness: {len(dropped)} matrix cell(s) dropped at expansion:"] + [
            f"  {case_id}: {reason}" for case_id, reason in sorted(dropped.items())]
    reasons = Counter(dropped.values())
    lines = [f"harness: {len(dropped)} matrix cell(s) dropped at expansion (harness matrix or --collect-only lists each):"]
    return lines + [f"  {n} cell(s): {reason}" for reason, n in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))]
