"""The monitor's mean-field theory against measurement, over independent draws of the weights and inputs.

One draw at finite width strays from the mean-field line lognormally, and for GELU and SiLU heavily: at
width 64, after 19 convs, GELU's measured/theory ranged 0.012× to 197× over 40 draws, an arithmetic
mean of 12 carried by one draw, a geometric mean of 0.67. So every statistic here is the mean over draws
of log(measured/theory), with its standard error from the draws, never a mean of ratios.

The nulls, per monitored layer l, over D draws:
- Activation variance. Its log ratio has mean in [min(μ_l, 0), max(μ_l, 0)] + β_l. μ_l is the band's
  centre (`Signal.stretched`): where a fully connected net's typical draw sits; a conv net's draw averages
  its deviation over positions and sits between that and the mean-field line, 0. β_l is the bias the
  theory leaves by starting from the batch's mean second moment rather than each sample's own energy at
  each position, computed here per draw by the exact per-sample mean field (`_per_sample_bias`;
  docs/theory.md: "The band").
- The band (`stats.band_level`) holds at least its share of single draws: the share of (draw, layer)
  outside is at most 1 − level, and the spread of the log ratio over draws is at most the band's.
Tolerances come from the draws: the mean within k standard errors, k Student's t quantile at D − 1
degrees of freedom for a family-wise false-alarm rate ALPHA split over the layers tested (Bonferroni;
the layers are correlated, so this is conservative); the variance by the χ² quantile at D − 1 the same
way; the share outside by k of its standard error across draws. A theory off by 10 % at every layer fails
the first at the first conv, whose log ratio spreads by 0.005 over draws.

The nets: the project's vanilla net (`template.models.vanilla`, 20 layers, width 64, 32 × 32 inputs,
circular padding, global average pooling: its classifier is left out, since the pooling's correlation
between positions is not modelled) and a 20-layer conv net of width 64 on 16 × 16 inputs with zero
padding and a flattening classifier (`Deep`), for tanh on its critical line (σ²_w = 1.761, σ²_b = 0.05)
and ReLU, GELU and SiLU at σ²_w = 2, σ²_b = 0; the fast test runs a 10-layer vanilla net of width 16.
Inputs share a common image (correlation 0.2 between samples), so correlations are measurable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from statistics import NormalDist

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from template.models.vanilla import VanillaNet
from template.monitor import VarianceMonitor
from template.theory import band, meanfield
from template.theory.propagation import ELEMENTWISE_MODULES, Propagation
from tests.helpers.monitor_nets import Classifier, trainer

DEPTH, WIDTH, SIZE, BATCH, LEVEL = 20, 64, 16, 64, 0.99
ALPHA = 0.01  # the chance that a correct theory fails one test function
ACTIVATIONS = {  # name: (module, σ²_w, σ²_b)
    "tanh": (nn.Tanh, 1.761, 0.05),
    "relu": (nn.ReLU, 2.0, 0.0),
    "gelu": (nn.GELU, 2.0, 0.0),
    "silu": (nn.SiLU, 2.0, 0.0),
}


class Deep(nn.Sequential):
    def __init__(self, activation: type[nn.Module], depth: int = DEPTH, width: int = WIDTH, size: int = SIZE):
        layers, channels = [], 3
        for _ in range(depth - 1):
            layers += [nn.Conv2d(channels, width, 3, padding=1), activation()]
            channels = width
        super().__init__(*layers, nn.Flatten(), nn.Linear(width * size * size, 10))


def _draw(model: nn.Module, weight_var, bias_var: float) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            fans = m.weight[0].numel(), m.weight.shape[0] * m.weight[0, 0].numel()
            nn.init.normal_(m.weight, 0, math.sqrt(weight_var(*fans)))
            nn.init.normal_(m.bias, 0, math.sqrt(bias_var)) if bias_var else nn.init.zeros_(m.bias)


def _images(batch: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Samples that share a common image (correlation 0.2 between samples)."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(1, *shape, generator=generator)
    return 0.5 * common + torch.randn(batch, *shape, generator=generator)


def _inputs(seed: int = 0) -> DataLoader:
    x = _images(BATCH, (3, SIZE, SIZE), seed)
    labels = torch.randint(0, 10, (BATCH,), generator=torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(x, labels), batch_size=BATCH)


def _input_statistics(x: torch.Tensor) -> tuple[float, float]:
    """The model input's mean second moment and mean cosine between samples, as the monitor sums them."""
    flat = x.flatten(1).double()
    units = flat / flat.norm(dim=1, keepdim=True)
    samples = flat.shape[0]
    return float((flat**2).mean()), float((units.sum(0).norm() ** 2 - samples) / (samples * (samples - 1)))


