"""Checkpoints of the training loop: Trainer.fit(checkpoint=, checkpoint_best_only=, resume=) writes the
documented .npz atomically, and a resumed run ends where an uninterrupted one does, bit for bit.
(Two ranks: tests/test_distributed.py.)"""

import os

import numpy as np
import pytest

from arignote.layers import (
    MLP, SGD, Adam, Dense, ExponentialDecay, Sequential, Trainer, as_shared, load_digits,
)
from arignote.layers import training


@pytest.fixture(params=["reference", "c"])
def two_backends(request):
    """The reference and one compiled backend."""
    return request.getfixturevalue("c") if request.param == "c" else "reference"


def tiny():
    data = load_digits()
    return (data.train[0][:120], data.train[1][:120]), (data.valid[0][:60], data.valid[1][:60])


def trainer(backend="reference", seed=0, hidden=12, optimizer=None, **layers):
    model = MLP([64, hidden, 10], seed=seed, **layers)
    return Trainer(model, optimizer=optimizer or Adam(0.01), backend=backend)


def ascent():
    """An optimizer that makes the validation loss worse every epoch (as early stopping's test does)."""
    return SGD(ExponentialDecay(-0.05, rate=2.0, steps=10))


def test_the_file_holds_the_documented_keys(tmp_path):
    train, valid = tiny()
    t = trainer()
    history = t.fit(train, valid=valid, epochs=2, batch_size=40, progress=False,
                    checkpoint=tmp_path / "run.npz")
    assert os.listdir(tmp_path) == ["run.npz"]  # no temporary file left
    with np.load(tmp_path / "run.npz") as data:
        assert {k for k in data.files if "/" not in k} == {
            "epoch", "best_epoch", "best", "waited", "stopped_early"}
        assert {k for k in data.files if k.startswith("history/")} == {
            "history/loss", "history/accuracy", "history/val_loss", "history/val_accuracy", "history/seconds"}
        assert int(data["epoch"]) == 2 and int(data["best_epoch"]) == -1 and np.isnan(data["best"])
        np.testing.assert_array_equal(data["history/val_loss"], history["val_loss"])
        assert data["model/000_dense0.W"].shape == (64, 12)
        assert data["optimizer/000_t"] == 6  # 3 steps an epoch
        assert [k for k in data.files if k.startswith("optimizer/")][1] == "optimizer/001_dense0.W.m"
        for value, key in zip(t.model.get_values(), sorted(k for k in data.files if k.startswith("model/"))):
            np.testing.assert_array_equal(value, data[key])
    other = MLP([64, 12, 10], seed=3)
    assert Trainer.load_checkpoint(tmp_path / "run.npz", other) == 2
    np.testing.assert_array_equal(t.predict(valid[0]),
                                  Trainer(other, backend="reference").predict(valid[0]))


@pytest.mark.parametrize("shared", [False, True], ids=["arrays", "givens"])
def test_a_resumed_run_ends_as_an_uninterrupted_one(two_backends, shared, tmp_path):
    train, valid = tiny()
    data = (lambda: as_shared(train)) if shared else (lambda: train)
    options = dict(valid=valid, batch_size=40, shuffle=True, seed=4, progress=False)
    layers = dict(dropout=0.2, batchnorm=True)  # random streams and running statistics are restored too
    whole = trainer(two_backends, **layers)
    expected = whole.fit(data(), epochs=4, **options)

    path = tmp_path / "run.npz"
    trainer(two_backends, **layers).fit(data(), epochs=2, checkpoint=path, **options)  # interrupted after 2
    resumed = trainer(two_backends, seed=9, **layers)  # other initial values: the checkpoint's replace them
    history = resumed.fit(data(), epochs=4, checkpoint=path, resume=True, **options)
    assert len(history) == 4 and history["loss"][:2] == list(np.load(path)["history/loss"][:2])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_array_equal(history[key], expected[key])
    for mine, theirs in zip(resumed.model.get_values(), whole.model.get_values()):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(resumed.optimizer.state, whole.optimizer.state):
        np.testing.assert_array_equal(mine.get_value(), theirs.get_value())
    assert int(np.load(path)["epoch"]) == 4


def test_resume_without_a_file_starts_afresh_and_a_finished_run_stays_finished(tmp_path):
    train, valid = tiny()
    path = tmp_path / "run.npz"
    history = trainer().fit(train, epochs=1, batch_size=40, progress=False, checkpoint=path, resume=True)
    assert len(history) == 1 and path.exists()
    again = trainer()
    history = again.fit(train, epochs=1, batch_size=40, progress=False, checkpoint=path, resume=True)
    assert len(history) == 1  # epochs counts the epochs done before: nothing left to do
    np.testing.assert_array_equal(again.model.get_values()[0], np.load(path)["model/000_dense0.W"])


