"""The GPU's state per round through NVML (harness/measure/device_state.py), on a stand-in NVML module."""

from types import SimpleNamespace

from harness.measure.device_state import DeviceState, read_state, state_reader, throttle_names


class FakeNvml:
    """The few pynvml calls read_state makes, answering with planted clocks, throttle bits and processes."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    def __init__(self, mask, pids):
        self.mask, self.pids = mask, pids

    def nvmlDeviceGetClockInfo(self, handle, which):
        return {1: 1980, 2: 2619}[which]

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return self.mask

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=pid) for pid in self.pids]


def test_a_quiet_gpu_reads_clocks_and_no_disturbance():
    """Idle and application-clock bits and the harness's own process are not disturbances."""
    state = read_state(FakeNvml(mask=0x1 | 0x2, pids=[42]), handle=None, own_pid=42)
    assert (state.sm_clock_mhz, state.mem_clock_mhz, state.disturbances()) == (1980, 2619, [])


def test_throttling_and_other_processes_mark_a_round():
    """A thermal slowdown and another process on the device each give a reason."""
    state = read_state(FakeNvml(mask=0x20 | 0x4, pids=[42, 7]), handle=None, own_pid=42)
    assert state.throttle == ("sw_power_cap", "sw_thermal_slowdown")
    assert state.disturbances() == ["GPU throttled (sw_power_cap, sw_thermal_slowdown)", "1 other process(es) on the GPU: pids 7"]
    assert throttle_names(0x40 | 0x80) == ("hw_thermal_slowdown", "hw_power_brake_slowdown")


def test_without_nvml_or_on_the_cpu_nothing_is_read():
    """The CPU and a CUDA device without NVML both read as 'nothing known', never as a disturbance."""
    assert state_reader("cpu")() == DeviceState(False)
    assert state_reader("cuda", load=lambda: None)().disturbances() == []
