"""Test images that need no download: scikit-image's bundled samples, random ellipse phantoms, Shepp-Logan.

Every *source* has ``size`` (images are ``size x size``), ``sample(n, generator, dtype=torch.float64)``
returning a CPU tensor ``(n, size, size)`` of grey values in ``[0, 1]`` (random numbers drawn from
``generator``: the same seed gives the same images), and ``config()`` (JSON) that :func:`make_source` turns back
into the source.

* :class:`PatchSource` cuts random patches from the grey-scale sample images of one *split*. The splits hold
  **different images** (:data:`SPLITS`), so test patches are never seen in training. Only images that
  scikit-image ships inside its wheel are used (:data:`OFFLINE_IMAGES`, each checked to load with the network
  off; ``brain``, ``eagle``, ``kidney``, ``lily``, ``skin`` and the other pooch downloads are not).
* :class:`EllipsePhantoms` draws Shepp-Logan-like phantoms (a head, a skull, random inner ellipses with random
  centres, axes, angles and intensities): an unlimited online source for training.
* :func:`shepp_logan` is ``skimage.data.shepp_logan_phantom()`` resized, the held-out test image of CS-MRI;
  :class:`FixedImages` serves a fixed stack (e.g. it) as a source.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["OFFLINE_IMAGES", "SPLITS", "load_image", "shepp_logan", "PatchSource", "EllipsePhantoms",
           "FixedImages", "MixtureSource", "make_source", "SOURCES"]

#: Sample images of ``skimage.data`` bundled in the wheel (load offline); ``cat`` is omitted (it is ``chelsea``).
OFFLINE_IMAGES = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
                  "immunohistochemistry", "moon", "page", "rocket", "text")

#: Disjoint image sets for training, validation and testing.
SPLITS = {
    "train": ("astronaut", "brick", "cell", "chelsea", "clock", "coffee", "grass", "gravel", "immunohistochemistry",
              "rocket"),
    "val": ("moon", "text", "page"),
    "test": ("camera", "coins"),
}


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 4:
        raise ValueError(f"size must be an int >= 4, got {size!r}")
    return int(size)


@functools.lru_cache(maxsize=None)
def _grey(name: str, scale: float) -> np.ndarray:
    import skimage.data
    from skimage.color import rgb2gray, rgba2rgb
    from skimage.transform import rescale
    from skimage.util import img_as_float

    if name not in OFFLINE_IMAGES:
        raise ValueError(f"name must be one of {OFFLINE_IMAGES} (images bundled with scikit-image), got {name!r}")
    image = img_as_float(getattr(skimage.data, name)())
    if image.ndim == 3:
        image = rgb2gray(rgba2rgb(image) if image.shape[-1] == 4 else image)
    if scale != 1.0:
        image = rescale(image, scale, anti_aliasing=True)
    image = np.clip(image, 0.0, 1.0)
    image.setflags(write=False)
    return image


def load_image(name: str, *, scale: float = 1.0, dtype: torch.dtype = torch.float64) -> Tensor:
    """A bundled sample image as a grey ``(H, W)`` tensor in ``[0, 1]``, rescaled by ``scale``.

    Raises
    ------
    ValueError
        When ``name`` is not one of :data:`OFFLINE_IMAGES` or ``scale`` is not in ``(0, 1]``.
    """
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale!r}")
    return torch.tensor(_grey(name, float(scale)), dtype=dtype)


def shepp_logan(size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """``skimage.data.shepp_logan_phantom()`` resized to ``(size, size)`` (anti-aliased), values in ``[0, 1]``."""
    import skimage.data
    from skimage.transform import resize

    size = _check_size(size)
    image = resize(skimage.data.shepp_logan_phantom(), (size, size), anti_aliasing=True)
    return torch.tensor(np.clip(image, 0.0, 1.0), dtype=dtype)


class PatchSource:
    """Random ``size x size`` patches of the grey sample images of one split.

    Parameters
    ----------
    split : {'train', 'val', 'test'}
        Which images (:data:`SPLITS`; the three sets are disjoint).
    size : int
        Patch side.
    scale : float, default 0.5
        Images are downscaled by this factor first (more structure per patch).
    augment : bool, default False
        Random flips and transposes (8 symmetries of the square).
    """

    def __init__(self, split: str, size: int, *, scale: float = 0.5, augment: bool = False):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        self.split, self.size, self.scale, self.augment = split, _check_size(size), float(scale), bool(augment)
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale!r}")
        self.images = [torch.from_numpy(np.array(_grey(name, self.scale))) for name in SPLITS[split]]
        small = [n for n, im in zip(SPLITS[split], self.images) if min(im.shape) < self.size]
        if small:
            raise ValueError(f"size {self.size} is larger than the images {small} at scale {self.scale}")

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """``n`` patches ``(n, size, size)``: a uniformly chosen image, then a uniform position."""
        s = self.size
        which = torch.randint(len(self.images), (n,), generator=generator)
        u = torch.rand(n, 2, generator=generator, dtype=torch.float64)
        sym = torch.randint(8, (n,), generator=generator) if self.augment else torch.zeros(n, dtype=torch.long)
        out = torch.empty(n, s, s, dtype=dtype)
        for i in range(n):
            image = self.images[int(which[i])]
            r = int(u[i, 0] * (image.shape[0] - s + 1))
            c = int(u[i, 1] * (image.shape[1] - s + 1))
            patch = image[r:r + s, c:c + s]
            k = int(sym[i])
            patch = torch.rot90(patch, k % 4, dims=(0, 1))
            out[i] = patch.flip(1) if k >= 4 else patch
        return out

    def config(self) -> dict:
        return {"kind": "patches", "split": self.split, "size": self.size, "scale": self.scale,
                "augment": self.augment}


class EllipsePhantoms:
    """Random Shepp-Logan-like phantoms: an unlimited online source.

    Each phantom is a head ellipse (intensity 1) with a skull rim (an inner ellipse subtracting 0.6 to 0.8),
    plus ``n_ellipses`` random ellipses inside (centres in the inner 60 %, semi-axes 3 % to 30 % of the field
    of view, any angle, added intensities in ``[-0.3, 0.5]``); the sum is clipped to ``[0, 1]``.

    Parameters
    ----------
    size : int
        Image side.
    n_ellipses : tuple of int, default (3, 10)
        Inclusive range of the number of inner ellipses.
    """

    def __init__(self, size: int, *, n_ellipses: tuple[int, int] = (3, 10)):
        self.size = _check_size(size)
        lo, hi = (int(v) for v in n_ellipses)
        if not 0 <= lo <= hi:
            raise ValueError(f"n_ellipses must be a range (low, high) with 0 <= low <= high, got {n_ellipses!r}")
        self.n_ellipses = (lo, hi)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """``n`` phantoms ``(n, size, size)`` in ``[0, 1]``."""
        lo, hi = self.n_ellipses
        g = lambda *shape: torch.rand(n, *shape, generator=generator, dtype=torch.float64)  # noqa: E731
        # head and skull: near-centred, nearly upright
        head_axes = torch.stack([0.6 + 0.25 * g(1), 0.75 + 0.2 * g(1)], -1)  # (n, 1, 2) semi-axes (x, y)
        head_centre = 0.05 * (2 * g(1, 2) - 1)
        head_angle = 0.3 * (2 * g(1) - 1)
        skull = 1.0 - (0.06 + 0.06 * g(1, 1))
        centres = torch.cat([head_centre, head_centre, 0.6 * head_axes * (2 * g(hi, 2) - 1)], 1)
        axes = torch.cat([head_axes, head_axes * skull, 0.03 + 0.27 * g(hi, 2)], 1)
        angles = torch.cat([head_angle, head_angle, math.pi * g(hi)], 1)
        count = torch.randint(lo, hi + 1, (n, 1), generator=generator)
        active = torch.cat([torch.ones(n, 2, dtype=torch.bool), torch.arange(hi)[None] < count], 1)
        values = torch.cat([torch.ones(n, 1, dtype=torch.float64), -(0.6 + 0.2 * g(1)), -0.3 + 0.8 * g(hi)], 1)
        values = values * active
        t = (torch.arange(self.size, dtype=torch.float64) + 0.5) / self.size * 2 - 1
        yy, xx = torch.meshgrid(-t, t, indexing="ij")  # y up, as in a phantom drawing
        dx = xx[None, None] - centres[..., 0, None, None]  # (n, E, H, W)
        dy = yy[None, None] - centres[..., 1, None, None]
        cos, sin = torch.cos(angles)[..., None, None], torch.sin(angles)[..., None, None]
        u = (cos * dx + sin * dy) / axes[..., 0, None, None]
        v = (-sin * dx + cos * dy) / axes[..., 1, None, None]
        inside = (u.square() + v.square()) <= 1.0
        image = (values[..., None, None] * inside).sum(1)
        return image.clamp(0.0, 1.0).to(dtype)

    def config(self) -> dict:
        return {"kind": "phantoms", "size": self.size, "n_ellipses": list(self.n_ellipses)}


class FixedImages:
    """A fixed stack of images ``(N, size, size)`` as a source: ``sample(n)`` draws ``n`` of them at random.

    ``FixedImages.shepp_logan(size)`` is the stack holding only :func:`shepp_logan`.
    """

    def __init__(self, images: Tensor, name: str = "fixed"):
        images = torch.as_tensor(images)
        if images.dim() != 3 or images.shape[1] != images.shape[2] or images.shape[0] == 0:
            raise ValueError(f"images must be a non-empty (N, size, size) stack, got shape {tuple(images.shape)}")
        self.images, self.name, self.size = images.to(torch.float64), name, int(images.shape[-1])

    @classmethod
    def shepp_logan(cls, size: int) -> "FixedImages":
        return cls(shepp_logan(size)[None], name="shepp_logan")

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        which = torch.randint(self.images.shape[0], (n,), generator=generator)
        return self.images[which].to(dtype)

    def config(self) -> dict:
        if self.name != "shepp_logan":
            raise ValueError("only the shepp_logan stack can be rebuilt from a config")
        return {"kind": "shepp_logan", "size": self.size}


class MixtureSource:
    """Each image drawn from one of ``sources`` (all of one ``size``), chosen uniformly at random."""

    def __init__(self, sources):
        sources = list(sources)
        if not sources or len({src.size for src in sources}) != 1:
            raise ValueError("sources must be a non-empty list of sources of one size")
        self.sources, self.size = sources, sources[0].size

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        which = torch.randint(len(self.sources), (n,), generator=generator)
        out = torch.empty(n, self.size, self.size, dtype=dtype)
        for i, src in enumerate(self.sources):
            rows = torch.nonzero(which == i).squeeze(1)
            if rows.numel():
                out[rows] = src.sample(rows.numel(), generator, dtype=dtype)
        return out

    def config(self) -> dict:
        return {"kind": "mixture", "sources": [src.config() for src in self.sources]}


#: Source names :func:`make_source` understands.
SOURCES = ("phantoms", "train", "val", "test", "shepp_logan", "phantoms+train")


def make_source(source, size: int):
    """A source from a name of :data:`SOURCES` (patches of that split for ``'train'``/``'val'``/``'test'``),
    from a ``config()`` dict, or a source object itself (checked to have ``size``)."""
    if isinstance(source, dict):
        cfg = dict(source)
        kind = cfg.pop("kind", None)
        if kind == "patches":
            return PatchSource(cfg.pop("split"), cfg.pop("size", size), **cfg)
        if kind == "phantoms":
            return EllipsePhantoms(cfg.pop("size", size), n_ellipses=tuple(cfg.pop("n_ellipses", (3, 10))))
        if kind == "shepp_logan":
            return FixedImages.shepp_logan(cfg.pop("size", size))
        if kind == "mixture":
            return MixtureSource([make_source(c, size) for c in cfg.pop("sources")])
        raise ValueError(f"source config has unknown kind {kind!r}")
    if isinstance(source, str):
        if source == "phantoms":
            return EllipsePhantoms(size)
        if source == "shepp_logan":
            return FixedImages.shepp_logan(size)
        if source == "phantoms+train":
            return MixtureSource([EllipsePhantoms(size), PatchSource("train", size, augment=True)])
        if source in SPLITS:
            return PatchSource(source, size, augment=source == "train")
        raise ValueError(f"source must be one of {SOURCES}, a source config or a source object, got {source!r}")
    if not hasattr(source, "sample") or getattr(source, "size", None) != size:
        raise ValueError(f"source must have sample(n, generator) and size == {size}")
    return source
