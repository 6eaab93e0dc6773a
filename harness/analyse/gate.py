"""Compare measured cases with baseline entries: one verdict per case and gated metric."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from harness.analyse.attribution import attribute, profile_of
from harness.analyse.policy import GATED_METRICS, METHOD_KEYS
from harness.analyse.stats import median
from harness.analyse.verdict import (
    CONTENDED,
    ENV_MISMATCH,
    ERROR,
    IMPROVED,
    MISSING,
    NO_BASELINE,
    REGRESSED,
    UNJUDGED,
    Policy,
    Verdict,
    judge,
)
from harness.errors import EXIT_REGRESSION, EXIT_UNJUDGED
from harness.spec.matrix import DTYPE_TOKENS
from harness.store.machine import env_differences, env_subset

UNRECORDED = "no baseline for this case"  # nothing was ever recorded for it (reports collapse these)
NOT_RUN = "in the baseline, not in this run"


@dataclass(frozen=True)
class MetricResult:
    case_id: str
    metric: str
    verdict: Verdict
    env_diff: tuple[str, ...] = field(default=())
    attribution: str = ""  # for a regressed or improved time: the categories that moved most


def metric_samples(samples: Mapping, metric: str) -> list[float]:
    """The samples a verdict is computed on. TPOT: one median per iteration, because tokens of
    one generation are not independent samples (they share the iteration's machine state)."""
    if metric == "tpot_s":
        per_token, gen_lens = list(samples.get("tpot_s") or []), list(samples.get("gen_lens") or [])
        medians, start = [], 0
        for gen_len in gen_lens:
            chunk = per_token[start : start + gen_len - 1]
            start += gen_len - 1
            if chunk:
                medians.append(median(chunk))
        return medians
    value = samples.get(metric)
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def speed_factor(baseline: Mapping, current: Mapping) -> float | None:
    """How much slower this machine ran the calibration probe than when the baseline was recorded."""
    base, now = baseline.get("calibration_s") or [], current.get("calibration_s") or []
    return median(now) / median(base) if base and now else None


def normalized(samples: list[float], metric: str, probes: list[float], reference_s: float) -> list[float]:
    """Times in units of the machine's speed: each iteration divided by the probe run just
    before it (relative to the baseline's median probe); other metrics unchanged."""
    if not metric.endswith("_s") or not probes:
        return samples
    if len(probes) == len(samples):
        return [value * reference_s / probe for value, probe in zip(samples, probes, strict=True)]
    return [value * reference_s / median(probes) for value in samples]


def method_change(baseline: Mapping, record: Mapping, metric: str) -> str:
    """Why the baseline's value of `metric` cannot be compared with the record's: it was measured
    another way (METHOD_KEYS; a baseline from before the method was kept has none); "" when not."""
    key = METHOD_KEYS.get(metric)
    if key is None or baseline.get(key, "") == record.get(key, ""):
        return ""
    return f"measured another way than the baseline: {record.get(key, '')!r}, the baseline {baseline.get(key, '') or 'unrecorded'!r}"


def compare_case(
    record: Mapping, entry: Mapping | None, environment: Mapping, policy: Policy, allowed_env: tuple[str, ...] = ()
) -> list[MetricResult]:
    case_id = record["id"]

    def every_metric(verdict: Verdict, diff: tuple[str, ...] = ()) -> list[MetricResult]:
        return [MetricResult(case_id, metric, verdict, diff) for metric in GATED_METRICS]

    if record.get("status") == CONTENDED:  # not judged, and said so: never a pass
        return every_metric(Verdict(CONTENDED, reason=f"not judged: {record.get('message', '')}"))
    if record.get("status") != "ok":
        return every_metric(Verdict(ERROR, reason=f"{record.get('status')}: {record.get('message', '')}"))
    if entry is None:
        return every_metric(Verdict(NO_BASELINE, reason=UNRECORDED))
    if entry["fingerprint"] != record["fingerprint"]:
        return every_metric(Verdict(NO_BASELINE, reason="case definition changed since the baseline"))
    diff = tuple(env_differences(entry["environment"], env_subset(environment), allowed_env))
    if diff:
        return every_metric(Verdict(ENV_MISMATCH, reason="; ".join(diff)), diff)
    factor = speed_factor(entry["samples"], record) if policy.normalize else None
    base_probes = entry["samples"].get("calibration_s") or []
    reference_s = median(base_probes) if factor else 0.0
    results = []
    for metric in GATED_METRICS:
        baseline = metric_samples(entry["samples"], metric)
        current = metric_samples(record, metric)
        if not baseline and not current:
            continue  # a metric this case never has (a recommender's TTFT): nothing to judge
        if factor:
            baseline = normalized(baseline, metric, base_probes, reference_s)
            current = normalized(current, metric, record["calibration_s"], reference_s)
        changed = method_change(entry["samples"], record, metric) if baseline else ""
        verdict = Verdict(NO_BASELINE, reason=changed) if changed else judge(baseline, current, policy.for_metric(metric), policy.alpha)
        if factor and metric.endswith("_s"):
            note = f"per-iteration machine-speed normalized (probe {factor:.3f}x the baseline's)"
            verdict = replace(verdict, reason=f"{verdict.reason}; {note}" if verdict.reason else note)
        moved = verdict.status in (REGRESSED, IMPROVED)
        explained = attribute(metric, entry.get("profile", {}), profile_of(record), verdict.status == REGRESSED) if moved else ""
        results.append(MetricResult(case_id, metric, verdict, attribution=explained))
    return results


def compare_records(
    records: Iterable[Mapping], baselines: Mapping[str, Mapping], environment: Mapping, policy: Policy,
    allowed_env: tuple[str, ...] = (),
) -> list[MetricResult]:
    records = list(records)
    results: list[MetricResult] = []
    for record in records:
        results += compare_case(record, baselines.get(record["id"]), environment, policy, allowed_env)
    for case_id in missing_cases(records, baselines):
        samples = baselines[case_id]["samples"]
        # One row per metric the baseline holds (as a judged case has), and never none: a missing case must show.
        metrics = [metric for metric in GATED_METRICS if metric_samples(samples, metric)] or list(GATED_METRICS)
        results += [MetricResult(case_id, metric, Verdict(MISSING, reason=NOT_RUN)) for metric in metrics]
    return results


def scope_pattern(record: Mapping) -> str | None:
    """The ids of the record's family, preset and dtype, any task, workload and stack, as a regex
    over case ids (`<family>-<task>-<preset>-b<batch>-...-<dtype token>[-<weights>]-<stack>`,
    harness.spec.matrix.Case.id); None for a record that does not say all three."""
    family, preset, dtype = record.get("family"), record.get("preset"), DTYPE_TOKENS.get(record.get("dtype", ""))
    if not (family and preset and dtype):
        return None
    # "-b<digits>" right after the preset keeps `paper` from matching `paper-7b`'s ids.
    return rf"{re.escape(family)}-[^-]+-{re.escape(preset)}-b\d+-(.+-)?{dtype}-"


def missing_cases(records: Iterable[Mapping], baselines: Mapping[str, Mapping]) -> list[str]:
    """Baseline cases in the run's scope with no record in the run. The scope is every (family,
    preset, dtype) the run recorded a case of, so a run restricted with --families, --preset or
    --dtype never reports the other families', presets' or dtypes' baselines; one restricted
    within them (--stacks, -k, another --batch-sizes) does. The machine class, which chose the
    baseline file, stands in for the device: neither ids nor entries name it."""
    records = list(records)
    patterns = {pattern for record in records if (pattern := scope_pattern(record))}
    if not patterns:
        return []
    in_scope = re.compile("|".join(f"(?:{pattern})" for pattern in sorted(patterns)))
    seen = {record["id"] for record in records}
    return sorted(case_id for case_id in baselines if case_id not in seen and in_scope.match(case_id))


def regressions(results: Iterable[MetricResult]) -> list[MetricResult]:
    return [result for result in results if result.verdict.status == REGRESSED]


def unaccepted(results: Iterable[MetricResult], allowed: Iterable[str] = ()) -> list[MetricResult]:
    """The verdicts that could not be judged and that --allow-unjudged does not accept."""
    accepted = set(allowed)
    return [result for result in results if result.verdict.status in UNJUDGED and result.verdict.status not in accepted]


def gate_status(results: list[MetricResult], allowed_unjudged: Iterable[str] = ()) -> int | None:
    """The exit status the gate imposes: a regression first (11), then anything not judged and
    not allowed (12: the gate fails closed), else None. A failed case's own exit 1 is the caller's."""
    if regressions(results):
        return EXIT_REGRESSION
    return EXIT_UNJUDGED if unaccepted(results, allowed_unjudged) else None
