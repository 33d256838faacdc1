"""Tests of ldm_keras.augment: random image views as Keras layers.

References: NumPy formulas (flip, luma, solarisation, colour blends), colorsys (hue),
scipy.ndimage (bilinear resampling, Gaussian filtering).
"""

import colorsys

import keras
import numpy as np
import pytest
import scipy.ndimage as ndi
from helpers import BACKEND, run_layer_test, to_numpy

from ldm_keras import augment as A

SHAPE = (4, 8, 8, 3)  # one shape for most tests keeps JAX's eager compile cache warm


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(size=SHAPE).astype("float32")


def _np(layer, x, **kw):
    return to_numpy(layer(x, **kw))


OPS = [
    (A.RandomResizedCrop, {"scale": (0.2, 1.0), "p": 0.7, "seed": 1}),
    (A.RandomAffine, {"rotation": 15.0, "translation": 1.0, "scale": (0.9, 1.1), "seed": 1}),
    (A.RandomFlip, {"p": 0.5, "seed": 1}),
    (A.ColorJitter, {"p": 0.8, "seed": 1}),
    (A.RandomGrayscale, {"p": 0.5, "seed": 1}),
    (A.RandomSolarize, {"p": 0.5, "seed": 1}),
    (A.RandomGaussianBlur, {"p": 0.5, "kernel_size": 3, "seed": 1}),
    (A.RandomGaussianNoise, {"p": 0.5, "stddev": 0.1, "seed": 1}),
    (A.RandomPixelDropout, {"p": 0.5, "rate": 0.2, "seed": 1}),
]


# Gradients through augmentations are not needed for training (views are inputs); they
# are checked where cheap. The crop uses the same gather sampler as RandomAffine, and
# ColorJitter's hue step (RGB -> HSV) has no gradient on TensorFlow.
NO_GRADIENT_CHECK = (A.RandomResizedCrop, A.ColorJitter)


@pytest.mark.parametrize("cls,kwargs", OPS, ids=[c.__name__ for c, _ in OPS])
def test_op_layer(cls, kwargs, images):
    _, out = run_layer_test(cls, kwargs, images, SHAPE, deterministic=False,
                            check_gradients=cls not in NO_GRADIENT_CHECK)
    out = to_numpy(out)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6


def test_pipeline_layer(images):
    ops = [A.RandomResizedCrop(scale=(0.2, 1.0), seed=1), A.RandomFlip(seed=2),
           A.ColorJitter(seed=3), A.RandomGrayscale(seed=4), A.RandomSolarize(seed=5)]
    layer, out = run_layer_test(A.ViewPipeline, {"ops": ops}, images, SHAPE,
                                deterministic=False, check_gradients=False)
    assert [type(o) for o in layer.ops] == [type(o) for o in ops]
    # ops were rebuilt from config with the same settings
    clone = A.ViewPipeline.from_config(layer.get_config())
    assert [o.get_config()["seed"] for o in clone.ops] == [1, 2, 3, 4, 5]
    assert clone.ops[0].scale == (0.2, 1.0)


@pytest.mark.parametrize("preset", ["cifar", "cifar-strong"])
def test_presets_keep_shape_and_range(preset, images):
    views = A.image_views(preset, seed=0)
    out = _np(views, images)
    assert out.shape == SHAPE and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    assert not np.allclose(out, images)
    names = [type(o).__name__ for o in views.ops]
    assert names[0] == "RandomResizedCrop" and "ColorJitter" in names
    crop = views.ops[0]
    assert crop.scale == ((0.2, 1.0) if preset == "cifar" else (0.08, 1.0))
    jitter = next(o for o in views.ops if isinstance(o, A.ColorJitter))
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue, jitter.p) == (
        0.4, 0.4, 0.2, 0.1, 0.8)


def test_digits_preset_keeps_the_digit():
    from ldm_keras.data.digits import load_digits

    x, _ = load_digits("test")
    x = x[:4]
    views = A.image_views("digits", seed=0)
    v = np.stack([_np(views, x) for _ in range(8)])  # 8 views of 4 digits
    assert v.shape == (8, *x.shape) and v.min() >= 0.0 and v.max() <= 1.0 + 1e-6
    corr = [np.corrcoef(x[b].ravel(), v[k, b].ravel())[0, 1] for k in range(8) for b in range(4)]
    # each view differs from its image but stays recognisably the same digit
    assert not any(np.allclose(x[b], v[k, b]) for k in range(8) for b in range(4))
    assert 0.4 < np.median(corr) < 0.98


@pytest.mark.parametrize("cls,kwargs", OPS, ids=[c.__name__ for c, _ in OPS])
def test_p_zero_and_inference_are_identity(cls, kwargs, images):
    layer = cls(**{**kwargs, "p": 0.0})
    np.testing.assert_array_equal(_np(layer, images), images)
    np.testing.assert_array_equal(_np(cls(**kwargs), images, training=False), images)


