"""One A/B job: the workers' greeting and plans, the workloads in turn, the record rewritten
after each (a crash loses nothing measured), and the verdicts published. No torch here."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from harness.ab.decide import Rule
from harness.ab.driver import ONE_SIDED, ABRun, CaseState
from harness.ab.protocol import WorkerClient, WorkerError
from harness.ab.sides import Side
from harness.ab.worker import PROTOCOL
from harness.errors import HarnessError


class ABSession:
    def __init__(self, clients: Mapping[str, WorkerClient], sides: Mapping[str, Side], options: dict, rule: Rule, out: Path) -> None:
        self.clients, self.sides, self.options, self.rule, self.out = clients, sides, options, rule, out
        self.environments: dict[str, dict] = {}
        self.started = time.perf_counter()

    def greet(self) -> None:
        """Each worker runs its own side's code, speaking this driver's protocol."""
        for name, client in self.clients.items():
            hello = client.checked("hello")
            if hello.get("protocol") != PROTOCOL:
                raise HarnessError(f"{name} worker speaks A/B protocol {hello.get('protocol')}, this driver {PROTOCOL}")
            tree = self.sides[name].tree.resolve()
            if not Path(hello["harness_file"]).resolve().is_relative_to(tree):
                raise HarnessError(f"{name} worker imported {hello['harness_file']}, not the code in {tree}")
            self.environments[name] = hello

    def plan(self, keyword: str) -> tuple[dict[str, list[str]], list[CaseState]]:
        """The workloads both sides have (case ids in BASE's order), and the cases only one side has."""
        plans = {name: client.checked("plan", options=self.options, keyword=keyword) for name, client in self.clients.items()}
        ids = {name: [case["id"] for case in plan["cases"]] for name, plan in plans.items()}
        if not ids["base"] and not ids["head"]:
            raise HarnessError(f"no case matches (options {self.options}, -k {keyword!r}): nothing to compare")
        workloads: dict[str, list[str]] = {}
        for case in plans["base"]["cases"]:
            if case["id"] in ids["head"]:
                workloads.setdefault(case["workload_id"], []).append(case["id"])
        only = [CaseState(case_id, "", status=ONE_SIDED, message=f"only {name.upper()} has this case: not compared")
                for name, other in (("base", "head"), ("head", "base")) for case_id in ids[name] if case_id not in ids[other]]
        return workloads, only

    def run(self, ab: ABRun, keyword: str, scratch: Path) -> list[CaseState]:
        self.greet()
        workloads, states = self.plan(keyword)
        total = sum(len(ids) for ids in workloads.values())
        ab.progress(f"{total} case(s) in {len(workloads)} workload(s) on both sides; record: {self.out}")
        for index, (workload_id, case_ids) in enumerate(workloads.items(), 1):
            ab.progress(f"workload {index}/{len(workloads)}: {workload_id} ({len(case_ids)} case(s))")
            try:
                states += ab.workload(workload_id, case_ids, scratch / f"outputs-{index}")
            except WorkerError:
                self.save(states)  # what was measured stays on disk before the error ends the job
                raise
            self.save(states)
        return states

    def save(self, states: list[CaseState]) -> dict:
        from harness.ab.report import record
        from harness.store.records import write_json_atomic

        sides = {name: side.to_dict() for name, side in self.sides.items()}
        data = record(sides, self.environments, self.options, self.rule, states, time.perf_counter() - self.started)
        write_json_atomic(self.out, data)
        return data

    def publish(self, states: list[CaseState]) -> int:
        from harness.ab.report import markdown, table
        from harness.publish.console import wide_console
        from harness.publish.verdicts import write_step_summary

        data = self.save(states)
        wide_console().print(table(data, states))
        written = write_step_summary(markdown(data, states))
        print(f"harness ab: record written to {self.out}" + (f"; verdicts appended to {written}" if written else ""))
        return data["exit_status"]