# ---- the exact per-sample mean field: what the theory would be, started from each sample's own energy


def _moment_on_grid(phi, q: torch.Tensor) -> torch.Tensor:
    """E[φ(√q z)²] for every value of q (any shape), interpolated in ln q between quadratures on 2,000
    geometric points over q's range: linear interpolation errs by (step²/8)·|d² ln M/d(ln q)²|, below 1e-7
    here, and evaluating each of a batch's 16K (sample, position) values would take 20 times longer."""
    low, high = float(q.min()), float(q.max())
    if not high > low > 0:
        return meanfield.moment(phi, q)
    grid = np.geomspace(low, high, 2000)
    values = meanfield.moment(phi, torch.from_numpy(grid)).numpy()
    inside = np.interp(np.log(q.numpy().ravel()), np.log(grid), np.log(values))
    return torch.from_numpy(np.exp(inside)).reshape(q.shape)


def _length_maps(model: nn.Sequential, m: torch.Tensor, variances: dict, own_units: bool) -> list[float]:
    """The length map run from second moments m (S, H, W) — a sample's at each position — through the
    model's own convs (kernel ones, stride, padding) and activations, averaged over the samples at each
    monitored layer. NaN after a global average pooling, which neither this nor the monitor models.
    `own_units`: each activation averages over the conv's units, unit c at q_c = s_c (q − σ²_b) + b_c², s_c
    its squared weight norm over the mean — exactly, over the drawn weights. Written apart from
    `propagation`, for plain stacks only, so that the bias it measures is the mean field's own and not a
    mistake the two could share."""
    out, pooled, units = [], False, None
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            maps, padding = m[:, None], module.padding  # (S, 1, H, W)
            if module.padding_mode != "zeros":
                maps = F.pad(maps, module._reversed_padding_repeated_twice, mode=module.padding_mode)
                padding = 0
            summed = F.avg_pool2d(
                maps, module.kernel_size, module.stride, padding, count_include_pad=True, divisor_override=1
            )[:, 0]  # (S, H', W'): Σ over the kernel's taps
            weight_var, bias_var = variances[name]
            m = summed * weight_var * module.in_channels + bias_var
            out.append(float(m.mean()))
            norms = module.weight.detach().double().flatten(1).square().sum(1)  # (C,)
            bias = module.bias.detach().double() if module.bias is not None else torch.zeros_like(norms)
            units = (norms / norms.mean(), bias.square(), bias_var) if own_units else None
        elif isinstance(module, ELEMENTWISE_MODULES):
            if units is None:
                m = _moment_on_grid(module, m)
            else:
                scale, bias_square, bias_var = units
                q = (
                    scale[:, None, None, None] * (m - bias_var) + bias_square[:, None, None, None]
                )  # (C, S, H, W)
                m = _moment_on_grid(module, q.clamp(min=1e-300)).mean(0)
            units = None
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            pooled = True
        elif isinstance(module, nn.Linear):
            weight_var, bias_var = variances[name]
            out.append(math.nan if pooled else float(m.mean()) * weight_var * module.in_features + bias_var)
    return out


