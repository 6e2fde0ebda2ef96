"""`arignote demo`: the main job trains an MLP on digits, shows progress and reports the test accuracy,
the time per epoch and the backend; with the default settings it reaches 97 % quickly on every backend."""

import io
import subprocess
import sys

from arignote.layers import demo


def test_default_demo_reaches_97_percent_quickly(backend):
    out = io.StringIO()
    result = demo.run(backend=backend, progress=False, out=out)
    assert result["test_accuracy"] >= 0.97, out.getvalue()
    assert result["backend"] == backend
    assert result["total_seconds"] < 60
    text = out.getvalue()
    assert f"backend {backend}" in text and "test accuracy" in text and "time per epoch" in text


def test_short_demo_with_progress_bar(backend, capsys):
    result = demo.run(backend=backend, epochs=2, hidden=16)
    captured = capsys.readouterr()
    assert result["epochs"] == 2 and 0 < result["test_accuracy"] <= 1 and result["seconds_per_epoch"] > 0
    assert "2/2" in captured.err and "acc=" in captured.err  # tqdm's bar, on stderr
    assert "test accuracy" in captured.out and f"backend {backend}" in captured.out


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "arignote", "demo", *args], capture_output=True, text=True,
                          timeout=120)


def test_demo_command(backend):
    process = run_cli("--epochs", "2", "--hidden", "16", "--seed", "1", "--no-progress", "--backend", backend)
    assert process.returncode == 0, process.stderr
    assert "test accuracy" in process.stdout and "time per epoch" in process.stdout
    assert process.stdout.rstrip().endswith(f"backend {backend}")
    assert "epoch/s" not in process.stderr


def test_demo_command_with_an_unknown_backend():
    process = run_cli("--backend", "no-such-backend", "--epochs", "1")
    assert process.returncode == 2
    assert "no-such-backend" in process.stdout and "reference" in process.stdout


def test_demo_is_listed_in_the_help():
    process = subprocess.run([sys.executable, "-m", "arignote", "--help"], capture_output=True, text=True)
    assert "demo" in process.stdout
