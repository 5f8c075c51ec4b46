"""Scene sampling for the generated multimodal world (floor 6: NumPy only).

A *scene* holds 1–3 objects. Each object has a shape (:data:`SHAPES`), a colour
(:data:`COLOURS`), a size (:data:`SIZES`), a position and a motion direction
(:data:`DIRECTIONS`, used by video). Scenes are sampled many at a time into a :class:`Scenes`
struct of arrays, so the cost per scene is a handful of vectorised NumPy operations.

Layout rules, chosen so that every question about a scene has one true answer:

- no two objects of a scene share both colour and shape, so "the red circle" names one object;
- objects are separated along *both* axes, like rooks on a board: sorted by x, each object's
  extent ends at least ``gap`` (1 px, or 3 % of the side) before the next one begins, and the
  same holds along y for a second, independent order. So objects never overlap, and for every
  pair "left of"/"right of" and "above"/"below" are both defined, with no ties. The free space
  along each axis is split at uniform random (flat Dirichlet), so positions are continuous;
- positions are multiples of 1/256 px and radii of 1/16 px. They, and every pixel centre, are
  exact in float32, so mirroring a scene (``x -> W - x``) renders exactly the mirrored image.

Coordinates are continuous pixel units: the image spans ``[0, W) x [0, H)``, pixel ``(row i,
column j)`` has its centre at ``(x=j+0.5, y=i+0.5)``, ``y`` grows downwards.

Video: each object moves in its direction by ``speed`` pixels per frame
(``speed = 0.25 * W / (T - 1)``: a quarter of the image over the clip). A video world
(``video=True``) moves each start position so that the whole straight path stays in view (no
wrapping, no bouncing, so "which way does it move" has one answer); this may break the grid
layout, so spatial-relation questions are not asked about video worlds.

Seeding: :func:`sample_scenes` takes a ``numpy.random.Generator``; the task layer gives each block
of scenes its own ``SeedSequence``, which makes the data the same on every machine and every
prefix of a split independent of the split's length.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "SHAPES",
    "COLOURS",
    "SIZES",
    "DIRECTIONS",
    "PALETTE",
    "BACKGROUND",
    "MAX_OBJECTS",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "ConfigError",
    "Scenes",
    "sample_scenes",
    "scenes_from_dicts",
    "concat_scenes",
    "check_image_size",
    "check_rate",
    "check_objects",
    "check_video_length",
    "check_sample_rate",
    "radius_of",
    "video_speed",
    "video_positions",
]

SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = ("red", "green", "blue", "yellow", "purple")
SIZES = ("small", "large")
DIRECTIONS = ("left", "right", "up", "down")
#: unit step (dx, dy) of each direction; y grows downwards.
DIRECTION_STEPS = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.float32)

#: RGB in [0, 1] of each colour, far apart: the closest pair (blue, purple) is 0.52 apart, so a
#: jitter that moves each channel by at most 0.14 (0.24 in RGB distance, under half of 0.52)
#: cannot change a colour's name (its nearest palette entry).
PALETTE = np.array(
    [
        [0.90, 0.12, 0.12],  # red
        [0.15, 0.75, 0.20],  # green
        [0.15, 0.30, 0.95],  # blue
        [0.95, 0.85, 0.10],  # yellow
        [0.65, 0.20, 0.85],  # purple
    ],
    dtype=np.float32,
)
BACKGROUND = np.array([0.08, 0.08, 0.08], dtype=np.float32)

MAX_OBJECTS = 3
#: Radius of a small / large object as a fraction of the image side.
RADIUS_FRACTION = (0.085, 0.13)
#: Below this side a small object is under 3 px across and its shape cannot be told.
MIN_IMAGE_SIZE = 16
#: a block of 1,024 images at this side is 192 MiB; larger toy images only cost memory
MAX_IMAGE_SIZE = 128
_QUANTUM = 16.0  # radii and video speeds are multiples of 1/16 px
_POS_QUANTUM = 256.0  # positions are multiples of 1/256 px
_EDGE = 0.5  # px kept free at the image border (the anti-aliased rim of a shape)


class ConfigError(ValueError):
    """A generator knob out of its range (image size, rates, object counts, ...)."""


# ----------------------------------------------------------------------------- checks


def check_image_size(image_size) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ConfigError(f"image_size must be an int, got {type(image_size).__name__}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"image_size={image_size} is too small: objects need at least {MIN_IMAGE_SIZE} px"
        )
    if image_size > MAX_IMAGE_SIZE:
        raise ConfigError(f"image_size={image_size} is too large: at most {MAX_IMAGE_SIZE} px")
    return int(image_size)


def check_rate(name: str, value) -> float:
    """A rate/probability/noise level: a real number in [0, 1] (not a bool, not a string)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= v <= 1.0):  # also refuses NaN
        raise ConfigError(f"{name} must be in [0, 1], got {value}")
    return v


