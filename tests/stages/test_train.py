"""The train stage's own decisions (the training itself is tested in tests/student/)."""

from __future__ import annotations

import torch

from cotdistill.stages.train import launcher_command


def test_the_launcher_is_torchrun_only_with_several_gpus_and_no_launcher_yet(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert launcher_command("auto", ["train"]) is None
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    command = launcher_command("auto", ["train", "--student", "s"])
    assert command[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=4"]
    assert command[-3:] == ["train", "--student", "s"]
    assert launcher_command("none", ["train"]) is None
    monkeypatch.setenv("RANK", "0")  # already under a launcher
    assert launcher_command("auto", ["train"]) is None
