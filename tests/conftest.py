"""Hermetic defaults for every test: W&B offline and quiet, no network, runs in a temporary folder."""

import os

# Set before anything imports wandb: quiet, no system-stats thread, no git or code capture.
os.environ.update(
    WANDB_SILENT="true",
    WANDB_CONSOLE="off",
    WANDB_X_DISABLE_STATS="true",
    WANDB_DISABLE_GIT="true",
    WANDB_DISABLE_CODE="true",
    WANDB_MODE="offline",
)
