"""Real workloads: the committed length tables, seeded draws that follow them, their scaling, padding
waste in the record, the paper presets' defaults, and real pixels and audio through the tiny models."""

import collections
import dataclasses
import statistics
import wave

import numpy as np
import pytest
import torch
from scipy import stats

from harness.families import FAMILIES
from harness.families.hstu.model import PRESETS as HSTU_PRESETS
from harness.families.hstu.runner import RecommenderRunner, history_lengths
from harness.levers.plan import plan_for
from harness.measure.record import CaseResult
from harness.measure.record import padding_frac as record_padding_frac
from harness.spec.matrix import Case, fingerprint
from harness.spec.workload import (
    FRAMES_PER_SECOND,
    MIN_PROMPT_LEN,
    TABLES,
    Lengths,
    empirical,
    padding_frac,
    row_prompt_lens,
)

DRAWS = 16_400  # 100 expected draws per HumanEval task
P_FLOOR = 0.001  # a seeded draw; the test fails only if the draws stop following the table


def pair_counts(dist: str) -> collections.Counter:
    return collections.Counter(TABLES[dist].rows())


def chisquare_against_table(drawn: list, table: collections.Counter) -> float:
    """p-value of drawn values against the table's frequencies (categories: distinct table values)."""
    seen = collections.Counter(drawn)
    categories = sorted(table)
    observed = [seen[value] for value in categories]
    expected = [table[value] * len(drawn) / sum(table.values()) for value in categories]
    return stats.chisquare(observed, expected).pvalue


# -- the committed tables ------------------------------------------------------------------------------
def test_humaneval_table_has_the_measured_figures():
    """The committed HumanEval table holds 164 tasks whose token counts give the provenance's figures."""
    rows = TABLES["humaneval"].rows()
    prompts, solutions = (np.array([row[i] for row in rows]) for i in (0, 1))
    assert len(rows) == 164
    assert (prompts.sum(), prompts.max(), np.median(prompts)) == (25_668, 433, 136)
    assert (solutions.sum(), solutions.max(), np.median(solutions)) == (10_804, 299, 54)
    assert np.corrcoef(prompts, solutions)[0, 1] == pytest.approx(0.47, abs=0.01)


def test_ml100k_and_asterisk_tables_have_the_measured_figures():
    """The MovieLens table has 943 users and 100,000 events; the Asterisk table pairs 290 phrases at 50 frames/s."""
    histories = [row[0] for row in TABLES["ml100k"].rows()]
    assert (len(histories), sum(histories), min(histories), max(histories)) == (943, 100_000, 20, 737)
    assert statistics.median(histories) == 65
    pairs = TABLES["asterisk"].rows()
    assert len(pairs) == 290
    english_s = [frames / FRAMES_PER_SECOND for frames, _ in pairs]
    ratio = statistics.median(tokens / frames for frames, tokens in pairs)  # Spanish tokens per English frame
    assert max(english_s) == pytest.approx(73.35, abs=0.01)
    assert ratio * FRAMES_PER_SECOND / 4.0 == pytest.approx(1.30, abs=0.01)  # Spanish runs ~1.3x the English


# -- draws follow the table, and pairs stay paired --------------------------------------------------------
def test_humaneval_draws_follow_the_table_as_pairs():
    """HumanEval draws are seeded, every drawn (prompt, output) pair is a task's own, and their frequencies
    fit the table (chi-square)."""
    lengths = empirical("humaneval")
    drawn = lengths.draws(DRAWS, seed=0)
    assert drawn == lengths.draws(DRAWS, seed=0) and drawn != lengths.draws(DRAWS, seed=1)
    table = collections.Counter((int(p), int(g)) for p, g in TABLES["humaneval"].rows())
    assert set(drawn) <= set(table)
    assert chisquare_against_table(drawn, table) > P_FLOOR
    prompts = [p for p, _ in drawn]
    assert statistics.median(prompts) == 136 and np.corrcoef(np.array(drawn).T)[0, 1] == pytest.approx(0.47, abs=0.03)


