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


def test_fit_share_splits_the_global_batch_the_way_each_backend_feeds_it(monkeypatch):
    import keras

    x, y = np.arange(10), np.arange(10) * 2
    assert distributed.fit_share(x, 4) == (x, 4)  # one process: unchanged
    monkeypatch.setattr(distributed.backend, "process_count", lambda: 2)
    monkeypatch.setattr(distributed.backend, "process_index", lambda: 1)
    with pytest.raises(ValueError, match="multiple of the 2 processes; received 5"):
        distributed.fit_share(x, 5)
    (xs, ys), batch = distributed.fit_share((x[:9], y[:9]), 4)
    if keras.backend.backend() == "tensorflow":  # the strategy shards: all rows, even
        assert (xs.tolist(), batch) == (list(range(8)), 4)
    else:  # this process's contiguous half, half the batch
        assert (xs.tolist(), batch) == ([4, 5, 6, 7], 2)
    assert np.array_equal(ys, xs * 2)


def test_the_cli_refuses_process_options_without_processes(monkeypatch, capsys):
    from ldm_keras import cli

    monkeypatch.delenv(distributed.ENVIRONMENT["num_processes"], raising=False)
    code = cli.main(["train", "--process-id", "1", "--epochs", "1", "--out", "unused"])
    assert code == cli.EXIT_USAGE
    assert "--process-id and --coordinator" in capsys.readouterr().err
