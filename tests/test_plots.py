"""ldm_keras.plots: the files are written and the drawn data are the input data."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ldm_keras import plots  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_png(path, min_bytes=2000):
    import matplotlib.image

    with open(path, "rb") as f:
        head = f.read(8)
    assert head == PNG_MAGIC, head
    assert os.path.getsize(path) > min_bytes
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.01          # not a blank canvas


def _align_signs(got, ref):
    return ref * np.sign(np.sum(got * ref, axis=0))


def test_embedding_scatter_pca_by_label(rng, tmp_path):
    from sklearn.decomposition import PCA

    labels = np.repeat(np.arange(4), 30)
    z = rng.normal(size=(120, 6)) + 3 * np.eye(6)[labels]
    path = tmp_path / "pca.png"
    fig = plots.embedding_scatter(z, labels=labels, path=path)
    _check_png(path)
    ax = fig.axes[0]
    ref = PCA(n_components=2).fit_transform(z)
    coords = np.concatenate([c.get_offsets() for c in ax.collections])
    order = np.concatenate([np.flatnonzero(labels == c) for c in range(4)])
    np.testing.assert_allclose(coords, _align_signs(coords, ref[order]), atol=1e-8)
    assert len(ax.collections) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2", "3"]
    ratio = PCA(n_components=2).fit(z).explained_variance_ratio_
    assert f"{100 * ratio[0]:.0f} %" in ax.get_xlabel()
    xy, r = plots.pca_2d(z)
    np.testing.assert_allclose(xy, _align_signs(xy, ref), atol=1e-8)
    np.testing.assert_allclose(r, ratio, rtol=1e-10)


def test_embedding_scatter_tsne_and_time(rng, tmp_path):
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    z = rng.normal(size=(60, 5))
    # one OpenMP thread: Barnes-Hut t-SNE's threads spin for seconds on a busy machine
    with threadpool_limits(limits=1):
        fig = plots.embedding_scatter(z, time=np.arange(60), method="tsne", seed=3,
                                      perplexity=10.0, path=tmp_path / "tsne.png")
        ref = TSNE(n_components=2, init="pca", random_state=3,
                   perplexity=10.0).fit_transform(z)
    _check_png(tmp_path / "tsne.png")
    points = fig.axes[0].collections[0]
    np.testing.assert_allclose(points.get_offsets(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(points.get_array(), np.arange(60))
    # sequences (B, T, d) are coloured by their time step
    seq = rng.normal(size=(4, 7, 3))
    fig = plots.embedding_scatter(seq, method="none")
    points = fig.axes[0].collections[0]
    np.testing.assert_array_equal(points.get_offsets(), seq.reshape(-1, 3)[:, :2])
    np.testing.assert_array_equal(points.get_array(), np.tile(np.arange(7), 4))


def test_ldm_curves_draw_the_history(tmp_path):
    import keras

    epochs = 6
    h = {"loss": list(np.linspace(3, 1, epochs)), "alignment": list(np.linspace(-2, -1, epochs)),
         "entropy": list(np.linspace(-1, 0.5, epochs)),
         "val_loss": list(np.linspace(3.2, 1.3, epochs)),
         "probe_acc": [np.nan, 0.5, np.nan, 0.7, np.nan, 0.8],
         "rep_rank": list(np.linspace(20, 12, epochs)), "skipped_steps": [0.0] * epochs}
    history = keras.callbacks.History()
    history.history = h
    path = tmp_path / "curves.png"
    fig = plots.ldm_curves(history, path=path)
    _check_png(path)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "alignment", "entropy", "probe_acc", "rep_rank"]
    for ax in fig.axes:
        line = ax.get_lines()[0]
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, epochs + 1))
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(h[ax.get_title()]))
    val = fig.axes[0].get_lines()[1]
    assert val.get_linestyle() == "--"
    np.testing.assert_array_equal(val.get_ydata(), h["val_loss"])
    fig = plots.ldm_curves(h, keys="skipped_steps")
    assert [ax.get_title() for ax in fig.axes] == ["skipped_steps"]
    with pytest.raises(ValueError, match="no"):
        plots.ldm_curves(h, keys=["missing"])
    with pytest.raises(ValueError, match="History"):
        plots.ldm_curves([1, 2, 3])


def test_latent_trajectories_bands_are_mean_plus_minus_n_std(rng, tmp_path):
    steps, size = 40, 2
    t = np.arange(steps)
    mean = np.stack([np.cos(0.3 * t), np.sin(0.3 * t)], axis=1)
    a = rng.normal(size=(steps, size, size)) * 0.1
    cov = a @ np.transpose(a, (0, 2, 1)) + 0.01 * np.eye(size)
    observed = mean + 0.05 * rng.normal(size=mean.shape)
    path = tmp_path / "trajectory.png"
    fig = plots.latent_trajectories(mean, cov, observed=observed, n_std=2.0, path=path)
    _check_png(path)
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    for d, ax in enumerate(fig.axes):
        line, dots = ax.get_lines()
        np.testing.assert_array_equal(line.get_xdata(), t)
        np.testing.assert_array_equal(line.get_ydata(), mean[:, d])
        np.testing.assert_array_equal(dots.get_ydata(), observed[:, d])
        verts = ax.collections[0].get_paths()[0].vertices
        for i in range(steps):
            ys = verts[np.isclose(verts[:, 0], t[i]), 1]
            np.testing.assert_allclose([ys.min(), ys.max()],
                                       [mean[i, d] - 2 * sd[i, d], mean[i, d] + 2 * sd[i, d]],
                                       atol=1e-12)
    # variances give the same bands as the full covariances
    fig2 = plots.latent_trajectories(mean, sd ** 2, n_std=2.0)
    for ax, ax2 in zip(fig.axes, fig2.axes):
        np.testing.assert_allclose(ax.collections[0].get_paths()[0].vertices,
                                   ax2.collections[0].get_paths()[0].vertices)
    with pytest.raises(ValueError, match="cov"):
        plots.latent_trajectories(mean, cov[:, :1])
    with pytest.raises(ValueError, match="one sequence"):
        plots.latent_trajectories(mean[None])
    with pytest.raises(ValueError, match="dims"):
        plots.latent_trajectories(mean, dims=[5])


def test_bad_input_and_a_missing_matplotlib(rng, monkeypatch, tmp_path):
    z = rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match="method"):
        plots.embedding_scatter(z, method="umap")
    with pytest.raises(ValueError, match="one entry per point"):
        plots.embedding_scatter(z, labels=np.arange(5))
    with pytest.raises(ValueError, match="not both"):
        plots.embedding_scatter(z, labels=np.arange(20), time=np.arange(20))
    with pytest.raises(ValueError, match=".png"):
        plots.embedding_scatter(z, path=tmp_path / "x.jpg")
    with pytest.raises(ValueError, match="NaN"):
        plots.embedding_scatter(np.where(z > 1, np.nan, z))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plots.embedding_scatter(z)