def test_ml100k_draws_follow_the_table_per_iteration_and_per_row():
    """MovieLens history lengths drawn per iteration and per batch row (HSTU) are table lengths whose
    frequencies fit the table (chi-square), with the workload's own candidate count."""
    lengths = empirical("ml100k", gen_len=16)
    table = collections.Counter(int(row[0]) for row in TABLES["ml100k"].rows())
    per_iteration = lengths.draws(20_000, seed=3)
    assert {g for _, g in per_iteration} == {16}
    per_row = [n for i in range(2_500) for n in row_prompt_lens(lengths, 8, (i, 16), seed=3)]
    for drawn in ([p for p, _ in per_iteration], per_row):
        assert set(drawn) <= set(table)
        assert chisquare_against_table(drawn, table) > P_FLOOR


def test_asterisk_draws_keep_each_english_phrase_with_its_spanish_one():
    """Speech draws are real (English frames, Spanish-output tokens) pairs, at the table's frequencies."""
    lengths = empirical("asterisk")
    table = collections.Counter(lengths.from_row(row) for row in TABLES["asterisk"].rows())
    drawn = lengths.draws(29_000, seed=0)
    assert set(drawn) <= set(table)
    assert chisquare_against_table(drawn, table) > P_FLOOR


# -- scaling, caps, ids and fingerprints ---------------------------------------------------------------
def test_scaled_draws_are_the_scaled_table_and_the_token_says_so():
    """A scaled empirical workload draws scaled table pairs within its caps, and its token names the kind,
    the scale and the caps."""
    tiny = empirical("humaneval", scale=0.2)
    assert tiny.token == "humaneval-x0.2-p87-g60" and tiny.prompt_len <= 128 and tiny.gen_len <= 64
    scaled = {(max(round(p * 0.2), MIN_PROMPT_LEN), max(round(g * 0.2), 1)) for p, g in TABLES["humaneval"].rows()}
    assert set(tiny.draws(2_000, seed=0)) <= scaled
    capped = empirical("asterisk", scale=0.5, prompt_cap=192, gen_cap=32)
    assert capped.token == "asterisk-x0.5-p192-g32"
    assert max(p for p, _ in capped.draws(2_000, seed=0)) == 192  # the 73 s phrase is held at the cap
    assert empirical("humaneval").token == "humaneval-p433-g299"  # unscaled: the table's own longest
    assert "HumanEval" in tiny.source and "scaled x0.2" in tiny.source
    with pytest.raises(ValueError, match="needs an empirical length distribution"):
        Lengths(64, 32, dist="lognormal", scale=0.5)


def test_empirical_fingerprint_carries_the_table_and_old_cases_keep_theirs():
    """A case without a scale keeps its old dict (so its fingerprint), and an empirical case's dict carries its
    table's digest and round-trips."""
    old = Case("llama", "tt", "tiny", "float32", 1, Lengths(64, 32, dist="lognormal"), ("eager",))
    assert old.to_dict()["lengths"] == {"prompt_len": 64, "gen_len": 32, "dist": "lognormal"}
    assert "lengths_table" not in old.to_dict()
    real = dataclasses.replace(old, lengths=empirical("humaneval", scale=0.2))
    assert real.to_dict()["lengths_table"] == TABLES["humaneval"].digest()
    assert Case.from_dict(real.to_dict()) == real
    assert fingerprint(real, {}) != fingerprint(dataclasses.replace(real, lengths=empirical("humaneval")), {})


# -- padding waste ---------------------------------------------------------------------------------------------
def test_padding_frac_by_hand_and_for_eight_humaneval_prompts():
    """Padding waste is 1 - real / padded tokens of batches padded to their longest row: by hand, and about
    42% for batches of 8 HumanEval prompts."""
    assert padding_frac([[2, 4], [3, 3]]) == pytest.approx(1 - 12 / 14)
    assert padding_frac([[5, 5, 5]]) == 0.0
    lengths = empirical("humaneval")
    batches = [row_prompt_lens(lengths, 8, (i, 0), seed=0) for i in range(2_000)]
    assert padding_frac(batches) == pytest.approx(0.43, abs=0.02)


