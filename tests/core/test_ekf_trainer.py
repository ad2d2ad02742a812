"""The Trainer with ``optimizer='ekf'`` (and 'sgd'): training, resumption, argument checks, fingerprint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unrolled.core.ekf import EKF
from unrolled.core.metrics import nmse
from unrolled.core.train import Trainer
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACP

DT = torch.float64


def regression(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=DT)
    return x, torch.sin(2 * x[:, :1]) * x[:, 1:]


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(DT)


def mse(pred, target):
    return (pred - target).pow(2).mean()


def make(optimizer="ekf", options=None, steps=60, lr=1.0, **kwargs):
    model = mlp()
    trainer = Trainer(model, mse, regression(200, 1), regression(100, 2), lr=lr, max_steps=steps, batch_size=10,
                      val_every=20, progress=False, optimizer=optimizer,
                      optimizer_options={"P0": 10.0, "Q": 1e-4} if options is None else options, **kwargs)
    return model, trainer


def test_ekf_trainer_decreases_the_loss_and_beats_sgd_and_adam_at_equal_steps():
    model, trainer = make()
    res = trainer.fit()
    assert isinstance(trainer.fingerprint["optimizer"], dict) and trainer.fingerprint["optimizer"]["name"] == "ekf"
    assert res.best_val < 0.2 * trainer.reference_loss
    for name, lr in (("sgd", 0.1), ("adam", 0.01)):
        _, other = make(name, options={}, lr=lr)
        assert res.best_val < other.fit().best_val, name


def test_ekf_trains_an_unrolled_net_with_lr_scaled_groups():
    prob = SparseCodingProblem(m=10, n=20, p=0.2, seed=0, dtype=DT)
    net = LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=2)
    trainer = Trainer(net, nmse, prob.sample, prob.sample(100, torch.Generator().manual_seed(9)), lr=0.1,
                      max_steps=10, batch_size=8, val_every=5, progress=False, optimizer="ekf",
                      optimizer_options={"P0": 1.0, "Q": 1e-5, "decoupling": "parameter"})
    groups = []
    trainer.callbacks.append(lambda tr, rec: groups.append(sorted(g["lr_scale"] for g in tr.optimizer.param_groups)))
    res = trainer.fit()
    assert groups[0] == [1.0, 20.0]  # W and theta (LayerParameter's lr_scale): two groups, P0 scaled per group
    assert res.best_val < 0.97 * trainer.reference_loss  # 10 steps (Adam at 5e-3 gets 0.992x, measured)


def test_ekf_resume_is_exact(tmp_path):
    class Stop(Exception):
        pass

    def stop_at_40(trainer, record):
        if trainer.global_step == 40:
            raise Stop

    model_a, trainer_a = make(checkpoint_dir=tmp_path / "a")
    trainer_a.fit()
    _, trainer_b = make(checkpoint_dir=tmp_path / "b", callbacks=[stop_at_40])
    with pytest.raises(Stop):
        trainer_b.fit()
    model_b, trainer_b = make(checkpoint_dir=tmp_path / "b")
    trainer_b.fit()
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))
    assert trainer_a.history == trainer_b.history


def test_default_optimizer_fingerprint_unchanged_and_optimizer_built():
    _, trainer = make("adam", options={})
    assert trainer.fingerprint["optimizer"] == "Adam"
    _, trainer = make(steps=1)
    trainer.fit()
    assert trainer.history  # ran; the optimiser of the stage was the EKF
    model = mlp()
    t = Trainer(model, mse, regression(20, 1), regression(10, 2), optimizer="ekf", progress=False, max_steps=1,
                batch_size=5, val_every=1, callbacks=[lambda tr, rec: seen.append(type(tr.optimizer))])
    seen: list = []
    t.fit()
    assert seen == [EKF]


@pytest.mark.parametrize("kwargs,match", [
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"optimizer": "ekf", "optimizer_options": {"R": -1.0}}, "R"),
    ({"optimizer": "ekf", "optimizer_options": {"betas": (0.9, 0.99)}}, "optimizer_options"),
    ({"optimizer": "ekf", "grad_clip": 1.0}, "grad_clip"),
])
def test_bad_optimizer_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Trainer(mlp(), mse, regression(20, 1), regression(10, 2), progress=False, **kwargs)