def check_objects(objects) -> tuple[int, int]:
    """``objects`` is an int or a (min, max) pair inside [1, MAX_OBJECTS]."""
    if isinstance(objects, (int, np.integer)) and not isinstance(objects, bool):
        lo = hi = int(objects)
    else:
        try:
            lo, hi = objects
        except (TypeError, ValueError):
            raise ConfigError(f"objects must be an int or a (min, max) pair, got {objects!r}") from None
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (lo, hi)):
            raise ConfigError(f"objects must be an int or a (min, max) pair of ints, got {objects!r}")
        lo, hi = int(lo), int(hi)
    if not (1 <= lo <= hi <= MAX_OBJECTS):
        raise ConfigError(f"objects must satisfy 1 <= min <= max <= {MAX_OBJECTS}, got {objects!r}")
    return lo, hi


def check_video_length(video_length) -> int:
    if isinstance(video_length, bool) or not isinstance(video_length, (int, np.integer)):
        raise ConfigError(f"video_length must be an int, got {video_length!r}")
    if not (2 <= video_length <= 64):
        raise ConfigError(f"video_length must be in [2, 64] frames, got {video_length}")
    return int(video_length)


def check_sample_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise ConfigError(f"sample_rate must be an int, got {sample_rate!r}")
    if not (8000 <= sample_rate <= 16000):
        raise ConfigError(f"sample_rate must be in [8000, 16000] Hz, got {sample_rate}")
    return int(sample_rate)


def radius_of(size_index, image_size: int):
    """Radius in px (a multiple of 1/16) of size 0 (small) / 1 (large) at this image size."""
    r = np.asarray(RADIUS_FRACTION, dtype=np.float64)[size_index] * image_size
    return (np.round(r * _QUANTUM) / _QUANTUM).astype(np.float32)


def video_speed(image_size: int, video_length: int) -> float:
    """Pixels per frame: a quarter of the image over the whole clip, a multiple of 1/16."""
    return float(np.round(0.25 * image_size / (video_length - 1) * _QUANTUM) / _QUANTUM)


# ----------------------------------------------------------------------------- scenes


@dataclasses.dataclass
class Scenes:
    """A batch of ``N`` scenes as arrays with one column per object slot (``K = 3``).

    Empty slots (scenes with fewer objects) hold ``-1`` in the integer arrays and ``nan`` in the
    float ones; ``count[i]`` objects fill slots ``0..count[i]-1``.
    """

    image_size: int
    count: np.ndarray  # (N,) int64, objects in the scene
    shape: np.ndarray  # (N, K) int64 index into SHAPES, -1 empty
    colour: np.ndarray  # (N, K) int64 index into COLOURS
    size: np.ndarray  # (N, K) int64 index into SIZES
    motion: np.ndarray  # (N, K) int64 index into DIRECTIONS
    x: np.ndarray  # (N, K) float32 centre, px
    y: np.ndarray  # (N, K) float32 centre, px
    radius: np.ndarray  # (N, K) float32, px
    video_length: int = 8
    video: bool = False  # start positions keep the video path in view

    def __len__(self) -> int:
        return int(self.count.shape[0])

    @property
    def speed(self) -> float:
        return video_speed(self.image_size, self.video_length)

    def take(self, idx) -> "Scenes":
        """The scenes at ``idx`` (a slice or an index array), as a new :class:`Scenes`."""
        f = {
            k: getattr(self, k)[idx]
            for k in ("count", "shape", "colour", "size", "motion", "x", "y", "radius")
        }
        return Scenes(self.image_size, **f, video_length=self.video_length, video=self.video)

    def scene(self, i: int) -> dict:
        """Scene ``i`` as a JSON-able dict (the scene graph).

        ``{"image_size": 32, "video_length": 8, "speed": 1.125, "objects": [{"shape": "circle",
        "colour": "red", "size": "large", "x": 10.5, "y": 4.25, "radius": 4.125,
        "motion": "left"}, ...]}``
        """
        objs = []
        for k in range(int(self.count[i])):
            objs.append(
                {
                    "shape": SHAPES[int(self.shape[i, k])],
                    "colour": COLOURS[int(self.colour[i, k])],
                    "size": SIZES[int(self.size[i, k])],
                    "x": float(self.x[i, k]),
                    "y": float(self.y[i, k]),
                    "radius": float(self.radius[i, k]),
                    "motion": DIRECTIONS[int(self.motion[i, k])],
                }
            )
        return {
            "image_size": self.image_size,
            "video_length": self.video_length,
            "speed": self.speed,
            "objects": objs,
        }

    def to_dicts(self) -> list[dict]:
        """Every scene as a dict (same as ``[self.scene(i) for i in range(N)]``, faster)."""
        sh, co, si, mo = (a.tolist() for a in (self.shape, self.colour, self.size, self.motion))
        xs, ys, rs = (a.tolist() for a in (self.x, self.y, self.radius))
        H, T, speed = self.image_size, self.video_length, self.speed
        out = []
        for i, n in enumerate(self.count.tolist()):
            objs = [
                {
                    "shape": SHAPES[sh[i][k]], "colour": COLOURS[co[i][k]], "size": SIZES[si[i][k]],
                    "x": xs[i][k], "y": ys[i][k], "radius": rs[i][k], "motion": DIRECTIONS[mo[i][k]],
                }
                for k in range(n)
            ]
            out.append({"image_size": H, "video_length": T, "speed": speed, "objects": objs})
        return out


