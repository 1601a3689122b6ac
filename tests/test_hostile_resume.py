"""Checkpoints and resume against damage and misuse: a resume must be the same run (the settings
that decide the split, the data order and the optimisation are pinned), a damaged checkpoint is
named as such, the checkpoint folder is probed before training, a full disk at the final save
keeps the model, and BatchNorm is never trained on one value per channel."""

from __future__ import annotations

import errno
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import anynet
from anynet.run import ModelNotSavedError, train
from anynet.training import Callback, CheckpointError, read_checkpoint
from anynet.training.checkpoint import CHECKPOINT_FILE, tensors_digest

from .helpers import blobs


def make_net(lr=5e-3, extra=()):
    layers = [anynet.Dense(16), *extra, anynet.ReLU(), anynet.Dense(3)]
    return anynet.Network(layers, optimizer=anynet.Adam(lr=lr), seed=3, backend="numpy")


class Stop(Callback):
    """Ctrl-C at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, network, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class Count(Callback):
    def __init__(self):
        self.epochs, self.steps_per_epoch = 0, None

    def on_train_begin(self, network, epochs, steps):
        self.steps_per_epoch = steps

    def on_epoch_end(self, network, epoch, logs):
        self.epochs += 1


def interrupted(tmp_path, **kw) -> Path:
    """A checkpoint folder left by a run stopped after its first epoch."""
    x, y = blobs()
    with pytest.raises(KeyboardInterrupt):
        make_net(**kw).fit(x, y, epochs=3, batch_size=16, checkpoint_dir=tmp_path, callbacks=[Stop(0)])
    return tmp_path


def resume(tmp_path, net=None, **kw):
    x, y = blobs()
    options = dict(epochs=3, batch_size=16, checkpoint_dir=tmp_path, resume=True) | kw
    return (net or make_net()).fit(x, y, **options)


# ---------------------------------------------------------------------- a resume is the same run


def test_train_refuses_a_resume_with_another_seed(tmp_path):
    """Another seed gives another validation split: its images would leak into training."""
    x, y = blobs(n=300)
    kw = dict(dataset=(x, y), model="mlp-small", hidden=(8,), epochs=3, batch_size=32, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(**kw, seed=0, checkpoint_dir=tmp_path, callbacks=[Stop(0)])
    with pytest.raises(CheckpointError, match=r"seed \(--seed\)") as info:
        train(**kw, seed=1, checkpoint_dir=tmp_path, resume=True)
    assert "0 in the checkpoint, 1 now" in str(info.value)
    with pytest.raises(CheckpointError, match=r"limit \(--limit\)"):
        train(**kw, seed=0, limit=200, checkpoint_dir=tmp_path, resume=True)
    result = train(**kw, seed=0, checkpoint_dir=tmp_path, resume=True)  # the same run resumes
    assert len(result.history["loss"]) == 3 and result.model.info.training.seed == 0


@pytest.mark.parametrize(
    "change, flag",
    [
        (dict(net=make_net(lr=1e-2)), "--lr"),
        (dict(seed=99), "--seed"),
        (dict(shuffle=False), "shuffle"),
        (dict(class_weight="balanced"), "--class-weight"),
        (dict(augment=lambda xb, rng: xb), "--augment"),
    ],
    ids=["lr", "seed", "shuffle", "class-weight", "augment"],
)
def test_fit_refuses_a_resume_that_changes_a_pinned_setting(tmp_path, change, flag):
    interrupted(tmp_path)
    with pytest.raises(CheckpointError, match=f"cannot resume.*{flag}"):
        resume(tmp_path, **change)


def test_a_resume_may_change_the_epochs_and_callbacks(tmp_path):
    interrupted(tmp_path)
    count = Count()
    history = resume(tmp_path, epochs=4, callbacks=[count], verbose=0)
    assert len(history["loss"]) == 4 and count.epochs == 3


def test_checkpoints_from_before_the_pinned_settings_still_resume(tmp_path):
    """Checkpoints written before ``settings`` and ``tensors_sha256`` existed load as before."""
    interrupted(tmp_path)
    _rewrite(tmp_path, lambda meta, tensors: [meta.pop("settings"), meta.pop("tensors_sha256")])
    assert len(resume(tmp_path)["loss"]) == 3


# ---------------------------------------------------------------------- damaged checkpoints


def _rewrite(folder: Path, change) -> None:
    """Rewrite the checkpoint's metadata and tensors through ``change(meta, tensors)``."""
    from safetensors.numpy import load_file, save_file

    path = folder / CHECKPOINT_FILE
    tensors = load_file(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["anynet-checkpoint"])
    change(meta, tensors)
    save_file(tensors, path, metadata={"anynet-checkpoint": json.dumps(meta)})


