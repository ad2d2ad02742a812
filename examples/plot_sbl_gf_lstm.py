r"""
SBL: a small gated recurrent net vs sparse Bayesian learning
============================================================

Support recovery with a correlated dictionary (He, Xin, Wipf et al. 2017, Sec. 4.1): :math:`y = \Phi x + \epsilon`
with :math:`\Phi` ``(n, m) = (20, 100)`` (``n`` measurements, ``m`` atoms: the SBL paper's letters, see the
conventions page) and ``d = 4`` non-zeros per code. SBL (:func:`unrolled.sbl.sbl`) models
:math:`x \sim \mathcal N(0, \operatorname{diag}\gamma)` and minimises the type-II cost
:math:`y^\top\Sigma_y^{-1}y + \log|\Sigma_y|`, :math:`\Sigma_y = \lambda I + \Phi\Gamma\Phi^\top`, by EM or
MacKay updates of :math:`\gamma`. The paper's net (:class:`unrolled.sbl.GatedFeedbackNet`, a two-layer
gated-feedback LSTM) learns the map from :math:`y` to atom scores; it is scored by *strict accuracy*, the fraction
of problems whose ``d`` largest scores are exactly the true support.

A small net (64 units, 5 time steps) is trained for 300 steps here, which shows the API but is far too short to
learn this problem; beside it, the two GF-LSTMs shipped in :mod:`unrolled.pretrained` (trained for hours by
``unrolled reproduce sbl-fig3ab``) are loaded by name and scored on the same fresh problems: ``sbl-gf-lstm`` (the
paper's size) and ``sbl-gf-lstm-large-mf`` (4x wider, with E-step feedback, this library's addition).
"""

import time

import torch

from unrolled.core.train import Trainer
from unrolled.pretrained import load_pretrained
from unrolled.sbl import CorrelatedSparseProblem, GatedFeedbackNet, loose_accuracy, sbl, strict_accuracy
from unrolled.sbl import support_loss

torch.manual_seed(0)
d = 4
train_problem = CorrelatedSparseProblem(n=20, m=100, d=d, noise_std=1e-4, seed=0, dtype=torch.float32)
test_problem = CorrelatedSparseProblem(n=20, m=100, d=d, noise_std=1e-4, seed=0)  # the same dictionary, float64
y_val, x_val = train_problem.sample(500, torch.Generator().manual_seed(1))
y_test, x_test = test_problem.sample(300, torch.Generator().manual_seed(2))

# %%
# Train the net on fresh problems
# -------------------------------
# The loss is the paper's multi-label support loss (:func:`unrolled.sbl.support_loss`); the inputs are whitened
# with statistics of training samples (:meth:`~unrolled.sbl.recurrent.GatedFeedbackNet.set_input_whitening`),
# which the correlated dictionary needs.
net = GatedFeedbackNet(n=20, m=100, hidden=64, n_steps=5)
net.set_input_whitening(train_problem.sample(10000, torch.Generator().manual_seed(3))[0])
t0 = time.perf_counter()
Trainer(net, support_loss, train_problem.sample, (y_val, x_val), lr=5e-3, max_steps=300, batch_size=128,
        val_every=100, progress=False).fit()
train_seconds = time.perf_counter() - t0

# %%
# Compare with SBL (EM and MacKay updates) on 300 fresh test problems
# -------------------------------------------------------------------
rows = []
with torch.no_grad():
    t0 = time.perf_counter()
    scores = net(y_test.float()).double()
    rows.append((f"small GF-LSTM, 300 steps ({train_seconds:.0f} s)", scores, time.perf_counter() - t0))
    for name in ("sbl-gf-lstm", "sbl-gf-lstm-large-mf"):
        pretrained = load_pretrained(name)
        t0 = time.perf_counter()
        scores = pretrained(y_test.float()).double()
        rows.append((f"pretrained {name}", scores, time.perf_counter() - t0))
for update in ("em", "mackay"):
    t0 = time.perf_counter()
    result = sbl(y_test, test_problem.Phi, 1e-7, update=update, max_iter=1000, tol=1e-6)
    rows.append((f"SBL ({update}), {int(result.n_iter.max())} its at most", result.gamma,
                 time.perf_counter() - t0))
print(f"{'method':<34} {'strict acc.':>11} {'loose acc.':>10} {'ms / problem':>12}   ({len(y_test)} problems, d = {d})")
accuracy = {}
for name, s, seconds in rows:
    accuracy[name] = float(strict_accuracy(s, x_test))
    print(f"{name:<34} {accuracy[name]:>11.3f} {float(loose_accuracy(s, x_test, 20)):>10.3f} "
          f"{1e3 * seconds / len(y_test):>12.3f}")
print("strict: the d largest scores are exactly the support; loose: true atoms among the 20 largest scores.")
best_sbl = max((v, k) for k, v in accuracy.items() if k.startswith("SBL"))
mackay = next(k for k in accuracy if k.startswith("SBL (mackay)"))
for name, _, _ in rows[:3]:
    print(f"{name}: {'above' if accuracy[name] > accuracy[mackay] else 'not above'} SBL with MacKay updates, "
          f"{'above' if accuracy[name] > best_sbl[0] else 'not above'} the best SBL here ({best_sbl[1]})")
print("(the 300-step net is far too short a run to learn this problem: it shows the API only)")

# %%
# Scores of one test problem
# --------------------------
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharex=True)
support = x_test[0] != 0
for ax, (name, s, _) in zip(axes, (rows[2], rows[3])):
    atoms = torch.arange(s.shape[1])
    ax.bar(atoms, s[0], color="lightgray")
    ax.bar(atoms[support], s[0][support], color="tab:red", label="true support")
    ax.set_title(name.split(",")[0], fontsize=9)
    ax.set_xlabel("atom")
axes[0].set_ylabel("score / gamma")
axes[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