def test_pipeline_inference_is_identity(images):
    views = A.image_views("cifar", seed=0)
    np.testing.assert_array_equal(_np(views, images, training=False), images)


def test_flip_equals_numpy(images):
    np.testing.assert_array_equal(_np(A.RandomFlip(p=1.0), images), np.flip(images, axis=2))
    np.testing.assert_array_equal(_np(A.RandomFlip("vertical", p=1.0), images),
                                  np.flip(images, axis=1))


def test_grayscale_equals_luma(images):
    gray = images @ np.array([0.299, 0.587, 0.114], dtype="float32")
    want = np.repeat(gray[..., None], 3, axis=-1)
    np.testing.assert_allclose(_np(A.RandomGrayscale(p=1.0), images), want, rtol=1e-6, atol=1e-6)
    one = images[..., :1]
    np.testing.assert_array_equal(_np(A.RandomGrayscale(p=1.0), one), one)


def test_solarize_equals_threshold_formula(images):
    for t in (0.5, 0.3):
        want = np.where(images >= t, 1.0 - images, images)
        np.testing.assert_allclose(_np(A.RandomSolarize(t, p=1.0), images), want, atol=1e-7)


def test_crop_full_box_is_identity(images):
    crop = A.RandomResizedCrop(scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)
    np.testing.assert_allclose(_np(crop, images), images, atol=1e-6)


@pytest.mark.parametrize("s,r", [(0.25, 1.0), (0.36, 0.5625)])
def test_crop_box_size_follows_scale_and_ratio(s, r):
    # On the ramp image f(i, j) = a·i + b·j a crop of w×h pixels resized to W×H has
    # slopes b·w/W along columns and a·h/H along rows, whatever the random corner.
    h, w = SHAPE[1:3]
    ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ramp = (0.03 * ii + 0.05 * jj).astype("float32")
    x = np.broadcast_to(ramp[None, :, :, None], SHAPE).copy()
    out = _np(A.RandomResizedCrop(scale=(s, s), ratio=(r, r), seed=3), x)
    bw, bh = np.sqrt(s * r * h * w), np.sqrt(s * h * w / r)
    np.testing.assert_allclose(np.diff(out, axis=2)[:, 1:-1, 1:-1], 0.05 * bw / w, atol=1e-5)
    np.testing.assert_allclose(np.diff(out, axis=1)[:, 1:-1, 1:-1], 0.03 * bh / h, atol=1e-5)
    assert out.min() >= 0.0 - 1e-6 and out.max() <= ramp.max() + 1e-6


@pytest.mark.parametrize("mode", ["constant", "nearest"])
def test_affine_sampler_matches_scipy(mode, images):
    # output (i, j) reads input (b0 j + b1 i + b2, a0 j + a1 i + a2) as (row, col)
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.normal(1.0, 0.2, (4, 1)), rng.normal(0, 0.3, (4, 1)),
                           rng.normal(0, 1.5, (4, 1)), rng.normal(0, 0.3, (4, 1)),
                           rng.normal(1.0, 0.2, (4, 1)), rng.normal(0, 1.5, (4, 1))], 1)
    got = to_numpy(A.resample.affine(keras.ops.convert_to_tensor(images),
                                     keras.ops.convert_to_tensor(rows.astype("float32")), mode,
                                     0.25))
    ii, jj = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    for b in range(4):
        a0, a1, a2, b0, b1, b2 = rows[b]
        coords = [b0 * jj + b1 * ii + b2, a0 * jj + a1 * ii + a2]
        if mode == "nearest":
            coords = [np.clip(coords[0], 0, 7), np.clip(coords[1], 0, 7)]
        for c in range(3):
            want = ndi.map_coordinates(images[b, :, :, c].astype("float64"), coords, order=1,
                                       mode="grid-constant" if mode == "constant" else "nearest",
                                       cval=0.25)
            np.testing.assert_allclose(got[b, :, :, c], want, atol=2e-5)


def test_affine_without_motion_is_identity(images):
    layer = A.RandomAffine(rotation=0.0, translation=0.0, scale=(1.0, 1.0), seed=0)
    np.testing.assert_allclose(_np(layer, images), images, atol=1e-6)


