"""Full-state checkpoints: an interrupted run resumed from its checkpoint ends where the
uninterrupted run ends (bit for bit on NumPy), Ctrl-C saves and says how to resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import anynet
from anynet.backend import to_numpy
from anynet.run import train
from anynet.training import (
    Callback,
    CheckpointError,
    EarlyStopping,
    ReduceLROnPlateau,
    read_checkpoint,
)
from anynet.training.checkpoint import CHECKPOINT_FILE

from .helpers import BACKEND_SPECS, InterruptAt, _backend_or_skip, assert_same, blobs, fit, make_net


def callbacks():
    return [
        EarlyStopping(monitor="val_loss", patience=10),
        ReduceLROnPlateau(monitor="loss", patience=1, mode="max"),
    ]


@pytest.mark.parametrize(
    "where",
    [dict(epoch=1), dict(epoch=2, step=2), dict(epoch=1, step=5, sigint=True)],
    ids=["epoch-end", "mid-epoch", "sigint"],
)
def test_stop_and_resume_is_bit_identical_on_numpy(tmp_path, capsys, where):
    data = blobs()
    straight = make_net()
    fit(straight, data, callbacks=callbacks())
    ckpt = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(make_net(), data, callbacks=[*callbacks(), InterruptAt(**where)], checkpoint_dir=ckpt)
    err = capsys.readouterr().err
    assert str(ckpt) in err and "resume=True" in err and "--resume" in err
    resumed = make_net()  # a fresh process would build the same unfitted network
    history = fit(resumed, data, callbacks=callbacks(), checkpoint_dir=ckpt, resume=True)
    assert_same(straight, resumed)
    for key in ("loss", "accuracy", "val_loss", "lr"):
        assert history[key] == straight.history[key], key
    assert read_checkpoint(ckpt)["optimizer"]["steps"] == 4 * 6  # (set_weights at the end resets it)
    assert min(history["lr"]) < history["lr"][0]  # ReduceLROnPlateau's scale came through the resume


@pytest.mark.parametrize("spec", [s for s in BACKEND_SPECS if s != "numpy"])  # NumPy: bit for bit, above
def test_resume_matches_on_other_backends(tmp_path, spec):
    _backend_or_skip(spec)
    data = blobs()
    straight = make_net(spec)
    fit(straight, data)
    with pytest.raises(KeyboardInterrupt):
        fit(make_net(spec), data, callbacks=[InterruptAt(1, 3)], checkpoint_dir=tmp_path)
    resumed = make_net(spec)
    fit(resumed, data, checkpoint_dir=tmp_path, resume=True)
    assert_same(straight, resumed, exact=False)


def test_checkpoint_holds_the_full_state_every_epoch(tmp_path):
    data = blobs()
    net = make_net()
    net.info = anynet.ModelInfo(dataset="blobs")
    seen = []

    class Peek(Callback):
        def on_epoch_end(self, network, epoch, logs):
            if (tmp_path / CHECKPOINT_FILE).exists():
                seen.append(read_checkpoint(tmp_path)["epoch"])

    fit(net, data, checkpoint_dir=tmp_path, callbacks=[Peek()])
    assert seen == [1, 2, 3]  # written after every epoch (read before the next one's)
    state = read_checkpoint(tmp_path)
    assert state["epoch"] == 4 and state["step"] == 0 and state["seed"] == net.seed + 1
    assert state["optimizer"]["steps"] == net.optimizer.steps
    m = state["optimizer"]["slots"]["1.W"]["m"]
    np.testing.assert_array_equal(m, to_numpy(net.optimizer.state["1.W"]["m"]))
    assert state["history"]["loss"] == net.history["loss"]
    assert state["info"]["info"]["dataset"] == "blobs"
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]  # no temporary left
    assert Path(tmp_path, CHECKPOINT_FILE).read_bytes()[8:9] == b"{"  # safetensors header, no pickle


def test_resume_refuses_a_different_run(tmp_path):
    x, y = blobs()
    make_net().fit(x, y, epochs=1, batch_size=16, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="batch_size"):
        make_net().fit(x, y, epochs=2, batch_size=8, checkpoint_dir=tmp_path, resume=True)
    other = anynet.mlp((4,), num_classes=3, backend="numpy")
    with pytest.raises(CheckpointError, match="architecture"):
        other.fit(x, y, epochs=2, batch_size=16, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        make_net().fit(x, y, epochs=2, checkpoint_dir=tmp_path / "empty", resume=True)
    make_net().fit(x, y, epochs=1, checkpoint_dir=tmp_path / "empty", resume="auto")  # starts afresh


def test_train_resumes_and_keeps_the_record(tmp_path, capsys):
    x, y = blobs(n=150)
    kw = dict(
        dataset=(x, y, x[:30], y[:30]),
        model=anynet.mlp((16,), num_classes=3, backend="numpy"),
        epochs=3,
        batch_size=16,
        verbose=0,
        lr=1e-2,
    )
    straight = train(**kw)
    kw["model"] = anynet.mlp((16,), num_classes=3, backend="numpy")
    with pytest.raises(KeyboardInterrupt):
        train(**kw, checkpoint_dir=tmp_path, save=tmp_path / "m.safetensors", callbacks=[InterruptAt(1, 2)])
    assert not (tmp_path / "m.safetensors").exists()
    assert read_checkpoint(tmp_path)["info"]["info"]["dataset"] == "arrays"
    kw["model"] = anynet.mlp((16,), num_classes=3, backend="numpy")
    resumed = train(**kw, checkpoint_dir=tmp_path, resume=True)
    assert_same(straight.model, resumed.model)
    assert len(resumed.history["loss"]) == 3 and resumed.model.info.training.epochs == 3


def test_ctrl_c_without_a_checkpoint_dir_saves_under_anynet_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANYNET_HOME", str(tmp_path))
    x, y = blobs()
    with pytest.raises(KeyboardInterrupt):
        make_net().fit(x, y, epochs=2, batch_size=16, callbacks=[InterruptAt(0, 1)])
    (saved,) = (tmp_path / "checkpoints").iterdir()
    assert str(saved) in capsys.readouterr().err
    assert read_checkpoint(saved)["step"] == 2
