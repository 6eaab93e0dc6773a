"""Quantization levers: the generic quantize step, expansion drops, the tolerance-based output
check (a lossy lever that breaks the answer must fail), evidence and the report's column."""

import importlib.util

import pytest
import torch

from harness.families import FAMILIES, QUANT_SCHEMES
from harness.families.models import build_model
from harness.levers import LEVERS, stack_tolerance, unavailable_reason
from harness.levers.quantization import QUANT_TOLERANCE, quant_lever
from harness.levers.quantize_model import SCHEMES, Scheme, linear_census, quantized_copy
from harness.measure.case import RunContext
from harness.measure.equivalence import agreement
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.publish.terminal import render_text, rows
from harness.spec.matrix import OPT_IN_REASON, Case, expand
from harness.spec.workload import Lengths

LLAMA_LINEARS = 4 * 7 + 1  # tiny llama: 4 layers x (q, k, v, o, gate, up, down) + lm_head


@pytest.fixture(scope="module")
def tiny_llama():
    return build_model("llama", "tiny", "float32", "cpu", 0)


@pytest.mark.parametrize(
    ("name", "kind"), [("int8dq", "Int8Tensor"), ("int8wo", "Int8Tensor"), ("dynint8", "quantized.dynamic.modules.linear.Linear")]
)
def test_quantized_copy_replaces_every_linear_and_leaves_the_model(tiny_llama, name, kind):
    """A quantized copy replaces every linear layer with the scheme's kind, leaves the cached float model
    untouched, and computes something close to it but not equal."""
    quantized = quantized_copy(tiny_llama, name)
    found = quantized.evidence()
    assert found["linears"] == LLAMA_LINEARS
    assert found["replaced"] == LLAMA_LINEARS and found["kept_float"] == 0
    assert found["replaced_by"] == {kind: LLAMA_LINEARS}
    assert linear_census(tiny_llama) == {"float32": LLAMA_LINEARS}  # the cached model is untouched
    ids = torch.randint(0, 1024, (1, 12))
    with torch.no_grad():
        want, got = tiny_llama(ids).logits, quantized.model(ids).logits
    assert not torch.equal(want, got)  # it really computes something else...
    assert (want - got).abs().max() < 0.1 * want.abs().max()  # ...close to the float model


def test_quant_stacks_are_declared_for_the_decoders_and_carry_the_one_tolerance():
    """The decoder families declare every quantization stack, each carrying the quantization tolerance, and
    HSTU declares none."""
    for family in ("llama", "chameleon"):
        names = {"+".join(stack) for stack in FAMILIES[family].stacks}
        assert {f"sdpa+{scheme}" for scheme in QUANT_SCHEMES} <= names
    assert stack_tolerance(("sdpa", "int8dq")) is QUANT_TOLERANCE
    assert stack_tolerance(("sdpa", "static", "compile")) is None
    assert "int8dq" not in {lever for stack in FAMILIES["hstu"].stacks for lever in stack}


SPECULATION_PARAMS = {"draft_len": 4, "exit_layer": 2, "max_ngram": 3}  # the speculative stacks' parameters


def test_cpu_expansion_keeps_cpu_schemes_and_drops_the_rest_with_reasons():
    """On CPU the CPU-capable schemes are kept, the CUDA-only ones are dropped saying why, and an opt-in
    quantized stack runs only when named."""
    cases, dropped = expand(FAMILIES["llama"], "tiny", ("float32",), "cpu", lever_params=SPECULATION_PARAMS)
    kept = {case.stack_name for case in cases}
    assert {"sdpa+int8dq", "sdpa+int8wo", "sdpa+dynint8"} <= kept
    reasons = {cell.case_id.split("-fp32-")[1]: cell.reason for cell in dropped}
    assert reasons["sdpa+int4wo"] == "int4wo needs a cuda device (this run: cpu)"
    assert reasons["sdpa+autoquant"] == "autoquant needs a cuda device (this run: cpu)"
    assert reasons["sdpa+static+compile+int8dq"] == OPT_IN_REASON  # tiny: only when named
    named, _ = expand(
        FAMILIES["llama"], "tiny", ("float32",), "cpu", only_stacks=("sdpa+static+compile+int8dq",), lever_params=SPECULATION_PARAMS
    )
    assert {case.stack_name for case in named} == {"sdpa+static+compile+int8dq"}


