"""Numeric precision of training and generation: ``fp32``, or ``bf16`` where the hardware has it.

Some CPUs of this project's machine class run bf16 natively (AVX-512 BF16, AMX) and train and
generate about 1.4x as fast in it; others (AVX2 only) emulate it and gain nothing. ``auto`` asks
torch at run time instead of assuming: bf16 where torch reports native CPU bf16, or on a GPU
that supports it, and fp32 otherwise. bf16 here is autocast (weights and optimizer state stay
fp32), so a checkpoint trained in bf16 is the same kind of file as one trained in fp32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Literal

Precision = Literal["auto", "fp32", "bf16"]
Resolved = Literal["fp32", "bf16"]

log = logging.getLogger(__name__)


def native_bf16() -> bool:
    """Whether this machine computes bf16 natively: a GPU that supports it, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve(precision: Precision) -> Resolved:
    """``auto`` -> ``bf16`` on native-bf16 hardware, else ``fp32``; the others as they are."""
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    if precision == "bf16" and not native_bf16():
        log.warning("precision bf16 on hardware without native bf16: emulated, likely slower "
                    "than fp32")
    return precision


@contextlib.contextmanager
def autocast(precision: Precision) -> Iterator[Resolved]:
    """Run the enclosed forward passes in ``precision`` (bf16 autocast, or plain fp32)."""
    import torch

    resolved = resolve(precision)
    if resolved == "fp32":
        yield resolved
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        yield resolved
