"""Memory on every device (issue 17, defects 3 and 4): a low-precision build holds no float32 copy and
gives the float32 build's weights cast; a quantized stack measured alone quantizes the model itself; the
recorded footprint is the case's own model, session and growth, the same figure on the fake CUDA path and
on the CPU, smaller for a quantized stack; and every case is checked against the device's memory."""

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from harness.families.models import build_model, family_models, model_config
from harness.measure import footprint
from harness.measure.case import CaseRun, RunContext
from harness.options import RunOptions
from harness.spec.matrix import Case
from harness.spec.selection import select
from harness.spec.workload import Lengths
from tests.fake_cuda import FakeCuda

MIB = 2**20
FAMILIES = ("llama", "chameleon", "seamless", "hstu")


class AllocationLedger(TorchDispatchMode):
    """Bytes of the storages alive, and their peak, as the ops inside allocate and free them (each
    storage counted from its first op output until its last reference goes)."""

    def __init__(self) -> None:
        super().__init__()
        self.live_bytes = self.peak_bytes = 0
        self.seen: set[int] = set()

    def _freed(self, key: int, size: int) -> None:
        self.live_bytes -= size
        self.seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta" and id(tensor.untyped_storage()) not in self.seen:
                storage = tensor.untyped_storage()
                self.seen.add(id(storage))
                self.live_bytes += storage.nbytes()
                self.peak_bytes = max(self.peak_bytes, self.live_bytes)
                weakref.finalize(storage, self._freed, id(storage), storage.nbytes())
        return out


def float32_build_cast(family: str, seed: int, dtype: torch.dtype) -> torch.nn.Module:
    """The way models were built before: float32 on the device, then cast."""
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = family_models(family).random(model_config(family, "tiny"))
    return model.to(dtype).eval()


def tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(model.named_parameters()), **{f"buffer:{name}": b for name, b in model.named_buffers()}}


def test_a_bfloat16_build_holds_no_float32_copy_of_the_model():
    """Building tiny Llama in bfloat16 makes every parameter bfloat16 and never holds more than the bfloat16
    model plus its largest parameter in float32 (the float32-then-cast build held the float32 model)."""
    with AllocationLedger() as ledger:
        model = build_model("llama", "tiny", "bfloat16", "cpu", seed=0)
    params = list(model.parameters())
    assert {p.dtype for p in params} == {torch.bfloat16}
    model_bytes = sum(p.numel() * p.element_size() for p in params)
    largest_float32_bytes = max(p.numel() for p in params) * 4
    buffer_bytes = sum(b.numel() * 4 for b in model.buffers())
    assert ledger.peak_bytes <= model_bytes + largest_float32_bytes + buffer_bytes + 64 * 1024, ledger.peak_bytes


@pytest.mark.parametrize("family", FAMILIES)
def test_a_bfloat16_build_has_the_float32_builds_weights_cast(family):
    """For each family's tiny preset, the bfloat16 build's parameters and buffers are bit for bit the float32
    build's cast to bfloat16 (same generator draws, one rounding), for the same seed."""
    built = tensors(build_model(family, "tiny", "bfloat16", "cpu", seed=5))
    cast = tensors(float32_build_cast(family, 5, torch.bfloat16))
    assert built.keys() == cast.keys()
    different = [name for name in built if built[name].dtype != cast[name].dtype or not torch.equal(built[name], cast[name])]
    assert not different, different[:5]


def test_a_synthetic_variant_keeps_the_float32_builds_weights_cast():
    """The draft-friendly variant rescales float32 weights, so its bfloat16 build is still the float32 build,
    rescaled, then cast (a rescale of rounded weights would move a quarter of them by one unit)."""
    from harness.spec.weights import weight_variant

    old = float32_build_cast("llama", 2, torch.float32)
    weight_variant("draft-friendly").apply(old)
    built = tensors(build_model("llama", "tiny", "bfloat16", "cpu", seed=2, weights="draft-friendly"))
    assert all(torch.equal(built[name], value) for name, value in tensors(old.to(torch.bfloat16)).items())


