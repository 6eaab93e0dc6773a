"""Nothing lost: every acknowledged write survives a SIGKILL, writes happen in the order that makes them
durable (write, fsync, rename, fsync of the folder), concurrent writers lose nothing, and killed writers'
temporary files are cleaned up without touching a live writer's."""

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.store.baselines import baseline_path, load_baseline, update_baselines
from harness.store.records import ResultsFile, load_results, remove_stale_temps, write_json_atomic

KILLS = 40
WRITERS = 8
ROOT = Path(__file__).resolve().parents[1]

# Prints "ready" once imported and warmed up, then "R <i>" after each results write returns and
# "B <i>" after each baseline update returns: the acknowledgements a caller would act on.
WRITER = r"""
import sys
from pathlib import Path
import harness.families  # noqa: F401 (imported before "ready", as the checks of the loop need it)
from harness.store.baselines import update_baselines
from harness.store.records import ResultsFile

folder, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
env = {"device_name": "cpu", "gpu_count": 0, "torch": "t", "transformers": "t"}
results = ResultsFile(folder / f"run-{tag}.json", env, {})
print("ready", flush=True)
for i in range(count):
    record = {"id": f"{tag}-{i}", "family": "llama", "fingerprint": "f", "status": "ok", "e2e_s": [0.1] * 50,
              "ttft_s": [0.01] * 50, "tpot_s": [0.001] * 500, "gen_lens": [11] * 50, "peak_mem_bytes": i}
    results.add(record)
    print(f"R {i}", flush=True)
    update_baselines(folder / "baselines", "m", [record], env)
    print(f"B {i}", flush=True)
print("done", flush=True)
"""


def start_writer(folder: Path, tag: str, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(folder), tag, str(count)], stdout=subprocess.PIPE,
                            text=True, env=env)


class Acknowledgements:
    """The writer's stdout, read as it comes (a thread), so the kill can wait for "ready"."""

    def __init__(self, writer: subprocess.Popen) -> None:
        self.writer = writer
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(writer,), daemon=True)
        self.thread.start()

    def _read(self, writer: subprocess.Popen) -> None:
        for line in writer.stdout:
            self.lines.append(line.strip())
            if line.strip() == "ready":
                self.ready.set()
        self.ready.set()

    def done(self) -> tuple[list[int], list[int]]:
        self.thread.join(timeout=30)
        self.writer.stdout.close()  # the pipe's reader is done with it
        results = [int(line[2:]) for line in self.lines if line.startswith("R ")]
        baselines = [int(line[2:]) for line in self.lines if line.startswith("B ")]
        return results, baselines


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


def test_every_acknowledged_write_survives_sigkill(tmp_path):
    """A writer killed with SIGKILL at a random point inside its write loop never loses a write it had
    acknowledged (results and baseline), never leaves a file that fails to parse, and each kill writes a
    fresh file, so no earlier writer's file can stand in for it."""
    rng = random.Random(0)
    acknowledged_baseline: list[str] = []
    killed_after_acks = 0
    for kill in range(KILLS):
        tag = f"k{kill}"
        writer = start_writer(tmp_path, tag, 100_000)
        acks = Acknowledgements(writer)
        assert acks.ready.wait(timeout=60), "the writer never got ready"
        time.sleep(rng.uniform(0.0, 0.25))  # into the write loop
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        results_acked, baseline_acked = acks.done()
        assert "done" not in acks.lines, "killed before it finished"
        found = check_consistent(tmp_path, tag)
        assert found >= len(results_acked), f"{tag}: {len(results_acked)} results writes acknowledged, {found} on disk"
        acknowledged_baseline += [f"{tag}-{i}" for i in baseline_acked]
        if acknowledged_baseline:
            stored = load_baseline(baseline_path(tmp_path / "baselines", "m", "llama"))["cases"]
            lost = [case_id for case_id in acknowledged_baseline if case_id not in stored]
            assert not lost, f"acknowledged baseline cases lost: {lost[:5]}"
        killed_after_acks += bool(results_acked)
    assert killed_after_acks >= KILLS * 3 // 4, "most kills must land after acknowledged writes to test anything"