def test_resume_keeps_the_early_stopping_bookkeeping(tmp_path):
    train, valid = tiny()
    options = dict(valid=valid, batch_size=40, patience=3, progress=False)
    whole = trainer(optimizer=ascent())
    expected = whole.fit(train, epochs=20, **options)
    assert expected.stopped_early and len(expected) == 4 and expected.best_epoch == 0

    path = tmp_path / "run.npz"
    trainer(optimizer=ascent()).fit(train, epochs=2, checkpoint=path, **options)
    with np.load(path) as data:
        assert int(data["best_epoch"]) == 0 and int(data["waited"]) == 1 and "best_model/000_dense0.W" in data
    resumed = trainer(optimizer=ascent(), seed=9)
    history = resumed.fit(train, epochs=20, checkpoint=path, resume=True, **options)
    assert history.stopped_early and len(history) == 4 and history.best_epoch == 0
    for mine, theirs in zip(resumed.model.get_values(), whole.model.get_values()):  # the best epoch's
        np.testing.assert_array_equal(mine, theirs)
    finished = trainer(optimizer=ascent(), seed=9)
    history = finished.fit(train, epochs=20, checkpoint=path, resume=True, **options)
    assert history.stopped_early and len(history) == 4  # no epoch more after early stopping
    for mine, theirs in zip(finished.model.get_values(), whole.model.get_values()):
        np.testing.assert_array_equal(mine, theirs)


def test_best_only_writes_when_the_monitored_value_improves(monkeypatch, tmp_path):
    train, valid = tiny()
    writes = []
    write = training._write_checkpoint
    monkeypatch.setattr(training, "_write_checkpoint", lambda path, arrays: (
        writes.append(int(arrays["epoch"])), write(path, arrays)))
    path = tmp_path / "run.npz"
    worse = trainer(optimizer=ascent()).fit(train, valid=valid, epochs=3, batch_size=40, progress=False,
                                            checkpoint=path, checkpoint_best_only=True)
    assert worse["val_loss"][2] > worse["val_loss"][1] > worse["val_loss"][0]
    assert writes == [1] and int(np.load(path)["epoch"]) == 1
    writes.clear()
    history = trainer(optimizer=SGD(0.3)).fit(train, valid=valid, epochs=5, batch_size=40, progress=False,
                                              monitor="val_accuracy", checkpoint=path,
                                              checkpoint_best_only=True)
    accuracy = history["val_accuracy"]
    improved = [e + 1 for e in range(5) if e == 0 or accuracy[e] > max(accuracy[:e])]
    assert writes == improved and int(np.load(path)["best_epoch"]) == improved[-1] - 1
    with pytest.raises(ValueError, match="checkpoint_best_only monitors 'val_loss'"):
        trainer().fit(train, epochs=1, progress=False, checkpoint=path, checkpoint_best_only=True)
    with pytest.raises(ValueError, match="need checkpoint="):
        trainer().fit(train, epochs=1, progress=False, resume=True)


def test_a_checkpoint_of_another_model_or_optimizer_is_refused(tmp_path):
    train, valid = tiny()
    path = tmp_path / "run.npz"
    trainer(optimizer=SGD(0.1)).fit(train, epochs=1, batch_size=40, progress=False, checkpoint=path)
    narrower = trainer(hidden=8, optimizer=SGD(0.1))
    before = narrower.model.get_values()
    with pytest.raises(ValueError, match=r"entry 'model/000_dense0.W' has shape \(64, 12\), but this "
                                         r"model's or optimizer's has shape \(64, 8\)"):
        narrower.fit(train, epochs=2, batch_size=40, progress=False, checkpoint=path, resume=True)
    for mine, theirs in zip(narrower.model.get_values(), before):  # nothing was loaded
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="the checkpoint has no entry 'optimizer/001_dense0.W.m'"):
        trainer(optimizer=Adam(0.01)).fit(train, epochs=2, batch_size=40, progress=False, checkpoint=path,
                                          resume=True)
    with pytest.raises(ValueError, match="the checkpoint has no entry 'model/002_dense1.W'"):
        Trainer.load_checkpoint(path, MLP([64, 12, 10, 10], seed=0))
    with pytest.raises(ValueError, match="the checkpoint's entry 'model/002_output.W' is not in this model"):
        Trainer.load_checkpoint(path, Sequential([Dense(64, 12, name="dense0")]))


def test_a_failed_write_leaves_the_previous_checkpoint_whole(monkeypatch, tmp_path):
    train, valid = tiny()
    path = tmp_path / "run.npz"
    savez = np.savez

    def crash_in_the_second_write(f, **arrays):
        if int(arrays["epoch"]) == 1:
            return savez(f, **arrays)
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash_in_the_second_write)
    with pytest.raises(OSError, match="disk full"):
        trainer().fit(train, epochs=3, batch_size=40, progress=False, checkpoint=path)
    assert os.listdir(tmp_path) == ["run.npz"]
    assert int(np.load(path)["epoch"]) == 1
