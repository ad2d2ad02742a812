"""Helper of ``test_train.py``: train a tiny LISTA-CP with :class:`Trainer`, save the result.

Run either as a plain process (``python ddp_worker.py OUT``) or under
``torchrun --nproc_per_node=2 ddp_worker.py OUT``. Every process builds the
same model and the same fixed training set from fixed seeds and trains with
the same settings, so the data-parallel run must end with the weights of the
single-process run.

Writes (safetensors): ``OUT`` (rank 0's final weights) and ``OUT.rank<r>``
(each rank's own final weights); plus ``OUT.json`` (rank 0: world size,
history, best validation loss).
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from unrolled.core.stages import end_to_end, layerwise
from unrolled.core.train import Trainer, init_distributed_from_env
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACP


def mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # A per-sample mean: the mean of two equal halves' losses is the full-batch
    # loss, so DDP's gradient averaging reproduces the single-process gradient.
    # (nmse's default ratio-of-means reduction would not decompose that way.)
    return (estimate - target).pow(2).mean()


def main(out: str) -> None:
    torch.set_num_threads(1)
    rank, world = init_distributed_from_env(torch.device("cpu"))
    try:
        prob = SparseCodingProblem(m=10, n=20, p=0.2, snr_db=None, seed=0, dtype=torch.float64)
        train = prob.sample(48, torch.Generator().manual_seed(1))
        val = prob.sample(64, torch.Generator().manual_seed(2))
        model = LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=3)
        stages = layerwise(2, 5e-3, 3, decays=(0.2,)) + end_to_end(2e-3, 4)
        trainer = Trainer(
            model, mse, train, val, stages=stages, batch_size=16, val_every=2,
            seed=7, progress=False,
        )
        result = trainer.fit()
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, f"{out}.rank{rank}")
        if rank == 0:
            save_file(state, out)
            with open(f"{out}.json", "w") as f:
                json.dump({"world": world, "best_val": result.best_val, "history": result.history,
                           "n_steps": result.n_steps}, f)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: ddp_worker.py OUT")
    main(sys.argv[1])
