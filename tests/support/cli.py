"""The ``cotdistill`` command as a user runs it, and the one-line error it must give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cotdistill(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "cotdistill"
    return subprocess.run([str(executable), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=300)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a command that failed with exit 1 and no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]
