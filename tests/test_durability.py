"""Nothing lost: SIGKILL during writes, and concurrent writers."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.store.baselines import baseline_path, load_baseline
from harness.store.records import load_results

KILLS = 60
WRITERS = 8

WRITER = r"""
import sys
from pathlib import Path
from harness.store.baselines import update_baselines
from harness.store.records import ResultsFile

folder, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
env = {"device_name": "cpu", "gpu_count": 0, "torch": "t", "transformers": "t"}
results = ResultsFile(folder / f"run-{tag}.json", env, {})
for i in range(count):
    record = {"id": f"{tag}-{i}", "family": "llama", "fingerprint": "f", "status": "ok", "e2e_s": [0.1] * 50,
              "ttft_s": [0.01] * 50, "tpot_s": [0.001] * 500, "gen_lens": [11] * 50, "peak_mem_bytes": i}
    results.add(record)
    update_baselines(folder / "baselines", "m", [record], env)
print("done", flush=True)
"""


def start_writer(folder: Path, tag: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), tag, str(count)], stdout=subprocess.PIPE)


def check_consistent(folder: Path, tag: str) -> int:
    """Every file parses and holds a gap-free prefix of the writer's cases; returns its length."""
    results_file = folder / f"run-{tag}.json"
    if not results_file.exists():
        return 0
    cases = load_results(results_file)["cases"]
    assert [case["id"] for case in cases] == [f"{tag}-{i}" for i in range(len(cases))]
    baseline_file = baseline_path(folder / "baselines", "m", "llama")
    if baseline_file.exists():
        load_baseline(baseline_file)
    return len(cases)


def test_sigkill_at_random_points_never_leaves_a_broken_file(tmp_path):
    """A writer killed at a random point never leaves a results or baseline file that fails to parse or has a
    gap."""
    rng = random.Random(0)
    killed_mid_write = 0
    for _ in range(KILLS):
        writer = start_writer(tmp_path, "k", 100_000)
        time.sleep(rng.uniform(0.15, 0.45))  # past interpreter start-up, into the write loop
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        # Each writer starts its file anew; what matters is that every file is a whole version.
        killed_mid_write += check_consistent(tmp_path, "k") > 0
    assert killed_mid_write >= KILLS // 2, "most kills must land inside the write loop to test anything"


def test_eight_concurrent_writers_lose_nothing(tmp_path):
    """Eight concurrent writers lose no case in their results files or the shared baseline, and leave no
    temporary file behind."""
    writers = [start_writer(tmp_path, f"w{n}", 15) for n in range(WRITERS)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    for n in range(WRITERS):
        assert check_consistent(tmp_path, f"w{n}") == 15
    cases = load_baseline(baseline_path(tmp_path / "baselines", "m", "llama"))["cases"]
    assert len(cases) == WRITERS * 15
    assert len(list(tmp_path.glob("run-*.json"))) == WRITERS
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left behind by clean writers"
    json.loads((tmp_path / "run-w0.json").read_text())
