"""Rendering scenes to images and video frames (floor 6: NumPy only).

Shapes are drawn as boolean masks on a small window around each object (side ``S`` px, about
0.3 of the image side) rather than on the whole image: for every object slot the masks of all
scenes are computed at once, on a ``(N, S, S)`` grid of offsets, and scattered into an
``(N, H*W)`` map of "which object covers this pixel". A palette lookup then colours every pixel of
every image in one gather. The cost is about ``N * K * S^2`` mask evaluations plus one
``N * 3 * H * W`` gather, which is what keeps 10,000 images at 32x32 well under a second.

Every shape is symmetric under ``x -> -x`` about its centre and all coordinates are exact in
float32 (see :mod:`tinymm.data.world`), so ``render(mirror(scene)) == mirror(render(scene))``
exactly when the noise is 0.

Shapes, for an object of radius ``r`` centred at ``(cx, cy)``, ``dx = px - cx``, ``dy = py - cy``:

- circle:   ``dx^2 + dy^2 <= r^2``
- square:   ``max(|dx|, |dy|) <= 13/16 r``           (same area as the circle, roughly)
- triangle: ``-r <= dy <= r`` and ``2 |dx| <= dy + r`` (apex up, base 2r wide)
- cross:    two bars, ``|dx| <= 5/16 r, |dy| <= r`` or the same with dx, dy swapped
"""
from __future__ import annotations

import numpy as np

from tinymm.data.world import BACKGROUND, PALETTE, Scenes, video_positions

__all__ = ["shape_masks", "render_images", "render_video"]


def shape_masks(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Boolean masks for each object: ``shape`` (m,), ``r`` (m,); ``dx`` (m, 1, S), ``dy`` (m, S, 1).

    Returns (m, S, S): True where the pixel centre is inside the object.
    """
    r = r[:, None, None]
    adx, ady = np.abs(dx), np.abs(dy)
    out = np.zeros(np.broadcast_shapes(dx.shape, dy.shape), dtype=bool)
    for s, fn in enumerate(_SHAPE_FNS):
        sel = shape == s
        if sel.any():
            out[sel] = fn(dx[sel], dy[sel], adx[sel], ady[sel], r[sel])
    return out


def _circle(dx, dy, adx, ady, r):
    return dx * dx + dy * dy <= r * r


def _square(dx, dy, adx, ady, r):
    return np.maximum(adx, ady) <= r * np.float32(13 / 16)


def _triangle(dx, dy, adx, ady, r):
    return (ady <= r) & (2 * adx <= dy + r)


def _cross(dx, dy, adx, ady, r):
    w = r * np.float32(5 / 16)
    return ((adx <= w) & (ady <= r)) | ((ady <= w) & (adx <= r))


_SHAPE_FNS = (_circle, _square, _triangle, _cross)


def render_images(
    scenes: Scenes,
    *,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Render every scene: float32 array (N, 3, H, W) in [0, 1] (written into ``out`` if given).

    ``noise`` is the standard deviation of Gaussian pixel noise (drawn from ``rng``, then the
    image is clipped to [0, 1]). ``x``/``y`` override the object centres (used for video frames).
    Later object slots are drawn over earlier ones (they only overlap in video worlds).
    """
    N, K = scenes.shape.shape
    H = W = scenes.image_size
    x = scenes.x if x is None else x
    y = scenes.y if y is None else y
    if out is None:
        out = np.empty((N, 3, H, W), dtype=np.float32)
    elif out.shape != (N, 3, H, W) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"render_images: out must be C-contiguous float32 {(N, 3, H, W)}")
    images = out.reshape(N, 3, H * W)
    images[:] = BACKGROUND[None, :, None]
    flat_images = images.reshape(-1)
    r_max = float(np.nanmax(scenes.radius)) if np.isfinite(scenes.radius).any() else 1.0
    S = 2 * int(np.ceil(r_max)) + 3
    offsets = np.arange(S) - S // 2
    channel = (np.arange(3, dtype=np.int64) * (H * W))[None, :]
    for k in range(K):  # later slots are drawn over earlier ones
        b = np.nonzero(scenes.shape[:, k] >= 0)[0]
        if b.size == 0:
            continue
        cx, cy, r = x[b, k], y[b, k], scenes.radius[b, k]
        px = np.floor(cx).astype(np.int64)[:, None] + offsets  # (m, S) pixel columns
        py = np.floor(cy).astype(np.int64)[:, None] + offsets  # (m, S) pixel rows
        dx = (px + np.float32(0.5) - cx[:, None]).astype(np.float32)[:, None, :]
        dy = (py + np.float32(0.5) - cy[:, None]).astype(np.float32)[:, :, None]
        mask = shape_masks(scenes.shape[b, k], dx, dy, r)
        mask &= ((px >= 0) & (px < W))[:, None, :] & ((py >= 0) & (py < H))[:, :, None]
        bi, yi, xi = np.nonzero(mask)
        scene = b[bi]
        # flat index of (scene, channel, pixel) for the 3 channels of every covered pixel
        at = (scene * (3 * H * W) + py[bi, yi] * W + px[bi, xi])[:, None] + channel
        flat_images[at] = PALETTE[scenes.colour[scene, k]]
    images = out
    if noise > 0:
        if rng is None:
            raise ValueError("render_images: noise > 0 needs an rng")
        images += np.float32(noise) * rng.standard_normal(images.shape, dtype=np.float32)
        np.clip(images, 0.0, 1.0, out=images)
    return images


def render_video(
    scenes: Scenes, *, T: int | None = None, noise: float = 0.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Render ``T`` frames of every scene's objects moving: float32 (N, T, 3, H, W) in [0, 1]."""
    xs, ys = video_positions(scenes, T)  # (T, N, K)
    T = xs.shape[0]
    N = len(scenes)
    rep = scenes.take(np.tile(np.arange(N), T))  # frame-major: row t*N + i
    frames = render_images(
        rep, noise=noise, rng=rng, x=xs.reshape(T * N, -1), y=ys.reshape(T * N, -1)
    )
    H = scenes.image_size
    return frames.reshape(T, N, 3, H, H).transpose(1, 0, 2, 3, 4).copy()
