"""Compare measured cases with baseline entries: one verdict per case and gated metric."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from harness.analyse.attribution import attribute, profile_of
from harness.analyse.policy import GATED_METRICS
from harness.analyse.stats import median
from harness.analyse.verdict import CONTENDED, ENV_MISMATCH, ERROR, IMPROVED, NO_BASELINE, REGRESSED, Policy, Verdict, judge
from harness.store.machine import env_differences, env_subset

UNRECORDED = "no baseline for this case"  # nothing was ever recorded for it (reports collapse these)


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
        verdict = judge(baseline, current, policy.for_metric(metric), policy.alpha)
        if factor and metric.endswith("_s"):
            note = f"per-iteration machine-speed normalized (probe {factor:.3f}x the baseline's)"
            verdict = replace(verdict, reason=f"{verdict.reason}; {note}" if verdict.reason else note)
        explained = ""
        if verdict.status in (REGRESSED, IMPROVED):
            explained = attribute(metric, entry.get("profile", {}), profile_of(record), verdict.status == REGRESSED)
        results.append(MetricResult(case_id, metric, verdict, attribution=explained))
    return results


def compare_records(
    records: Iterable[Mapping], baselines: Mapping[str, Mapping], environment: Mapping, policy: Policy,
    allowed_env: tuple[str, ...] = (),
) -> list[MetricResult]:
    results: list[MetricResult] = []
    for record in records:
        results += compare_case(record, baselines.get(record["id"]), environment, policy, allowed_env)
    return results


def regressions(results: Iterable[MetricResult]) -> list[MetricResult]:
    return [result for result in results if result.verdict.status == REGRESSED]
