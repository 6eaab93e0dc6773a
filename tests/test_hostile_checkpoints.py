"""--checkpoint-dir (review probes P11-P13, defect D10): the checkpoint is part of a case's fingerprint, a
missing folder is a bad argument (exit 10) found at start-up, and a checkpoint of another architecture is
refused naming both model types."""

import json

import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from harness.errors import EXIT_HARNESS_ERROR, HarnessError
from harness.families.llama.model import PRESETS
from harness.families.models import build_model
from harness.measure.case import RunContext
from harness.measure.workload import execute
from harness.options import RunOptions
from harness.spec.matrix import Case
from harness.spec.selection import select
from harness.spec.workload import Lengths

CASE = Case("llama", "tt", "tiny", "float32", 1, Lengths(8, 4), ("eager",))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two llama checkpoints: the tiny preset's shape, and one twice as wide (hidden 256, 8 layers)."""
    root = tmp_path_factory.mktemp("checkpoints")
    build_model("llama", "tiny", "float32", "cpu", seed=7).save_pretrained(root / "tiny")
    wide = dict(PRESETS["tiny"], hidden_size=256, intermediate_size=512, num_hidden_layers=8)
    LlamaForCausalLM(LlamaConfig(**wide, tie_word_embeddings=False)).save_pretrained(root / "wide")
    return root


def fingerprint_of(checkpoint_dir: str) -> str:
    record = execute(CASE, RunContext(RunOptions(seed=7, checkpoint_dir=checkpoint_dir), "cpu"), measure=False)
    assert record.status == "ok", record.message
    return record.fingerprint


def test_the_checkpoint_is_part_of_the_fingerprint(checkpoints):
    """A case run from a checkpoint (probe P13: same id and fingerprint as the random-weights case, even for a
    model twice as wide) gets its own fingerprint, another for another checkpoint, the same for the same one."""
    random_weights = fingerprint_of("")
    tiny, wide = fingerprint_of(str(checkpoints / "tiny")), fingerprint_of(str(checkpoints / "wide"))
    assert len({random_weights, tiny, wide}) == 3
    assert fingerprint_of(str(checkpoints / "tiny")) == tiny, "the same checkpoint, the same fingerprint"


def test_a_changed_weight_file_changes_the_fingerprint(checkpoints, tmp_path):
    """Weight files of another size (retrained, resharded) change the fingerprint, with the same config.json."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(checkpoints / "tiny", copy)
    before = fingerprint_of(str(copy))
    (copy / "extra.safetensors").write_bytes(b"\0" * 16)
    assert fingerprint_of(str(copy)) != before


def test_a_missing_checkpoint_folder_is_refused_at_start_up(tmp_path):
    """A missing --checkpoint-dir, or one without config.json, is a one-line HarnessError when the options are
    validated, before any model is built (probe P11: every case failed, exit 1)."""
    with pytest.raises(HarnessError, match="--checkpoint-dir '/no/such/folder' is not a folder"):
        select(RunOptions(families="llama", stacks="eager", checkpoint_dir="/no/such/folder"), False)
    with pytest.raises(HarnessError, match="has no config.json"):
        select(RunOptions(families="llama", stacks="eager", checkpoint_dir=str(tmp_path)), False)


def test_a_missing_checkpoint_folder_exits_10_under_pytest(pytester):
    """`pytest --checkpoint-dir /no/such/folder` exits 10 (bad argument) before collecting any case."""
    pytester.makeconftest('pytest_plugins = ("harness.pytest_plugin",)\n')
    pytester.makepyfile(test_llama="import pytest\npytestmark = pytest.mark.family('llama')\n\n"
                                   "def test_llama(case, harness):\n    harness(case)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--checkpoint-dir", "/no/such/folder")
    assert result.ret == EXIT_HARNESS_ERROR
    result.stderr.fnmatch_lines(["*harness error: --checkpoint-dir '/no/such/folder' is not a folder*"])


def test_a_checkpoint_of_another_architecture_names_both(checkpoints):
    """A llama checkpoint given to Chameleon (probe P12: AttributeError naming nothing) is refused before
    loading, naming the model type found and the one expected; a case of it records that message."""
    with pytest.raises(HarnessError, match=r"wrong architecture for chameleon: config.json model_type 'llama', "
                                           r"expected 'chameleon'"):
        build_model("chameleon", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(checkpoints / "tiny"))
    with pytest.raises(HarnessError, match="model_type 'llama', expected 'hstu'"):
        build_model("hstu", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(checkpoints / "tiny"))


def test_an_unreadable_config_is_named(tmp_path):
    """A checkpoint whose config.json is not JSON, or not an object, is refused naming the file."""
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(HarnessError, match="config.json: not a readable JSON config"):
        build_model("llama", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(["llama"]))
    with pytest.raises(HarnessError, match="not a config object"):
        build_model("llama", "tiny", "float32", "cpu", seed=0, checkpoint_dir=str(tmp_path))
