"""Host syncs in the timed loops of every runner (tests/sync_guard.py; the rule: docs/profiling.md#host-syncs-in-the-timed-loop).

Every family's tiny cells run their output check, then one timed iteration under the guard; CUDA
graphs included (tests/fake_cuda.py's fake graph captures in the check, failing on any host sync as
CUDA would, and replays in the timed iteration). Inside a step
(what compile and CUDA graphs wrap; for speculative decoding every model forward) no host sync may
happen; in the per-token loop (spans that repeat in a run) none either, except speculative
decoding's per-round reads between its forwards, named in INHERENT_BETWEEN_FORWARDS.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import pytest
import torch

from harness.families import FAMILIES
from harness.families.base import SessionBase
from harness.families.models import ModelCache
from harness.lazy import resolve
from harness.levers.plan import plan_for
from harness.measure import clock as clocks
from harness.options import RunOptions
from harness.spec.matrix import declared_cells, drop_reason
from harness.spec.selection import lever_params
from tests.fake_cuda import install_fake_graphs
from tests.sync_guard import SyncGuard, describe

SEED = 0
PROMPT_CAP = 16  # tokens or speech frames: the guard checks which ops run, not how long
TOKENS = 4  # prefill and three steps: the loop's spans repeat
ROUNDS_TOKENS = 16  # speculative decoding: enough tokens for several rounds even when drafts are accepted

# Levers whose cells are left out here, and why (every other lever of every family runs).
SKIPPED_LEVERS = {
    "compile": "inductor costs 10-60 s per stack on this CPU; compile wraps the very step that runs here eagerly",
    "autoquant": "it times candidate kernels at its first call, on a host timer by design",
    "flex": "its attention kernel is compiled, and torch.compile refuses to run under a Python dispatch mode",
}

# Speculative decoding's reads on the host between its forwards, once per round, by design (the
# next round's shapes depend on them): (function, kind) -> why.
INHERENT_BETWEEN_FORWARDS = {
    ("accepted_prefix", "value"): "how many drafts were accepted: the next round's length",
    ("speculative_generate", "to_host"): "lookup: the emitted tokens join the host-side n-gram history",
    ("draft_lookup", "upload"): "lookup: the drafts found on the host become the verify forward's input",
}


def guarded_cells() -> list:
    """One cell per family, task, beam count and stack of the tiny matrix that runs on the CPU, or on
    CUDA with CUDA graphs (faked here), without the skipped levers."""
    cells: dict = {}
    for spec in FAMILIES.values():
        params = lever_params(RunOptions(preset="tiny"), spec.name)  # the options' defaults (draft_len, exit_layer)
        for workload, case in declared_cells(spec, "tiny", ("float32",), (), (), params):
            runs_here = not drop_reason(spec, workload, case, "cpu", (), None)
            faked = "cudagraphs" in case.stack and not drop_reason(spec, workload, case, "cuda", (), None)
            if not (runs_here or faked) or set(case.stack) & set(SKIPPED_LEVERS):
                continue
            cells.setdefault((case.family, case.task, case.beams, case.stack), case)
    return list(cells.values())


CELLS = guarded_cells()


@pytest.fixture(scope="module")
def models():
    return ModelCache()  # cells come family by family, so one model at a time serves them


def instrument(monkeypatch, guard: SyncGuard) -> None:
    """Every session's wrapped step reports to the guard, every clock its spans; CUDA graphs faked."""
    ready = SessionBase.ready
    monkeypatch.setattr(SessionBase, "ready", lambda session, step: guard.step(ready(session, step)))
    cpu_clock = clocks.CLOCKS["cpu"]
    monkeypatch.setitem(clocks.CLOCKS, "cpu", lambda marks: guard.clock(cpu_clock(marks)))
    install_fake_graphs(monkeypatch)


@contextmanager
def forwards_as_steps(model, guard: SyncGuard):
    """Each forward of the model counted as a step: speculative decoding's draft and verify forwards."""
    model.forward = guard.step(model.forward)
    try:
        yield
    finally:
        del model.forward  # the class's forward again (the model is shared by later cells)


