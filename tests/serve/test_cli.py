"""``cotdistill serve`` as a user runs it: what --help promises, the bind check, Ctrl-C.

The Ctrl-C test runs the real command in a child process over the tiny model, with a long
generation in flight, and sends it one SIGINT.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx2
from typer.testing import CliRunner

from cotdistill.cli import app


def test_help_says_there_is_no_authentication_without_a_key():
    text = " ".join(CliRunner().invoke(app, ["serve", "--help"]).output.split())
    assert "No authentication unless --api-key is set" in text
    assert "[default: 127.0.0.1]" in text
    for option in ("--max-body-bytes", "--max-request-rows", "--max-queued-rows"):
        assert option in text


def test_a_non_loopback_host_without_a_key_is_refused_in_one_line():
    result = CliRunner().invoke(app, ["serve", "--model", "no-such-model", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--api-key" in lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_first_ctrl_c_stops_the_server_cleanly_mid_generation(tiny_model):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    child = subprocess.Popen(
        [sys.executable, "-m", "cotdistill", "serve", "--model", str(tiny_model),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert child.poll() is None, child.communicate()
            try:
                if httpx2.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        answers = []
        long = {"prompt": "Q:", "n": 64, "max_tokens": 500, "temperature": 1.0}  # ~10 s of work
        thread = threading.Thread(target=lambda: answers.append(
            httpx2.post(url + "/completions", json=long, timeout=30)))
        thread.start()
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        start = time.monotonic()
        _, stderr = child.communicate(timeout=10)
        took = time.monotonic() - start
        thread.join(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, stderr
    assert "Traceback" not in stderr and "stopped" in stderr
    assert took < 5, f"stopping took {took:.1f} s"
    assert [a.status_code for a in answers] == [503], "the request in flight is told"
