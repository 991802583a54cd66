"""Host and process figures (training/hoststats.py): psutil always, NVIDIA's NVML when present;
without a driver or without nvidia-ml-py there are simply no GPU figures, with the reason."""

from __future__ import annotations

import builtins
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from training.hoststats import Gpus, Sampler

MiB = 2**20


class FakeNvml:
    """NVML's calls as nvidia-ml-py offers them, for a host with two GPUs."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, pid: int = 0) -> None:
        self.pid = pid

    def nvmlInit(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=(1 + handle) * 1024 * MiB, total=80 * 1024 * MiB)

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA H100"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=37 + handle)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 61

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=self.pid, usedGpuMemory=512 * MiB), SimpleNamespace(pid=1, usedGpuMemory=MiB)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        return []


def test_gpus_through_nvml_give_utilisation_memory_and_temperature() -> None:
    gpus = Gpus(FakeNvml()).sample()

    assert [(g.index, g.name, g.utilization, g.memory_used, g.temperature) for g in gpus] == [
        (0, "NVIDIA H100", 37.0, 1024 * MiB, 61.0), (1, "NVIDIA H100", 38.0, 2048 * MiB, 61.0)]


def test_without_nvidia_ml_py_there_are_no_gpu_figures(monkeypatch) -> None:
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    gpus = Gpus()

    assert gpus.sample() == [] and gpus.process_memory([1]) is None
    assert gpus.note == "no GPU figures: nvidia-ml-py is not installed"


def test_on_this_cpu_host_nvml_finds_no_driver_and_degrades() -> None:
    """The real nvidia-ml-py (pinned) on a machine without an NVIDIA driver."""
    pytest.importorskip("pynvml")
    gpus = Gpus()
    found = gpus.sample()
    if found:
        pytest.skip("this host has an NVIDIA GPU")
    assert "no NVIDIA driver or GPU" in gpus.note
    host = Sampler(gpus).host()
    assert host.gpus == [] and host.gpu_note == gpus.note
    assert host.cpu_count >= 1 and 0 < host.memory_used < host.memory_total


def test_a_trainers_process_group_is_summed_with_its_gpu_memory() -> None:
    code = "import time\nx = bytearray(64 * 2**20)\nt = time.time()\nwhile time.time() - t < 30: pass"
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        sampler = Sampler(Gpus(FakeNvml(pid=process.pid)))
        assert sampler.group(process.pid) is not None  # the first reading starts the CPU interval
        time.sleep(0.5)
        figures = sampler.group(process.pid)
    finally:
        process.kill()
        process.wait()

    assert figures is not None
    assert figures.processes == 1
    assert figures.rss > 64 * MiB
    assert figures.cpu_percent > 0  # a busy loop (how much of a core depends on the machine's load)
    assert figures.gpu_memory == 2 * 512 * MiB  # its own on both GPUs, not the other process's
    assert sampler.group(process.pid) is None  # gone
    assert sampler.group(None) is None  # a Ray job: no local process group
