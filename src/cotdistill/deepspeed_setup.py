"""DeepSpeed for student training: when to use it, its config, and a one-process launch.

``train.hparams.deepspeed``: ``on`` always, ``off`` never, ``auto`` when CUDA is available.
Under the ``deepspeed`` launcher the distributed environment is already set; started as a plain
process (a DVC stage, a test) we declare a world of one on loopback ourselves, which also lets
the DeepSpeed engine run on the CPU (``DS_ACCELERATOR=cpu``, gloo) where there is no GPU.
"""

from __future__ import annotations

import os
import socket


def wanted(mode: str) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    import torch

    return torch.cuda.is_available()


def config() -> dict:
    """The DeepSpeed config handed to ``TrainingArguments(deepspeed=...)``.

    ``auto`` values are filled in by ``transformers`` from the training arguments. ZeRO-2 on
    GPUs; stage 0 on the CPU, where there is one process and nothing to partition.
    """
    import torch

    cuda = torch.cuda.is_available()
    _single_process_environment(cuda)
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "zero_optimization": {"stage": 2 if cuda else 0},
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": False},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _single_process_environment(cuda: bool) -> None:
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if "RANK" in os.environ:  # launched by deepspeed / accelerate / torchrun
        return
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
                      RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")


def teardown() -> None:
    """Leave the process as it was, so a second training in the same process starts clean."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
