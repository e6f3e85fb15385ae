"""Peak GPU memory of inference at the measured batch, from whoever can honestly tell it.

torch's allocator knows the peak of the tensors it handed out (weights and activations, not the
CUDA context): reset before the timed runs, read after. ONNX Runtime's CUDA allocator tells
nothing outside its profiler; NVML tells what this process holds on the GPU after the runs, which
is the peak of ONNX Runtime's arena (it keeps what it grew to) plus the CUDA context, and says so.
On the CPU there is no GPU memory to report.
"""

from __future__ import annotations

import os
import sys

TORCH_SOURCE = "torch.cuda.max_memory_allocated (weights and activations; not the CUDA context)"
NVML_SOURCE = (
    "NVML: what this process holds on the GPU after the runs (ONNX Runtime's arena and the CUDA context)"
)


class PeakMemory:
    """``start()`` before the timed runs, ``stop()`` after: ``{"bytes", "source"}`` or ``{"missing"}``."""

    def __init__(self, runtime: str, device: str) -> None:
        self.runtime, self.device = runtime, device

    def start(self) -> None:
        if self._torch_cuda():
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> dict:
        if not self.device.startswith("cuda"):
            return {"missing": "the model ran on the CPU"}
        if self._torch_cuda():
            import torch

            torch.cuda.synchronize(self.device)
            return {"bytes": int(torch.cuda.max_memory_allocated(self.device)), "source": TORCH_SOURCE}
        return _nvml_process_memory(self.device)

    def _torch_cuda(self) -> bool:
        torch = sys.modules.get("torch")  # a torch runner has loaded it; an ONNX one need not
        return self.runtime == "torch" and self.device.startswith("cuda") and torch is not None


def _nvml_process_memory(device: str) -> dict:
    from studio.core.nvml import NvmlUnavailable, nvml_device

    try:
        pynvml, handle = nvml_device(device)
        processes = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except NvmlUnavailable as exc:
        return {"missing": str(exc)}
    except Exception as exc:  # an NVMLError of any kind: the figure is missing, the measurement stands
        return {"missing": f"NVML cannot list the GPU's processes ({exc})"}
    used = [p.usedGpuMemory for p in processes if p.pid == os.getpid()]
    if not used or used[0] is None:
        return {"missing": "NVML does not list this process on the GPU (a container hides its process id)"}
    return {"bytes": int(used[0]), "source": NVML_SOURCE}
