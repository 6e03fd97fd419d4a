"""DeepSpeed for student training: when to use it, its config, and a one-process launch.

``train.hparams.deepspeed``: ``on`` always, ``off`` never, ``auto`` when CUDA is available.
Under the ``deepspeed`` launcher the distributed environment is already set; started as a plain
process (a DVC stage, a test) we declare a world of one on loopback ourselves, which also lets
the DeepSpeed engine run on the CPU (``DS_ACCELERATOR=cpu``, gloo) where there is no GPU.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from cotdistill.errors import CotdistillError


def wanted(mode: str) -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    import torch

    return torch.cuda.is_available()


CONFIGS = Path("configs/deepspeed")  # in the repository: zero2, zero3, zero3_offload, cpu


def config(path: str | None = None) -> dict:
    """The DeepSpeed config handed to ``TrainingArguments(deepspeed=...)``.

    ``path`` (``train.hparams.deepspeed_config``) names a JSON file; by default ZeRO-2 on GPUs
    and ``cpu.json`` (stage 0: one process, nothing to partition) without CUDA. ``auto`` values
    are filled in by ``transformers`` from the training arguments.
    """
    import torch

    from cotdistill.layout import from_root

    cuda = torch.cuda.is_available()
    chosen = from_root(path) if path else from_root(CONFIGS / ("zero2.json" if cuda else "cpu.json"))
    try:
        return json.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CotdistillError(f"train.hparams.deepspeed_config: {chosen} not found") from None
    except json.JSONDecodeError as exc:
        raise CotdistillError(f"{chosen}:{exc.lineno}: not valid JSON") from None


def zero_stage(path: str | None = None) -> int:
    """The ZeRO stage of the config :func:`config` would hand to the Trainer."""
    return int((config(path).get("zero_optimization") or {}).get("stage", 0))


def check_selection(path: str | None, key: str) -> None:
    """Refuse model selection under ZeRO-3, before any work: selection keeps a full CPU copy
    of the best weights from each rank's ``state_dict()``, and ZeRO-3 leaves each rank only its
    partition of them, so the checkpoint kept would be wrong."""
    if zero_stage(path) == 3:
        raise CotdistillError(
            f"{key}.select_every: model selection copies each rank's full weights, which "
            f"ZeRO-3 ({path}) partitions across ranks; set {key}.select_every: null to train "
            "without it, or use a ZeRO-2 config (configs/deepspeed/zero2.json)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_environment() -> None:
    """Make this process a DeepSpeed rank: the launcher's world if there is one, else our own."""
    import torch

    _single_process_environment(torch.cuda.is_available())


def _single_process_environment(cuda: bool) -> None:
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        import deepspeed.comm.torch  # noqa: F401  (so that the module below is loaded)

        # DeepSpeed JIT-compiles a shared-memory collective (g++, ~60 s) for CPU training. It
        # only speeds up several ranks on one host; in a world of one it has nothing to do.
        sys.modules["deepspeed.comm.torch"].build_shm_op = lambda: None
    if "RANK" in os.environ:  # launched by deepspeed / accelerate / torchrun
        return
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
                      RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", _COTDISTILL_OWN_WORLD="1")


def teardown(trainer) -> None:
    """Undo a one-process DeepSpeed world so that a later training in this process starts clean.

    DeepSpeed and accelerate cache the process group in module globals; all of them must be
    cleared together, or the next engine broadcasts over a destroyed group.
    """
    import torch.distributed as dist
    from accelerate.state import AcceleratorState
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    if trainer.deepspeed is not None:
        trainer.deepspeed.destroy()
    unset_hf_deepspeed_config()
    for name in [n for n in os.environ if n.startswith(("ACCELERATE_USE_DEEPSPEED",
                                                         "ACCELERATE_DEEPSPEED_"))]:
        del os.environ[name]  # set by TrainingArguments; a later plain run would inherit them
    if os.environ.pop("_COTDISTILL_OWN_WORLD", None) is None:
        return  # a launcher owns the world; leave it alone
    AcceleratorState._reset_state(reset_partial_state=True)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    sys.modules["deepspeed.comm.comm"].cdb = None
    groups = sys.modules["deepspeed.utils.groups"]
    groups._WORLD_GROUP = groups._DATA_PARALLEL_GROUP = None
    groups._ZERO_PARAM_INTRA_PARALLEL_GROUP = None
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        os.environ.pop(name, None)
