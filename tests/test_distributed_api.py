"""ldm_keras.distributed in one process: argument checks, the environment, sharding."""

import numpy as np
import pytest

from ldm_keras import distributed


def test_one_process_starts_nothing_and_is_the_chief(monkeypatch):
    for name in (*distributed.ENVIRONMENT.values(), "WORLD_SIZE", "RANK", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.initialize() is None
    assert distributed.initialize("127.0.0.1:1", num_processes=1, process_id=0) is None
    assert (distributed.process_index(), distributed.process_count()) == (0, 1)
    assert distributed.is_chief()


@pytest.mark.parametrize("kwargs, env, match", [
    ({"num_processes": 2, "process_id": 0}, {}, "coordinator"),
    ({"coordinator": "localhost", "num_processes": 2, "process_id": 0}, {}, "host:port"),
    ({"coordinator": "127.0.0.1:1", "num_processes": 2}, {}, "process_id"),
    ({"coordinator": "127.0.0.1:1", "num_processes": 2, "process_id": 2}, {}, r"\[0, 2\)"),
    ({"coordinator": "127.0.0.1:1", "num_processes": 0, "process_id": 0}, {}, ">= 1"),
    ({"coordinator": "127.0.0.1:1", "num_processes": 2, "process_id": 0, "timeout": 0}, {},
     "positive"),
    ({}, {"LDM_KERAS_NUM_PROCESSES": "two"}, "num_processes"),
    ({}, {"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"},
     r"\[0, 2\)"),
])
def test_bad_settings_are_refused_before_anything_starts(monkeypatch, kwargs, env, match):
    for name in (*distributed.ENVIRONMENT.values(), "WORLD_SIZE", "RANK", "MASTER_ADDR",
                 "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=match):
        distributed.initialize(**kwargs)


def test_shard_gives_each_process_an_equal_contiguous_share(monkeypatch):
    x, y = np.arange(10), np.arange(10) * 2
    assert np.array_equal(distributed.shard(x), x)  # one process: everything
    monkeypatch.setattr(distributed.backend, "process_count", lambda: 3)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(distributed.backend, "process_index", lambda r=rank: r)
        with pytest.warns(UserWarning, match="Dropping the last 1 of 10 rows"):
            xs, ys = distributed.shard(x, y)
        assert np.array_equal(ys, xs * 2)
        parts.append(xs)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="one length"):
        distributed.shard(x, y[:5])
    with pytest.raises(ValueError, match="cannot be shared"):
        distributed.shard(x[:2])
