"""TrainConfig: one typed record of a run's settings, each with its help text and its rule."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from anynet.config import TrainConfig, names, setting_of


def test_every_setting_has_help_and_a_known_default():
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["setting"].help, f.name
    config = TrainConfig()
    assert (config.dataset, config.model, config.batch_size, config.validation) == ("mnist", "mlp", 128, 0.1)


def test_replace_names_unknown_settings():
    config = TrainConfig().replace(epochs=3, lr=1e-3)
    assert (config.epochs, config.lr) == (3, 1e-3)
    with pytest.raises(TypeError, match=r"unknown setting.*bogus.*the settings are dataset, model"):
        config.replace(bogus=1)


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(lr=float("inf")), "lr must be a finite number > 0"),
        (dict(lr=-1.0), "lr must be a finite number > 0"),
        (dict(weight_decay=float("nan")), "weight_decay must be a finite number >= 0"),
        (dict(clip_norm=0.0), "clip_norm must be a finite number > 0"),
        (dict(dropout=1.0), "dropout must be a number in"),
        (dict(label_smoothing=-0.1), "label_smoothing must be"),
        (dict(epochs=0), "epochs must be a whole number >= 1"),
        (dict(batch_size=2.5), "batch_size must be a whole number"),
        (dict(batch_size=True), "batch_size must be"),
        (dict(validation=1.5), "validation must be a fraction"),
        (dict(seed=-1), "seed must be"),
    ],
)
def test_check_applies_each_settings_rule(change, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**change).check()


def test_values_that_follow_the_rules_pass():
    TrainConfig(lr=0.5, dropout=0.0, validation=None, limit=10, epochs=2, clip_norm=1.0).check()
    TrainConfig(validation=([0], [0]), class_weight={0: 2.0}, optimizer="sgd").check()


def test_command_line_words_are_read_by_the_same_rules():
    assert setting_of("lr").from_text("3e-4") == 3e-4
    assert setting_of("validation").from_text("none") is None
    assert setting_of("hidden").from_text("512, 256") == (512, 256)
    assert setting_of("epochs").from_text("7") == 7
    for name, text in (("lr", "inf"), ("epochs", "0"), ("epochs", "1.5"), ("hidden", "x"), ("dropout", "1")):
        with pytest.raises(ValueError, match="expected"):
            setting_of(name).from_text(text)


def test_the_settings_are_the_arguments_of_train():
    """Every anynet.train argument is a setting of TrainConfig (so the CLI, sweeps and the
    estimators can name them all)."""
    import anynet

    params = inspect.signature(anynet.train).parameters
    assert set(params) - {"config", "settings"} <= set(names())