def test_a_flipped_weight_byte_is_found(tmp_path):
    interrupted(tmp_path)
    path = tmp_path / CHECKPOINT_FILE
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # inside the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"damaged.*checksum"):
        resume(tmp_path)


def test_nan_moments_are_damage_not_a_high_learning_rate(tmp_path):
    interrupted(tmp_path)

    def poison(meta, tensors):
        name = next(k for k in tensors if "/slots/" in k)
        tensors[name] = np.full_like(tensors[name], np.nan)
        meta["tensors_sha256"] = tensors_digest(tensors)  # a consistent checksum: caught anyway

    _rewrite(tmp_path, poison)
    with pytest.raises(CheckpointError, match=r"damaged.*non-finite"):
        resume(tmp_path)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda m: m.pop("epoch"), "no 'epoch' field"),
        (lambda m: m.update(epoch="three"), "'epoch' field is not int"),
        (lambda m: m.update(step=-4), "impossible counts"),
        (lambda m: m.update(history={"loss": "x"}), "'history' field"),
        (lambda m: m.update(guard={}), "damaged"),
        (lambda m: m.update(weights=[{"W": {"__tensor__": "nowhere"}}]), "does not hold"),
        (lambda m: m.update(info=[[[[1]]]] * 3), "'info' field"),
        (lambda m: m.update(callbacks=[{"type": "x"}] * 2, deep=json.loads("[" * 40 + "]" * 40)), "nested"),
    ],
    ids=["missing-key", "wrong-type", "negative-step", "history", "guard", "dangling", "info", "deep"],
)
def test_hostile_checkpoint_metadata_is_reported_as_damage(tmp_path, edit, words):
    interrupted(tmp_path)
    _rewrite(tmp_path, lambda meta, tensors: edit(meta))
    with pytest.raises(CheckpointError, match=words) as info:
        resume(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_truncated_checkpoint_is_damaged(tmp_path):
    interrupted(tmp_path)
    path = tmp_path / CHECKPOINT_FILE
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="damaged"):
        resume(tmp_path)
    path.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(CheckpointError, match="damaged"):
        read_checkpoint(tmp_path)


def test_a_checkpoint_of_nan_weights_is_not_written(tmp_path):
    from anynet.training.checkpoint import write_checkpoint

    with pytest.raises(CheckpointError, match="non-finite"):
        write_checkpoint(tmp_path, {"weights": [{"W": np.array([1.0, np.nan])}]})
    assert not (tmp_path / CHECKPOINT_FILE).exists()


# ---------------------------------------------------------------------- the checkpoint folder


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_an_unusable_checkpoint_folder_is_refused_before_training(tmp_path, where):
    (tmp_path / "a-file").write_text("not a folder")
    x, y = blobs()
    count = Count()
    with pytest.raises(CheckpointError, match="checkpoint"):
        make_net().fit(x, y, epochs=2, batch_size=16, checkpoint_dir=tmp_path / where, callbacks=[count])
    assert count.epochs == 0  # refused before the first epoch, not after it


def test_probing_the_checkpoint_folder_leaves_nothing_behind_on_failure(tmp_path):
    x, y = blobs()
    with pytest.raises(ValueError, match="labels"):
        make_net().fit(x, y + 5, epochs=1, checkpoint_dir=tmp_path / "new" / "ckpt")
    assert not (tmp_path / "new").exists()


# ---------------------------------------------------------------------- a full disk at the end


def _full_disk_for(target: Path, monkeypatch):
    from anynet.io import format as model_format

    real = model_format.write_atomically

    def write(path, data):
        if Path(path) == target:
            raise OSError(errno.ENOSPC, f"No space left on device: {path}")
        return real(path, data)

    monkeypatch.setattr(model_format, "write_atomically", write)


