"""Bilinear resampling of each image on its own affine grid (the geometric ops' sampler).

Written as a gather in ``keras.ops`` so that it compiles under XLA on every backend
(``keras.ops.image.affine_transform`` does not on TensorFlow, and Keras' geometric
preprocessing layers turn ``jit`` off for the whole training step; see
docs/dependencies.md).
"""

from keras import ops


def affine(x, rows, fill_mode, fill_value=0.0):
    """Bilinear resampling of each image on its own affine grid.

    ``rows`` is ``(B, 6)``: output pixel ``(i, j)`` (row, column) reads the input at
    ``(x_in, y_in) = (a0·j + a1·i + a2, b0·j + b1·i + b2)`` (pixel-index coordinates).
    Outside the image: ``fill_mode="nearest"`` clamps to the border pixel,
    ``"constant"`` uses ``fill_value``. Written with ``take_along_axis`` (a gather) so
    it compiles under XLA on every backend (``ops.image.affine_transform`` does not on
    TensorFlow).
    """
    b = ops.shape(x)[0]
    h_img, w_img, c = x.shape[1], x.shape[2], x.shape[3]
    if h_img is None or w_img is None or c is None:
        raise ValueError("Geometric augmentations need static image height, width and "
                         f"channels; received shape {tuple(x.shape)}.")
    ii, jj = ops.meshgrid(ops.arange(h_img, dtype="float32"),
                          ops.arange(w_img, dtype="float32"), indexing="ij")
    ii = ops.reshape(ii, (1, h_img * w_img))
    jj = ops.reshape(jj, (1, h_img * w_img))
    a0, a1, a2, b0, b1, b2 = (rows[:, k:k + 1] for k in range(6))
    xs = a0 * jj + a1 * ii + a2  # (B, HW)
    ys = b0 * jj + b1 * ii + b2
    if fill_mode == "nearest":
        xs = ops.clip(xs, 0.0, w_img - 1.0)
        ys = ops.clip(ys, 0.0, h_img - 1.0)
    x0, y0 = ops.floor(xs), ops.floor(ys)
    fx, fy = xs - x0, ys - y0
    flat = ops.reshape(x, (b, h_img * w_img, c))
    out = 0.0
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
        for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
            xc, yc = x0 + dx, y0 + dy
            inside = (xc >= 0) & (xc <= w_img - 1) & (yc >= 0) & (yc <= h_img - 1)
            idx = (ops.cast(ops.clip(yc, 0, h_img - 1), "int32") * w_img
                   + ops.cast(ops.clip(xc, 0, w_img - 1), "int32"))
            idx = ops.broadcast_to(ops.expand_dims(idx, -1), (b, h_img * w_img, c))
            val = ops.take_along_axis(flat, idx, axis=1)
            if fill_mode == "constant":
                val = ops.where(ops.expand_dims(inside, -1), val, fill_value)
            out = out + ops.expand_dims(wx * wy, -1) * val
    return ops.reshape(out, (b, h_img, w_img, c))