def test_record_carries_padding_frac_and_length_source():
    """The record's padding_frac comes from the rows' real and padded tokens where rows differ, is 0.0 where
    each batch has one drawn length and null without timed iterations; length_source names the table."""
    case = Case("hstu", "rank", "tiny", "float32", 8, empirical("ml100k", scale=0.25, gen_len=16), ("padded",), items=1000)
    assert record_padding_frac({"real_tokens": [30, 10], "padded_tokens": [40, 40], "prompt_lens": [3, 4]}) == 0.5
    assert record_padding_frac({"prompt_lens": [38, 42]}) == 0.0
    assert record_padding_frac({}) is None
    record = CaseResult(case, "f", "cpu", samples={"real_tokens": [30], "padded_tokens": [40]}).to_record()
    assert record["padding_frac"] == 0.25 and "MovieLens-100k" in record["length_source"]
    assert record["length_dist"] == "ml100k" and "-ml100k-x0.25-p184-g16-" in record["id"]


def test_hstu_runner_draws_ml100k_histories_and_reports_their_padding():
    """The HSTU runner's histories come from the MovieLens table (scaled, capped at max_seq_len) and each run
    reports its real and padded-to-longest tokens."""
    from harness.families.models import build_model

    lengths = empirical("ml100k", scale=0.25, gen_len=4)
    scaled = {max(round(n * 0.25), MIN_PROMPT_LEN) for n, _ in TABLES["ml100k"].rows()}
    assert set(history_lengths(lengths, 64, (20, 4), seed=0, max_len=256)) <= scaled
    assert max(history_lengths(lengths, 512, (20, 4), seed=0, max_len=50)) == 50
    model = build_model("hstu", "tiny", "float32", "cpu", seed=0)
    case = Case("hstu", "rank", "tiny", "float32", 8, lengths, ("jagged",), items=1000)
    runner = RecommenderRunner(case, model, "cpu", seed=0)
    draw = lengths.draws(1, seed=0)[0]
    rows = history_lengths(lengths, 8, draw, seed=0, max_len=model.config.max_seq_len)
    out = runner.run(runner.session(plan_for(("jagged",))), runner.inputs(draw))
    assert (out.metrics["real_tokens"], out.metrics["padded_tokens"]) == (sum(rows), 8 * max(rows))


# -- the presets' defaults ---------------------------------------------------------------------------------------
def test_paper_presets_draw_real_lengths_and_tiny_has_one_cheap_workload_of_each_kind():
    """Llama's paper presets run HumanEval, HSTU's MovieLens scaled within max_seq_len, SeamlessM4T's paper the
    telephone prompts; tiny holds one workload of each kind on two stacks, within tiny lengths."""
    kinds = lambda family, preset: [w for w in FAMILIES[family].workloads[preset] if w.lengths.table]  # noqa: E731
    for preset in ("paper", "paper-7b"):
        assert {w.lengths.dist for w in kinds("llama", preset)} == {"humaneval"}
    for preset in ("paper", "paper-ml1m"):
        (workload,) = kinds("hstu", preset)
        assert workload.lengths.dist == "ml100k" and workload.lengths.scale < 1
        assert HSTU_PRESETS[preset]["max_seq_len"] - 10 <= workload.lengths.prompt_len <= HSTU_PRESETS[preset]["max_seq_len"]
    assert {(w.lengths.dist, w.tasks) for w in kinds("seamless", "paper")} == {("asterisk", ("ss",)), ("asterisk", ("st",))}
    tiny = {family: kinds(family, "tiny") for family in ("llama", "hstu", "seamless")}
    assert [w.lengths.dist for ws in tiny.values() for w in ws] == ["humaneval", "ml100k", "asterisk"]
    assert all(len(w.stacks) == 2 and len(w.tasks) <= 1 for ws in tiny.values() for w in ws)
    assert all(w.lengths.prompt_len <= 192 and w.lengths.gen_len <= 64 for ws in tiny.values() for w in ws)


