"""Hermetic defaults for every test: W&B offline and quiet, no network, runs in a temporary folder; and
the one place that decides how many threads a test's torch uses."""

import os
from pathlib import Path

import pytest

# Set before anything imports wandb: quiet, no system-stats thread, no git or code capture.
os.environ.update(
    WANDB_SILENT="true",
    WANDB_CONSOLE="off",
    WANDB_X_DISABLE_STATS="true",
    WANDB_DISABLE_GIT="true",
    WANDB_DISABLE_CODE="true",
    WANDB_MODE="offline",
)

# submitit configures logging when it is imported (logging.config.dictConfig), which closes every handler
# logging has made so far. absl's handler (absl comes with dks, for INIT=tat/dks) closes the stream it
# took at its own import unless that stream is today's sys.stderr: under pytest, a capture file that a
# later test's capsys has swapped out, and every later test of that worker then fails in its setup with
# "I/O operation on closed file". Imported here, first, submitit has nothing of absl's to close.
import submitit  # noqa: E402, F401

# Under pytest-xdist (`make test` runs one worker per core) each worker gets its share of the cores, set
# before torch is imported so that the processes the tests start inherit it too: two workers at torch's
# default of every core each took 5 min 17 s for what one serial run does in 4 min 5 s.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
if WORKERS:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // WORKERS))

ONE_THREAD = ("data", "models")  # folders whose tests use tiny tensors


@pytest.fixture(autouse=True)
def thread_limit(request):
    """Tests of tiny tensors run on one thread: on two busy cores a second intra-op thread costs far more
    in waiting than it gives (the synthetic set's learnability test took 34 s with two threads, 5 s with
    one). Elsewhere the worker's share of the cores, set above, stands."""
    import torch

    if Path(request.node.path).parent.name not in ONE_THREAD:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
