"""What the tests share, imported by name (`from tests.helpers.monitor_nets import trainer`):

- `tiny`: the one tiny configuration the tests train, compare, sweep and bench with.
- `monitor_nets`: small nets, loaders and a Trainer for the monitor's tests.
- `wandb_reader`: reads an offline W&B run back from its `.wandb` file.
- `provenance_check`: what a run's provenance must hold, checked against git and the interpreter.
- `fake_cifar`, `fake_digits`: small files in the real data sets' formats, for the download and read paths.
- `meanfield_reference`: mean-field theory written apart from the package (scipy), to check it against.
- `fork`: docs/forking.md's Forking section as code.
"""
