"""What a benchmark ran on, as recorded beside its figures: the CPU (and GPU, where there is
one), what torch's CPU kernels can use, and the precision ``auto`` stands for there.

    from hardware import describe     # with benchmarks/ on sys.path
    describe()  # {"cpu": "...", "cpu_capability": "AVX512", "cpu_bf16": True, "gpu": None, ...}

Torch is imported lazily, so that importing this module stays cheap.
"""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's "model name" line of /proc/cpuinfo; on systems without one, Python's guess."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name" and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe() -> dict:
    """The device a run used: CPU model, torch's CPU capability (the widest vector ISA its
    kernels dispatch to), whether torch reports native CPU bf16 (oneDNN), and the GPU's name
    when CUDA is available."""
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "gpu": gpu,
        "gpu_bf16": bool(torch.cuda.is_bf16_supported()) if gpu else None,
        "torch": torch.__version__,
    }


def auto_precision(device: dict) -> str:
    """What ``precision: auto`` means on ``device`` (a :func:`describe` result): bf16 on a GPU
    that supports it, or on a CPU where torch reports native bf16; fp32 otherwise."""
    if device.get("gpu"):
        return "bf16" if device.get("gpu_bf16") else "fp32"
    return "bf16" if device.get("cpu_bf16") else "fp32"


def label(device: dict) -> str:
    """One line for a table cell: "Intel(R) Xeon(R) Processor (AVX512, bf16)", plus the GPU."""
    if not device or not device.get("cpu"):
        return "not recorded"
    features = [device.get("cpu_capability") or "?"]
    if device.get("cpu_bf16"):
        features.append("bf16")
    text = f"{device['cpu']} ({', '.join(features)})"
    return f"{text}; GPU {device['gpu']}" if device.get("gpu") else text
