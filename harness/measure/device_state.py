"""What can disturb a GPU during a round, read through NVML where it is installed (nvidia-ml-py):
SM and memory clocks, the clock-throttle reasons, and other processes on the device.

Why per round: a GPU's clocks drop when it throttles (power, heat), and another process's
kernels share its SMs; either moves the samples of a round without any change in the code. The
CPU's machine-speed probe cannot see these, so on CUDA a round is also contended when NVML names
a slowdown reason or another process. Without NVML (or on the CPU) nothing is read, and the
record says so ("nvml": false).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

# Throttle-reason bits that slow the clocks under load (nvmlClocksEventReason*): the idle and
# application-clock bits are left out, since they are normal states, not disturbances.
SLOWDOWN_REASONS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
}


@dataclass(frozen=True)
class DeviceState:
    """One reading of a GPU's state; `nvml` False when nothing could be read."""

    nvml: bool
    sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    throttle: tuple[str, ...] = ()
    other_processes: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def disturbances(self) -> list[str]:
        """What in this reading marks a round contended (empty: nothing)."""
        found = [f"GPU throttled ({', '.join(self.throttle)})"] if self.throttle else []
        if self.other_processes:
            found.append(f"{len(self.other_processes)} other process(es) on the GPU: pids {', '.join(map(str, self.other_processes))}")
        return found

    def to_dict(self) -> dict:
        return {"nvml": self.nvml, "sm_clock_mhz": self.sm_clock_mhz, "mem_clock_mhz": self.mem_clock_mhz,
                "throttle": list(self.throttle), "other_processes": list(self.other_processes)}


def throttle_names(mask: int) -> tuple[str, ...]:
    return tuple(name for bit, name in SLOWDOWN_REASONS.items() if mask & bit)


def read_state(nvml, handle, own_pid: int) -> DeviceState:
    """One reading of a device handle through an initialised NVML module (pynvml's API)."""
    sm = nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)
    mem = nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM)
    mask = nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)
    processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    others = tuple(sorted(p.pid for p in processes if p.pid != own_pid))
    return DeviceState(True, int(sm), int(mem), throttle_names(int(mask)), others)


def device_handle(nvml, device: str):
    """NVML's handle of torch's device, by UUID: NVML numbers every GPU of the machine, torch only
    those CUDA_VISIBLE_DEVICES shows, so the indices can differ."""
    import torch

    uuid = torch.cuda.get_device_properties(torch.device(device)).uuid
    return nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")


def _load_nvml():
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no device: nothing to read, said in the record
        return None
    return pynvml


def state_reader(device: str, load: Callable = _load_nvml) -> Callable[[], DeviceState]:
    """A zero-argument reader of this device's state: NVML on CUDA where installed, else a
    reader that says nothing could be read."""
    nothing = DeviceState(False)
    if not device.startswith("cuda"):
        return lambda: nothing
    nvml = load()
    if nvml is None:
        return lambda: nothing
    pid = os.getpid()

    def read() -> DeviceState:
        try:
            return read_state(nvml, device_handle(nvml, device), pid)
        except Exception as exc:  # one failed reading must not end the run: it is recorded
            return DeviceState(False, notes=(f"NVML read failed: {type(exc).__name__}: {exc}",))

    return read