def test_affine_shift_moves_the_centre_of_mass():
    x = np.zeros(SHAPE, "float32")
    x[:, 3:5, 3:5] = 1.0
    layer = A.RandomAffine(rotation=0.0, translation=1.0, seed=0)
    out = np.concatenate([_np(layer, x) for _ in range(16)])  # 64 samples
    ii, jj = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    mass = out[..., 0].sum((1, 2))
    ci = (out[..., 0] * ii).sum((1, 2)) / mass - 3.5
    cj = (out[..., 0] * jj).sum((1, 2)) / mass - 3.5
    np.testing.assert_allclose(mass, 4.0, atol=1e-4)  # a shift keeps the blob whole
    assert np.all(np.abs(ci) <= 1.0 + 1e-5) and np.all(np.abs(cj) <= 1.0 + 1e-5)
    assert np.std(ci) > 0.3 and np.std(cj) > 0.3       # U[-1, 1] has std 0.577


def _gray(x):
    return x @ np.array([0.299, 0.587, 0.114], dtype="float64")


def test_color_jitter_brightness_contrast_saturation(images):
    x = 0.25 + 0.5 * images.astype("float64")  # keep away from clipping
    kw = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0, "p": 1.0}
    out = _np(A.ColorJitter(**{**kw, "brightness": 0.3}, seed=0), x).astype("float64")
    ratio = out / x
    per_image = ratio.reshape(4, -1)
    assert np.all(np.ptp(per_image, axis=1) < 1e-5)  # one factor per image
    assert np.all((per_image[:, 0] >= 0.7 - 1e-6) & (per_image[:, 0] <= 1.3 + 1e-6))

    out = _np(A.ColorJitter(**{**kw, "contrast": 0.3}, seed=0), x).astype("float64")
    m = _gray(x).mean(axis=(1, 2))[:, None, None, None]
    c = ((out - m) / (x - m)).reshape(4, -1)
    np.testing.assert_allclose(c, c[:, :1] * np.ones_like(c), rtol=1e-4)
    assert np.all((c[:, 0] >= 0.7 - 1e-6) & (c[:, 0] <= 1.3 + 1e-6))

    out = _np(A.ColorJitter(**{**kw, "saturation": 0.2}, seed=0), x).astype("float64")
    g = _gray(x)[..., None]
    np.testing.assert_allclose(_gray(out), _gray(x), atol=1e-5)  # luma kept
    s = ((out - g) / (x - g)).reshape(4, -1)
    np.testing.assert_allclose(s, s[:, :1] * np.ones_like(s), rtol=1e-3)
    assert np.all((s[:, 0] >= 0.8 - 1e-6) & (s[:, 0] <= 1.2 + 1e-6))


def test_color_jitter_hue_matches_colorsys(images):
    out = _np(A.ColorJitter(0.0, 0.0, 0.0, hue=0.1, p=1.0, seed=0), images)
    for b in range(4):
        hsv_in = np.array([colorsys.rgb_to_hsv(*p) for p in images[b].reshape(-1, 3)])
        hsv_out = np.array([colorsys.rgb_to_hsv(*p) for p in out[b].reshape(-1, 3)])
        np.testing.assert_allclose(hsv_out[:, 1:], hsv_in[:, 1:], atol=1e-5)  # S, V kept
        shift = (hsv_out[:, 0] - hsv_in[:, 0] + 0.5) % 1.0 - 0.5
        assert np.ptp(shift) < 1e-4 and abs(shift[0]) <= 0.1 + 1e-5
    assert np.ptp([((colorsys.rgb_to_hsv(*out[b, 0, 0])[0]
                     - colorsys.rgb_to_hsv(*images[b, 0, 0])[0] + 0.5) % 1.0)
                   for b in range(4)]) > 1e-3  # a different shift per image


def test_color_ops_reject_other_channel_counts():
    x = np.zeros((2, 8, 8, 2), "float32")
    with pytest.raises(ValueError, match="channels"):
        A.ColorJitter()(x)
    with pytest.raises(ValueError, match="channels"):
        A.RandomGrayscale()(x)


@pytest.mark.parametrize("sigma,k", [(1.0, 5), (0.6, 3)])
def test_blur_matches_scipy(sigma, k, images):
    r = k // 2
    d = np.arange(-r, r + 1)
    kern = np.exp(-0.5 * (d / sigma) ** 2)
    kern /= kern.sum()
    want = ndi.correlate1d(images.astype("float64"), kern, axis=2, mode="mirror")
    want = ndi.correlate1d(want, kern, axis=1, mode="mirror")
    got = _np(A.RandomGaussianBlur(sigma=(sigma, sigma), kernel_size=k, p=1.0), images)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_noise_statistics():
    x = np.full(SHAPE, 0.5, "float32")
    noise = A.RandomGaussianNoise(stddev=0.1, clip=None, p=1.0, seed=0)
    e = np.concatenate([(_np(noise, x) - x).ravel() for _ in range(4)])  # 3072 draws
    assert abs(e.mean()) < 4 * 0.1 / np.sqrt(e.size)
    assert abs(e.std() / 0.1 - 1.0) < 0.05


