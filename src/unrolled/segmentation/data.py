r"""Simulated semantic segmentation: random shapes with per-class colour and texture statistics.

An image of ``height x width`` pixels has a background (label 0) and ``n_shapes`` random shapes (disks/ellipses,
rectangles, triangles; drawn with :mod:`skimage.draw`, later ones occluding earlier ones), each of a random
foreground class ``1..L-1``. The class is told by appearance, not by shape: class ``c`` has a mean colour
``palette[c]`` (jittered per image by ``colour_jitter``) and a texture (oriented stripes of class-specific
frequency and amplitude, random phase and orientation per shape). The clean image is blurred (Gaussian, std
``blur`` pixels, :func:`scipy.ndimage.gaussian_filter`) and white noise of std ``noise_std`` is added. The blur
mixes colours across boundaries and the noise overlaps the class colours, so a per-pixel classifier errs in
speckles and along the edges: the situation CRF post-processing exists for.

:meth:`ShapesSegmentationProblem.sample` returns the CRF's inputs ``(unary, image)`` with the closed-form per-pixel
unary of :meth:`ShapesSegmentationProblem.pixel_unary` (a Gaussian colour classifier that ignores the
neighbourhood), and the label maps as targets; the reproduction trains a small network for the unary instead.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from skimage.draw import ellipse, polygon, rectangle
from torch import Tensor

from unrolled.core.validation import check_int, check_positive

#: Mean colours of the classes (RGB in [0, 1]); background first. Close enough that noise confuses them.
PALETTE = ((0.50, 0.50, 0.50), (0.72, 0.42, 0.32), (0.36, 0.62, 0.44), (0.38, 0.44, 0.72), (0.68, 0.64, 0.30),
           (0.62, 0.36, 0.64))
#: Stripe texture per class: (amplitude, spatial frequency in cycles per pixel).
TEXTURE = ((0.0, 0.0), (0.10, 0.20), (0.06, 0.12), (0.12, 0.30), (0.08, 0.08), (0.10, 0.25))


class ShapesSegmentationProblem:
    """Random-shapes segmentation data model.

    Parameters
    ----------
    height, width : int
        Image size (``>= 4``).
    n_classes : int
        Labels including the background, ``2..6``.
    n_shapes : (int, int)
        Range (inclusive) of the number of shapes per image.
    noise_std, blur, colour_jitter : float
        White-noise std, Gaussian blur std (pixels) and per-image jitter std of the class colours.
    dtype : torch.dtype
    seed : int
        Mixed into every draw: problems of different seeds give different data from the same generator.
    """

    def __init__(self, height: int = 32, width: int = 32, n_classes: int = 4, n_shapes: tuple[int, int] = (2, 5),
                 noise_std: float = 0.2, blur: float = 1.0, colour_jitter: float = 0.05,
                 dtype: torch.dtype = torch.float64, seed: int = 0):
        self.seed = check_int("seed", seed, minimum=0)
        self.height = check_int("height", height, minimum=4)
        self.width = check_int("width", width, minimum=4)
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        if self.n_classes > len(PALETTE):
            raise ValueError(f"n_classes must be <= {len(PALETTE)}, got {n_classes}")
        lo, hi = (int(v) for v in n_shapes)
        if not 1 <= lo <= hi:
            raise ValueError(f"n_shapes must be a range 1 <= low <= high, got {n_shapes!r}")
        self.n_shapes = (lo, hi)
        self.noise_std = check_positive("noise_std", noise_std, allow_zero=True)
        self.blur = check_positive("blur", blur, allow_zero=True)
        self.colour_jitter = check_positive("colour_jitter", colour_jitter, allow_zero=True)
        self.dtype = dtype
        self.palette = np.asarray(PALETTE[: self.n_classes])

    def config(self) -> dict:
        return {"height": self.height, "width": self.width, "n_classes": self.n_classes,
                "n_shapes": list(self.n_shapes), "noise_std": self.noise_std, "blur": self.blur,
                "colour_jitter": self.colour_jitter, "dtype": str(self.dtype).replace("torch.", ""),
                "seed": self.seed}

    # ------------------------------------------------------------ drawing
    def _labels(self, rng: np.random.Generator) -> np.ndarray:
        H, W = self.height, self.width
        labels = np.zeros((H, W), dtype=np.int64)
        for _ in range(rng.integers(self.n_shapes[0], self.n_shapes[1] + 1)):
            cls = int(rng.integers(1, self.n_classes))
            size = rng.uniform(0.15, 0.4) * min(H, W)
            r0, c0 = rng.uniform(0, H), rng.uniform(0, W)
            kind = rng.integers(3)
            if kind == 0:
                rr, cc = ellipse(r0, c0, size * rng.uniform(0.5, 1.0), size * rng.uniform(0.5, 1.0), shape=(H, W),
                                 rotation=rng.uniform(0, np.pi))
            elif kind == 1:
                start = (int(r0), int(c0))
                extent = (max(2, int(size * rng.uniform(0.8, 1.6))), max(2, int(size * rng.uniform(0.8, 1.6))))
                rr, cc = rectangle(start, extent=extent, shape=(H, W))
            else:
                angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.3, 0.3, 3)
                rr, cc = polygon(r0 + 1.3 * size * np.sin(angles), c0 + 1.3 * size * np.cos(angles), shape=(H, W))
            labels[rr, cc] = cls
        return labels

    def _image(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        H, W = labels.shape
        means = self.palette + self.colour_jitter * rng.standard_normal(self.palette.shape)
        img = means[labels].transpose(2, 0, 1).copy()  # (3, H, W)
        rows, cols = np.mgrid[0:H, 0:W]
        for cls in range(1, self.n_classes):
            amp, freq = TEXTURE[cls]
            theta, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            stripes = amp * np.sin(2 * np.pi * freq * (rows * np.cos(theta) + cols * np.sin(theta)) + phase)
            img += np.where(labels == cls, stripes, 0.0)[None]
        if self.blur > 0:
            img = gaussian_filter(img, sigma=(0, self.blur, self.blur), mode="nearest")
        return img + self.noise_std * rng.standard_normal(img.shape)

    def sample_images(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` images ``(n, 3, H, W)`` and their label maps ``(n, H, W)`` int64 (random numbers from ``generator``)."""
        n = check_int("n", n, minimum=0)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = np.random.default_rng([self.seed, seed])
        labels = np.stack([self._labels(rng) for _ in range(n)]) if n else np.zeros((0, self.height, self.width),
                                                                                  dtype=np.int64)
        images = (np.stack([self._image(lab, rng) for lab in labels]) if n
                  else np.zeros((0, 3, self.height, self.width)))
        return torch.as_tensor(images, dtype=self.dtype), torch.as_tensor(labels)

    # ------------------------------------------------------------ a closed-form unary
    def pixel_unary(self, image: Tensor) -> Tensor:
        r"""Per-pixel Gaussian colour classifier: scores :math:`U_i(l) = -\|I_i - m_l\|^2 / 2s^2`, ``(B, L, H, W)``.

        :math:`m_l` is the class's palette colour and :math:`s^2` the variance of a pixel around it (noise,
        jitter and texture), equal priors. It sees one pixel only, so it makes speckle and boundary errors.
        """
        m = torch.as_tensor(self.palette, dtype=image.dtype, device=image.device)  # (L, 3)
        tex = max(a for a, _ in TEXTURE[: self.n_classes]) ** 2 / 2
        s2 = self.noise_std**2 + self.colour_jitter**2 + tex + 1e-6
        d2 = ((image[:, None] - m[None, :, :, None, None]) ** 2).sum(2)
        return -d2 / (2 * s2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """``((unary, image), labels)``: the CRF's inputs with :meth:`pixel_unary`, and the label maps."""
        images, labels = self.sample_images(n, generator)
        return (self.pixel_unary(images), images), labels
