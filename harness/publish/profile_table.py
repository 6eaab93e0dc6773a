"""Where the time goes: the profiled iteration's shares per phase, as a terminal table.

The shares are those the charts (harness/publish/charts.py) stack; the results table
(harness/publish/terminal.py) shows each phase's top categories from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.console import Group, RenderableType
from rich.table import Table

from harness.publish.row import Row
from harness.publish.units import EMPTY, fmt

PHASES = ("prefill", "decode")
TOP_CATEGORIES = 3


# The stages the families record (docs/families/), in the order an iteration runs them; results
# files keep keys sorted, so this order, not the file's, is what a chart can follow.
PIPELINE_ORDER = (
    "vq_encode", "embedding", "speech_encoder", "text_encoder", "encoder", "blocks", "prefill",
    "text_decoder_prefill", "decode", "text_decode", "image_decode", "cfg", "image_select", "kv_reorder",
    "text_decoder_steps", "text_to_unit", "vocoder", "head", "score", "topk",
)


def in_pipeline_order(names: Iterable[str]) -> list[str]:
    """Known stages (a `_s` suffix aside) in PIPELINE_ORDER, then the others as given."""
    names = list(dict.fromkeys(names))
    rank = {name: index for index, name in enumerate(PIPELINE_ORDER)}
    known = sorted((n for n in names if n.removesuffix("_s") in rank), key=lambda n: rank[n.removesuffix("_s")])
    return known + [n for n in names if n.removesuffix("_s") not in rank]


def recorded_phases(record: Mapping) -> list[str]:
    """The phases (or a family's own stages: "vq_encode", "encoder", ...) a record's profile has,
    in the order an iteration runs them where known (PIPELINE_ORDER)."""
    return in_pipeline_order(phase for phase in record.get("profile_wall_s", {}) if phase in record.get("breakdown", {}))


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


def render_profile(table_rows: list[Row]) -> RenderableType | None:
    """Where the time goes in each case's profiled iteration (None if none was profiled): a table
    of prefill and decode for decoder loops, and one line per stage for the staged runners."""
    profiled = [row for row in table_rows if row.top]
    phased = [row for row in profiled if set(row.top) <= set(PHASES)]
    staged = [row for row in profiled if not set(row.top) <= set(PHASES)]
    tables = [table for table in (_phase_table(phased), _stage_table(staged)) if table is not None]
    if not tables:
        return None
    return tables[0] if len(tables) == 1 else Group(*tables)


def _phase_table(profiled: list[Row]) -> Table | None:
    if not profiled:
        return None
    table = Table(title="where the time goes (profiled iteration; shares of its wall time)")
    table.add_column("case", no_wrap=True)
    for phase in PHASES:
        table.add_column(f"{phase}: top categories", overflow="fold")
        table.add_column(f"idle {phase[:3]}", justify="right")
        table.add_column(f"SoL {phase[:3]}", justify="right")
    table.add_column("per token", justify="right")
    for row in profiled:
        cells = [row.case_id]
        for phase in PHASES:
            cells += [
                row.top.get(phase) or EMPTY,
                fmt(row.idle_frac.get(phase), 100, 0, "%"),
                fmt(row.sol_frac.get(phase), 100, 1, "%"),
            ]
        per_token = EMPTY if row.ops_per_token is None else f"{row.ops_per_token:.0f} {row.ops_unit}"
        table.add_row(*cells, per_token)
    return table


def _stage_table(profiled: list[Row]) -> Table | None:
    """One line per stage of each case, in the order the profile lists them."""
    if not profiled:
        return None
    table = Table(title="where the time goes, by stage (profiled iteration; shares of each stage's wall time)")
    for name in ("case", "stage", "top categories"):
        table.add_column(name, overflow="fold")
    for name in ("idle", "SoL"):
        table.add_column(name, justify="right")
    for row in profiled:
        for index, (stage, top) in enumerate(row.top.items()):
            table.add_row(row.case_id if index == 0 else "", stage, top or EMPTY,
                          fmt(row.idle_frac.get(stage), 100, 0, "%"), fmt(row.sol_frac.get(stage), 100, 1, "%"))
    return table
