"""The child process of --isolate: `python -m harness.measure.isolated_worker` (harness.measure.isolation).

It reads one JSON request on stdin (the run's options, the case ids, measure or check, the run
context so far) and answers in JSON lines on the stdout it was given: progress lines, the case
whose work starts, each case's record, and last the run context to hand back. Anything else that
writes to stdout (a library's print) goes to stderr, so it never breaks the reply stream.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO


def serve(request: dict, replies: TextIO) -> None:
    import torch

    from harness.measure.case import RunContext
    from harness.measure.env import apply_threads
    from harness.measure.workload import WorkloadRun, execute
    from harness.options import RunOptions
    from harness.spec.selection import select

    def send(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()  # at once: the parent must know the case under way when this process dies

    selection = select(RunOptions(**request["options"]), torch.cuda.is_available())
    apply_threads(selection.options.threads)
    ctx = RunContext(selection.options, selection.device, progress=lambda line: send({"progress": line}),
                     on_case=lambda case_id: send({"case": case_id}))
    ctx.peaks.update(request["peaks"])
    ctx.quiet_probe_s = request["quiet_probe_s"]
    known = {case.id: case for case in selection.expand_all()[0]}
    missing = [case_id for case_id in request["cases"] if case_id not in known]
    if missing:
        raise SystemExit(f"isolated worker: cases not in this selection's expansion: {', '.join(missing)}")
    cases = [known[case_id] for case_id in request["cases"]]
    if request["measure"]:
        results = WorkloadRun(cases, ctx).run()
        for case in cases:
            send({"record": results[case.id].to_record()})
    else:
        for case in cases:
            send({"record": execute(case, ctx, measure=False).to_record()})
    send({"done": {"peaks": ctx.peaks, "quiet_probe_s": ctx.quiet_probe_s}})


def main() -> None:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # prints of libraries go to stderr, never into the reply stream
    sys.stdout = sys.stderr
    serve(json.loads(sys.stdin.readline()), replies)


if __name__ == "__main__":
    main()
