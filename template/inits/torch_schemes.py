"""torch.nn.init's schemes, under torch's names and with torch's options and defaults.

Each one calls the `torch.nn.init` function itself — nothing here re-derives torch's maths — on the
weight in forward-conv layout (`Layer.init_weight`), which is what makes torch compute the right fans
for ConvTranspose (see fans.py). Where torch has no answer for a layer type (`dirac` on a Linear), the
2-D analogue is used and the row's convention says so.
"""

from __future__ import annotations

from torch import nn

from template.inits.fans import Layer
from template.inits.registry import Fraction, Mode, Nonlinearity, Positive, register

TORCH = "torch.nn.init"


@register(
    "pytorch_default",
    convention="torch: nn.Linear/nn.ConvNd.reset_parameters() verbatim, bias included; for "
    "ConvTranspose torch takes fan_in from the raw weight (c_out/groups·k), kept as torch's own default",
    formula="W ~ U(±1/√fan_in) (kaiming_uniform a=√5, Var = 1/(3 fan_in)); b ~ U(±1/√fan_in)",
)
def pytorch_default(layer: Layer) -> str:
    layer.module.reset_parameters()
    return "pytorch_default (bias)"


@register(
    "kaiming_uniform",
    aliases=("kaiming", "he_uniform"),
    convention=f"{TORCH}.kaiming_uniform_ (He et al. 2015; = Keras he_uniform at the defaults)",
    formula="U(±gain·√(3/fan)), gain = calculate_gain(nonlinearity, a), fan = fan_in | fan_out",
)
def kaiming_uniform(
    layer: Layer, *, a: float = 0.0, mode: Mode = "fan_in", nonlinearity: Nonlinearity = "leaky_relu"
) -> None:
    layer.init_weight(lambda w: nn.init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity))


@register(
    "kaiming_normal",
    convention=f"{TORCH}.kaiming_normal_ (untruncated; Keras' he_normal is truncated)",
    formula="N(0, σ), σ = gain/√fan, gain = calculate_gain(nonlinearity, a), fan = fan_in | fan_out",
)
def kaiming_normal(
    layer: Layer, *, a: float = 0.0, mode: Mode = "fan_in", nonlinearity: Nonlinearity = "leaky_relu"
) -> None:
    layer.init_weight(lambda w: nn.init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity))


@register(
    "xavier_uniform",
    convention=f"{TORCH}.xavier_uniform_ (Glorot & Bengio 2010; = Keras glorot_uniform at gain 1)",
    formula="U(±gain·√(6/(fan_in+fan_out)))",
)
def xavier_uniform(layer: Layer, *, gain: float = 1.0) -> None:
    layer.init_weight(lambda w: nn.init.xavier_uniform_(w, gain=gain))


@register(
    "xavier_normal",
    convention=f"{TORCH}.xavier_normal_ (untruncated; Keras' glorot_normal is truncated)",
    formula="N(0, gain·√(2/(fan_in+fan_out)))",
)
def xavier_normal(layer: Layer, *, gain: float = 1.0) -> None:
    layer.init_weight(lambda w: nn.init.xavier_normal_(w, gain=gain))


@register(
    "orthogonal",
    convention=f"{TORCH}.orthogonal_ (Saxe et al. 2013) on the (c_out, c_in/groups·k) matrix",
    formula="W·Wᵀ = gain²·I (rows ≤ columns) or Wᵀ·W = gain²·I, Haar-random (QR of a Gaussian)",
)
def orthogonal(layer: Layer, *, gain: float = 1.0) -> None:
    layer.init_weight(lambda w: nn.init.orthogonal_(w, gain=gain))


@register(
    "dirac",
    convention=f"{TORCH}.dirac_ with the layer's groups; Linear layers (which dirac_ refuses) get eye_",
    formula="centre tap [d, d] = 1 per group, 0 elsewhere: the conv passes its input through",
)
def dirac(layer: Layer) -> None:
    if isinstance(layer.module, nn.Linear):
        nn.init.eye_(layer.weight)
    else:
        layer.init_weight(lambda w: nn.init.dirac_(w, groups=layer.groups))


@register(
    "sparse",
    convention=f"{TORCH}.sparse_ (Martens 2010) on the (c_out, c_in/groups·k) matrix",
    formula="N(0, std), then ⌈sparsity·c_out⌉ entries of each column set to 0",
)
def sparse(layer: Layer, *, sparsity: Fraction = 0.1, std: Positive = 0.01) -> None:
    layer.init_weight(lambda w: nn.init.sparse_(w.view(w.shape[0], -1), sparsity, std))


@register(
    "trunc_normal",
    convention=f"{TORCH}.trunc_normal_: bounds a, b are absolute values (timm's _tf variant: in σ units)",
    formula="N(mean, std) truncated to [a, b]",
)
def trunc_normal(
    layer: Layer, *, mean: float = 0.0, std: Positive = 1.0, a: float = -2.0, b: float = 2.0
) -> None:
    layer.init_weight(lambda w: nn.init.trunc_normal_(w, mean=mean, std=std, a=a, b=b))


@register("uniform", convention=f"{TORCH}.uniform_", formula="U(a, b)")
def uniform(layer: Layer, *, a: float = 0.0, b: float = 1.0) -> None:
    layer.init_weight(lambda w: nn.init.uniform_(w, a=a, b=b))


@register("normal", convention=f"{TORCH}.normal_ (untruncated)", formula="N(mean, std)")
def normal(layer: Layer, *, mean: float = 0.0, std: Positive = 1.0) -> None:
    layer.init_weight(lambda w: nn.init.normal_(w, mean=mean, std=std))


@register("zeros", convention=f"{TORCH}.zeros_", formula="0")
def zeros(layer: Layer) -> None:
    layer.init_weight(nn.init.zeros_)


@register("ones", convention=f"{TORCH}.ones_", formula="1")
def ones(layer: Layer) -> None:
    layer.init_weight(nn.init.ones_)