def run_guarded(case, models, monkeypatch) -> tuple[SyncGuard, object]:
    """The cell's output check, then one timed iteration under the guard: the guard and that output."""
    model = models.get(case.family, case.preset, case.dtype, "cpu", SEED, "", case.weights)
    runner = resolve(FAMILIES[case.family].runner)(case, model, "cpu", SEED)
    prompt_len, gen_len = case.lengths.draws(1, SEED)[0]
    plan = plan_for(case.stack, case.params)
    draw = (min(prompt_len, PROMPT_CAP), min(gen_len, ROUNDS_TOKENS if plan.drafting else TOKENS))
    guard = SyncGuard()
    # one thread: the guard checks which ops run, not their speed (two OpenMP threads on a loaded
    # 2-core machine made each op 50x slower here); the autouse fixture restores the count
    torch.set_num_threads(1)
    instrument(monkeypatch, guard)
    session = runner.session(plan)
    runner.run(session, runner.inputs(draw))  # the output check: CUDA graphs capture (the fake fails on a sync)
    with forwards_as_steps(session.model, guard) if plan.drafting else nullcontext(), session.timed(), guard:
        output = runner.run(session, runner.inputs(draw))  # a timed iteration, over the reset caches
    return guard, output


def loop_syncs_not_inherent(guard: SyncGuard) -> list:
    return [sync for sync in guard.in_loop() if sync.in_step or (sync.function, sync.kind) not in INHERENT_BETWEEN_FORWARDS]


@pytest.mark.parametrize("cell", CELLS, ids=[cell.id for cell in CELLS])
def test_no_host_sync_inside_a_timed_step_or_the_token_loop(cell, models, monkeypatch):
    """No op that would make the host wait for a CUDA device runs inside the step compile and CUDA
    graphs wrap, nor in the per-token loop of the timed region (speculative decoding: only its named
    per-round reads, between its forwards)."""
    guard, output = run_guarded(cell, models, monkeypatch)
    assert guard.step_calls > 0, "no guarded step ran: the check would see nothing"
    drafting = plan_for(cell.stack, cell.params).drafting
    found = loop_syncs_not_inherent(guard) if drafting else guard.in_loop()
    assert not found, f"host syncs in the timed step or loop of {cell.id}:\n{describe(found)}"
    if drafting:  # at most one acceptance read per verify round (none in a round without drafts)
        reads = [sync for sync in guard.syncs if sync.function == "accepted_prefix"]
        assert 1 <= len(reads) <= output.metrics["verify_forwards"]


# -- the guard itself: it catches what it must, and nothing else ------------------------------------
PLANTED = {  # name -> (a host sync planted in a step, the kind the guard must record)
    "item": (lambda x: x.sum().item(), "value"),
    "bool": (lambda x: bool(x.sum() > 0), "value"),
    "int": (lambda x: int(x.argmax()), "value"),
    "tolist": (lambda x: x.tolist(), "to_host"),
    "cpu": (lambda x: x.cpu(), "to_host"),
    "numpy": (lambda x: x.numpy(), "to_host"),
    "nonzero": (lambda x: x.nonzero(), "shape"),
    "masked_select": (lambda x: x.masked_select(x > 0), "shape"),
    "unique": (lambda x: x.unique(), "shape"),
    "bool_mask_index": (lambda x: x[x > 0], "shape"),
    "repeat_interleave": (lambda x: torch.repeat_interleave((x.abs() * 3).long()), "shape"),
    "host_data": (lambda x: x + torch.tensor([1.0, 2.0, 3.0, 4.0]), "upload"),
    "other_device": (lambda x: x.to("meta"), "device"),
}


@pytest.mark.parametrize("plant", sorted(PLANTED))
def test_the_guard_records_a_planted_host_sync_inside_a_step(plant):
    """Each kind of host sync planted in a step is recorded, as inside the step, with its kind and the
    planting line."""
    sync, kind = PLANTED[plant]
    guard = SyncGuard()
    step = guard.step(lambda x: (sync(x), x * 2)[1])
    with guard:
        step(torch.randn(4))
    assert guard.syncs, f"{plant} went unseen"
    assert {found.kind for found in guard.syncs} >= {kind} and all(found.in_step for found in guard.syncs)
    assert all(found.site.startswith("tests/test_sync_guard.py:") for found in guard.syncs)


