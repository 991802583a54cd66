"""What a host and a trainer use: CPU, memory, and per NVIDIA GPU its utilisation, memory and
temperature. Pure (no Django): the worker's heartbeat samples with it and the domain stores it.

psutil is always there (pinned). NVIDIA's management library is used through `nvidia-ml-py`
(`import pynvml`) when the package and a driver are present; otherwise there are no GPU figures and
`Gpus.note` says why ("no NVIDIA driver", ...), so a CPU-only host degrades to host figures only and
never fails a heartbeat.

CPU percentages follow psutil: 100 is one core busy for a process, and the whole machine for the
host. A process's first reading has no interval to measure over, so the sampler keeps each
`psutil.Process` between heartbeats and reports the CPU used since the previous one.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from training.executor import group_members


@dataclass(frozen=True)
class GpuFigures:
    index: int
    name: str
    utilization: float | None  # percent of the last sample period the GPU was busy
    memory_used: int  # bytes
    memory_total: int
    temperature: float | None  # °C

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HostFigures:
    hostname: str
    cpu_count: int
    cpu_percent: float
    load_1: float | None
    memory_total: int
    memory_used: int
    gpus: list[GpuFigures] = field(default_factory=list)
    gpu_note: str = ""

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used / self.memory_total if self.memory_total else 0.0


@dataclass(frozen=True)
class ProcessFigures:
    """A trainer's process group, summed over its live members."""

    cpu_percent: float
    rss: int  # bytes
    gpu_memory: int | None  # bytes; None where GPU figures are not available
    processes: int


class Gpus:
    """NVIDIA GPUs through NVML, or none (with the reason) where the library or driver is missing.

    `nvml` may be given (tests pass a stand-in module); by default `pynvml` is imported lazily.
    Initialisation is tried once; a failure is remembered, not retried on every heartbeat.
    """

    def __init__(self, nvml: Any | None = None) -> None:
        self._nvml = nvml
        self._ready: bool | None = None
        self.note = ""

    def _init(self) -> bool:
        if self._ready is not None:
            return self._ready
        if self._nvml is None:
            try:
                import pynvml  # nvidia-ml-py
            except ImportError:
                self.note = "no GPU figures: nvidia-ml-py is not installed"
                self._ready = False
                return False
            self._nvml = pynvml
        try:
            self._nvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...: a CPU host
            self.note = f"no GPU figures: no NVIDIA driver or GPU ({_nvml_error(exc)})"
            self._ready = False
            return False
        self._ready = True
        return True

    @property
    def available(self) -> bool:
        return self._init()

    def sample(self) -> list[GpuFigures]:
        """Every GPU's figures now (empty without NVML); a GPU that fails to answer is left out."""
        if not self._init():
            return []
        nvml = self._nvml
        found = []
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            self.note = f"NVML failed: {_nvml_error(exc)}"
            return []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                name = nvml.nvmlDeviceGetName(handle)
                utilization: float | None = None
                temperature: float | None = None
                with contextlib.suppress(Exception):
                    utilization = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                with contextlib.suppress(Exception):
                    temperature = float(nvml.nvmlDeviceGetTemperature(handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0)))
                found.append(GpuFigures(
                    index=index, name=name.decode() if isinstance(name, bytes) else str(name),
                    utilization=utilization, memory_used=int(memory.used), memory_total=int(memory.total),
                    temperature=temperature,
                ))
            except Exception as exc:
                self.note = f"GPU {index}: {_nvml_error(exc)}"
        return found

    def process_memory(self, pids: Iterable[int]) -> int | None:
        """GPU memory used by these processes on every GPU, bytes; None without NVML."""
        if not self._init():
            return None
        wanted = set(pids)
        nvml = self._nvml
        total = 0
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception:
            return None
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                running = list(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
                with contextlib.suppress(Exception):
                    running += list(nvml.nvmlDeviceGetGraphicsRunningProcesses(handle))
            except Exception:
                continue
            for process in running:
                used = getattr(process, "usedGpuMemory", None)
                if process.pid in wanted and isinstance(used, int) and used >= 0:
                    total += used
        return total


def _nvml_error(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class Sampler:
    """Samples the host and trainers' process groups; one per worker, kept between heartbeats."""

    def __init__(self, gpus: Gpus | None = None) -> None:
        self.gpus = gpus or Gpus()
        self._processes: dict[int, psutil.Process] = {}
        psutil.cpu_percent(interval=None)  # starts the host's interval

    def host(self) -> HostFigures:
        memory = psutil.virtual_memory()
        load: float | None = None
        with contextlib.suppress(OSError, AttributeError):
            load = float(os.getloadavg()[0])
        gpus = self.gpus.sample()
        return HostFigures(
            hostname=socket.gethostname(),
            cpu_count=psutil.cpu_count() or 0,
            cpu_percent=float(psutil.cpu_percent(interval=None)),
            load_1=load,
            memory_total=int(memory.total),
            memory_used=int(memory.total - memory.available),
            gpus=gpus,
            gpu_note=self.gpus.note,
        )

    def group(self, pgid: int | None) -> ProcessFigures | None:
        """A trainer's process group (the local executor's); None if it has no live member here."""
        if not pgid:
            return None
        pids = group_members(pgid)
        if not pids:
            return None
        cpu = 0.0
        rss = 0
        alive = []
        for pid in pids:
            process = self._processes.get(pid)
            try:
                if process is None:
                    process = psutil.Process(pid)
                    self._processes[pid] = process
                    process.cpu_percent(interval=None)  # the first reading starts its interval
                else:
                    cpu += process.cpu_percent(interval=None)
                rss += process.memory_info().rss
                alive.append(pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._processes.pop(pid, None)
        if not alive:
            return None
        return ProcessFigures(cpu_percent=cpu, rss=rss, gpu_memory=self.gpus.process_memory(alive), processes=len(alive))

    def forget(self, keep: Iterable[int]) -> None:
        """Drop the cached processes of groups no longer sampled (ended trainers)."""
        live = set(keep)
        for pid in list(self._processes):
            if pid not in live and not psutil.pid_exists(pid):
                self._processes.pop(pid, None)
