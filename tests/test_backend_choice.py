"""ldm_keras._choose_backend: pick an installed backend only when Keras' default is missing."""

import json
import os
import types

import ldm_keras._choose_backend as b


def _setup(monkeypatch, tmp_path, installed):
    monkeypatch.setattr(b, "sys", types.SimpleNamespace(modules={}))  # keras "not imported"
    monkeypatch.setenv("KERAS_BACKEND", "")  # tracked, so restored after the test
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(b, "find_spec", lambda name: object() if name in installed else None)


def test_picks_jax_when_tensorflow_is_missing(monkeypatch, tmp_path):
    _setup(monkeypatch, tmp_path, {"jax", "torch"})
    b.choose_backend()
    assert os.environ["KERAS_BACKEND"] == "jax"


def test_picks_torch_when_only_torch_is_installed(monkeypatch, tmp_path):
    _setup(monkeypatch, tmp_path, {"torch"})
    b.choose_backend()
    assert os.environ["KERAS_BACKEND"] == "torch"


def test_keeps_keras_default_when_tensorflow_is_installed(monkeypatch, tmp_path):
    _setup(monkeypatch, tmp_path, {"tensorflow", "jax"})
    b.choose_backend()
    assert os.environ["KERAS_BACKEND"] == ""


def test_respects_keras_json_when_its_backend_is_installed(monkeypatch, tmp_path):
    _setup(monkeypatch, tmp_path, {"jax", "torch"})
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    b.choose_backend()
    assert os.environ["KERAS_BACKEND"] == ""  # Keras will read torch from its config


def test_overrides_keras_json_naming_a_missing_backend(monkeypatch, tmp_path):
    _setup(monkeypatch, tmp_path, {"jax"})
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    b.choose_backend()
    assert os.environ["KERAS_BACKEND"] == "jax"


def test_never_changes_an_explicit_choice(monkeypatch, tmp_path):
    _setup(monkeypatch, tmp_path, {"jax"})
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    b.choose_backend()
    assert os.environ["KERAS_BACKEND"] == "torch"
