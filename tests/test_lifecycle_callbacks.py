"""Callbacks (ModelCheckpoint, CSVLogger, ReduceLROnPlateau, EarlyStopping), initial_epoch and
the console output levels."""

from __future__ import annotations

import csv
import io
import sys

import numpy as np
import pytest

import anynet
from anynet.training import CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau


def blobs(n=60, k=3):
    rng = np.random.default_rng(0)
    y = np.arange(n) % k
    return (rng.normal(size=(n, 5)) + 2 * y[:, None]).astype(np.float32), y.astype(np.int64)


def net(**kw):
    return anynet.mlp((8,), num_classes=3, backend="numpy", optimizer=anynet.Adam(lr=1e-2, **kw))


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    x, y = blobs()
    every = ModelCheckpoint(tmp_path / "e{epoch:02d}-{loss:.3f}.safetensors", monitor="loss")
    best = ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_accuracy", save_best_only=True)
    model = net()
    model.fit(x, y, epochs=3, batch_size=16, validation_data=(x, y), callbacks=[every, best])
    assert [p.name[:3] for p in every.saved] == ["e01", "e02", "e03"]
    assert 1 <= len(best.saved) <= 3 and best.best == max(model.history["val_accuracy"])
    last = anynet.load_model(every.saved[-1])
    np.testing.assert_array_equal(anynet.to_numpy(last.predict(x)), anynet.to_numpy(model.predict(x)))


def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    x, y = blobs()
    path = tmp_path / "log.csv"
    net().fit(x, y, epochs=3, validation_data=(x, y), callbacks=[CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    net().fit(x, y, epochs=2, callbacks=[CSVLogger(path, append=True)])
    assert len(list(csv.reader(path.open()))) == 1 + 3 + 2  # appended under the one header


def test_reduce_lr_on_plateau_scales_the_rate():
    x, y = blobs()
    # "max" on a falling loss: never an improvement, so the rate halves after each patience epoch
    cb = ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1, min_lr=3e-3)
    history = net().fit(x, y, epochs=4, callbacks=[cb])
    assert history["lr"] == pytest.approx([1e-2, 1e-2, 5e-3, 3e-3])


def test_early_stopping_restore_best_weights_and_its_alias():
    assert EarlyStopping(restore_best=False).restore_best_weights is False
    assert EarlyStopping(restore_best_weights=False).restore_best is False
    assert EarlyStopping().restore_best_weights is True


def test_initial_epoch_continues_the_schedule():
    x, y = blobs()
    history = net(schedule="cosine").fit(x, y, epochs=4, initial_epoch=2)
    assert len(history["loss"]) == 2
    assert history["lr"] == pytest.approx([1e-2 * anynet.CosineDecay()(e, 4) for e in (2, 3)])
    with pytest.raises(ValueError, match="initial_epoch"):
        net().fit(x, y, epochs=2, initial_epoch=2)


@pytest.mark.parametrize("verbose", [1, 2, True])
def test_not_a_terminal_one_line_per_epoch(capsys, verbose):
    x, y = blobs()
    net().fit(x, y, epochs=3, batch_size=8, verbose=verbose)
    out = capsys.readouterr()
    assert "\r" not in out.err + out.out
    lines = out.err.strip().splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "loss" in lines[0] and "accuracy" in lines[0]


def test_a_terminal_gets_a_progress_bar_and_verbose_0_is_silent(capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    x, y = blobs()
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    net().fit(x, y, epochs=2, batch_size=8, verbose=1)
    assert "\r" in tty.getvalue()
    monkeypatch.undo()
    net().fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="verbose"):
        net().fit(x, y, epochs=1, verbose=3)