@pytest.mark.parametrize("with_checkpoints", [True, False])
def test_a_full_disk_at_the_final_save_keeps_the_model(tmp_path, monkeypatch, with_checkpoints):
    monkeypatch.setenv("ANYNET_HOME", str(tmp_path / "home"))
    target = tmp_path / "out" / "model.safetensors"
    _full_disk_for(target, monkeypatch)
    x, y = blobs(n=150)
    ckpt = tmp_path / "ckpt" if with_checkpoints else None
    with pytest.raises(ModelNotSavedError) as info:
        train(dataset=(x, y), model=make_net(), epochs=1, verbose=0, save=target, checkpoint_dir=ckpt)
    err = info.value
    assert err.errno is None or err.errno == errno.ENOSPC
    assert "No space left" in str(err) and str(err.saved_to) in str(err)
    want = (ckpt if with_checkpoints else tmp_path / "home" / "models") / "unsaved-model.safetensors"
    assert err.saved_to == want
    kept = anynet.load_model(err.saved_to)
    np.testing.assert_array_equal(kept.get_weights()[0]["W"], err.result.model.get_weights()[0]["W"])
    assert not target.exists()


# ---------------------------------------------------------------------- BatchNorm and one value


def test_batchnorm_refuses_one_value_per_channel():
    net = make_net(extra=(anynet.BatchNorm(),))
    net.build((8,))
    x, y = blobs(n=4)
    xd, t = net.inputs(x[:1]), net.targets(y[:1], 1)
    with pytest.raises(ValueError, match="more than one value per channel"):
        net.train_step(xd, t)
    cnn = anynet.Network([anynet.Conv2D(2, 3), anynet.BatchNorm(), anynet.Flatten(), anynet.Dense(3)])
    cnn.build((1, 3, 3))  # 1x1 maps after the convolution
    with pytest.raises(ValueError, match="more than one value per channel"):
        cnn.train_step(cnn.inputs(np.ones((1, 1, 3, 3), np.float32)), cnn.targets(np.array([0]), 1))


def test_fit_drops_a_last_batch_of_one_with_batchnorm():
    x, y = blobs(n=33)
    net, count = make_net(extra=(anynet.BatchNorm(),)), Count()
    net.fit(x, y, epochs=2, batch_size=16, callbacks=[count])
    assert count.steps_per_epoch == 2  # 16 + 16; the 33rd sample's batch of one is dropped
    assert float(np.min(net.get_weights()[1]["var"])) > 0.01  # running variance did not collapse
    plain = Count()
    make_net().fit(x, y, epochs=1, batch_size=16, callbacks=[plain])
    assert plain.steps_per_epoch == 3  # without BatchNorm every sample is used
    with pytest.raises(ValueError, match="at least 2 samples"):
        make_net(extra=(anynet.BatchNorm(),)).fit(x[:1], y[:1], epochs=1)


# ---------------------------------------------------------------------- odds and ends


def test_train_refuses_a_bad_learning_rate_before_loading_any_data():
    with pytest.raises(ValueError, match="lr") as info:
        train(dataset="no-such-dataset", lr=float("inf"), verbose=0)
    assert "no-such-dataset" not in str(info.value)


def test_the_last_model_record_replaces_only_a_regular_file(tmp_path, monkeypatch):
    import os

    from anynet.app.paths import record_last_model

    monkeypatch.setenv("ANYNET_HOME", str(tmp_path))
    os.mkfifo(tmp_path / "last_model")
    with pytest.raises(OSError, match="FIFO"):
        record_last_model(tmp_path / "m.safetensors")
    assert (tmp_path / "last_model").is_fifo()


def test_damaged_generator_positions_are_damage(tmp_path):
    class StopMidEpoch(Callback):
        def on_batch_end(self, network, step, running):
            if step == 2:
                raise KeyboardInterrupt

    x, y = blobs()
    with pytest.raises(KeyboardInterrupt):
        make_net().fit(x, y, epochs=2, batch_size=16, checkpoint_dir=tmp_path, callbacks=[StopMidEpoch()])
    _rewrite(
        tmp_path, lambda meta, tensors: meta["random_state"]["stream"].update(state={"bit_generator": "X"})
    )
    with pytest.raises(CheckpointError, match="generator positions are damaged"):
        make_net().fit(x, y, epochs=2, batch_size=16, checkpoint_dir=tmp_path, resume=True)
