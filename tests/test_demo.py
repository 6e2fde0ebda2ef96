"""`arignote demo`: the main job trains an MLP (or a LeNet) on digits, shows progress and reports the
test accuracy, the time per epoch and the backend; with the default settings it reaches 97 % (the
LeNet 98 %) quickly on every backend."""

import io
import subprocess
import sys

import numpy as np

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


def test_lenet_demo_reaches_98_percent_in_under_a_minute():
    """The convolutional demo as `arignote demo --model lenet` runs it, on the default backend (every
    backend trains the same LeNet in test_theano_conv_program.py and in test_bench.py)."""
    out = io.StringIO()
    result = demo.run(model="lenet", progress=False, out=out)
    assert result["test_accuracy"] >= 0.98, out.getvalue()
    assert result["total_seconds"] < 60
    assert "LeNet" in out.getvalue() and "with shifted copies" in out.getvalue()


def test_with_shifts_moves_each_image_by_one_pixel():
    from arignote.layers import with_shifts

    x = np.arange(2 * 9, dtype="float32").reshape(2, 9) + 1
    y = np.array([3, 7])
    xs, ys = with_shifts((x, y), image_shape=(3, 3))
    assert xs.shape == (10, 9) and xs.dtype == x.dtype and list(ys) == [3, 7] * 5
    first = x[0].reshape(3, 3)
    down = xs[2].reshape(3, 3)  # the first image moved down a row: its first row is 0
    assert (down[0] == 0).all() and (down[1:] == first[:-1]).all()
    left = xs[8].reshape(3, 3)  # moved left a column: its last column is 0
    assert (left[:, -1] == 0).all() and (left[:, :-1] == first[:, 1:]).all()
