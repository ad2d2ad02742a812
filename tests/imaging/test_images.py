"""Offline images, disjoint splits, phantoms, sources from configs."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import torch

from unrolled.imaging.images import (OFFLINE_IMAGES, SPLITS, EllipsePhantoms, FixedImages, PatchSource, load_image,
                                     make_source, shepp_logan)


def test_every_listed_image_loads_with_the_network_off():
    code = (
        "import socket\n"
        "def off(*a, **k):\n    raise OSError('network disabled')\n"
        "socket.socket.connect = off\nsocket.create_connection = off\n"
        "from unrolled.imaging.images import OFFLINE_IMAGES, load_image\n"
        "for n in OFFLINE_IMAGES:\n    im = load_image(n)\n"
        "    assert im.dim() == 2 and 0 <= im.min() and im.max() <= 1, n\n"
        "print(len(OFFLINE_IMAGES))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(len(OFFLINE_IMAGES))


def test_splits_are_disjoint_and_offline():
    names = [set(v) for v in SPLITS.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(names) for b in names[i + 1:])
    assert set().union(*names) <= set(OFFLINE_IMAGES)
    # no two splits hold the same picture under two names (e.g. skimage's cat is chelsea)
    pixels = {n: load_image(n, scale=0.25) for s in SPLITS.values() for n in s}
    for a in SPLITS["test"]:
        for b in SPLITS["train"] + SPLITS["val"]:
            assert pixels[a].shape != pixels[b].shape or not torch.allclose(pixels[a], pixels[b], atol=1e-2)
    with pytest.raises(ValueError, match="name"):
        load_image("brain")


def test_patches_come_from_their_split_and_are_reproducible():
    src = PatchSource("test", 16, scale=0.25)
    a = src.sample(6, torch.Generator().manual_seed(0))
    b = src.sample(6, torch.Generator().manual_seed(0))
    assert a.shape == (6, 16, 16) and torch.equal(a, b) and a.dtype == torch.float64
    assert 0 <= a.min() and a.max() <= 1 and a.std() > 0.01
    images = [load_image(n, scale=0.25) for n in SPLITS["test"]]
    for patch in a:  # each patch is found verbatim in one of the test images
        found = any((im.unfold(0, 16, 1).unfold(1, 16, 1) - patch).abs().amax((-1, -2)).min() < 1e-12 for im in images)
        assert found
    with pytest.raises(ValueError, match="split"):
        PatchSource("holdout", 16)
    with pytest.raises(ValueError, match="size"):
        PatchSource("test", 4096)


def test_ellipse_phantoms():
    src = EllipsePhantoms(32)
    x = src.sample(8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert not torch.equal(x[0], x[1])
    assert torch.equal(x, src.sample(8, torch.Generator().manual_seed(0)))
    assert (x[:, 0, 0] == 0).all() and (x[:, 16, 16] > 0).all()  # background corner, object centre
    assert all(len(torch.unique(im)) >= 3 for im in x)  # piecewise constant with several levels


def test_shepp_logan_and_sources_from_configs():
    sl = shepp_logan(32)
    assert sl.shape == (32, 32) and 0 <= sl.min() and sl.max() <= 1 and sl.max() > 0.5
    for name in ("phantoms", "train", "val", "test", "shepp_logan", "phantoms+train"):
        src = make_source(name, 32)
        again = make_source(src.config(), 32)
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        assert torch.equal(src.sample(2, g1), again.sample(2, g2)), name
    assert torch.equal(FixedImages.shepp_logan(32).sample(1)[0], sl)
    with pytest.raises(ValueError, match="source"):
        make_source("mnist", 32)