def test_pixel_dropout_statistics():
    x = np.random.default_rng(0).uniform(0.1, 1.0, SHAPE).astype("float32")
    layer = A.RandomPixelDropout(rate=0.2, p=1.0, seed=0)
    x = np.concatenate([x] * 8)
    out = np.concatenate([_np(layer, x[i:i + 4]) for i in range(0, 32, 4)])
    dropped = out == 0.0
    assert np.all(dropped.all(-1) == dropped.any(-1))  # whole pixels
    np.testing.assert_array_equal(out[~dropped], x[~dropped])
    frac = dropped[..., 0].mean()  # 2048 pixels: binomial std 0.009
    assert abs(frac - 0.2) < 0.035


def test_two_calls_differ_and_seeds_reproduce(images):
    views = A.image_views("cifar", seed=7)
    v1, v2 = _np(views, images), _np(views, images)
    assert not np.allclose(v1, v2)
    again = A.image_views("cifar", seed=7)
    np.testing.assert_array_equal(_np(again, images), v1)
    np.testing.assert_array_equal(_np(again, images), v2)
    other = A.image_views("cifar", seed=8)
    assert not np.allclose(_np(other, images), v1)
    assert not {o.seed for o in views.ops} & {o.seed for o in other.ops}

    keras.utils.set_random_seed(3)
    a = _np(A.image_views("cifar"), images)
    keras.utils.set_random_seed(3)
    b = _np(A.image_views("cifar"), images)
    np.testing.assert_array_equal(a, b)


def test_probability_applies_per_sample():
    x = np.random.default_rng(0).uniform(size=SHAPE).astype("float32")
    layer = A.RandomSolarize(threshold=0.0, p=0.3, seed=0)
    changed = np.concatenate([np.any(_np(layer, x) != x, axis=(1, 2, 3)) for _ in range(32)])
    assert abs(changed.mean() - 0.3) < 0.1  # 128 samples: binomial std 0.04


def test_compiled_on_current_backend(images):
    views = A.image_views("cifar-strong", seed=0)
    views(images)  # build
    state = [to_numpy(v.value).copy() for v in views.non_trainable_variables]
    eager, _ = views.stateless_call([], state, images, training=True)

    def step(s, x):
        return views.stateless_call([], s, x, training=True)

    if BACKEND == "jax":
        import jax

        out, state2 = jax.jit(step)(state, images)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        out, state2 = tf.function(step)(state, images)
        # XLA too (as in a jit-compiled train_step). TensorFlow's stateless RNG gives
        # other numbers under XLA than in its CPU kernels, so check shape/range only.
        xla, _ = tf.function(step, jit_compile=True)(state, images)
        xla = to_numpy(xla)
        assert xla.shape == SHAPE and xla.min() >= 0.0 and xla.max() <= 1.0 + 1e-6
    else:  # torch: torch.compile is too slow for a unit test; check the stateless path
        out, state2 = step(state, images)
    np.testing.assert_allclose(to_numpy(out), to_numpy(eager), atol=1e-5)
    # the seed states advanced, so the next view differs
    assert any(np.any(to_numpy(a) != to_numpy(b)) for a, b in zip(state, state2))
    out2, _ = views.stateless_call([], [to_numpy(v) for v in state2], images, training=True)
    assert not np.allclose(to_numpy(out2), to_numpy(out))


def test_symbolic_batch_passes():
    inp = keras.Input((8, 8, 3))
    out = A.image_views("cifar")(inp)
    assert tuple(out.shape) == (None, 8, 8, 3) and out.dtype == "float32"


def test_bad_arguments():
    with pytest.raises(ValueError, match="images"):
        A.RandomFlip()(np.zeros((8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="`p`"):
        A.RandomFlip(p=1.5)
    with pytest.raises(ValueError, match="scale"):
        A.RandomResizedCrop(scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="kernel_size"):
        A.RandomGaussianBlur(kernel_size=4)
    with pytest.raises(ValueError, match="preset"):
        A.image_views("imagenet")
    with pytest.raises(ValueError, match="Unknown augmentation"):
        A.image_views("cifar", cutout={})
    with pytest.raises(ValueError, match="layers"):
        A.ViewPipeline(["flip"])


def test_overrides():
    views = A.image_views("cifar", seed=0, solarize=None, blur={"p": 0.3},
                          flip=A.RandomFlip(p=1.0, seed=9))
    names = [type(o).__name__ for o in views.ops]
    assert names == ["RandomResizedCrop", "RandomFlip", "ColorJitter", "RandomGrayscale",
                     "RandomGaussianBlur"]
    assert views.ops[1].p == 1.0 and views.ops[-1].p == 0.3