def _per_sample_bias(model: nn.Sequential, x: torch.Tensor, variances: dict) -> np.ndarray:
    """Per monitored layer: the exact mean field of this batch over the mean field the monitor computes.
    Exact, for Gaussian weights: given its input, a unit's pre-activation is Normal with variance Var[w]
    times the input's energy in its window, so each sample's own energy at each position (the mean over
    channels of x²) run through the maps is the expectation over the weights (to the fresh draws of the
    layers above, whose own spread at fan-in 576 moves it by well under the draws' error). The monitor's
    starts from the batch's mean second moment at every position and averages each activation over the
    units' own norms (`finite_width.over_units`) — the same Jensen term at the first conv, seen from the
    weights; what it misses is that a sample's or position's energy persists through the layers and is
    stretched by the maps. 1 for ReLU (linear maps); above 1 where the map is convex in q (GELU, SiLU)."""
    energies = x.double().square().mean(1)  # (S, H, W)
    exact = _length_maps(model, energies, variances, own_units=False)
    mean = torch.full_like(energies[:1], float(energies.mean()))
    return np.array(exact) / np.array(_length_maps(model, mean, variances, own_units=True))


# ---- measurement without the trainer, for many draws


@dataclass
class Draws:
    """(draws, layers) arrays, one row per independent draw of the weights and the inputs."""

    log_ratio: np.ndarray  # log(measured / theory) of the activation variance
    band: np.ndarray  # the band's log-variance V
    shift: np.ndarray  # the band's centre μ
    per_sample: np.ndarray  # log(exact per-sample mean field / the batch mean's): the bias β
    inside: np.ndarray  # whether the draw lies inside the band at LEVEL


def _output_variances(model: nn.Module, names: list[str], x: torch.Tensor) -> np.ndarray:
    """Each named layer's output variance over all its values, unbiased, as the monitor pools it."""
    variances = {}

    def keep(name, module, inputs, output):
        variances[name] = float(output.double().var())

    handles = [model.get_submodule(name).register_forward_hook(partial(keep, name)) for name in names]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return np.array([variances[name] for name in names])


def _measure(build, activation: str, draws: int, shape: tuple[int, ...], batch: int, seed: int = 0) -> Draws:
    """Each draw: fresh weights and inputs, one forward, the activation variance of every conv and linear
    layer (unbiased over all its values, as the monitor pools it) against the theory the monitor computes
    from the same sums (`Propagation.run`, `band.band`)."""
    _, weight_var, bias_var = ACTIVATIONS[activation]
    rows = {key: [] for key in Draws.__dataclass_fields__}
    for draw in range(draws):
        torch.manual_seed(seed + draw)
        model = build(activation)
        _draw(model, lambda fan_in, fan_out: weight_var / fan_in, bias_var)
        names = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        x = _images(batch, shape, seed + draw)
        measured = _output_variances(model, names, x)
        variances = {
            name: tuple(float(p.detach().double().var(correction=0)) for p in (m.weight, m.bias))
            for name, m in model.named_modules()
            if name in names
        }
        moment, corr = _input_statistics(x)
        result = Propagation(model, names).run(shape, moment, corr * moment, variances, math.nan, batch)
        predicted = np.array(result.act_var)
        low, high = band.band(predicted, result.band, LEVEL, result.shift)
        rows["log_ratio"].append(np.log(measured / predicted))
        rows["band"].append(result.band)
        rows["shift"].append(result.shift)
        rows["per_sample"].append(np.log(_per_sample_bias(model, x, variances)))
        rows["inside"].append((measured >= low) & (measured <= high))
    return Draws(**{key: np.array(values, dtype=float) for key, values in rows.items()})


def _t(draws: int, tests: int) -> float:
    return float(stats.t.ppf(1 - ALPHA / (2 * tests), draws - 1))


