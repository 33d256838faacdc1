"""The zoo is confined: a crafted zoo directory (``$LDM_KERAS_ZOO``) reads, writes and
returns nothing outside its root and its download cache, allocates nothing above the size
cap, and runs no code from its configs.

Every attack builds its own zoo in ``tmp_path`` (``zoo/``), with files the attacker would
like to reach in ``outside/`` and the cache in ``cache/``. Each test asserts that a
:class:`ZooError` subclass names the offending field, and that nothing under ``tmp_path``
changed (a snapshot of the whole tree — names, kinds, sizes, hashes, times — before and
after): no file overwritten, no folder created, not even the cache. Downloads go to a
loopback HTTP server in a thread (no network); it records every request, so a refusal
"before any download" is checked too.

The last section checks the Keras ``safe_mode`` protections the package relies on when it
loads ``.keras`` files (what sets the Keras lower bound in ``pyproject.toml``).
"""

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from ldm_keras import cli, zoo
from ldm_keras.zoo import _limits, _paths, loader, verifier

ROOT = Path(__file__).resolve().parent.parent
PACKAGED = ROOT / "zoo"
PACKAGED_INDEX = json.loads((PACKAGED / "index.json").read_text())
SECRET = '{"secret": "outside-the-zoo"}\n'


# -- the crafted world ---------------------------------------------------------------------
def snapshot(top):
    """Every path under ``top``: kind, and for files size, mtime and SHA-256."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_size, st.st_mtime_ns,
                                hashlib.sha256(f.read()).hexdigest())
    return out


def _meta(data):
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet; record the request instead
        self.server.hits.append(self.path)


@contextlib.contextmanager
def serve(folder):
    """A loopback HTTP server for ``folder``; yields ``(server, base_url)``."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


