"""Batch size as an axis: --batch-sizes, the preset sweep, and the memory estimate that cuts it."""

from functools import partial

import pytest

from harness.errors import HarnessError
from harness.families import FAMILIES, batch_sweep
from harness.options import RunOptions, parse_batch_sizes
from harness.spec.fit import FIT_FRACTION, GIB, capacity_bytes, does_not_fit, estimate
from harness.spec.matrix import Case, expand, with_batch_sizes
from harness.spec.selection import select
from harness.spec.workload import Lengths


def test_parse_batch_sizes():
    """--batch-sizes takes 'sweep' or positive integers, kept in order without duplicates, and refuses
    anything else with one message."""
    assert parse_batch_sizes("", (1, 2)) == ()
    assert parse_batch_sizes("sweep", (1, 2, 4)) == (1, 2, 4)
    assert parse_batch_sizes("4, 1,4", ()) == (4, 1)
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(HarnessError, match="--batch-sizes takes 'sweep' or positive integers"):
            parse_batch_sizes(bad, ())


def test_default_matrix_is_unchanged_without_the_option():
    """Without --batch-sizes the matrix keeps each workload's own batch size."""
    selection = select(RunOptions(families="llama"), cuda_available=False)
    assert selection.batch_sizes == ()
    cases, _ = selection.expand("llama")
    assert {case.batch_size for case in cases} == {w.batch_size for w in FAMILIES["llama"].workloads["tiny"]}


def test_batch_sizes_replace_each_workloads_batch_and_collapse_duplicates():
    """Batch sizes replace each workload's batch size, one workload per size, and duplicate workloads collapse
    into one."""
    workloads = FAMILIES["llama"].workloads["tiny"]
    swept = with_batch_sizes(workloads, (1, 2))
    assert len(swept) == 2 * len(workloads)
    assert {w.batch_size for w in swept} == {1, 2}
    assert len(with_batch_sizes(workloads + workloads, (1,))) == len(workloads)


def test_sweep_on_tiny_covers_its_sizes_for_every_family():
    """The sweep on tiny gives every family each of its batch sizes, named once in the case id, and drops
    nothing for memory."""
    selection = select(RunOptions(batch_sizes="sweep", stacks="sdpa,padded"), cuda_available=False)
    assert selection.batch_sizes == batch_sweep("tiny") == (1, 2, 4, 8, 16)
    for family in selection.families:
        cases, dropped = selection.expand(family)
        assert {case.batch_size for case in cases} == set(batch_sweep("tiny")), family
        assert all(case.id.count(f"-b{case.batch_size}-") == 1 for case in cases)
        assert not [cell for cell in dropped if "does not fit" in cell.reason]  # tiny fits this machine


def llama(preset, batch, dtype="bfloat16", stack=("sdpa",), lengths=Lengths(1024, 256)):
    return Case("llama", "tt", preset, dtype, batch, lengths, stack)


def test_estimate_grows_with_batch_and_explains_its_parts():
    """The memory estimate names its weights, build, KV cache and activations, matches Llama 2 7B by hand, grows
    its KV cache with the batch, and counts a lone quantized stack's float weights once."""
    small, large = estimate(llama("paper-7b", 1)), estimate(llama("paper-7b", 64))
    assert set(small.parts) == {"weights", "build", "kv_cache", "activations"}
    assert small.parts["weights"] == large.parts["weights"]
    assert large.parts["kv_cache"] == 64 * small.parts["kv_cache"]
    # Llama 2 7B in bf16: about 6.7e9 parameters x 2 bytes; KV for 1280 positions: 2x32x4096x1280x2 bytes
    assert 12 * GIB < small.parts["weights"] < 14 * GIB
    assert small.parts["kv_cache"] == 2 * 32 * 4096 * 1280 * 2
    quantized = estimate(llama("paper-7b", 1, stack=("sdpa", "int8dq")))
    assert quantized.parts["weights"] == small.parts["weights"]  # alone, a quantized stack quantizes the float model in place


@pytest.mark.parametrize(("dtype", "activations"), [
    # llama tiny (vocab 1024, hidden 128, FFN 256, 4 heads), batch 2, prompt 32, sequence 48:
    # logits 2x32x1024x4 + one layer 2x32x(4x128 + 2x256)x dtype + eager scores 2x4x32x48 x bytes per score
    ("bfloat16", 2 * 32 * 1024 * 4 + 2 * 32 * 1024 * 2 + 2 * 4 * 32 * 48 * (2 + 4 + 4)),
    ("float32", 2 * 32 * 1024 * 4 + 2 * 32 * 1024 * 4 + 2 * 4 * 32 * 48 * (4 + 4)),
])
def test_estimate_counts_eager_attentions_float32_softmax(dtype, activations):
    """The activations part counts eager attention's scores in the dtype plus softmax's float32 upcast and
    result (bfloat16: 10 bytes per score, float32: 8), by hand for llama tiny."""
    found = estimate(llama("tiny", 2, dtype=dtype, stack=("eager",), lengths=Lengths(32, 16)))
    assert found.parts["activations"] == activations


def test_sweep_stops_at_the_largest_batch_that_fits():
    """On an 80 GiB device the sweep keeps a gap-free prefix of batch sizes up to the largest that fits and
    drops the rest saying why, everything when no batch fits."""
    h100 = 80 * GIB
    fits = partial(does_not_fit, capacity=h100)
    spec = FAMILIES["llama"]
    cases, dropped = expand(spec, "paper-7b", ("bfloat16",), "cuda", ("sdpa",), batch_sweep("paper-7b"), fits)
    kept = sorted({case.batch_size for case in cases})
    assert kept[0] == 1 and kept[-1] < 256
    assert kept == [size for size in batch_sweep("paper-7b") if size <= kept[-1]]  # no holes: a prefix
    too_big = [cell for cell in dropped if "does not fit" in cell.reason]
    assert too_big and all(f"> {FIT_FRACTION:.0%} of 80.0 GiB" in cell.reason for cell in too_big)
    # Code Llama 34B in float32 (135 GB of weights) fits at no batch: everything is dropped.
    cases_34b, dropped_34b = expand(spec, "paper", ("float32",), "cuda", ("sdpa",), (1, 2), fits)
    assert cases_34b == [] and len(dropped_34b) == 2 * len(spec.workloads["paper"])


def test_chameleon_guidance_triples_the_rows_it_estimates():
    """Chameleon's text-to-image estimate counts the KV cache of the rows that classifier-free guidance
    triples."""
    text = Case("chameleon", "tt", "tiny", "float32", 2, Lengths(16, 64), ("sdpa",))
    image = Case("chameleon", "ti", "tiny", "float32", 2, Lengths(16, 64), ("sdpa",))
    assert estimate(image).parts["kv_cache"] > 2.5 * estimate(text).parts["kv_cache"]


def test_cpu_capacity_is_the_machines_memory():
    """On CPU the memory capacity is the memory available to this process, at least a GiB here."""
    assert capacity_bytes("cpu") > GIB


def test_matrix_command_takes_the_batch_axis(capsys):
    """`harness matrix --batch-sizes` lists a case for each requested batch size."""
    from harness.cli import main

    assert main(["matrix", "--families", "llama", "--stacks", "sdpa", "--batch-sizes", "1,3"]) == 0
    out = capsys.readouterr().out
    assert "llama-tt-tiny-b3-p128-g64-fp32-sdpa" in out and "llama-tt-tiny-b1-p32-g32-fp32-sdpa" in out
