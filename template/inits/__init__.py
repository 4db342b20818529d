"""Every initialisation scheme of torch.nn.init, Keras, JAX and timm under one registry, plus LSUV,
delta-orthogonal, Fixup, the critical line of the model's activation and DKS/TAT's activation
transforms — each under the name, options and conventions of the library it comes from.

Why one registry: the libraries disagree under similar names. Keras' `he_normal` is a normal truncated
at ±2σ with a 0.8796 std correction, torch's `kaiming_normal` is not truncated; torch and Keras compute
ConvTranspose fans from the raw weight and swap them; "normal" means truncated in one place and not in
another. Here every name means exactly one distribution, `table()` states its convention and formula,
and tests/inits holds each one to a Kolmogorov-Smirnov test against that formula.

Conventions shared by all schemes: fans as in fans.py; biases start at zero unless the scheme says
otherwise (only `pytorch_default` keeps torch's U(±1/√fan_in)); parameters no scheme sets (BatchNorm's,
embeddings, ...) stay as the framework made them and are listed in the report's `untouched`; randomness
comes from torch's global generator, so the same seed gives the same weights.

    from template import inits
    report = inits.initialize(model, "kaiming", mode="fan_out")   # report.set_by, report.untouched
"""

# Importing a scheme module registers its schemes; this order is the order of `table()`.
# isort: off
from template.inits import torch_schemes, keras_schemes, jax_timm, lsuv, residual, critical, kernel_shaping  # noqa: F401

# isort: on
from template.inits.apply import InitReport, initialize
from template.inits.fans import Layer
from template.inits.registry import available, check_options, needs_batch, register, table

__all__ = [
    "InitReport",
    "Layer",
    "available",
    "check_options",
    "initialize",
    "needs_batch",
    "register",
    "table",
]
