"""Hostile and damaged model files: every one is refused with a ModelFileError (a ValueError)
that says what is wrong, before the network is allocated, never with MemoryError,
RecursionError, AttributeError, TypeError or a silently wrong model (issue 13, points 7-9)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import anynet
from anynet import io, load_model
from anynet.io import ModelFileError, architecture, save_model
from anynet.io import format as model_format

from .helpers import _tensors


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small built model (Flatten, Dense 6, ReLU, Dropout, Dense 3) saved by today's code."""
    net = anynet.mlp((6,), num_classes=3, backend="numpy", classes="abc", input_shape=(4, 4), dropout=0.1)
    return save_model(net, tmp_path_factory.mktemp("good") / "good.safetensors")


def _parts(path):
    """The header (dict) and the tensor data (bytes) of a safetensors file."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _raw(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def _meta(path) -> dict:
    return json.loads(_parts(path)[0]["__metadata__"]["anynet"])


def _write(path, tensors, meta):
    """A model file with these tensors and this metadata (a dict, or any JSON text)."""
    from safetensors.numpy import save

    text = meta if isinstance(meta, str) else json.dumps(meta)
    path.write_bytes(save(tensors, metadata={"anynet": text}))
    return path


def _with_config(good, tmp_path, edit):
    """``good`` with ``edit(config)`` applied to its architecture (no checksum)."""
    meta = _meta(good)
    meta.pop("weights_sha256", None)
    edit(meta["config"])
    return _write(tmp_path / "edited.safetensors", _tensors(good), meta)


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------------- point 7: metadata


@pytest.mark.parametrize(
    "text, match",
    [
        ("[1, 2, 3]", r"must be a JSON object \(got: array\)"),
        ('"a string"', "must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ('{"format": "anynet-model/1", "info": ' + "[" * 5_000 + "]" * 5_000 + "}", "nested more than"),
        ('{"format": "anynet-model/1", "config": 5}', "'config' should be dict"),
        ('{"format": "anynet-model/1", "format": "anynet-model/1"}', "duplicate key"),
    ],
)
def test_metadata_that_is_not_an_anynet_record(good, tmp_path, text, match):
    _refused(_write(tmp_path / "m.safetensors", _tensors(good), text), match)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("preprocessing", {"style": 5}, "preprocessing.style should be str"),
        ("info", {"history": {"loss": ["x"]}}, "info.history should be"),
        ("info", {"training": [1, 2]}, "info.training should be"),
        ("info", {"training": {"epochs": "many"}}, "info.training.epochs should be int"),
        ("anynet_version", 1, "'anynet_version' should be"),
    ],
)
def test_record_fields_of_the_wrong_type(good, tmp_path, key, value, match):
    meta = _meta(good)
    meta[key] = value
    _refused(_write(tmp_path / "m.safetensors", _tensors(good), meta), match)


def _set(index, **config):
    def edit(cfg):
        cfg["layers"][index]["config"].update(config)

    return edit


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda c: c["layers"].insert(1, {"type": "Conv9D", "config": {}}), "unknown layer type 'Conv9D'"),
        (lambda c: c["layers"].insert(1, {"type": "__class__", "config": {}}), "unknown layer type"),
        (lambda c: c["layers"].insert(1, "Dense"), "layer 1 should be"),
        (lambda c: c["layers"][1].update(config=[6]), "layer 1 should be"),
        (lambda c: c.update(layers={"0": "Dense"}), "'layers' should be a list"),
        (lambda c: c.update(layers=[]), "'layers' should be a list"),
        (_set(1, units="6"), r"units='6' should be int"),
        (_set(1, units=6.0), r"units=6.0 should be int"),
        (_set(1, units=True), r"units=True should be int"),
        (_set(1, use_bias="no"), r"use_bias='no' should be bool"),
        (_set(1, init=5), r"init=5 should be str"),
        (_set(1, init="zeros"), "unknown init 'zeros'"),
        (_set(3, rate=float("nan")), "rate=nan is not finite"),
        (_set(3, rate=[0.5]), r"rate=\[0.5\] should be float"),
        (_set(1, activation="relu"), "does not fit Dense"),
        (lambda c: c["layers"][1].update(config={}), "does not fit Dense"),
        (lambda c: c.update(loss="hinge"), "unknown loss 'hinge'"),
        (lambda c: c.update(loss={"a": 1}), "'loss' should be str"),
        (lambda c: c.update(dtype="float16"), "'dtype' should be"),
        (lambda c: c.update(seed=-1), "'seed' should be in"),
        (lambda c: c.update(seed="0"), "'seed' should be int"),
        (lambda c: c.update(classes="abc"), "'classes' should be"),
        (lambda c: c.update(classes=["a", "b"]), "2 class names for a network with 3 outputs"),
        (lambda c: c.update(input_shape=None), "input_shape should be 1 to 8 positive integers"),
        (lambda c: c.update(input_shape=[4, -4]), "input_shape should be 1 to 8 positive integers"),
        (lambda c: c.update(input_shape=[4, "4"]), "input_shape should be 1 to 8 positive integers"),
        (lambda c: c.update(input_shape=[4, 4.0]), "input_shape should be 1 to 8 positive integers"),
        (lambda c: c["layers"].pop(0), "Dense expects flat inputs"),
        (lambda c: c["layers"].pop(), "the last layer must give flat outputs|class names"),
    ],
)
def test_architecture_checked_against_the_layer_classes(good, tmp_path, edit, match):
    _refused(_with_config(good, tmp_path, edit), match)


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda c: (c.update(input_shape=[28, 28]), c["layers"][1]["config"].update(units=2_000_000)),
            "more than 100,000,000 parameters",
        ),
        (_set(1, units=10**30), "values per sample, above the limit"),
        (lambda c: c.update(input_shape=[10**9]), "1,000,000,000 values per sample"),
        (lambda c: c.update(input_shape=[1000, 1000, 1000]), "values per sample, above the limit"),
        (
            lambda c: (c.update(input_shape=[20_000]), c["layers"][1]["config"].update(units=20_000)),
            "more than 100,000,000 parameters",
        ),
        (lambda c: c.update(layers=[{"type": "ReLU", "config": {}}] * 100_000), "1 to 1000 layers"),
    ],
)
def test_absurd_sizes_refused_before_allocating(good, tmp_path, edit, match, monkeypatch):
    """The parameter count is worked out from the declared architecture; nothing is built."""

    def no_build(*args, **kwargs):
        raise AssertionError("the network was built before its size was checked")

    monkeypatch.setattr(anynet.Network, "build", no_build)
    _refused(_with_config(good, tmp_path, edit), match)


def test_parameter_limit_is_exact(good, tmp_path, monkeypatch):
    """MAX_PARAMETERS is the documented limit: a model of exactly that many loads."""
    n = sum(v.size for v in _tensors(good).values())
    monkeypatch.setattr(architecture, "MAX_PARAMETERS", n)
    assert load_model(good).count_parameters() == n
    monkeypatch.setattr(architecture, "MAX_PARAMETERS", n - 1)
    _refused(good, f"more than {n - 1:,} parameters")


# --------------------------------------------------------------------------- point 7: tensors


def _renamed(good, tmp_path, old, new, value=None):
    tensors = _tensors(good)
    tensors[new] = tensors.pop(old) if value is None else value
    meta = _meta(good)
    meta.pop("weights_sha256", None)
    return _write(tmp_path / "renamed.safetensors", tensors, meta)


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("layers.4.W", "layers.-1.W", r"tensor name 'layers.-1.W' is not"),  # would land on the last layer
        ("layers.1.b", "layers.0.W.extra", r"tensor name 'layers.0.W.extra'"),
        ("layers.1.b", "layers.1.b ", "tensor name"),
        ("layers.1.b", "weights", "tensor name 'weights'"),
        ("layers.1.b", "layers.9.b", "missing tensors layers.1.b; unexpected tensors 'layers.9.b'"),
        ("layers.1.b", "layers.1.bias", "missing tensors layers.1.b; unexpected tensors 'layers.1.bias'"),
        ("layers.1.b", "layers.2.b", "unexpected tensors 'layers.2.b'"),  # ReLU has none
    ],
)
def test_tensor_names(good, tmp_path, old, new, match):
    _refused(_renamed(good, tmp_path, old, new), match)


def test_a_second_name_for_one_parameter_cannot_overwrite_it(good, tmp_path):
    """'layers.01.W' would parse as layer 1 and silently replace layers.1.W."""
    path = _renamed(good, tmp_path, "layers.1.W", "layers.01.W", value=np.full((16, 6), 7.0, np.float32))
    _refused(path, "tensor name 'layers.01.W'")


def test_missing_and_extra_tensors(good, tmp_path):
    tensors, meta = _tensors(good), _meta(good)
    meta.pop("weights_sha256")
    del tensors["layers.4.b"]
    _refused(_write(tmp_path / "a.safetensors", tensors, meta), "missing tensors layers.4.b")
    tensors = {**_tensors(good), "layers.4.gamma": np.ones(3, np.float32)}
    _refused(_write(tmp_path / "b.safetensors", tensors, meta), "unexpected tensors 'layers.4.gamma'")


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.uint8])
def test_only_float_tensors(good, tmp_path, dtype):
    """No silent cast of integer or boolean data into weights."""
    path = _renamed(good, tmp_path, "layers.4.b", "layers.4.b", value=np.ones(3, dtype))
    _refused(path, "tensor layers.4.b has dtype .*float tensors")


def test_float16_and_float64_tensors_load(good, tmp_path):
    tensors = _tensors(good)
    tensors = {k: v.astype(np.float16 if k.endswith("W") else np.float64) for k, v in tensors.items()}
    meta = _meta(good)
    meta.pop("weights_sha256")
    model = load_model(_write(tmp_path / "f16.safetensors", tensors, meta))
    np.testing.assert_allclose(model.get_weights()[1]["W"], tensors["layers.1.W"].astype(np.float32))


def test_tensor_shapes_must_match(good, tmp_path):
    path = _renamed(good, tmp_path, "layers.4.W", "layers.4.W", value=np.ones((3, 6), np.float32))
    _refused(path, r"layers.4.W is \[3, 6\], expected \[6, 3\]")


@pytest.mark.parametrize(
    "entry, match",
    [
        (
            {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]},
            "beyond the end of the file",
        ),
        ({"dtype": "F32", "shape": [10**12], "data_offsets": [0, 16]}, "does not fill its 16 bytes"),
        ({"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}, "has shape"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [8, 0]}, "data_offsets"),
        (
            {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "extra": 1},
            "expected dtype, shape and data_offsets",
        ),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "tensors end at byte 8 of 16"),
    ],
)
def test_header_lying_about_tensors(good, tmp_path, entry, match):
    header = {"__metadata__": {"anynet": json.dumps(_meta(good))}, "layers.1.b": entry}
    _refused(_raw(tmp_path / "lying.safetensors", header, b"\0" * 16), match)


def test_overlapping_tensors_refused(good, tmp_path):
    """Two tensors over the same bytes (the header is read by anynet, not trusted)."""
    header, data = _parts(good)
    start = header["layers.1.b"]["data_offsets"][0]
    header["layers.4.b"]["data_offsets"] = [start, start + 12]  # the first 3 values of layers.1.b
    _refused(_raw(tmp_path / "overlap.safetensors", header, data), "starts at byte|end at byte")


def test_header_length_beyond_the_limit(tmp_path):
    path = tmp_path / "big-header.safetensors"
    path.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    _refused(path, "above the 16,777,216-byte limit")


def test_file_above_the_size_limit_is_not_read(good, tmp_path, monkeypatch):
    """A (sparse) 2 GiB file is refused from its size alone."""
    path = tmp_path / "huge.safetensors"
    path.write_bytes(good.read_bytes())
    with open(path, "r+b") as f:
        f.truncate(2**31)
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read the whole file"))
    _refused(path, "above the 1,073,741,824-byte limit")
    monkeypatch.setattr(model_format, "MAX_FILE_BYTES", good.stat().st_size - 1)
    _refused(good, "-byte limit for a model file")


# --------------------------------------------------------------------------- point 8: values


def test_non_finite_weights_refused(good, tmp_path):
    for bad in (np.nan, np.inf, -np.inf):
        w = _tensors(good)["layers.4.W"].copy()
        w[2, 1] = bad
        _refused(
            _renamed(good, tmp_path, "layers.4.W", "layers.4.W", value=w),
            "tensor layers.4.W holds 1 non-finite values",
        )


def test_non_finite_weights_are_not_saved(tmp_path):
    net = anynet.mlp((4,), num_classes=2, backend="numpy", input_shape=(3,))
    net.layers[1].params["W"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite weights .* layers\.1\.W"):
        save_model(net, tmp_path / "nan.safetensors")
    assert not list(tmp_path.iterdir())


def test_checksum_is_stored_and_verified(good, tmp_path):
    meta = _meta(good)
    assert meta["weights_sha256"] == io.weights_digest(_tensors(good))
    assert len(meta["weights_sha256"]) == 64
    raw = bytearray(good.read_bytes())
    raw[-7] ^= 0x01  # one bit of the last weight, still a finite float
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(raw))
    _refused(bad, r"do not match their checksum \(weights_sha256\).*damaged or changed")


def test_checksum_covers_names_shapes_and_dtypes_in_a_canonical_order():
    """The same bytes under another name, shape or dtype are another model."""
    w = np.arange(6, dtype=np.float32)
    base = io.weights_digest({"layers.1.W": w, "layers.10.b": w[:2]})
    assert base == io.weights_digest({"layers.10.b": w[:2], "layers.1.W": w})  # insertion order
    assert base != io.weights_digest({"layers.2.W": w, "layers.10.b": w[:2]})
    assert base != io.weights_digest({"layers.1.W": w.reshape(2, 3), "layers.10.b": w[:2]})
    assert base != io.weights_digest({"layers.1.W": w.view(np.int32), "layers.10.b": w[:2]})


def test_modified_weights_with_the_old_checksum(good, tmp_path):
    tensors = _tensors(good)
    tensors["layers.1.W"] = tensors["layers.1.W"][::-1].copy()  # rows swapped: same values
    _refused(_write(tmp_path / "swapped.safetensors", tensors, _meta(good)), "checksum")


def test_a_file_without_checksum_loads(good, tmp_path):
    meta = _meta(good)
    del meta["weights_sha256"]
    model = load_model(_write(tmp_path / "old.safetensors", _tensors(good), meta))
    assert model.classes == ("a", "b", "c")


def test_reserved_metadata_cannot_be_overridden(tmp_path):
    net = anynet.mlp((4,), num_classes=2, backend="numpy", input_shape=(3,))
    with pytest.raises(ValueError, match="weights_sha256"):
        save_model(net, tmp_path / "x.safetensors", weights_sha256="0" * 64)


# --------------------------------------------------------------------------- point 9: paths


def test_a_folder_given_as_model(good, tmp_path):
    (tmp_path / "m.safetensors").write_bytes(good.read_bytes())
    _refused(tmp_path, "is a folder, not a model file; give the .safetensors file .*m.safetensors")


def test_a_temporary_of_an_interrupted_save(good, tmp_path):
    """Even a complete temporary (the save died just before os.replace) is named as such."""
    tmp = tmp_path / ".model.safetensors.k3j_x9a2.tmp"
    tmp.write_bytes(good.read_bytes())
    _refused(tmp, "temporary file left by an interrupted save of .*model.safetensors")
    with pytest.raises(
        io.ModelFileNotFoundError,
        match=r"k3j_x9a2\.tmp is there: a temporary file left by an interrupted save",
    ):
        load_model(tmp_path / "model.safetensors")
    with pytest.raises(FileNotFoundError):  # also an OSError, for callers that catch those
        load_model(tmp_path / "model.safetensors")


@pytest.mark.parametrize(
    "fmt, match",
    [
        ("anynet-model/2", "written by a newer anynet .*'anynet-model/2'.*upgrade anynet"),
        ("anynet-model/17", "written by a newer anynet"),
        ("anynet-model/0", "unsupported model format 'anynet-model/0'"),
        ("keras", "unsupported model format 'keras'"),
        (None, "unsupported model format None"),
    ],
)
def test_format_versions(good, tmp_path, fmt, match):
    meta = _meta(good)
    meta["format"] = fmt
    _refused(_write(tmp_path / "v.safetensors", _tensors(good), meta), match)


def test_stale_temporaries_of_the_same_target_are_removed(good, tmp_path):
    target = tmp_path / "model.safetensors"
    old = time.time() - 3600
    names = {
        ".model.safetensors.abcd_123.tmp": True,  # an interrupted save of this target
        ".model.safetensors.zz99zz99.tmp": True,
        ".model.safetensors.young123.tmp": False,  # young: maybe a save still running
        ".other.safetensors.abcd1234.tmp": False,  # another target
        ".model.safetensors.abcd1234.tmp.keep": False,  # not save_model's pattern
        ".model.safetensors.abc.tmp": False,
        "model.safetensors.abcd1234.tmp": False,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
        if name != ".model.safetensors.young123.tmp":
            os.utime(tmp_path / name, (old, old))
    net = load_model(good)
    save_model(net, target)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"model.safetensors", *(n for n, removed in names.items() if not removed)}
    assert load_model(target).classes == ("a", "b", "c")


def test_read_metadata_checks_too(good, tmp_path):
    meta = _meta(good)
    meta["config"]["layers"][1]["config"]["units"] = 10**30
    path = _write(tmp_path / "m.safetensors", _tensors(good), meta)
    with pytest.raises(ModelFileError, match="values per sample"):
        io.read_metadata(path)
    assert io.read_metadata(good)["config"]["classes"] == ["a", "b", "c"]


# --------------------------------------------------------------------------- layers added later


@pytest.mark.skipif("Conv2D" not in anynet.layers.LAYERS, reason="no Conv2D layer in this version")
@pytest.mark.parametrize(
    "config, match",
    [
        ({"filters": 10**6}, "values per sample, above the limit"),
        ({"filters": 4, "kernel_size": 10**4 + 1, "padding": "same"}, "more than 100,000,000 parameters"),
        ({"filters": 4, "stride": "2"}, r"stride='2' should be int"),
        ({"filters": 4, "padding": 1.5}, "padding=1.5 should be"),
        ({"filters": 4, "padding": "bogus"}, r"layer 0 \(Conv2D\): .*bogus"),
        ({"filters": 4, "stride": 0}, r"layer 0 \(Conv2D\): .*stride"),
        ({"filters": 4, "groups": 2}, "does not fit Conv2D"),
    ],
)
def test_new_layer_kinds_are_checked_by_their_own_classes(tmp_path, config, match, monkeypatch):
    """Validation follows each class's constructor and init_params, not a list of today's layers."""
    net = anynet.models.cnn(widths=(4,), num_classes=3, dense=8, backend="numpy", input_shape=(1, 28, 28))
    path = save_model(net, tmp_path / "cnn.safetensors")
    assert load_model(path).count_parameters() == net.count_parameters()
    meta = _meta(path)
    meta.pop("weights_sha256")
    meta["config"]["layers"][0]["config"].update(config)
    monkeypatch.setattr(anynet.Network, "build", lambda *a, **k: pytest.fail("built before checking"))
    _refused(_write(tmp_path / "bad.safetensors", _tensors(path), meta), match)