class World:
    """``tmp/zoo`` (the crafted root), ``tmp/outside`` (what must stay untouched),
    ``tmp/remote`` (what the server serves), ``tmp/cache`` (the download cache)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = tmp / "zoo"
        self.outside = tmp / "outside"
        self.remote = tmp / "remote"
        self.cache = tmp / "cache"
        for d in (self.root, self.outside, self.remote):
            d.mkdir()
        (self.outside / "victim.txt").write_text("original\n")
        (self.outside / "secret.json").write_text(SECRET)
        (self.remote / "payload.txt").write_text("PAYLOAD written by the attacker\n")
        self.entries = {}
        self.write_index()

    def write_index(self, entries=None, raw=None):
        text = raw if raw is not None else json.dumps(
            {"format": 1, "entries": self.entries if entries is None else entries})
        (self.root / "index.json").write_text(text)

    def add(self, name, files, version="1.0.0", folder=None, **extra):
        """An entry: ``files`` maps names to bytes (written) or to ``(bytes, url)``
        (not written; fetched from ``url``) or to a ``dict`` (the index record as is)."""
        folder = self.root / name if folder is None else folder
        record = {}
        for fname, content in files.items():
            if isinstance(content, dict):
                record[fname] = content
            elif isinstance(content, tuple):
                data, url = content
                record[fname] = {**_meta(data), "url": url}
            else:
                folder.mkdir(parents=True, exist_ok=True)
                (folder / fname).write_bytes(content)
                record[fname] = _meta(content)
        self.entries[name] = {"version": version, "kind": "test", "summary": "crafted",
                              "weights": True, "files": record, **extra}
        self.write_index()
        return folder


def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def world(tmp_path, monkeypatch):
    w = World(tmp_path)
    monkeypatch.setenv("LDM_KERAS_ZOO", str(w.root))
    monkeypatch.setenv("LDM_KERAS_CACHE", str(w.cache))
    monkeypatch.delenv(_limits.MAX_BYTES_ENV, raising=False)
    _no_proxy(monkeypatch)
    return w


def _dense_model(units=3, inputs=4):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units)],
                             name="tiny")
    return model


def _weights_bytes(model, tmp):
    path = tmp / "w.weights.h5"
    model.save_weights(str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def _config_bytes(components):
    return json.dumps({"name": "crafted", "components": components}).encode()


def _component(config, weights="encoder.weights.h5", build_shape=None):
    return {"config": config, "weights": weights, "build_shape": build_shape}


def _empty_h5(tmp):
    path = tmp / "empty.h5"
    with h5py.File(path, "w"):
        pass
    data = path.read_bytes()
    path.unlink()
    return data


def _tiny_entry(world, name="tiny"):
    """A valid crafted entry: a Dense(3) encoder on 4 inputs with its weights."""
    model = _dense_model()
    files = {"config.json": _config_bytes(
                 {"encoder": _component(keras.saving.serialize_keras_object(model))}),
             "encoder.weights.h5": _weights_bytes(model, world.tmp)}
    world.add(name, files)
    return model


def _refused(world, calls, error, match):
    """Every call raises ``error`` matching ``match``; nothing under tmp changed."""
    before = snapshot(world.tmp)
    for call in calls:
        with pytest.raises(error, match=match):
            call()
    assert snapshot(world.tmp) == before


def _cli(args, capsys):
    code = cli.main(["zoo", *args])
    out, err = capsys.readouterr()
    return code, out, err


# -- a crafted entry that is fine loads (the checks refuse attacks, not entries) -------------
def test_a_valid_crafted_entry_loads_through_a_linked_root(world, tmp_path, monkeypatch):
    model = _tiny_entry(world)
    link = tmp_path / "zoo-link"
    link.symlink_to(world.root)  # the root itself may be a link, as the packaged zoo is
    monkeypatch.setenv("LDM_KERAS_ZOO", str(link))
    encoder = zoo.load("tiny")
    x = np.arange(8, dtype="float32").reshape(2, 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(encoder(x)),
                                  keras.ops.convert_to_numpy(model(x)))
    for path in zoo.entry_files("tiny").values():
        assert Path(path).is_relative_to(world.root.resolve())


# -- 1. a crafted `version` with a `url` writes outside the cache --------------------------
@pytest.mark.parametrize("version", ["../../../outside", "1.0/../../../../outside", "..",
                                     "/tmp", "1.0.0/x", "1.0.0\n", "", "V1"])
def test_version_cannot_lead_a_download_outside_the_cache(world, version, capsys):
    # before: cache/zoo/NAME/../../../outside/victim.txt was overwritten, "SHA-256 ok"
    with serve(world.remote) as (server, base):
        payload = (world.remote / "payload.txt").read_bytes()
        world.add("victim-entry", {"victim.txt": (payload, base + "payload.txt")},
                  version=version)
        _refused(world, [lambda: zoo.entry_files("victim-entry"),
                         lambda: zoo.verify("victim-entry"), lambda: zoo.list()],
                 zoo.ZooPathError, "version")
        code, out, err = _cli(["verify", "victim-entry"], capsys)
        assert server.hits == []  # refused before any download
    assert code == 2 and out == ""
    assert err.startswith("ldm-keras zoo: error: ") and err.count("\n") == 1
    assert "version" in err and "Traceback" not in err
    assert (world.outside / "victim.txt").read_text() == "original\n"
    assert not world.cache.exists()


# -- 2. a `url` that reads a local file -----------------------------------------------------
@pytest.mark.parametrize("url", ["file://{secret}", "ftp://example.org/x", "http:///x",
                                 "javascript:alert(1)", 42])
def test_only_http_urls_are_fetched(world, url):
    data = (world.outside / "secret.json").read_bytes()
    url = url.format(secret=world.outside / "secret.json") if isinstance(url, str) else url
    world.add("e", {"secret.json": (data, url)})
    _refused(world, [lambda: zoo.entry_files("e"), lambda: zoo.load("e")],
             zoo.ZooPathError, "url")


# -- 3. `../` file names create folders outside the cache -----------------------------------
@pytest.mark.parametrize("fname", ["../../../outside/new/x.txt", "../../../outside/victim.txt",
                                   "sub/x.txt", "..", ".hidden", "x\\..\\y", "a" * 129])
def test_file_name_cannot_create_or_write_outside(world, fname):
    with serve(world.remote) as (server, base):
        payload = (world.remote / "payload.txt").read_bytes()
        world.add("e", {fname: (payload, base + "payload.txt")})
        _refused(world, [lambda: zoo.entry_files("e"), lambda: zoo.verify("e")],
                 zoo.ZooPathError, "file name")
        assert server.hits == []
    assert not world.cache.exists() and not (world.outside / "new").exists()


# -- 4. file names that point at files outside the zoo --------------------------------------
@pytest.mark.parametrize("fname", ["../../outside/secret.json", "{abs}", "/etc/hosts",
                                   "../../../../etc/hosts"])
def test_file_name_cannot_return_a_file_outside(world, fname):
    # before: hashed, accepted and returned as an entry file
    secret = world.outside / "secret.json"
    fname = fname.format(abs=secret)
    (world.root / "e").mkdir()
    target = Path(os.path.normpath(world.root / "e" / fname))
    data = target.read_bytes() if target.is_file() else b""  # the true size and hash
    world.add("e", {"config.json": b"{}", fname: _meta(data)})
    _refused(world, [lambda: zoo.entry_files("e"), lambda: zoo.info("e"),
                     lambda: zoo.load("e")], zoo.ZooPathError, "file name")


# -- 5. symbolic links: config.json, README.md, weights, the entry folder, the cache ----------
@pytest.mark.parametrize("where", ["outside", "inside"])
@pytest.mark.parametrize("linked", ["config.json", "README.md", "metrics.json",
                                    "encoder.weights.h5"])
def test_linked_files_are_not_followed(world, linked, where, capsys):
    # before: `zoo info` printed the linked file, and info checked no hash
    secret = world.outside / "secret.json"
    if where == "inside":  # a link to another file of the zoo is refused too
        shutil.copy(secret, world.root / "other.json")
        secret = world.root / "other.json"
    files = {"config.json": b"{}", "metrics.json": b"{}", "README.md": b"# card\n",
             "encoder.weights.h5": _empty_h5(world.tmp)}
    files[linked] = secret.read_bytes()  # the index gives the target's true hash
    folder = world.add("e", files)
    (folder / linked).unlink()
    (folder / linked).symlink_to(secret)
    calls = [lambda: zoo.entry_files("e"), lambda: zoo.load("e")]
    if linked != "encoder.weights.h5":
        calls += [lambda: zoo.info("e")]
    match = "symbolic link" if where == "inside" else "outside"
    _refused(world, calls, zoo.ZooPathError, f"{linked!r}.*{match}")
    code, out, err = _cli(["info", "e"], capsys)
    if linked != "encoder.weights.h5":
        assert code == 2 and "secret" not in out and match in err
        assert err.count("\n") == 1


def test_a_linked_entry_folder_is_not_followed(world):
    elsewhere = world.outside / "entry"
    world.add("e", {"config.json": b"{}"}, folder=elsewhere)
    (world.root / "e").symlink_to(elsewhere)
    _refused(world, [lambda: zoo.entry_files("e"), lambda: zoo.info("e")],
             zoo.ZooPathError, "symbolic link")


def test_a_linked_cache_folder_is_not_followed(world):
    # a cache folder replaced by a link to elsewhere: the download is refused
    with serve(world.remote) as (server, base):
        payload = (world.remote / "payload.txt").read_bytes()
        world.add("e", {"victim.txt": (payload, base + "payload.txt")})
        (world.cache / "zoo" / "e").mkdir(parents=True)
        (world.cache / "zoo" / "e" / "1.0.0").symlink_to(world.outside)
        _refused(world, [lambda: zoo.entry_files("e")], zoo.ZooPathError, "symbolic link")
        assert server.hits == []
    assert (world.outside / "victim.txt").read_text() == "original\n"


def test_info_checks_hashes_before_printing(world, capsys):
    folder = world.add("e", {"config.json": b"{}", "README.md": b"# the card\n"})
    (folder / "README.md").write_bytes(b"# tampered\n")  # same size, other bytes
    _refused(world, [lambda: zoo.info("e"), lambda: zoo.read_card("e")],
             zoo.ZooIntegrityError, "README.md.*SHA-256")
    code, out, err = _cli(["info", "e"], capsys)
    assert code == 2 and out == "" and "tampered" not in err


# -- 6. an entry named `../../x` ----------------------------------------------------------
@pytest.mark.parametrize("name", ["../outside/evil", "../../x", "/abs", "a/b", "UPPER",
                                  ".hidden", "a..b", "x" * 65, ""])
def test_entry_names_cannot_leave_the_zoo(world, name):
    # before: `../outside/evil` loaded an encoder from outside the zoo
    model = _dense_model()
    files = {"config.json": _config_bytes(
                 {"encoder": _component(keras.saving.serialize_keras_object(model))}),
             "encoder.weights.h5": _weights_bytes(model, world.tmp)}
    folder = world.outside / "evil"
    folder.mkdir()
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    world.add(name, {f: _meta(d) for f, d in files.items()})
    _refused(world, [zoo.list, lambda: zoo.load(name), lambda: zoo.info(name)],
             zoo.ZooPathError, "entry name")


def test_requested_names_outside_the_index_are_unknown(world):
    _tiny_entry(world)
    for name in ("../zoo/tiny", "tiny/../tiny", "/tiny", None):
        with pytest.raises(zoo.ZooError, match="Unknown zoo entry"):
            zoo.load(name)


# -- 7. HDF5 files that reach other files -----------------------------------------------------
def _h5(tmp, build):
    path = tmp / "crafted.h5"
    with h5py.File(path, "w") as f:
        build(f)
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize("kind", ["external-link", "soft-link", "external-storage", "virtual"])
def test_hdf5_files_must_be_self_contained(world, kind):
    other = world.outside / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(4.0)
    raw = world.outside / "raw.bin"
    raw.write_bytes(np.arange(4.0).tobytes())

    def build(f):
        g = f.create_group("layers")
        if kind == "external-link":
            g["vars"] = h5py.ExternalLink(str(other), "/data")
        elif kind == "soft-link":
            f["x"] = np.zeros(2)
            g["vars"] = h5py.SoftLink("/x")
        elif kind == "external-storage":
            g.create_dataset("vars", shape=(4,), dtype="f8", external=[(str(raw), 0, 32)])
        else:
            layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
            layout[:] = h5py.VirtualSource(str(other), "data", shape=(4,))
            g.create_virtual_dataset("vars", layout)

    world.add("e", {"config.json": _config_bytes({}), "reference.h5": _h5(world.tmp, build)})
    _refused(world, [lambda: zoo.entry_files("e")], zoo.ZooPathError, "self-contained")


# -- 8. size caps --------------------------------------------------------------------------
def test_declared_file_sizes_are_capped_before_any_download(world, capsys):
    with serve(world.remote) as (server, base):
        big = {"size": 3 * 2**30, "sha256": "0" * 64, "url": base + "payload.txt"}
        world.add("e", {"config.json": b"{}", "encoder.weights.h5": big})
        _refused(world, [lambda: zoo.entry_files("e"), lambda: zoo.load("e")],
                 zoo.ZooSizeError, r"declares 3221225\d+ bytes.*cap of 2147483648")
        assert server.hits == []
    code, _, err = _cli(["verify", "e"], capsys)
    assert code == 2 and "cap" in err and err.count("\n") == 1


def test_hdf5_shape_bomb_is_refused_before_reading(world):
    # a chunked, compressed dataset that declares 64 GiB and stores next to nothing
    def build(f):
        f.create_dataset("inputs", shape=(2**34,), dtype="f4", chunks=(2**16,),
                         compression="gzip")

    data = _h5(world.tmp, build)
    assert len(data) < 10_000
    world.add("e", {"config.json": _config_bytes({}), "reference.h5": data})
    _refused(world, [lambda: zoo.entry_files("e")], zoo.ZooSizeError, "reference.h5.*cap")


def _huge_dense(world, units=2**34):
    dense = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "huge", "units": units, "kernel_initializer": "zeros",
                        "bias_initializer": "zeros"}}
    world.add("huge", {"config.json": _config_bytes(
                           {"encoder": _component(dense, build_shape=[None, 4])}),
                       "encoder.weights.h5": _empty_h5(world.tmp)})


def test_huge_weights_are_refused_before_allocation(world, monkeypatch):
    # before: a Dense(2**34) config whose hashes match tried to allocate 64 GiB and more
    _huge_dense(world)

    def allocate(self, shape, dtype=None):
        raise AssertionError(f"a {shape} variable was allocated")

    monkeypatch.setattr(keras.initializers.Zeros, "__call__", allocate)
    _refused(world, [lambda: zoo.load("huge"), lambda: zoo.load_component("huge", "encoder")],
             zoo.ZooSizeError, r"component 'encoder' would allocate 343597383\d+ bytes")
    # the cap is an argument and an environment variable
    with pytest.raises(zoo.ZooSizeError, match="cap of 1000 bytes"):
        zoo.load("huge", max_bytes=1000)
    monkeypatch.setenv(_limits.MAX_BYTES_ENV, "1000")
    with pytest.raises(zoo.ZooSizeError, match="cap of 1000 bytes"):
        zoo.load("huge")
    monkeypatch.setenv(_limits.MAX_BYTES_ENV, "2GB")
    with pytest.raises(zoo.ZooError, match="LDM_KERAS_ZOO_MAX_BYTES.*positive integer"):
        zoo.load("huge")
    with pytest.raises(zoo.ZooError, match="max_bytes=0 is not allowed"):
        zoo.load("huge", max_bytes=0)


@pytest.mark.skipif(keras.backend.backend() != "jax",
                    reason="a fresh process costs 6-13 s; the test above runs on every backend")
def test_huge_weights_fail_fast_under_a_memory_limit(world):
    # the same in a fresh process limited to 12 GiB of address space: a clear error, fast
    _huge_dense(world, units=2**31)  # 40 GiB of weights
    code = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (12 * 2**30, 12 * 2**30))
        from ldm_keras import zoo
        try:
            zoo.load("huge")
        except zoo.ZooSizeError as e:
            print("refused:", e)
            sys.exit(0)
        sys.exit(3)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "would allocate 42949672960 bytes" in run.stdout


def test_entry_file_sizes_count_against_the_cap(world, monkeypatch):
    _tiny_entry(world)
    assert zoo.load("tiny") is not None
    monkeypatch.setenv(_limits.MAX_BYTES_ENV, "100")
    with pytest.raises(zoo.ZooSizeError, match="entry 'tiny' declares .* cap of 100 bytes"):
        zoo.load("tiny")
    assert zoo.load("tiny", max_bytes=10**6) is not None


def test_recipe_settings_cannot_request_huge_weights(tmp_path, monkeypatch):
    # a real multi-view entry whose settings ask for a 17 GiB projector (hashes updated)
    name = "digits-simclr"
    root = tmp_path / "zoo"
    shutil.copytree(PACKAGED / name, root / name)
    config = json.loads((root / name / "config.json").read_text())
    config["settings"] = {**config["settings"], "projector": [2**16, 2**16]}
    data = json.dumps(config).encode()
    (root / name / "config.json").write_bytes(data)
    entry = json.loads(json.dumps(PACKAGED_INDEX["entries"][name]))
    entry["files"]["config.json"] = _meta(data)
    (root / "index.json").write_text(json.dumps({"format": 1, "entries": {name: entry}}))
    monkeypatch.setenv("LDM_KERAS_ZOO", str(root))
    monkeypatch.delenv(_limits.MAX_BYTES_ENV, raising=False)
    before = snapshot(tmp_path)
    with pytest.raises(zoo.ZooSizeError, match="recipe 'simclr' would allocate"):
        zoo.load_model(name)
    assert snapshot(tmp_path) == before
    assert zoo.load(name) is not None  # the encoder alone is fine


# -- 9. configs that carry code or reach outside Keras and ldm_keras ------------------------
def _payload_module(tmp, monkeypatch):
    """A module whose import writes outside/pwned: importing it is running code."""
    (tmp / "zoo_payload_module.py").write_text(
        f"open({str(tmp / 'outside' / 'pwned')!r}, 'w').write('pwned')\n"
        "class Payload:\n    @classmethod\n    def from_config(cls, c):\n        return cls()\n")
    monkeypatch.syspath_prepend(str(tmp))
    sys.modules.pop("zoo_payload_module", None)


def _lambda_layer(tmp):
    sentinel = str(tmp / "outside" / "pwned")
    layer = keras.layers.Lambda(lambda x: (open(sentinel, "w").write("pwned"), x)[1])
    return keras.saving.serialize_keras_object(layer)


def _dense(**overrides):
    config = {"name": "d", "units": 2}
    config.update(overrides)
    return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
            "config": config}


UNSAFE = {
    "python-lambda": lambda tmp: _lambda_layer(tmp),
    "os.system": lambda tmp: _dense(activation={"module": "os", "class_name": "function",
                                                "config": "system",
                                                "registered_name": None}),
    "builtins.exec": lambda tmp: _dense(activation={"module": "builtins",
                                                    "class_name": "function",
                                                    "config": "exec",
                                                    "registered_name": None}),
    "foreign-module-import": lambda tmp: {"module": "zoo_payload_module",
                                          "class_name": "Payload", "config": {},
                                          "registered_name": None},
    "keras.utils.get_file": lambda tmp: _dense(activation={"module": "keras.utils",
                                                           "class_name": "function",
                                                           "config": "get_file",
                                                           "registered_name": None}),
    "enable_unsafe_deserialization": lambda tmp: {
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {"name": "l", "function": {"module": "keras.config",
                                             "class_name": "function",
                                             "config": "enable_unsafe_deserialization",
                                             "registered_name": None}}},
    "torch-pickle": lambda tmp: {"module": "keras.layers", "class_name": "TorchModuleWrapper",
                                 "registered_name": None,
                                 "config": {"name": "t", "module": "gASVAAAA"}},
    "foreign-registered": lambda tmp: {"module": "keras.layers", "class_name": "Dense",
                                       "registered_name": "evil_pkg>Dense",
                                       "config": {"name": "d", "units": 2}},
    "dotted-function": lambda tmp: _dense(activation={"module": "keras",
                                                      "class_name": "function",
                                                      "config": "utils.get_file",
                                                      "registered_name": None}),
}


@pytest.mark.parametrize("attack", sorted(UNSAFE))
def test_configs_that_carry_code_are_refused(world, attack, monkeypatch, capsys):
    _payload_module(world.tmp, monkeypatch)
    layer = UNSAFE[attack](world.tmp)
    world.add("e", {"config.json": _config_bytes(
                        {"encoder": _component(layer, build_shape=[None, 4])}),
                    "encoder.weights.h5": _empty_h5(world.tmp)})
    _refused(world, [lambda: zoo.load("e"), lambda: zoo.load_model("e")],
             zoo.ZooUnsafeConfigError, "component 'encoder'")
    code, out, err = _cli(["verify", "e"], capsys)
    assert code == 2 and err.count("\n") == 1 and "component 'encoder'" in err
    assert not (world.outside / "pwned").exists()
    assert "zoo_payload_module" not in sys.modules


def test_keras_safe_mode_refusals_are_one_clear_error(world, monkeypatch):
    # behind our own check, Keras' safe mode: with our check switched off, its refusal
    # of a Python lambda becomes a ZooUnsafeConfigError too
    monkeypatch.setattr(loader._schema, "check_keras_objects", lambda config, where: config)
    world.add("e", {"config.json": _config_bytes(
                        {"encoder": _component(_lambda_layer(world.tmp))}),
                    "encoder.weights.h5": _empty_h5(world.tmp)})
    _refused(world, [lambda: zoo.load("e")], zoo.ZooUnsafeConfigError,
             r"component 'encoder': refused by Keras' safe mode: .*lambda")
    assert not (world.outside / "pwned").exists()


# -- 10. malformed index and config: clear one-line errors, exit code 2 -----------------------
@pytest.mark.parametrize("index, match", [
    ('{"format": 1, "entries": {', "not valid JSON .*line 1, column"),
    ("[]", "holds a JSON list: expected a JSON object"),
    ('{"format": 2, "entries": {}}', "format 2: expected a zoo index of format 1"),
    ('{"format": 1}', "has no 'entries'"),
    ('{"format": 1, "entries": {"e": {"version": "1.0.0"}}}', "entry 'e' has no 'files'"),
    ('{"format": 1, "entries": {"e": {"files": {}}}}', "entry 'e' has no 'version'"),
    ('{"format": 1, "entries": {"e": {"version": "1", "files": {"a.json": {"size": "9",'
     ' "sha256": "x"}}}}}', r"file 'a.json'\['size'\] is a str"),
    ('{"format": 1, "entries": {"e": {"version": "1", "files": {"a.json": {"size": 9,'
     ' "sha256": "xyz"}}}}}', "expected 64 lower-case hex digits"),
    ('{"format": 1, "entries": {"e": {"version": "1", "weights": "yes", "files": {}}}}',
     "expected true or false"),
])
def test_malformed_index_is_one_clear_line(world, index, match, capsys):
    world.write_index(raw=index)
    with pytest.raises(zoo.ZooFormatError, match=match):
        zoo.list()
    for args in (["list"], ["info", "e"], ["verify", "e"], ["verify"]):
        code, out, err = _cli(args, capsys)
        assert code == 2 and out == "", args
        assert err.startswith("ldm-keras zoo: error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
    # --debug, before or after the command, shows where it came from
    for args in (["--debug", "list"], ["list", "--debug"]):
        code, _, err = _cli(args, capsys)
        assert code == 2 and "Traceback (most recent call last)" in err
        assert err.strip().splitlines()[-1].startswith("ldm-keras zoo: error: ")


@pytest.mark.parametrize("config, match", [
    (b"{not json", "config.json of zoo entry 'e'.*not valid JSON"),
    (b"[1, 2]", "holds a JSON list: expected a JSON object"),
    (b'{"name": "e"}', "has no 'components'"),
    (b'{"components": {"encoder": {"weights": "encoder.weights.h5"}}}',
     "component 'encoder' has no 'config'"),
    (b'{"components": {"encoder": {"config": {}, "weights": "other.weights.h5"}}}',
     "names the weights file 'other.weights.h5', which the index does not list"),
    (b'{"components": {"encoder": {"config": {}, "weights": "../x.h5"}}}',
     "weights '../x.h5' is not allowed"),
    (b'{"components": {"encoder": {"config": {"class_name": "NoSuchLayer", "config": {}},'
     b' "weights": "encoder.weights.h5"}}}', "Keras could not rebuild it"),
    (b'{"components": {"head": {"config": {}, "weights": "encoder.weights.h5"}}}',
     "has no component 'model'"),
])
def test_malformed_config_is_one_clear_line(world, config, match, capsys):
    world.add("e", {"config.json": config, "encoder.weights.h5": _empty_h5(world.tmp)})
    with pytest.raises(zoo.ZooError, match=match):
        zoo.load("e")
    code, out, err = _cli(["verify", "e"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err


def test_cli_other_errors_are_one_line(world, capsys):
    code, _, err = _cli(["info", "nope"], capsys)
    assert code == 2 and "Unknown zoo entry 'nope'" in err and err.count("\n") == 1
    (world.root / "index.json").unlink()
    code, _, err = _cli(["list"], capsys)
    assert code == 2 and "has no index.json" in err and err.count("\n") == 1


# -- 11. fetching works, into the cache only -------------------------------------------------
def test_url_is_fetched_into_the_cache_and_checked(world, monkeypatch):
    model = _dense_model()
    weights = _weights_bytes(model, world.tmp)
    (world.remote / "encoder.weights.h5").write_bytes(weights)
    with serve(world.remote) as (server, base):
        world.add("tiny", {"config.json": _config_bytes(
                               {"encoder": _component(keras.saving.serialize_keras_object(
                                   model))}),
                           "encoder.weights.h5": (weights, base + "encoder.weights.h5")})
        outside = snapshot(world.outside)
        fetched = zoo.entry_files("tiny")["encoder.weights.h5"]
        assert Path(fetched) == world.cache.resolve() / "zoo" / "tiny" / "1.0.0" / \
            "encoder.weights.h5"
        assert Path(fetched).read_bytes() == weights
        x = np.ones((2, 4), "float32")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(zoo.load("tiny")(x)),
                                      keras.ops.convert_to_numpy(model(x)))
        assert server.hits == ["/encoder.weights.h5"]  # fetched once, then from the cache
        # a corrupted remote file is refused, and leaves no partial file behind
        monkeypatch.setenv("LDM_KERAS_CACHE", str(world.tmp / "cache2"))
        data = bytearray(weights)
        data[100] ^= 0xFF
        (world.remote / "encoder.weights.h5").write_bytes(bytes(data))
        with pytest.raises(zoo.ZooIntegrityError, match="SHA-256"):
            zoo.load("tiny")
        # a server that sends more than declared is cut off at the declared size
        (world.remote / "encoder.weights.h5").write_bytes(weights + b"x" * 10**6)
        with pytest.raises(zoo.ZooIntegrityError, match="more than the .* bytes"):
            zoo.load("tiny")
    leftovers = [p for p in (world.tmp / "cache2").rglob("*") if p.is_file()]
    assert leftovers == []
    assert snapshot(world.outside) == outside


def test_packaged_entry_is_fetched_and_checks_its_reference(tmp_path, monkeypatch):
    name = "digits-simclr"
    root, remote = tmp_path / "zoo", tmp_path / "remote"
    shutil.copytree(PACKAGED / name, root / name)
    remote.mkdir()
    shutil.move(root / name / "encoder.weights.h5", remote / "encoder.weights.h5")
    entry = json.loads(json.dumps(PACKAGED_INDEX["entries"][name]))
    monkeypatch.setenv("LDM_KERAS_ZOO", str(root))
    monkeypatch.setenv("LDM_KERAS_CACHE", str(tmp_path / "cache"))
    _no_proxy(monkeypatch)
    with serve(remote) as (_, base):
        entry["files"]["encoder.weights.h5"]["url"] = base + "encoder.weights.h5"
        (root / "index.json").write_text(json.dumps({"format": 1, "entries": {name: entry}}))
        assert verifier.check_reference(name)["ok"]


# -- 12. the writer keeps to its root ----------------------------------------------------------
def test_builder_refuses_a_linked_entry_folder(tmp_path):
    from ldm_keras.zoo import builder, index

    root, elsewhere = tmp_path / "zoo", tmp_path / "outside"
    root.mkdir()
    elsewhere.mkdir()
    (root / "cifar10-resnet18-simclr").symlink_to(elsewhere)
    before = snapshot(tmp_path)
    with pytest.raises(zoo.ZooPathError, match="symbolic link"):
        builder.build("cifar10-resnet18-simclr", root=root)
    assert snapshot(tmp_path) == before
    with pytest.raises(zoo.ZooPathError, match="entry name"):
        index.write_index_entry(root, "../x", {})


def test_path_helpers():
    assert _paths.check_name("digits-simclr") == "digits-simclr"
    assert _paths.check_file_name("encoder.weights.h5") == "encoder.weights.h5"
    for bad in ("a/b", "../a", "a\n", "", "-a", "a..b", "A"):
        with pytest.raises(zoo.ZooPathError, match="not allowed"):
            _paths.check_name(bad, "the field")
    with pytest.raises(zoo.ZooPathError, match="outside"):
        _paths.check_inside("/a/b", "/a/b/../c", "f")
    assert _paths.check_inside("/a/b", "/a/b/c", "f") == Path("/a/b/c")
    with pytest.raises(zoo.ZooPathError, match="outside"):
        _paths.check_inside("/a/b", "/a/bc", "f")  # a prefix is not a parent


# -- the Keras protections the package relies on (sets the Keras lower bound) ----------------
def _sequential(layer_config):
    """The config of a Sequential model holding ``layer_config`` (what a ``.keras`` file's
    ``config.json`` holds; ``keras.saving.load_model`` deserialises it just so)."""
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
             "config": {"name": "m", "layers": [
                 {"module": "keras.layers", "class_name": "InputLayer",
                  "registered_name": None,
                  "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "in"}},
                 layer_config]}}


@pytest.mark.parametrize("attack", ["python-lambda", "foreign-module-import", "os.system",
                                    "builtins.exec", "keras.utils.get_file",
                                    "enable_unsafe_deserialization"])
def test_keras_safe_mode_refuses(tmp_path, attack, monkeypatch):
    from keras.src.saving import serialization_lib

    (tmp_path / "outside").mkdir()
    _payload_module(tmp_path, monkeypatch)
    config = _sequential(UNSAFE[attack](tmp_path))
    try:
        with pytest.raises(Exception):  # noqa: B017 - any refusal; Keras' types vary
            keras.saving.deserialize_keras_object(config, safe_mode=True)
        assert not (tmp_path / "outside" / "pwned").exists()
        assert "zoo_payload_module" not in sys.modules
        assert serialization_lib.in_safe_mode() is not False  # not switched off
    finally:
        serialization_lib.global_state.set_global_attribute("safe_mode_saving", None)


def test_keras_safe_mode_harness_loads_a_plain_model():
    # the harness above is not refusing everything: a plain Dense loads
    model = keras.saving.deserialize_keras_object(_sequential(_dense()), safe_mode=True)
    assert isinstance(model.layers[-1], keras.layers.Dense)


def test_keras_weights_loading_refuses_external_links(tmp_path):
    model = _dense_model()
    path = tmp_path / "m.weights.h5"
    model.save_weights(str(path))
    other = tmp_path / "other.h5"
    with h5py.File(path, "a") as f:
        group = f["layers/dense/vars"]
        with h5py.File(other, "w") as g:
            g["kernel"] = np.full(keras.ops.shape(model.layers[0].kernel), 7.0, "float32")
        del group["0"]
        group["0"] = h5py.ExternalLink(str(other), "/kernel")
    with pytest.raises(ValueError, match="ExternalLink"):
        _dense_model().load_weights(str(path))


def test_keras_lower_bound_is_enforced_at_import():
    from ldm_keras import _choose_backend as _backend

    need = ".".join(map(str, _backend.MIN_KERAS))
    assert f'"keras>={need}"' in (ROOT / "pyproject.toml").read_text()  # one bound
    for old in ("3.8.0", "3.14.1", "2.15.0"):
        with pytest.raises(ImportError, match=rf"needs keras>={need}; found keras {old}\."):
            _backend.check_keras_version(old)
    for ok in (need, "3.15.1", "3.16.0.dev2026", "4.0"):
        _backend.check_keras_version(ok)
    _backend.check_keras_version()  # the installed Keras passes
