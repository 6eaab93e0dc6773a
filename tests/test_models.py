import pytest
import torch

from harness.errors import HarnessError
from harness.families.models import ModelCache, build_model, count_parameters_on_meta
from harness.measure.case import RunContext
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.spec.matrix import Case
from harness.spec.workload import Lengths

PUBLISHED = {"paper-7b": 6.74e9, "paper": 33.7e9}  # Llama 2 7B, Code Llama 34B


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_paper_presets_match_published_sizes_on_meta(preset):
    """The llama paper presets' parameter counts on meta lie within 1% of Llama 2 7B and Code Llama 34B."""
    count = count_parameters_on_meta("llama", preset)
    assert abs(count - PUBLISHED[preset]) / PUBLISHED[preset] < 0.01, count


def test_random_weights_are_seeded():
    """Random llama weights depend only on the seed."""
    a = build_model("llama", "tiny", "float32", "cpu", seed=3)
    b = build_model("llama", "tiny", "float32", "cpu", seed=3)
    c = build_model("llama", "tiny", "float32", "cpu", seed=4)
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_dtype_is_applied():
    """A model built in bfloat16 has every parameter in bfloat16."""
    model = build_model("llama", "tiny", "bfloat16", "cpu", seed=0)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_checkpoint_saved_here_loads_and_generates_the_same(tmp_path):
    """A saved llama checkpoint loads the same weights and generates the same tokens as the random model it
    came from."""
    original = build_model("llama", "tiny", "float32", "cpu", seed=7)
    original.save_pretrained(tmp_path)
    loaded = build_model("llama", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(tmp_path))
    for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    case = Case("llama", "tt", "tiny", "float32", 1, Lengths(8, 4), ("eager",))
    contexts = [RunContext(RunOptions(seed=7, checkpoint_dir=folder), "cpu") for folder in ("", str(tmp_path))]
    for ctx in contexts:
        assert execute(case, ctx, measure=False).status == "ok"
    random_tokens, checkpoint_tokens = (list(ctx.references.values())[0] for ctx in contexts)
    assert torch.equal(random_tokens, checkpoint_tokens)


def test_checkpoint_folder_without_config_is_a_clear_error(tmp_path):
    """A checkpoint folder without config.json is refused, saying so."""
    with pytest.raises(HarnessError, match="has no config.json"):
        build_model("llama", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(tmp_path))


def test_model_cache_keeps_one_model():
    """The model cache returns the same model for the same key and another one for a different seed."""
    cache = ModelCache()
    first = cache.get("llama", "tiny", "float32", "cpu", 0, "")
    assert cache.get("llama", "tiny", "float32", "cpu", 0, "") is first
    assert cache.get("llama", "tiny", "float32", "cpu", 1, "") is not first