def concat_scenes(parts: list[Scenes]) -> Scenes:
    """One :class:`Scenes` holding the scenes of ``parts`` in order (same image size)."""
    p0 = parts[0]
    f = {
        k: np.concatenate([getattr(p, k) for p in parts])
        for k in ("count", "shape", "colour", "size", "motion", "x", "y", "radius")
    }
    return Scenes(p0.image_size, **f, video_length=p0.video_length, video=p0.video)


def scenes_from_dicts(scenes: list[dict]) -> Scenes:
    """The inverse of :meth:`Scenes.scene` for a list of scene dicts of one image size."""
    if not scenes:
        raise ValueError("scenes_from_dicts: empty list")
    n, K = len(scenes), MAX_OBJECTS
    size0 = scenes[0]["image_size"]
    ints = {k: np.full((n, K), -1, np.int64) for k in ("shape", "colour", "size", "motion")}
    floats = {k: np.full((n, K), np.nan, np.float32) for k in ("x", "y", "radius")}
    count = np.zeros(n, np.int64)
    tables = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "motion": DIRECTIONS}
    for i, s in enumerate(scenes):
        if s["image_size"] != size0:
            raise ValueError("scenes_from_dicts: scenes of different image sizes")
        count[i] = len(s["objects"])
        for k, o in enumerate(s["objects"]):
            for key, table in tables.items():
                ints[key][i, k] = table.index(o[key])
            for key in floats:
                floats[key][i, k] = o[key]
    return Scenes(size0, count, **ints, **floats, video_length=scenes[0].get("video_length", 8))


