"""Back up and restore a run, single- or multi-process: the chief writes, every rank reads."""

import hashlib
import json
import os
import shutil
import tempfile

import keras

# the file helpers Keras' own BackupAndRestore uses (local paths and tf.io.gfile ones)
from keras.src.utils import file_utils

from .. import backend, distributed

__all__ = ["BackupAndRestore"]

_SUFFIX = ".weights.h5"


def _digest(path):
    """SHA-256 of a file's bytes (identifies the weights a metadata file belongs to)."""
    h = hashlib.sha256()
    with file_utils.File(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _replace(src, dst):
    """Rename ``src`` onto ``dst`` in one step (``os.replace``; gfile for remote paths)."""
    if file_utils.is_remote_path(dst):
        file_utils.gfile.rename(src, dst, overwrite=True)
    else:
        os.replace(src, dst)


def _read_json(path):
    with file_utils.File(path, "r") as f:
        return json.loads(f.read())


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` for data-parallel runs of several processes.

    The rule: **the chief writes, every rank reads.** At train begin every process
    loads the same backup (weights, optimizer slots and iteration count, EMA targets,
    BatchNorm statistics and random seed states: everything ``model.save_weights``
    holds) and the epoch to start from, so all ranks resume from identical state.
    Backups (at epoch ends, or every ``save_freq`` batches) and the deletion of the
    folder at train end (``delete_checkpoint=True``) happen on
    :func:`ldm_keras.distributed.is_chief` (process 0) only: the other ranks keep the
    same counters but never touch the folder.

    Every write is atomic: the weights and the metadata (epoch, batch and the SHA-256
    of the weights file) go to temporary files in the backup folder, which are then
    renamed onto ``latest.weights.h5`` and ``training_metadata.json``; a process
    killed mid-write leaves the previous backup. A kill between the two renames is
    detected at restore by the digest (the pending metadata is taken if it matches the
    weights; otherwise the pair is refused with an ``OSError``, which falls back to the
    previous pair with ``double_checkpoint=True``).

    No rank reads while the chief writes: ranks read only in ``on_train_begin``,
    between two barriers (:func:`ldm_keras.backend.barrier`) — the first waits until
    every process has reached this ``fit`` (so the chief has finished what it wrote
    or deleted before), the second until every process has read (so the chief's first
    backup or deletion comes after). The backup folder must be visible to every
    process (a shared file system when the processes run on several machines).

    With one process it behaves as ``keras.callbacks.BackupAndRestore`` (same files and
    arguments; each reads the other's backups).

    Args:
        backup_dir: folder of the backup (used by this callback only).
        save_freq: ``"epoch"`` or a number of batches between backups.
        double_checkpoint: also keep the previous backup (``*.bkp``), restored when the
            latest cannot be read.
        delete_checkpoint: delete the folder when ``fit`` ends normally.

    Example (each process of a run; see docs/scaling.md for the launch):
        >>> from ldm_keras import distributed
        >>> distributed.initialize()
        >>> backup = ldm.callbacks.BackupAndRestore("/shared/run1/backup")
        >>> model.fit(distributed.shard(x), batch_size=128, epochs=100,
        ...           callbacks=[backup])   # restarted after a fault: resumes
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq,
                         double_checkpoint=double_checkpoint,
                         delete_checkpoint=delete_checkpoint)
        base = self._weights_path[:-len(_SUFFIX)]
        self._pending_weights_path = base + ".pending" + _SUFFIX
        self._pending_metadata_path = self._training_metadata_path + ".pending"
        self._from_previous = False

    # -- reading (every rank) ------------------------------------------------------------
    def on_train_begin(self, logs=None):
        several = distributed.process_count() > 1
        if several:
            backend.barrier()  # the chief is done with the folder
        self._from_previous = False
        try:
            self._read()
        finally:
            if several:
                backend.barrier()  # every rank has read: the chief may write

    def _read(self):
        try:
            self._restore(self._weights_path, self._training_metadata_path,
                          self._pending_metadata_path)
        except OSError:
            if not file_utils.exists(self._prev_weights_path):
                raise
            # no copy into the folder (only the chief writes, after the second barrier):
            # the previous pair is loaded through a private copy with a weights name
            self._restore(self._prev_weights_path, self._prev_training_metadata_path,
                          None)
            self._from_previous = True

    def _restore(self, weights_path, metadata_path, pending_path):
        if not self.model.built:
            raise ValueError(
                "To use the BackupAndRestore callback, the model must be built before "
                f"`fit()`; {self.model.name!r} is not (call `model.build(input_shape)`).")
        digest = None
        if file_utils.exists(weights_path):
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            digest = _digest(weights_path)
            if weights_path.endswith(_SUFFIX):
                self.model.load_weights(weights_path)
            else:
                scratch = tempfile.mkdtemp(prefix="ldm_keras_restore_")
                try:
                    local = os.path.join(scratch, "restore" + _SUFFIX)
                    file_utils.copy(weights_path, local)
                    if _digest(local) != digest:
                        raise OSError(f"{weights_path!r} changed while it was read.")
                    self.model.load_weights(local)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
        if not file_utils.exists(metadata_path):
            return
        metadata = _read_json(metadata_path)
        recorded = metadata.get("weights_sha256")
        if recorded is not None and recorded != digest:
            pending = (_read_json(pending_path) if pending_path is not None
                       and file_utils.exists(pending_path) else {})
            if pending.get("weights_sha256") != digest or digest is None:
                raise OSError(
                    f"The backup in {self.backup_dir!r} is inconsistent: "
                    f"{metadata_path!r} belongs to other weights than {weights_path!r}.")
            metadata = pending  # the writer stopped between the two renames
        self.model._initial_epoch = metadata["epoch"]

    # -- writing (the chief) -------------------------------------------------------------
    def _save_model(self):
        if not distributed.is_chief():
            return
        if not file_utils.exists(self.backup_dir):
            file_utils.makedirs(self.backup_dir)
        if (self.double_checkpoint and not self._from_previous
                and file_utils.exists(self._weights_path)):
            # the previous pair, in an order that a kill cannot turn into a wrong pair:
            # no previous weights (not restorable), or metadata naming their digest
            if file_utils.exists(self._prev_weights_path):
                file_utils.remove(self._prev_weights_path)
            for src, dst in ((self._training_metadata_path,
                              self._prev_training_metadata_path),
                             (self._weights_path, self._prev_weights_path)):
                if file_utils.exists(src):
                    file_utils.copy(src, dst + ".pending")
                    _replace(dst + ".pending", dst)
                elif file_utils.exists(dst):
                    file_utils.remove(dst)
        self._from_previous = False
        self._save_weights(self._pending_weights_path)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                    "weights_sha256": _digest(self._pending_weights_path)}
        with file_utils.File(self._pending_metadata_path, "w") as f:
            f.write(json.dumps(metadata))
        _replace(self._pending_weights_path, self._weights_path)
        _replace(self._pending_metadata_path, self._training_metadata_path)

    def _save_weights(self, path):
        """``model.save_weights`` on the chief alone. Saving creates variables (Keras
        builds a reference optimizer to list the attributes it skips); under a
        distribution spanning the processes (JAX) creating a variable is a collective
        the other ranks would not join, so the chief saves in
        :func:`ldm_keras.distributed.local_scope` (the model's variables are only read)."""
        with distributed.local_scope():
            self.model.save_weights(filepath=path, overwrite=True)

    def on_train_end(self, logs=None):
        if distributed.is_chief():
            super().on_train_end(logs)