def test_killed_writers_temporary_files_are_removed_on_open(tmp_path):
    """Temporary files a killed writer left are removed when a results file of that name, or the baseline,
    is opened again, while a live writer's locked temporary file is kept."""
    stale_results = tmp_path / ".run-a.json.999.dead.tmp"
    stale_results.write_text("{")
    folder = tmp_path / "baselines" / "m"
    folder.mkdir(parents=True)
    stale_baseline = folder / ".llama.json.999.dead.tmp"
    stale_baseline.write_text("{")
    live = tmp_path / ".run-a.json.998.live.tmp"
    live.write_text("{")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(live)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        ResultsFile(tmp_path / "run-a.json", {}, {})
        assert not stale_results.exists(), "a killed writer's temporary file is removed on open"
        assert live.exists(), "a live writer's temporary file is kept"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    record = {"id": "x", "family": "llama", "fingerprint": "f", "status": "ok", "e2e_s": [0.1], "ttft_s": [0.01],
              "tpot_s": [], "gen_lens": [1], "calibration_s": []}
    update_baselines(tmp_path / "baselines", "m", [record], {})
    assert not stale_baseline.exists(), "the baseline update removes its file's stale temporary files"
    assert remove_stale_temps(tmp_path) == [live], "once its writer is gone, the other one is litter too"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_created_with_the_umask_applied(tmp_path, umask, mode):
    """Results and baselines are created with mode 0666 less the umask (0644 under umask 022; mkstemp made
    them 0600, unreadable to the other users of a shared runner)."""
    old = os.umask(umask)
    try:
        ResultsFile(tmp_path / "run-x.json", {}, {}).add({"id": "x"})
        write_json_atomic(tmp_path / "b.json", {"b": 1})
    finally:
        os.umask(old)
    for name in ("run-x.json", "b.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_writes_are_ordered_write_fsync_rename_fsync_folder(tmp_path):
    """Under strace, an atomic write is: create the temporary file, write it, fsync it, rename it over the
    target, then fsync the folder (what a power loss needs; SIGKILL alone cannot tell)."""
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    log = tmp_path / "strace.log"
    target = tmp_path / "data" / "run.json"
    target.parent.mkdir()
    script = f"from pathlib import Path\nfrom harness.store.records import write_json_atomic\n" \
             f"write_json_atomic(Path({str(target)!r}), {{'a': 1}})\n"
    done = subprocess.run(["strace", "-f", "-o", str(log), "-e", "trace=openat,write,fsync,fdatasync,rename,renameat,renameat2",
                           sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0 and ("ptrace" in done.stderr or "Operation not permitted" in done.stderr):
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    calls = [line.split(None, 1)[1] for line in log.read_text().splitlines() if line.split(None, 1)[1:]]
    folder = re.escape(str(target.parent))

    def index(pattern: str, after: int = -1) -> tuple[int, re.Match]:
        for number, call in enumerate(calls):
            found = re.match(pattern, call)
            if number > after and found:
                return number, found
        pytest.fail(f"no call matching {pattern} after call {after}:\n" + "\n".join(calls[-20:]))

    opened, found = index(rf'openat\(AT_FDCWD, "({folder}/\.run\.json\.[^"]+\.tmp)", [^)]*O_CREAT[^)]*\) = (\d+)')
    temp, fd = found.group(1), found.group(2)
    written, _ = index(rf"write\({fd}, ", opened)
    synced, _ = index(rf"f(data)?sync\({fd}\)", written)
    renamed, _ = index(rf'rename(at2?)?\(.*"{re.escape(temp)}".*"{re.escape(str(target))}"', synced)
    assert not any(re.match(rf"write\({fd}, ", call) for call in calls[synced:renamed]), "nothing written after the fsync"
    dir_opened, found = index(rf'openat\(AT_FDCWD, "{folder}", O_RDONLY.*\) = (\d+)', renamed)
    index(rf"fsync\({found.group(1)}\)", dir_opened)


def test_eight_concurrent_writers_lose_nothing(tmp_path):
    """Eight concurrent writers lose no case in their results files or the shared baseline, and leave no
    temporary file behind."""
    writers = [start_writer(tmp_path, f"w{n}", 15) for n in range(WRITERS)]
    for writer in writers:
        writer.stdout.read()
        writer.stdout.close()
        assert writer.wait(timeout=120) == 0
    for n in range(WRITERS):
        assert check_consistent(tmp_path, f"w{n}") == 15
    cases = load_baseline(baseline_path(tmp_path / "baselines", "m", "llama"))["cases"]
    assert len(cases) == WRITERS * 15
    assert len(list(tmp_path.glob("run-*.json"))) == WRITERS
    assert not list(tmp_path.rglob("*.tmp")), "no temporary files left behind by clean writers"