def sample_scenes(
    n: int,
    rng: np.random.Generator,
    *,
    image_size: int = 32,
    objects=(1, 3),
    video: bool = False,
    video_length: int = 8,
    shared_motion: bool = False,
) -> Scenes:
    """Sample ``n`` scenes at once (see the module docstring for the layout rules).

    ``objects`` is the number of objects per scene, an int or an inclusive (min, max) range,
    drawn uniformly. ``shared_motion=True`` gives all objects of a scene the same direction.
    The draws happen in a fixed order with fixed sizes, so a given ``rng`` state and ``n`` give
    the same scenes everywhere.
    """
    H = check_image_size(image_size)
    lo, hi = check_objects(objects)
    T = check_video_length(video_length)
    K = MAX_OBJECTS
    count = rng.integers(lo, hi + 1, size=n)
    slot = np.arange(K)
    empty = slot[None, :] >= count[:, None]

    # Distinct (colour, shape) pairs: the first K of a random permutation of all pairs.
    n_pairs = len(COLOURS) * len(SHAPES)
    pair = np.argsort(rng.random((n, n_pairs)), axis=1)[:, :K]
    colour = pair // len(SHAPES)
    shape = pair % len(SHAPES)
    size = rng.integers(0, 2, size=(n, K))
    motion = rng.integers(0, len(DIRECTIONS), size=(n, K))
    if shared_motion:
        motion[:] = motion[:, :1]
    radius = radius_of(size, H).astype(np.float64)
    radius[empty] = 0.0
    x = _separated_axis(rng, radius, count, empty, H)
    y = _separated_axis(rng, radius, count, empty, H)
    if video:
        x, y = _keep_path_in_view(x, y, radius, motion, H, video_speed(H, T) * (T - 1))
    x = np.round(x * _POS_QUANTUM) / _POS_QUANTUM
    y = np.round(y * _POS_QUANTUM) / _POS_QUANTUM

    for a in (shape, colour, size, motion):
        a[empty] = -1
    x, y, radius = (np.where(empty, np.nan, v).astype(np.float32) for v in (x, y, radius))
    return Scenes(
        H, count.astype(np.int64), shape.astype(np.int64), colour.astype(np.int64),
        size.astype(np.int64), motion.astype(np.int64), x, y, radius, video_length=T, video=video,
    )


def _separated_axis(rng, radius, count, empty, H):
    """Centres along one axis: objects in a random order, extents at least ``gap`` apart, the
    free space split at uniform random among the ``count + 1`` spaces around them."""
    n, K = radius.shape
    gap = max(1.0, 0.03 * H)
    order = np.argsort(rng.random((n, K)) + empty, axis=1)  # slot at each rank, empty slots last
    width = np.take_along_axis(2 * radius, order, axis=1)  # (n, K) by rank
    rank = np.arange(K)
    gaps = np.where(rank[None, :] < (count[:, None] - 1), gap, 0.0)
    free = H - 2 * _EDGE - width.sum(1) - gaps.sum(1)  # >= 0 for H >= MIN_IMAGE_SIZE
    e = rng.exponential(size=(n, K + 1))
    e[np.arange(K + 1)[None, :] > count[:, None]] = 0.0
    frac = np.cumsum(e, axis=1)[:, :K] / e.sum(1, keepdims=True)
    before = np.cumsum(width + gaps, axis=1) - (width + gaps)  # extents and gaps of lower ranks
    centre = _EDGE + before + frac * free[:, None] + width / 2
    out = np.empty_like(centre)
    np.put_along_axis(out, order, centre, axis=1)
    return out


def _keep_path_in_view(x, y, radius, motion, H, travel):
    """Move start positions so that ``start + travel * step`` stays inside the image."""
    step = DIRECTION_STEPS[motion]  # (n, K, 2)
    lo = radius + 0.5
    hi = H - radius - 0.5
    x_end = x + travel * step[..., 0]
    y_end = y + travel * step[..., 1]
    x = x + np.maximum(lo - np.minimum(x, x_end), 0) - np.maximum(np.maximum(x, x_end) - hi, 0)
    y = y + np.maximum(lo - np.minimum(y, y_end), 0) - np.maximum(np.maximum(y, y_end) - hi, 0)
    return x, y


def video_positions(scenes: Scenes, T: int | None = None):
    """Object centres in each frame: ``x, y`` of shape (T, N, K) (float32, exact multiples of 1/16).

    For scenes not sampled with ``video=True`` the start is moved (as at sampling time) so the
    path stays in view; frame 0 then may differ from the still image.
    """
    T = scenes.video_length if T is None else check_video_length(T)
    speed = video_speed(scenes.image_size, T)
    travel = speed * (T - 1)
    motion = np.where(scenes.motion < 0, 0, scenes.motion)
    x0, y0 = _keep_path_in_view(
        scenes.x.astype(np.float64), scenes.y.astype(np.float64), scenes.radius.astype(np.float64),
        motion, scenes.image_size, travel,
    )
    x0 = np.round(x0 * _POS_QUANTUM) / _POS_QUANTUM
    y0 = np.round(y0 * _POS_QUANTUM) / _POS_QUANTUM
    step = DIRECTION_STEPS[motion]
    t = np.arange(T, dtype=np.float64)[:, None, None] * speed
    xs = (x0[None] + t * step[None, ..., 0]).astype(np.float32)
    ys = (y0[None] + t * step[None, ..., 1]).astype(np.float32)
    return xs, ys