def _mean_log_ratio_failures(draws: Draws, layers: slice) -> list[str]:
    """Layers whose mean log ratio leaves [min(μ, 0), max(μ, 0)] + β by more than k standard errors."""
    logs, count = draws.log_ratio[:, layers], draws.log_ratio.shape[0]
    mean, error = logs.mean(0), logs.std(0, ddof=1) / math.sqrt(count)
    centre, bias = draws.shift[:, layers].mean(0), draws.per_sample[:, layers].mean(0)
    low, high = np.minimum(centre, 0) + bias, np.maximum(centre, 0) + bias
    k = _t(count, logs.shape[1])
    bad = (mean < low - k * error) | (mean > high + k * error)
    return [
        f"layer {i + 1}: "
        f"{mean[i]:+.3f} ± {error[i]:.3f} outside [{low[i]:+.3f}, {high[i]:+.3f}] ± {k:.2f} s.e."
        for i in np.flatnonzero(bad)
    ]


def _band_failures(draws: Draws, layers: slice) -> list[str]:
    """The band too narrow: more than 1 − LEVEL of the draws outside (by k standard errors of the per-draw
    shares, at least one draw's worth), or a layer's variance over draws above the band's by more than
    the χ² quantile allows."""
    count, width = draws.log_ratio.shape[0], draws.log_ratio[:, layers].shape[1]
    failures = []
    shares = 1 - draws.inside[:, layers].mean(1)
    error = max(shares.std(ddof=1) / math.sqrt(count), 1 / (count * width))
    limit = (1 - LEVEL) + float(stats.norm.ppf(1 - ALPHA / 2)) * error
    if shares.mean() > limit:
        failures.append(f"{shares.mean():.3f} of the draws outside the {LEVEL} band (at most {limit:.3f})")
    spread = draws.log_ratio[:, layers].var(0, ddof=1)
    band = draws.band[:, layers].mean(0)
    limit = float(stats.chi2.ppf(1 - ALPHA / (2 * width), count - 1)) / (count - 1)
    failures += [
        f"layer {i + 1}: variance over draws {spread[i]:.3f} > {limit:.2f} × the band's {band[i]:.3f}"
        for i in np.flatnonzero(spread > limit * band)
    ]
    return failures


def _vanilla(depth: int, width: int):
    return lambda activation: VanillaNet(depth=depth, width=width, activation=activation)


def _deep(activation: str) -> nn.Module:
    return Deep(ACTIVATIONS[activation][0])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_each_activation_against_its_theory_and_band_small(activation):
    """CI-sized: a 10-layer vanilla net of width 16 on 16 × 16 inputs (4 × 4 maps after the stem), a batch
    of 16, 30 draws; the nine convs tested (the classifier follows a global average pooling)."""
    draws = _measure(_vanilla(10, 16), activation, 30, (3, 16, 16), 16)
    convs = slice(0, -1)
    failures = _mean_log_ratio_failures(draws, convs) + _band_failures(draws, convs)
    assert not failures, failures