def test_cuda_expansion_drops_by_dtype_and_missing_api():
    """On CUDA a scheme is dropped for the wrong dtype, for needing the CPU, or for a missing torchao API,
    each saying why."""
    assert unavailable_reason(("sdpa", "int4wo"), FAMILIES["llama"], "cuda", "float32") == (
        "int4wo runs in bfloat16 only (this case: float32)"
    )
    assert unavailable_reason(("sdpa", "dynint8"), FAMILIES["llama"], "cuda", "bfloat16") == "dynint8 needs a cpu device (this run: cuda)"
    assert unavailable_reason(("sdpa", "int8dq"), FAMILIES["llama"], "cuda", "bfloat16") == ""
    import torchao

    if not hasattr(torchao, "autoquant"):  # torchao 0.18: no autoquant API
        assert "has no autoquant API" in unavailable_reason(("sdpa", "autoquant"), FAMILIES["llama"], "cuda", "bfloat16")


def test_a_missing_package_drops_the_lever_with_that_reason(monkeypatch):
    """Without torchao its levers are dropped saying the package is not installed, while torch's own dynamic
    quantization stays available."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a))
    assert unavailable_reason(("sdpa", "int8dq"), FAMILIES["llama"], "cpu", "float32") == (
        "int8dq needs the torchao package, which is not installed"
    )
    assert unavailable_reason(("sdpa", "dynint8"), FAMILIES["llama"], "cpu", "float32") == ""  # torch's own


def test_agreement_teacher_forced_and_free_running():
    """Agreement counts teacher-forced top-1 and top-5 hits, free-running token agreement and the first
    divergence."""
    expected = torch.tensor([[3, 1, 2, 0]])
    got = torch.tensor([[3, 1, 0, 0]])
    forced = torch.zeros(1, 4, 8)
    for position, best in enumerate([3, 1, 5, 0]):  # position 2 prefers 5; the baseline's 2 is second
        forced[0, position, best] = 2.0
    forced[0, 2, 2] = 1.0
    found = agreement(expected, got, forced)
    assert found["top1_agreement"] == 0.75 and found["top5_agreement"] == 1.0
    assert found["token_agreement"] == 0.75 and found["first_divergence"] == 2 and found["positions"] == 4


def tiny_case(stack):
    return Case("llama", "tt", "tiny", "float32", 2, Lengths(16, 8), stack)


@pytest.fixture(scope="module")
def ctx():
    """One context for the module: the model is built and the baseline's outputs computed once."""
    return RunContext(RunOptions(warmup=1, iterations=3, quick_tokens=6), "cpu")


def test_int8dq_case_passes_within_tolerance_with_evidence(ctx):
    """An int8dq case passes within its tolerance, records its agreement and evidence, and the report shows an
    agreement column."""
    result = execute(tiny_case(("sdpa", "int8dq")), ctx, measure=False)
    assert result.status == "ok", result.message
    record = result.to_record()
    assert record["tolerance"]["metric"] == QUANT_TOLERANCE.metric
    assert record["agreement"]["top5_agreement"] >= QUANT_TOLERANCE.minimum
    assert record["agreement"]["positions"] == 2 * 6  # batch x quick tokens
    assert record["evidence"]["int8dq"]["replaced"] == LLAMA_LINEARS
    assert "within tolerance" in record["equivalence_note"]
    table = render_text(rows([record]), width=240)
    assert "agreement" in table and "top5 " in table


def _planted(name, apply):
    return Scheme("test only", "", apply)


