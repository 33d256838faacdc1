"""The zoo's verifying layer: an entry's files, its reloading and its numbers, checked.

:func:`verify` checks every file against the index (:mod:`.index`), reloads the encoder
under safe mode (:mod:`.loader`), compares its outputs with the reference outputs stored at
build time (:func:`check_reference`, within :data:`REFERENCE_ATOL` on any backend) and,
with ``eval=True``, recomputes the headline metric from the stored weights and the data
(:func:`evaluate_entry`, the protocol of :mod:`.entries`, within :data:`EVAL_TOLERANCE`).
"""

import keras
import numpy as np

from ..data import dot_motion
from ..data.datasets import load_image_dataset
from ..evaluation.encoders import evaluate_encoder, frame_readout_r2
from . import entries, index, loader
from ._errors import ZooFormatError

#: Largest allowed difference between the reference outputs stored in an entry and the
#: outputs of the loaded encoder, on any backend.
REFERENCE_ATOL = 1e-5
#: Largest allowed difference between a recomputed headline metric and the card's.
EVAL_TOLERANCE = 0.01


def reference_outputs(path):
    """``(inputs, outputs)`` stored in an entry's ``reference.h5``."""
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f["inputs"]), {k: np.asarray(v) for k, v in f["outputs"].items()}


def check_reference(name, encoder=None, files=None, max_bytes=None, root=None):
    """Max |Δ| between the loaded encoder's outputs and those stored at build time.

    Returns ``{"max_abs_diff": float, "ok": bool, "atol": REFERENCE_ATOL}``.
    """
    files = files or index.entry_files(name, max_bytes=max_bytes, root=root)
    encoder = encoder or loader.load(name, max_bytes=max_bytes, root=root)
    if "reference.h5" not in files:
        raise ZooFormatError(f"index.json: zoo entry {name!r} lists no reference.h5: "
                             "expected the reference outputs among its files.")
    inputs, outputs = reference_outputs(files["reference.h5"])
    z = np.asarray(keras.ops.convert_to_numpy(encoder(inputs, training=False)))
    diff = float(np.max(np.abs(z.astype("float64") - outputs["encoder"].astype("float64"))))
    return {"max_abs_diff": diff, "ok": bool(diff <= REFERENCE_ATOL), "atol": REFERENCE_ATOL}


def verify(name, eval=False, max_bytes=None, root=None):  # noqa: A002 - `zoo verify --eval`
    """Check an entry: hashes, loading (safe mode), reference outputs, and optionally
    recompute the headline metric from the stored weights and the data.

    Returns a dict with ``ok`` (bool) and the details; raises :class:`ZooIntegrityError`
    for a corrupted file and :class:`ZooError` for an entry without weights.

    Example:
        >>> ldm_keras.zoo.verify("digits-simclr", eval=True)["ok"]
        True
    """
    entry = index.find_entry(name, index.read_index(index.real_root(root)))
    loader.check_has_weights(name, entry)
    files = index.entry_files(name, max_bytes=max_bytes, root=root)
    report = {"name": name, "version": entry.get("version"), "backend": keras.backend.backend(),
              "integrity": "ok", "files": len(files)}
    encoder = loader.load(name, max_bytes=max_bytes, root=root)
    report["reference"] = check_reference(name, encoder, files)
    ok = report["reference"]["ok"]
    if eval:
        stored = index.read_json(files["metrics.json"], f"metrics.json of zoo entry {name!r}")
        headline = stored.get("headline")
        if not isinstance(headline, str) or not isinstance(stored.get(headline), (int, float)):
            raise ZooFormatError(f"metrics.json of zoo entry {name!r}: 'headline' is "
                                 f"{headline!r:.80}: expected the name of a metric it holds.")
        metrics = evaluate_entry(name, max_bytes=max_bytes, root=root)
        value = float(metrics[headline])
        diff = abs(value - float(stored[headline]))
        report["eval"] = {"metric": headline, "stored": float(stored[headline]),
                          "recomputed": value, "abs_diff": diff, "tolerance": EVAL_TOLERANCE,
                          "ok": bool(diff <= EVAL_TOLERANCE), "all": metrics}
        ok = ok and report["eval"]["ok"]
    report["ok"] = bool(ok)
    return report


def dotmotion_r2(encoder, preset):
    """Held-out affine R² of the positions from the per-frame latents (see :mod:`.entries`)."""
    readout = dot_motion.load(preset, "train", num_sequences=entries.DOTMOTION_READOUT_SEQUENCES)
    test = dot_motion.load(preset, "test")
    return {"r2": frame_readout_r2(encoder, (readout.frames, readout.positions),
                                   (test.frames, test.positions))}


def evaluate_entry(name, max_bytes=None, root=None):
    """Recompute an entry's metrics from its stored weights and the data (:mod:`.entries`)."""
    spec = entries.spec(name)
    encoder = loader.load(name, max_bytes=max_bytes, root=root)
    if spec["job"] == "multiview":
        categorical = spec["recipe"] == "categorical"
        head = loader.load_component(name, "head", max_bytes=max_bytes, root=root) \
            if categorical else None
        train, test = load_image_dataset(spec["dataset"], seed=0)
        return evaluate_encoder(encoder, train, test, head=head, clustering=categorical)
    return dotmotion_r2(encoder, spec["preset"])