@pytest.mark.slow
@pytest.mark.parametrize("net", ["vanilla", "deep"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_each_activation_against_its_theory_and_band(activation, net):
    """40 draws at width 64 over 20 layers: the project's vanilla net (its 19 convs) or `Deep` (all 20)."""
    if net == "vanilla":
        draws, layers = _measure(_vanilla(DEPTH, WIDTH), activation, 40, (3, 32, 32), BATCH), slice(0, -1)
    else:
        draws, layers = _measure(_deep, activation, 40, (3, SIZE, SIZE), BATCH), slice(None)
    failures = _mean_log_ratio_failures(draws, layers) + _band_failures(draws, layers)
    assert not failures, failures


# ---- end to end, through the monitor's own hooks, sums and at_init


def _ratios(activation, weight_var, bias_var: float, draws: int) -> dict[str, np.ndarray]:
    """(draws, layers) arrays of log(measured/theory) from the monitor's at_init, and the band's
    log-variance and centre per layer."""
    out = {key: [] for key in ("act_var", "grad_var", "corr", "band", "shift")}
    z = NormalDist().inv_cdf(0.5 + LEVEL / 2)
    for draw in range(draws):
        torch.manual_seed(draw)
        model = Deep(activation)
        _draw(model, weight_var, bias_var)
        monitor = VarianceMonitor(every_n_steps=100, band_level=LEVEL)
        trainer(1, callbacks=[monitor]).fit(Classifier(model), _inputs(draw))
        layers = monitor.at_init["layers"]
        for key in ("act_var", "grad_var", "corr"):
            out[key].append([math.log(layer[key] / layer[f"{key}_theory"]) for layer in layers])
        out["band"].append(
            [(math.log(x["act_var_band_high"] / x["act_var_band_low"]) / (2 * z)) ** 2 for x in layers]
        )
        out["shift"].append([_centre(layer) for layer in layers])
    return {key: np.array(values) for key, values in out.items()}


def _centre(layer: dict) -> float:
    """The band's centre μ, log of its geometric middle over the theory, from at_init."""
    return math.log(
        math.sqrt(layer["act_var_band_low"] * layer["act_var_band_high"]) / layer["act_var_theory"]
    )


def _mean_within(logs: np.ndarray, low, high) -> tuple[bool, str]:
    """The mean over draws of each column within k standard errors of [low, high], Bonferroni over columns."""
    count = logs.shape[0]
    mean, error = logs.mean(0), logs.std(0, ddof=1) / math.sqrt(count)
    k = _t(count, logs.shape[1])
    ok = (mean >= np.asarray(low) - k * error) & (mean <= np.asarray(high) + k * error)
    return bool(ok.all()), f"mean {mean.round(3)} ± {error.round(3)}, k = {k:.2f}"


END_TO_END_DRAWS = 16


@pytest.mark.slow
def test_tanh_on_the_critical_line_matches_at_every_layer():
    """tanh's deviations shrink (it saturates): its band centre μ is within 0.03 of the line. Activation
    and gradient variance and correlation: mean log ratio at every conv within k s.e. of [min(μ, 0), 0];
    the classifier's 10 outputs, too few units for that, within k s.e. of the same."""
    ratios = _ratios(nn.Tanh, lambda fan_in, fan_out: 1.761 / fan_in, 0.05, END_TO_END_DRAWS)
    centre = np.minimum(ratios["shift"].mean(0), 0)
    for key in ("act_var", "grad_var", "corr"):
        ok, report = _mean_within(ratios[key][:, :-1], centre[:-1], 0.0)
        assert ok, (key, report)
    ok, report = _mean_within(ratios["act_var"][:, -1:], centre[-1:], 0.0)
    assert ok, report


@pytest.mark.slow
@pytest.mark.parametrize(
    "weight_var",
    [lambda fan_in, fan_out: 2 / fan_in, lambda fan_in, fan_out: 2 / (fan_in + fan_out)],
    ids=["kaiming", "glorot"],
)
def test_relu_correlations_match_and_variances_stray_within_the_band(weight_var):
    """Correlations: mean log ratio within k s.e. of 0 at every conv. Activation and gradient variance:
    within k s.e. of [μ, 0], μ = −V/2 the band's centre (ReLU stretches nothing)."""
    ratios = _ratios(nn.ReLU, weight_var, 0.0, END_TO_END_DRAWS)
    ok, report = _mean_within(ratios["corr"][:, :-1], 0.0, 0.0)
    assert ok, report
    centre = ratios["shift"].mean(0)
    for key in ("act_var", "grad_var"):
        ok, report = _mean_within(ratios[key], centre, 0.0)
        assert ok, (key, report, centre.round(3))


class Narrow(nn.Sequential):
    """One channel in, a non-square 12 × 9 map, stride-2 and dilated convs: data of another shape."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 48, 3, padding=1), nn.Tanh(),
            nn.Conv2d(48, 48, 3, padding=2, dilation=2), nn.Tanh(),
            nn.Conv2d(48, 48, 3, stride=2, padding=1), nn.Tanh(),
            nn.Conv2d(48, 48, 5, padding=2), nn.Tanh(),
            nn.Flatten(), nn.Linear(48 * 6 * 5, 10),
        )  # fmt: skip


NARROW_DRAWS = 8


def test_theory_follows_a_one_channel_non_square_input_through_strides_and_dilations():
    """tanh on its critical line, 8 draws of the weights and the inputs: activation and gradient variance
    and correlation at the four convs, mean log ratio within k s.e. of [min(μ, 0), 0] (μ ≥ −0.01 here).
    The first conv has 9 weights per unit, where the maps' average over the units' own q matters
    (`finite_width.over_units`: +6 % on E[φ′²]). The inputs are drawn afresh each time: the theory knows
    the input's mean moments, not one common image's layout over a 12 × 9 map, whose borders weigh less."""
    ratios = {key: [] for key in ("act_var", "grad_var", "corr", "shift")}
    for draw in range(NARROW_DRAWS):
        x = _images(BATCH, (1, 12, 9), draw)
        labels = torch.randint(0, 10, (BATCH,), generator=torch.Generator().manual_seed(draw))
        data = DataLoader(TensorDataset(x, labels), batch_size=BATCH)
        torch.manual_seed(draw)
        model = Narrow()
        _draw(model, lambda fan_in, fan_out: 1.761 / fan_in, 0.05)
        monitor = VarianceMonitor(every_n_steps=100, band_level=LEVEL)
        trainer(1, callbacks=[monitor]).fit(Classifier(model), data)
        layers = monitor.at_init["layers"][:-1]
        for key in ("act_var", "grad_var", "corr"):
            ratios[key].append([math.log(layer[key] / layer[f"{key}_theory"]) for layer in layers])
        ratios["shift"].append([_centre(layer) for layer in layers])
    centre = np.minimum(np.array(ratios["shift"]).mean(0), 0)
    for key in ("act_var", "grad_var", "corr"):
        ok, report = _mean_within(np.array(ratios[key]), centre, 0.0)
        assert ok, (key, report)


def table(draws: int = 40) -> str:
    """docs/theory.md's table: per activation and net, over `draws` draws at width 64 and 20 layers, the
    geometric mean of measured/theory (its range over the layers), what the bias and the band's centre
    explain, the worst layer's distance from that in standard errors, and the share of (draw, layer)
    outside the 99 % band. `.venv/bin/python -m tests.monitor.test_monitor_against_measurement` prints it."""
    lines = [
        "| activation | net | measured/theory, geometric mean | explained (β and the band's centre) "
        "| worst layer, s.e. | outside the 99 % band |",
        "|---|---|---|---|---|---|",
    ]
    for activation in ACTIVATIONS:
        for net in ("vanilla", "deep"):
            if net == "vanilla":
                found, layers = (
                    _measure(_vanilla(DEPTH, WIDTH), activation, draws, (3, 32, 32), BATCH),
                    slice(0, -1),
                )
            else:
                found, layers = _measure(_deep, activation, draws, (3, SIZE, SIZE), BATCH), slice(None)
            logs = found.log_ratio[:, layers]
            mean, error = logs.mean(0), logs.std(0, ddof=1) / math.sqrt(draws)
            centre, bias = found.shift[:, layers].mean(0), found.per_sample[:, layers].mean(0)
            low, high = np.minimum(centre, 0) + bias, np.maximum(centre, 0) + bias
            distance = np.maximum(np.maximum(low - mean, mean - high), 0) / error
            outside = 1 - found.inside[:, layers].mean()
            lines.append(
                f"| {activation} | {net} | {np.exp(mean.min()):.2f}–{np.exp(mean.max()):.2f} "
                f"| {np.exp(low.min()):.2f}–{np.exp(high.max()):.2f} | {distance.max():.1f} | {outside:.1%} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