# -- real content through the tiny models ------------------------------------------------------------------------
def real_image(resolution: int) -> torch.Tensor:
    """matplotlib's grace_hopper.jpg, centre-cropped square, resized, in [-1, 1]: [1, 3, R, R]."""
    import matplotlib.image
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        pixels = torch.from_numpy(matplotlib.image.imread(handle, format="jpg").copy()).permute(2, 0, 1).float()
    side = min(pixels.shape[1:])
    top, left = (pixels.shape[1] - side) // 2, (pixels.shape[2] - side) // 2
    square = pixels[:, top : top + side, left : left + side].unsqueeze(0)
    resized = torch.nn.functional.interpolate(square, size=(resolution, resolution), mode="bilinear", antialias=True)
    return resized / 127.5 - 1


def test_real_pixels_go_through_the_tiny_vq_encoder():
    """A real photograph goes through the tiny preset's VQ encoder into the prompt as 1024 image-vocabulary
    tokens, different from those of the synthetic image."""
    from harness.families.chameleon.runner import ChameleonRunner
    from harness.families.models import build_model

    model = build_model("chameleon", "tiny", "float32", "cpu", seed=0)
    case = Case("chameleon", "it", "tiny", "float32", 1, Lengths(8, 2), ("sdpa",))
    runner = ChameleonRunner(case, model, "cpu", seed=0)
    synthetic = runner.inputs((8, 2))
    photo = dataclasses.replace(synthetic, pixels=real_image(runner.resolution))
    assert photo.pixels.shape == synthetic.pixels.shape and -1 <= photo.pixels.min() < photo.pixels.max() <= 1
    with torch.no_grad():
        ids, synthetic_ids = runner.encode(photo), runner.encode(synthetic)
    image = ids[0, photo.head.shape[1] : photo.head.shape[1] + runner.tokens_per_image]
    assert ids.shape[1] == photo.head.shape[1] + 256 + photo.tail.shape[1]
    assert torch.isin(image, runner.vocab.image_ids).all()
    assert not torch.equal(ids, synthetic_ids)


def test_feature_extractor_gives_the_frames_per_second_speech_workloads_assume():
    """SeamlessM4T's feature extractor turns a second of 16 kHz audio into FRAMES_PER_SECOND feature frames,
    the rate the speech workloads convert real durations with."""
    from transformers import SeamlessM4TFeatureExtractor

    extractor = SeamlessM4TFeatureExtractor()
    rng = np.random.default_rng(0)
    for seconds in (1.0, 2.5, 7.0):
        audio = rng.standard_normal(int(16_000 * seconds)).astype(np.float32) * 0.1
        frames = extractor(audio, sampling_rate=16_000, return_tensors="np")["input_features"].shape[1]
        assert abs(frames - seconds * FRAMES_PER_SECOND) <= 1


def test_asterisk_table_script_writes_sample_counts_of_both_voices(tmp_path):
    """The table script writes each phrase's English and Spanish 8 kHz sample counts, blank where one is missing."""
    from scripts.workload_tables import VOICES, asterisk_table

    for voice, phrases in ((VOICES["en"], {"hello": 800, "bye": 400}), (VOICES["es"], {"hello": 1200})):
        (tmp_path / voice).mkdir()
        for name, samples in phrases.items():
            with wave.open(str(tmp_path / voice / f"{name}.wav"), "wb") as sound:
                sound.setnchannels(1), sound.setsampwidth(2), sound.setframerate(8000)
                sound.writeframes(b"\0\0" * samples)
    assert asterisk_table(tmp_path) == "phrase\ten_samples\tes_samples\nbye\t400\t\nhello\t800\t1200\n"
    committed = (TABLES["asterisk"].path).read_text().splitlines()
    assert committed[0] == "phrase\ten_samples\tes_samples" and len(committed) == 362