def test_a_clean_step_records_nothing():
    """What the decode steps do (matmul, softmax, argmax, topk, long-index gathers, cat, in-place
    copies, a same-device `.to`) is no host sync."""
    guard = SyncGuard()
    x, index = torch.randn(4, 8), torch.tensor([3, 0, 2, 1])
    with guard:
        scores = (x @ x.T).softmax(-1)
        picked = torch.cat([scores.argmax(-1, keepdim=True), scores.topk(2).indices, x[index].argmax(-1, keepdim=True)], 1)
        x.index_select(0, index).copy_(x.to(x.device))
        picked.to(torch.float32)
    assert guard.syncs == []


def test_syncs_are_attributed_to_the_span_their_mark_closes():
    """A sync belongs to the span its next mark names; a repeated span is the loop; before start and
    after the marks are read is untimed."""
    guard = SyncGuard()
    clock = guard.clock(clocks.CpuClock(4))
    x = torch.ones(2)
    with guard:
        x.tolist()
        clock.start()
        x.sum().item()
        clock.mark("prefill")
        for _ in range(2):
            guard.step(lambda: x.nonzero())()
            clock.mark("decode")
        clock.mark("vocoder")
        x.numpy()
        clock.marks()
    found = [(sync.kind, sync.span, sync.in_loop, sync.in_step) for sync in guard.syncs]
    assert found == [
        ("to_host", "untimed", False, False), ("value", "prefill", False, False),
        ("shape", "decode", True, True), ("shape", "decode", True, True), ("to_host", "untimed", False, False),
    ]
    assert guard.loop_spans == {"decode"}


def _cell(family: str, stack: tuple[str, ...], task: str = "") -> object:
    return next(case for case in CELLS if case.family == family and case.stack == stack and task in ("", case.task))


def test_a_sync_planted_in_the_decode_step_fails_the_family_check(models, monkeypatch):
    """An `.item()` planted in the Llama decode step is found inside the step, at the planting line."""
    from harness.families.decoder import DecoderSession

    forward_step = DecoderSession.forward_step
    monkeypatch.setattr(DecoderSession, "forward_step", lambda self, ids, positions: (
        float(ids.sum()), forward_step(self, ids, positions))[1])
    guard, _ = run_guarded(_cell("llama", ("sdpa",)), models, monkeypatch)
    planted = [sync for sync in guard.in_loop() if sync.site.startswith("tests/test_sync_guard.py:")]
    assert planted and all(sync.in_step and sync.span == "decode" for sync in planted)


def test_a_sync_planted_between_steps_is_in_the_loop_not_the_step(models, monkeypatch):
    """A `.cpu()` planted in Chameleon's token choice is found in the loop, outside the step."""
    from harness.families.chameleon.runner import ChameleonRunner

    select = ChameleonRunner.select_text
    monkeypatch.setattr(ChameleonRunner, "select_text", lambda self, logits: select(self, logits.cpu()))
    guard, _ = run_guarded(_cell("chameleon", ("sdpa",), "tt"), models, monkeypatch)
    planted = [sync for sync in guard.in_loop() if sync.op == "Tensor.cpu"]
    assert planted and not any(sync.in_step for sync in planted)
    assert {sync.span for sync in planted} == {"decode_choice"}  # prefill's choice runs once: not the loop


def test_a_sync_planted_in_a_captured_step_fails_the_fake_capture(models, monkeypatch):
    """With CUDA graphs, a `nonzero` planted in the step fails at capture, as it does on CUDA."""
    from harness.families.hstu.runner import RecommenderSession

    encode = RecommenderSession._encode_padded
    monkeypatch.setattr(RecommenderSession, "_encode_padded", lambda self, x, *rest: (
        x.nonzero(), encode(self, x, *rest))[1])
    with pytest.raises(AssertionError, match="host sync inside a captured step"):
        run_guarded(_cell("hstu", ("fixed", "cudagraphs")), models, monkeypatch)
