"""End-of-run table: pure functions from case records to rows, then to a rich Table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rich.table import Table

from harness.errors import HarnessError
from harness.families import FAMILIES
from harness.levers import LEVERS
from harness.stats import median, reported_quantile, speedup

MS_PER_S = 1e3
BYTES_PER_MIB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    case_id: str
    status: str
    ttft_p50_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tokens_per_s: float | None
    peak_mem_bytes: int | None
    speedup: float | None
    outputs_match: bool | None
    evidence: str
    # Where the time goes (the profiled iteration): per phase top categories, idle share, SoL.
    top: Mapping = field(default_factory=dict)  # phase -> "attention 50% linear 10% ..."
    idle_frac: Mapping = field(default_factory=dict)
    sol_frac: Mapping = field(default_factory=dict)
    ops_per_token: float | None = None
    ops_unit: str = ""


TOP_CATEGORIES = 3


def phase_shares(record: Mapping, phase: str) -> dict[str, float]:
    """Shares of a phase's profiled wall time: each category, and `idle` (sum 1 when reliable)."""
    wall_s = record.get("profile_wall_s", {}).get(phase)
    breakdown = record.get("breakdown", {}).get(phase)
    if not wall_s or breakdown is None:
        return {}
    shares = {category: seconds / wall_s for category, seconds in breakdown.items()}
    idle = record.get("idle_frac", {}).get(phase)
    if idle is not None:
        shares["idle"] = idle
    return shares


def top_categories(record: Mapping, phase: str, count: int = TOP_CATEGORIES) -> str:
    shares = phase_shares(record, phase)
    busy = sorted(((s, c) for c, s in shares.items() if c != "idle"), reverse=True)[:count]
    text = " ".join(f"{category} {100 * share:.0f}%" for share, category in busy)
    return text + ("" if record.get("profile_reliable", {}).get(phase, True) else " (unreliable)")


def output_tokens_per_s(record: Mapping) -> float | None:
    """Median over iterations of generated tokens (whole batch) per second of e2e time."""
    rates = [record["batch_size"] * n / s for n, s in zip(record["gen_lens"], record["e2e_s"]) if s > 0]
    return median(rates) if rates else None


def baseline_stack(family: str) -> str:
    spec = FAMILIES.get(family)
    return "+".join(spec.baseline) if spec else "eager"


def evidence_summary(evidence: Mapping) -> str:
    """One short phrase per lever, each in the lever's own words (Lever.brief)."""
    parts = []
    for lever, found in evidence.items():
        try:
            text = LEVERS.get(lever).brief(found)
        except (HarnessError, KeyError):  # a record from a harness with other levers
            text = " ".join(f"{key}={value}" for key, value in found.items())
        parts.append(f"{lever}: {text}")
    return "; ".join(parts)


def _median_or_none(samples) -> float | None:
    return median(samples) if samples else None


def rows(records: Iterable[Mapping]) -> list[Row]:
    records = list(records)
    baselines = {
        r["workload_id"]: r["e2e_s"]
        for r in records
        if r["stack"] == baseline_stack(r["family"]) and r["status"] == "ok"
    }
    table = []
    for r in records:
        measured = bool(r["e2e_s"])
        table.append(
            Row(
                case_id=r["id"],
                status=r["status"],
                ttft_p50_s=_median_or_none(r["ttft_s"]),
                tpot_p50_s=_median_or_none(r["tpot_s"]),
                tpot_p90_s=reported_quantile(r["tpot_s"], 0.9) if r["tpot_s"] else None,
                tokens_per_s=output_tokens_per_s(r) if measured else None,
                peak_mem_bytes=r["peak_mem_bytes"],
                speedup=speedup(baselines.get(r["workload_id"], []), r["e2e_s"]) if measured else None,
                outputs_match=r["outputs_match"],
                evidence=evidence_summary(r["evidence"]) or r["message"],
                top={phase: top_categories(r, phase) for phase in r.get("breakdown", {})},
                idle_frac=r.get("idle_frac", {}),
                sol_frac=r.get("sol_frac", {}),
                ops_per_token=r.get("ops_per_token"),
                ops_unit=r.get("ops_unit", ""),
            )
        )
    return table


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value * scale:.{digits}f}{suffix}"


def render(table_rows: list[Row], title: str = "harness results") -> Table:
    table = Table(title=title, show_lines=False)
    for header, justify in [
        ("case", "left"), ("TTFT p50 ms", "right"), ("TPOT p50 ms", "right"), ("TPOT p90 ms", "right"),
        ("out tok/s", "right"), ("peak MiB", "right"), ("speed-up e2e", "right"), ("match", "center"),
        ("evidence", "left"),
    ]:
        table.add_column(header, justify=justify, overflow="fold", no_wrap=header == "case")
    for row in table_rows:
        match = {True: "[green]yes[/]", False: "[red]NO[/]", None: "—"}[row.outputs_match]
        case = row.case_id if row.status == "ok" else f"{row.case_id} [red]({row.status})[/]"
        table.add_row(
            case,
            _fmt(row.ttft_p50_s, MS_PER_S),
            _fmt(row.tpot_p50_s, MS_PER_S, 3),
            _fmt(row.tpot_p90_s, MS_PER_S, 3),
            _fmt(row.tokens_per_s, digits=1),
            _fmt(row.peak_mem_bytes, 1 / BYTES_PER_MIB, 1),
            _fmt(row.speedup, suffix="x"),
            match,
            row.evidence,
        )
    return table


PROFILE_PHASES = ("prefill", "decode")


def render_profile(table_rows: list[Row]) -> Table | None:
    """Second table: where the time goes in each case's profiled iteration (None if none was profiled)."""
    profiled = [row for row in table_rows if row.top]
    if not profiled:
        return None
    table = Table(title="where the time goes (profiled iteration; shares of its wall time)")
    table.add_column("case", no_wrap=True)
    for phase in PROFILE_PHASES:
        table.add_column(f"{phase}: top categories", overflow="fold")
        table.add_column(f"idle {phase[:3]}", justify="right")
        table.add_column(f"SoL {phase[:3]}", justify="right")
    table.add_column("per token", justify="right")
    for row in profiled:
        cells = [row.case_id]
        for phase in PROFILE_PHASES:
            cells += [
                row.top.get(phase) or "—",
                _fmt(row.idle_frac.get(phase), 100, 0, "%"),
                _fmt(row.sol_frac.get(phase), 100, 1, "%"),
            ]
        per_token = "—" if row.ops_per_token is None else f"{row.ops_per_token:.0f} {row.ops_unit}"
        table.add_row(*cells, per_token)
    return table


def render_text(table_rows: list[Row], width: int = 160, color: bool = False, title: str = "harness results") -> str:
    from rich.console import Console

    console = Console(width=width, force_terminal=color, record=True, file=_Null())
    console.print(render(table_rows, title))
    profile = render_profile(table_rows)
    if profile is not None:
        console.print(profile)
    return console.export_text(styles=color)


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