def _noisy(model):
    """A 'quantization' that ruins the weights: the answer changes far beyond rounding."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(torch.randn_like(module.weight))
    return SCHEMES["dynint8"].apply(model)  # the harness's own path (it silences torch.ao's deprecation)


def test_a_lossy_lever_that_breaks_the_answer_fails_like_a_mismatch(ctx, monkeypatch):
    """A lossy lever whose answer falls outside the stated tolerance fails as a mismatch and is never
    measured."""
    monkeypatch.setitem(SCHEMES, "brokenq", _planted("brokenq", _noisy))
    with LEVERS.temporarily(quant_lever("brokenq")):
        result = execute(tiny_case(("sdpa", "brokenq")), ctx, measure=True)
    assert result.status == "mismatch" and result.outputs_match is False
    assert "outside the stated tolerance" in result.message
    assert result.agreement["top5_agreement"] < QUANT_TOLERANCE.minimum
    assert "e2e_s" not in result.samples  # never measured


def test_a_quantization_that_replaces_nothing_is_not_in_effect(ctx, monkeypatch):
    """A quantization that replaces no linear layer is an error saying the lever is not in effect."""
    monkeypatch.setitem(SCHEMES, "noopq", _planted("noopq", lambda model: model))
    with LEVERS.temporarily(quant_lever("noopq")):
        result = execute(tiny_case(("sdpa", "noopq")), ctx, measure=False)
    assert result.status == "error"
    assert "LeverNotInEffect: noopq: no linear layer was replaced" in result.message


def _all_but_the_head(model):
    """int8dq on every linear layer but the LM head, as torchao does silently for unsuitable shapes."""
    import torchao.quantization as tq

    config = tq.Int8DynamicActivationInt8WeightConfig()
    tq.quantize_(model, config, filter_fn=lambda module, fqn: isinstance(module, torch.nn.Linear) and fqn != "lm_head")
    return model


def test_a_partial_quantization_is_not_in_effect(ctx, monkeypatch):
    """A quantization that leaves some linear layers float is an error naming how many were replaced."""
    monkeypatch.setitem(SCHEMES, "partq", _planted("partq", _all_but_the_head))
    with LEVERS.temporarily(quant_lever("partq")):
        result = execute(tiny_case(("sdpa", "partq")), ctx, measure=False)
    assert result.status == "error"
    assert f"partq: only {LLAMA_LINEARS - 1} of {LLAMA_LINEARS} linear layers were replaced (1 kept float)" in result.message


@pytest.mark.parametrize("name", ["int8dq", "int8wo"])
def test_a_quantized_copy_leaves_the_inductor_configuration_as_it_was(tiny_llama, name):
    """torchao's quantize_ sets inductor options process-wide; after a quantized copy every option is back."""
    import torch._inductor.config as inductor_config

    before = inductor_config.get_config_copy()
    quantized_copy(tiny_llama, name)
    after = inductor_config.get_config_copy()
    assert {key: after[key] for key in before if before[key] != after[key]} == {}


def _cuda_int_mm(real):
    """torch._int_mm as CUDA has it: it refuses 16 rows or fewer (ATen's check, same message)."""
    def int_mm(a, b):
        if a.shape[0] <= 16:
            raise RuntimeError(f"_int_mm_out_cuda : expected self.size(0) needs to be greater than 16, but got {a.shape[0]}")
        return real(a, b)
    return int_mm


def test_int8dq_decode_that_would_time_the_float_fallback_is_not_in_effect(ctx, monkeypatch):
    """Where torchao's eager int8 matmul goes through torch._int_mm (CUDA, faked here on the CPU), a decode
    of 16 rows or fewer would silently run torchao's float32 fallback: the case fails, saying so."""
    from harness.levers import quantization

    real_probe, real_int_mm = quantization.int_mm_refusal, torch._int_mm

    def probe_under_cuda_rule(rows, device):
        # Only the probe sees CUDA's rule: torchao's CPU int8 path calls torch._int_mm for any rows.
        with monkeypatch.context() as patch:
            patch.setattr(torch, "_int_mm", _cuda_int_mm(real_int_mm))
            return real_probe(rows, device)

    monkeypatch.setattr(quantization, "SAFE_INT_MM_DEVICE_TYPES", frozenset({"cpu"}))
    monkeypatch.setattr(quantization, "int_mm_refusal", probe_under_cuda_rule)
    result = execute(tiny_case(("sdpa", "int8dq")), ctx, measure=False)
    assert result.status == "error"
    assert "torch._int_mm refuses decode's 2 row(s)" in result.message and "float32 matmul" in result.message


def test_the_int_mm_probe_names_the_rows_it_accepts(monkeypatch):
    """The probe runs torch._int_mm itself: the CPU's accepts one row; CUDA's rule refuses 16 and accepts 17."""
    from harness.levers.quantization import int_mm_refusal

    assert int_mm_refusal(1, torch.device("cpu")) == ""
    monkeypatch.setattr(torch, "_int_mm", _cuda_int_mm(torch._int_mm))
    assert "greater than 16, but got 16" in int_mm_refusal(16, torch.device("cpu"))
    assert int_mm_refusal(17, torch.device("cpu")) == ""


def test_a_quantized_session_moves_its_narrow_weights_in_the_speed_of_light():
    """The speed of light of a quantized stack counts its linear weights at the scheme's bytes (int8: 1,
    int4: a half), a float session's at the dtype's."""
    from types import SimpleNamespace

    from harness.measure.case import linear_weight_bytes

    assert linear_weight_bytes(SimpleNamespace(quantized=None)) is None
    assert linear_weight_bytes(SimpleNamespace(quantized=SimpleNamespace(scheme="int8dq"))) == 1
    assert linear_weight_bytes(SimpleNamespace(quantized=SimpleNamespace(scheme="int4wo"))) == 0.5
    assert all(SCHEMES[name].weight_bytes for name in ("int8dq", "int8wo", "int4wo", "dynint8"))
