"""Evaluation kinds of the imaging family's pretrained models: compressive MRI (ADMM-CSNet) and blind deblurring
(DUBLID). Each returns ``(metrics, baseline)`` on freshly simulated problems (:func:`unrolled.pretrained.evaluate`)."""

from __future__ import annotations

import torch

from unrolled.pretrained._common import per_problem


def csmri(net, ev, n_test, seed, baseline):
    """ADMM-CSNet (review box, eqs. (12)-(15)): PSNR / SSIM of the magnitude image on fresh ellipse phantoms and
    fresh patches of the held-out test images, beside zero-filling and (``baseline``) ADMM-TV to convergence."""
    from unrolled.imaging.admm import admm_cs
    from unrolled.imaging.csmri import CSMRIProblem, zero_filled
    from unrolled.imaging.images import EllipsePhantoms, PatchSource
    from unrolled.imaging.metrics import psnr, ssim

    p = ev["problem"]
    prob = CSMRIProblem(p["size"], p["sampling_ratio"], mask=p["mask"], noise_std=p["noise_std"], seed=p["mask_seed"])
    if not torch.equal(prob.mask.cpu().bool(), net.mask.cpu().bool()):
        raise ValueError("the card's problem does not rebuild the net's sampling mask")
    sets = {"phantoms": EllipsePhantoms(p["size"]).sample(n_test, torch.Generator().manual_seed(seed)),
            "natural": PatchSource("test", p["size"]).sample(n_test, torch.Generator().manual_seed(seed + 1))}
    noise = torch.Generator().manual_seed(seed + 2)
    dtype = torch.complex64 if net.dtype == torch.float32 else torch.complex128
    out, base = {}, {}
    for name, x in sets.items():
        y = prob.measure(x, noise)
        x_net = net(y.to(dtype))
        per_problem(out, f"psnr_{name}", psnr(x_net, x))
        per_problem(out, f"ssim_{name}", ssim(x_net, x))
        if baseline:
            tv = admm_cs(y, prob.mask, ev["tv_lam"], ev["tv_rho"], max_iter=ev["tv_max_iter"], tol=ev["tv_tol"]).x
            zf = zero_filled(y)
            base.update({f"psnr_{name}": float(psnr(tv, x).mean()), f"ssim_{name}": float(ssim(tv, x).mean()),
                         f"zero_filling_psnr_{name}": float(psnr(zf, x).mean()),
                         f"zero_filling_ssim_{name}": float(ssim(zf, x).mean())})
    return out, base


def deblur(net, ev, n_test, seed, baseline):
    """DUBLID (review box, eqs. (10)-(11)): shift-corrected PSNR and kernel error on fresh patches of the held-out
    test images blurred by fresh kernels of each kind and noise level; (``baseline``) HQS to convergence."""
    from unrolled.imaging.deblur import BlindDeblurProblem
    from unrolled.imaging.deblur_metrics import kernel_error, shift_corrected_psnr
    from unrolled.imaging.hqs import hqs_blind_deblur

    p = ev["problem"]
    ks = p["kernel_size"]
    out, base = {}, {}
    for i, kind in enumerate(p["kinds"]):
        for j, noise in enumerate(p["noise_levels"]):
            prob = BlindDeblurProblem(p["size"], kind, kernel_size=ks, noise_std=noise, source="test",
                                      dtype="float32", seed=seed + 10 * i + j)  # fresh kernel stream
            y, (x, k) = prob.sample(n_test, torch.Generator().manual_seed(seed + 100 + 10 * i + j))
            tag = f"{kind}_{noise:g}"
            x_net, k_net = net(y.to(net.dtype))
            per_problem(out, f"psnr_{tag}", shift_corrected_psnr(x_net.double(), x.double(), ks // 2))
            per_problem(out, f"kernel_error_{tag}", kernel_error(k_net.double(), k.double()))
            if baseline:
                r = hqs_blind_deblur(y.double(), kernel_size=ks, max_iter=ev["hqs_max_iter"], tol=ev["hqs_tol"])
                base[f"psnr_{tag}"] = float(shift_corrected_psnr(r.image, x.double(), ks // 2).mean())
                base[f"kernel_error_{tag}"] = float(kernel_error(r.kernel, k.double()).mean())
                base[f"blurred_psnr_{tag}"] = float(shift_corrected_psnr(y.double(), x.double(), ks // 2).mean())
    return out, base
