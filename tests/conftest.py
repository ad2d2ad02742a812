"""Suite-wide test settings."""

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """Run the suite with one intra-op thread.

    The test problems are tiny: extra threads only contend, and on a shared
    or busy machine OpenMP oversubscription stalls them by orders of magnitude.
    Results do not depend on it (the DDP test sets its own workers' threads).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
