"""`harness ab BASE HEAD`: the A/B gate's command (docs/ab.md). No torch in this process: the
models run in the two workers, each in its own side's tree and interpreter."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from harness.ab.decide import DEFAULT_ALPHA, DEFAULT_MAX_PAIRS, DEFAULT_MIN_PAIRS, DEFAULT_THRESHOLD, Rule
from harness.ab.driver import ABRun
from harness.ab.protocol import WorkerClient
from harness.ab.session import ABSession
from harness.ab.sides import Side, interpreter_sides, repo_root, revision_sides
from harness.errors import HarnessError
from harness.options import RunOptions, check_counts, option_flag

WORKER_OPTIONS = ("preset", "device", "dtype", "families", "stacks", "warmup", "iterations", "seed", "threads")
# The workers' OpenMP threads spin a third as long before they sleep (GNU OpenMP's default spin
# count is 300000), unless the user's environment says otherwise. Two processes take turns on the
# same cores, and the side that just ran kept them busy spinning while the other started: on the
# shared 2-core CPU the probe right after the other side's iteration read 1.4-2.2x the one 0.3 s
# later with the default, 0.8x with 100000, at the default's e2e (117 against 119 ms); sleeping at
# once (OMP_WAIT_POLICY=PASSIVE) also removed the penalty but made e2e 1.3-2x slower and noisier,
# measuring another program. Both sides run alike, so ratios stay fair (docs/ab.md).
WORKER_ENV = {"GOMP_SPINCOUNT": "100000"}
DEFAULT_PER_ROUND = 3  # iterations per side and case in a round pair: the median of 3 per-iteration ratios shrugs off one spike


def add_ab_command(commands, add_run_options: Callable) -> None:
    ab = commands.add_parser("ab", help="A/B gate: two revisions (or two Python environments) measured in one job, "
                                        "interleaved ABBA, judged on per-pair ratios (docs/ab.md)")
    ab.add_argument("base", nargs="?", help="BASE revision (a commit, branch or tag of this repository)")
    ab.add_argument("head", nargs="?", help="HEAD revision")
    ab.add_argument("--base-python", help="instead of revisions: BASE's Python interpreter, on the current tree")
    ab.add_argument("--head-python", help="HEAD's Python interpreter (with --base-python)")
    ab.add_argument("-k", dest="keyword", default="", help="only case ids containing this text ('|' separates alternatives)")
    ab.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="relative change that counts (default: %(default)s)")
    ab.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="false alarms per metric (default: %(default)s)")
    ab.add_argument("--min-pairs", type=int, default=DEFAULT_MIN_PAIRS, help="pairs before the first look (default: %(default)s)")
    ab.add_argument("--max-pairs", type=int, default=DEFAULT_MAX_PAIRS, help="pairs at most per case (default: %(default)s)")
    ab.add_argument("--per-round", type=int, default=DEFAULT_PER_ROUND, help="iterations per side in a pair (default: %(default)s)")
    add_run_options(ab, (*WORKER_OPTIONS, "contention_ratio", "results_dir"))
    ab.set_defaults(run=cmd_ab)


def typed(name: str, value: object):
    """A run option given on the command line, in its field's type (as the pytest plugin reads it)."""
    kind = type(getattr(RunOptions(), name))
    try:
        return kind(value)
    except ValueError:
        raise HarnessError(f"{option_flag(name)} takes a {kind.__name__}, got {value!r}") from None


def parse_rule(args: argparse.Namespace) -> Rule:
    try:
        return Rule(args.threshold, args.alpha, min_pairs=args.min_pairs, max_pairs=args.max_pairs)
    except ValueError as exc:
        raise HarnessError(f"harness ab: {exc}") from None


def sides_of(args: argparse.Namespace, repo: Path):
    """The two sides' context manager: revisions, or interpreters; a mix is refused."""
    pythons = args.base_python, args.head_python
    if any(pythons):
        if not all(pythons) or args.base or args.head:
            raise HarnessError("give BASE and HEAD revisions, or --base-python and --head-python (not both kinds)")
        return interpreter_sides(repo, args.base_python, args.head_python)
    if not (args.base and args.head):
        raise HarnessError("give BASE and HEAD revisions (or --base-python and --head-python)")
    return revision_sides(repo, args.base, args.head, sys.executable)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_ab(args: argparse.Namespace) -> int:
    # A terminated job (a CI timeout sends SIGTERM) unwinds like Ctrl-C: the workers are stopped and
    # the temporary worktrees removed; the record already holds every finished workload.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return _run_ab(args)
    except KeyboardInterrupt as exc:
        raise HarnessError(f"harness ab interrupted ({exc or 'Ctrl-C'}); the record in {args.results_dir} "
                           "holds the workloads finished so far") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_ab(args: argparse.Namespace) -> int:
    rule = parse_rule(args)
    if args.per_round < 1:
        raise HarnessError(f"--per-round must be at least 1, got {args.per_round}")
    options = {name: typed(name, getattr(args, name)) for name in WORKER_OPTIONS}
    contention_ratio = typed("contention_ratio", args.contention_ratio)
    check_counts(RunOptions(**options, contention_ratio=contention_ratio))
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    out = results / f"ab-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    with ExitStack() as stack:
        base, head = stack.enter_context(sides_of(args, repo_root(Path.cwd())))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="harness-ab-run-")))
        clients = {side.name: stack.enter_context(_worker(side, scratch)) for side in (base, head)}
        session = ABSession(clients, {"base": base, "head": head}, options, rule, out)
        states = session.run(ABRun(clients, rule, args.per_round, options["seed"], contention_ratio, _progress),
                             args.keyword, scratch)
    return session.publish(states)


def _progress(message: str) -> None:
    print(f"harness ab: {message}", file=sys.stderr, flush=True)


class _worker:
    """A side's worker process for the length of a `with` block."""

    def __init__(self, side: Side, scratch: Path) -> None:
        self.side, self.scratch = side, scratch

    def __enter__(self) -> WorkerClient:
        env = {name: value for name, value in WORKER_ENV.items() if name not in os.environ}
        self.client = WorkerClient(self.side.name, self.side.python, self.side.tree, self.scratch / f"{self.side.name}.log", env)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
