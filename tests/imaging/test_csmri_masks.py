"""Sampling masks: ratio, centre, geometry, reproducibility."""

import math

import pytest
import torch

from unrolled.imaging.masks import cartesian_mask, make_mask, radial_mask


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3, 0.4])
def test_cartesian_mask(ratio):
    m = cartesian_mask((32, 24), ratio, generator=torch.Generator().manual_seed(0))
    assert m.shape == (32, 24) and m.dtype == torch.bool
    rows = m.any(1)
    assert torch.equal(m, rows[:, None].expand(32, 24))  # whole lines
    assert int(rows.sum()) == round(ratio * 32)
    n_center = max(1, round(0.3 * round(ratio * 32)))
    band = torch.arange(-(n_center // 2), n_center - n_center // 2) % 32
    assert bool(m[band].all())  # the fully sampled band around DC
    again = cartesian_mask((32, 24), ratio, generator=torch.Generator().manual_seed(0))
    other = cartesian_mask((32, 24), ratio, generator=torch.Generator().manual_seed(1))
    assert torch.equal(m, again) and not torch.equal(m, other)


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3, 0.4])
def test_radial_mask(ratio):
    m = radial_mask(32, ratio, generator=torch.Generator().manual_seed(0))
    assert ratio <= m.float().mean() <= ratio + 0.06
    assert bool(m[0, 0])
    centred = torch.fft.fftshift(m.float())
    # lines through the centre: density falls with radius
    yy, xx = torch.meshgrid(torch.arange(32) - 16, torch.arange(32) - 16, indexing="ij")
    r = torch.sqrt(yy.float() ** 2 + xx.float() ** 2)
    assert centred[r < 4].mean() > centred[(r > 10) & (r < 15)].mean()
    # a line through DC is symmetric about it (up to the rounding of the odd Nyquist row/column)
    inner = centred[1:, 1:]
    assert (inner == inner.flip(0, 1)).float().mean() > 0.95


def test_bad_masks():
    with pytest.raises(ValueError, match="sampling_ratio"):
        cartesian_mask(8, 0.0)
    with pytest.raises(ValueError, match="sampling_ratio"):
        radial_mask(8, 1.01)
    with pytest.raises(ValueError, match="mask"):
        make_mask("spiral", 8, 0.3)
    assert make_mask("radial", 8, 1.0).all() and make_mask("cartesian", 8, 1.0).all()
