r"""
Segmentation: CRF-RNN vs mean-field inference
=============================================

Random-shapes images with ``L = 4`` classes and a per-pixel colour classifier whose scores (logits) are the
unary :math:`U = -\phi`.
The fully connected CRF adds a spatial and a bilateral Gaussian kernel between every pair of pixels; its
mean-field inference (the review's box CRF-RNN, eqs. (19)-(20)) repeats

.. math:: Q_p(l) \propto \exp\Big(U_p(l) - \sum_{l'} \mu(l, l') \sum_m w^{(m)} \sum_{q \ne p}
          k^{(m)}(f_p, f_q)\, Q_q(l')\Big),

message passing (Gaussian filtering), compatibility transform, unary addition and normalisation (a softmax)
(:func:`unrolled.segmentation.mean_field`). CRF-RNN (:class:`unrolled.segmentation.CRFRNN`) unrolls ``K`` such
iterations with learned kernel weights :math:`w^{(m)}` and compatibility :math:`\mu`; ``from_algorithm`` starts
from the solver's values (untrained = ``K`` mean-field iterations).

24 x 24 images, ``K = 5``, 40 Adam steps on the cross-entropy of 48 training images; ``unrolled reproduce
crf-rnn`` trains a unary FCN and CRF-RNN end to end.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F

from unrolled.segmentation import CRFRNN, ShapesSegmentationProblem, mean_field, scores

torch.manual_seed(0)
L, K = 4, 5
kernels, weights = (1.0, 3.0, 0.4), (0.3, 0.1)  # (spatial width, bilateral widths), kernel weights
problem = ShapesSegmentationProblem(24, 24, L, dtype=torch.float32, seed=0)
(U_tr, X_tr), y_tr = problem.sample(48, torch.Generator().manual_seed(0))
(U_te, X_te), y_te = problem.sample(24, torch.Generator().manual_seed(1))

# %%
# Untrained, the net is K mean-field iterations
# ---------------------------------------------
net = CRFRNN.from_algorithm(L, K, kernels=kernels, weights=weights, dtype="float32")
mf_k = mean_field(U_te, X_te, kernels=kernels, weights=weights, max_iter=K, filtering="fast")
with torch.no_grad():
    print(f"untrained CRF-RNN vs {K} mean-field iterations: max |difference| = "
          f"{float((net((U_te, X_te)) - mf_k.x).abs().max()):.1e}")

# %%
# Training the kernel weights and the compatibility
# -------------------------------------------------
opt = torch.optim.Adam(net.parameters(), lr=0.05)
gen = torch.Generator().manual_seed(0)
t0 = time.perf_counter()
for step in range(40):
    idx = torch.randint(0, X_tr.shape[0], (8,), generator=gen)
    loss = F.nll_loss(net.log_marginals((U_tr[idx], X_tr[idx])), y_tr[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"trained 40 steps in {time.perf_counter() - t0:.1f} s")

# %%
# Mean IoU and pixel accuracy on 24 test images
# ---------------------------------------------
mf = mean_field(U_te, X_te, kernels=kernels, weights=weights, max_iter=10, filtering="fast")
with torch.no_grad():
    Q = net((U_te, X_te))
preds = {"unary only": U_te.argmax(1), f"mean field, {K} its": mf_k.x.argmax(1),
         "mean field, 10 its": mf.x.argmax(1), f"CRF-RNN, K={K}": Q.argmax(1)}
print(f"{'method':<22} {'mean IoU':>9} {'pixel acc':>10}")
for name, pred in preds.items():
    s = scores(pred, y_te, L)
    print(f"{name:<22} {s['mean_iou']:>9.3f} {s['pixel_accuracy']:>10.3f}")

import matplotlib.pyplot as plt  # noqa: E402

cols = ["image", "ground truth", *preds]
fig, axes = plt.subplots(2, len(cols), figsize=(1.8 * len(cols), 3.9))
for i in range(2):
    panels = [np.clip(X_te[i].permute(1, 2, 0).numpy(), 0, 1), y_te[i]] + [p[i] for p in preds.values()]
    for j, (ax, panel) in enumerate(zip(axes[i], panels)):
        ax.imshow(panel if j == 0 else panel.numpy(), cmap=None if j == 0 else "tab10", vmin=0, vmax=9,
                  interpolation="nearest")
        ax.axis("off")
        if i == 0:
            ax.set_title(cols[j], fontsize=8)
fig.tight_layout()
plt.show()