def test_bfloat16_weights_depend_on_the_seed_only():
    """Two bfloat16 builds with one seed are equal; another seed gives other weights."""
    a, b, c = (build_model("llama", "tiny", "bfloat16", "cpu", seed=s).lm_head.weight for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def tiny_llama(stack: tuple[str, ...]) -> Case:
    return Case("llama", "tt", "tiny", "float32", 1, Lengths(16, 8), stack)


def checked(case: Case, ctx: RunContext, keep_float: bool = True) -> CaseRun:
    run = CaseRun(case, ctx, keep_float)
    assert run.check(run.draws[0]), run.result.message
    return run


def test_a_quantized_stack_alone_quantizes_the_model_itself():
    """Measured alone, a quantized stack takes the float model from the cache and quantizes it in place: no
    float weight of it stays allocated beside the quantized ones, and the next case gets a fresh float build."""
    ctx = RunContext(RunOptions(), "cpu")
    float_weight = weakref.ref(ctx.models.get("llama", "tiny", "float32", "cpu", 0, "", "").lm_head.weight)
    run = checked(tiny_llama(("sdpa", "int8dq")), ctx, keep_float=False)
    assert run.session.model is run.model  # no copy
    assert float_weight() is None  # the float weight is gone: quantized in place
    assert run.session.quantized.evidence()["replaced"] == run.session.quantized.evidence()["linears"]
    fresh = ctx.models.get("llama", "tiny", "float32", "cpu", 0, "", "")
    assert fresh is not run.model and type(fresh.lm_head.weight) is torch.nn.Parameter


def test_a_quantized_stack_beside_float_stacks_leaves_their_model_float():
    """Kept warm beside float stacks (interleaved rounds), a quantized stack quantizes a copy: the shared model's
    linears stay float for the others."""
    ctx = RunContext(RunOptions(), "cpu")
    float_run = checked(tiny_llama(("sdpa",)), ctx)
    quantized_run = checked(tiny_llama(("sdpa", "int8dq")), ctx)
    assert quantized_run.session.model is not float_run.model
    assert float_run.model.lm_head.weight.dtype == torch.float32 and type(float_run.model.lm_head.weight) is torch.nn.Parameter


class FixedGrowth:
    """A peak reader that reports the same growth for every case, so footprints differ by what is counted."""

    method = "fixed_growth"

    def __init__(self, device: str) -> None:
        pass

    def start(self) -> None:
        pass

    def peak_bytes(self) -> int:
        return 8 * MIB


def test_a_quantized_stacks_footprint_is_below_the_float_stacks(monkeypatch):
    """With the same growth, the int8 stack's recorded footprint is below the float stack's (its weights are
    int8), every footprint is the sum of its parts, and a static cache counts in its session's bytes."""
    monkeypatch.setattr(footprint, "make_peak", FixedGrowth)
    ctx = RunContext(RunOptions(), "cpu")
    results = {}
    for stack in (("sdpa",), ("sdpa", "static"), ("sdpa", "int8dq")):
        run = checked(tiny_llama(stack), ctx)
        run.measure_peak()
        results[stack] = run.result
    plain, static, int8 = (results[s] for s in (("sdpa",), ("sdpa", "static"), ("sdpa", "int8dq")))
    assert int8.peak_mem_bytes < plain.peak_mem_bytes
    for result in results.values():
        assert result.peak_mem_bytes == sum(result.peak_mem_parts.values())
    assert int8.peak_mem_parts["model_bytes"] < 0.6 * plain.peak_mem_parts["model_bytes"]
    config = model_config("llama", "tiny")
    kv_bytes = 2 * config.num_hidden_layers * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 24 * 4
    assert static.peak_mem_parts["session_bytes"] >= kv_bytes > plain.peak_mem_parts["session_bytes"]


HELD_BYTES = 96 * MIB  # what the peak iteration allocates on top of the model
OTHERS_BYTES = 3 * 2**30  # on the fake device: the other warm sessions, the float model a copy came from


def footprint_of(run: CaseRun, monkeypatch, cuda: FakeCuda | None) -> int:
    """The footprint recorded for a run whose peak iteration also holds HELD_BYTES; on the fake CUDA
    device the allocator already holds OTHERS_BYTES and the model when the window opens."""
    real_run = run.runner.run

    def run_holding(session, inputs, annotate=False):
        held = torch.ones(HELD_BYTES // 4)  # touched: resident
        if cuda is not None:
            cuda.peak_bytes = cuda.allocated_bytes + HELD_BYTES
        try:
            return real_run(session, inputs, annotate)
        finally:
            del held

    monkeypatch.setattr(run.runner, "run", run_holding)
    if cuda is not None:
        model_bytes = sum(p.numel() * p.element_size() for p in run.model.parameters())
        cuda.allocated_bytes = cuda.peak_bytes = OTHERS_BYTES + model_bytes
        monkeypatch.setattr(run.ctx, "device", "cuda")
    run.measure_peak()
    return run.result.peak_mem_bytes


def test_the_footprint_means_the_same_on_cuda_and_on_the_cpu(monkeypatch):
    """The same case's footprint read through the (fake) CUDA allocator, which already holds other sessions'
    gigabytes, and through the CPU's resident size agree within 20%, and both count the model: neither is the
    allocator's absolute peak nor a growth that leaves the weights out."""
    ctx = RunContext(RunOptions(), "cpu")
    cpu_bytes = footprint_of(checked(tiny_llama(("sdpa",)), ctx), monkeypatch, None)
    cuda = FakeCuda().install(monkeypatch)
    cuda_bytes = footprint_of(checked(tiny_llama(("sdpa",)), ctx), monkeypatch, cuda)
    model_bytes = sum(p.numel() * 4 for p in ctx.models.get("llama", "tiny", "float32", "cpu", 0, "", "").parameters())
    assert cuda_bytes >= model_bytes + HELD_BYTES
    assert abs(cpu_bytes - cuda_bytes) <= 0.2 * cuda_bytes, (cpu_bytes, cuda_bytes)


def test_every_case_is_checked_against_the_devices_memory(monkeypatch):
    """On a (fake) CUDA device with 2 GiB free, Llama 2 7B's declared workloads are dropped at expansion, each
    saying it does not fit and by how much, while tiny's all run (no --batch-sizes asked for)."""
    cuda = FakeCuda().install(monkeypatch)
    cuda.free_bytes = 2 * 2**30
    for preset, fits in (("paper-7b", False), ("tiny", True)):
        selection = select(RunOptions(families="llama", preset=preset, device="cuda", stacks="sdpa"), cuda_available=True)
        cases, dropped = selection.expand("llama")
        memory = [cell for cell in dropped if "does not fit the device's memory" in cell.reason]
        if fits:
            assert cases and not memory
        else:
            assert not cases and memory and all("GiB available" in cell.reason for cell in memory)
