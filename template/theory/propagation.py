"""The mean-field maps of `meanfield` carried through a real model's graph, layer by layer, per pixel.

The model is traced once with torch.fx; each node's signal is a map over the feature map's positions of
the second moment E[x²] and of the cross-sample moment E[x_a x_b] (channels are exchangeable at
initialisation, so one value per position suffices). Per position, not one number per layer, because
zero padding gives a border unit fewer inputs: a 3×3 conv at the corner of a map sums 4 of the 9
positions. Carrying the map through each conv's own kernel, stride and padding (the conv applied to the
map with a kernel of ones) removes the 8–20 % bias a scalar map has after 20 layers at 16×16.

What each kind of node does to the signal (forward: m, m_ab; backward: g, the gradient's second moment):
  Conv2d / Linear   m → Var[w]·(c_in/groups)·Σ_kernel m + Var[b]                 g → Var[w]·c_out·Σ g
  activation φ      m → E[φ(√m z)²], m_ab → E[φ(u_a)φ(u_b)]                     g → E[φ′(√m z)²]·g
  BatchNorm         m → γ² + β² (normalised, no correlation model)              g → γ² g / m
  residual add      second moments add (the branch's last layer is zero-mean and independent of x)
  x·s, x + b        with scalar parameters: s² m; m where b = 0 (Fixup's scalars at init)
  subsampling, zero channels (option-A shortcuts), flatten: exact
  pooling           the window's mean second moment: exact for subsampling; max pooling raises it
                    and average pooling lowers it by the window's correlations, which are not modelled
Any other node ends the theory: every layer after it reads NaN, which the plots leave blank.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from template.models.activations import Transformed
from template.theory import finite_width, homogeneous, meanfield, position_maps

ELEMENTWISE_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.Sigmoid, nn.Softplus, nn.Mish, nn.SELU,
    nn.CELU, Transformed, nn.Hardtanh, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink, nn.Softsign,
)  # fmt: skip
ELEMENTWISE_FUNCTIONS = {
    F.relu, torch.relu, F.leaky_relu, torch.tanh, F.gelu, F.silu, F.elu, torch.sigmoid, F.softplus,
    F.mish, F.selu, F.hardtanh, F.relu6,
}  # fmt: skip
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
PASS_THROUGH = (nn.Identity, nn.Dropout)


@dataclass
class Signal:
    m: torch.Tensor  # (H, W) second moment per position (1 × 1 for features)
    mab: torch.Tensor  # (H, W) cross-sample moment per position
    channels: int | None
    band: float = 0.0  # variance of log(measured / theory) one draw of the weights may show
    shift: float = 0.0  # mean of log(measured / theory) over draws
    unit_var: torch.Tensor | None = (
        None  # (H, W) variance over a layer's units of their own q (`finite_width.over_units`)
    )

    def scaled(self, factor: float, offset: float = 0.0, **changes) -> Signal:
        values = {"m": self.m * factor + offset, "mab": self.mab * factor + offset, "channels": self.channels}
        values.update(band=self.band, shift=self.shift)
        return Signal(**{**values, **changes})

    def stretched(self, slope: float, curvature: float, own: float) -> tuple[float, float]:
        """(band, shift) after a map that stretches this signal's log deviation δ by `slope` and bends it
        by `curvature` (its first and second derivatives in δ), then adds a finite-width term of its own
        with log-variance `own`: to second order in δ, V′ = slope² V + own and
        μ′ = slope μ + ½ curvature (V + μ²) − own/2, the last because a layer's own draw is unbiased in
        the variance (its log, lognormal, sits own/2 below). Without the stretch — ReLU, slope 1 and no
        curvature — this is the plain sum of Hanin & Rolnick 2018, centred at −V/2."""
        band = slope * slope * self.band + own
        shift = slope * self.shift + curvature * (self.band + self.shift**2) / 2 - own / 2
        return band, shift


@dataclass
class LayerTheory:
    act_var: list[float]
    corr: list[float]
    grad_var: list[float]
    band: list[float]  # variance of log(act_var / act_var_theory) for one draw at this width
    notes: list[str] = field(default_factory=list)
    shift: list[float] = field(default_factory=list)  # mean of that log over draws (band's centre)


class _Tracer(fx.Tracer):
    """torch.fx's tracer, with every elementwise module a leaf: a fork's activation module (or DKS/TAT's
    `Transformed`) is integrated as a whole, not traced into arithmetic the maps have no rule for."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, ELEMENTWISE_MODULES) or super().is_leaf_module(module, qualified_name)


def _on_one_thread(method: Callable) -> Callable:
    """`method` with torch's intra-op threads set to one while it runs, in inference mode. The maps are
    small float64 tensors (a 32×32 map, a few thousand quadrature nodes per distinct value), a thousand
    operations per `run`: split over two threads each operation waits for the second one, and on a machine
    whose cores are busy that wait is the scheduler's — `run` took 2.1 s at two threads against 50 ms at
    one on the bench's net, on a 2-core machine shared with another training (2026-12-04). Inference mode
    spares each operation autograd's bookkeeping: 7.2 → 6.2 ms a run on the bench's net."""

    @functools.wraps(method)
    def on_one_thread(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                return method(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return on_one_thread


class Propagation:
    """Trace `model` once; `run` evaluates the maps for the weights it is given, as often as needed."""

    def __init__(self, model: nn.Module, monitored: list[str]):
        self.model, self.monitored = model, monitored
        self._pending = None  # `read_parameters`' statistics, on the device until `run`
        self.output_layer = (
            None  # the monitored layer whose output is the model's: the backward map starts there
        )
        try:
            self.graph = _Tracer().trace(model)
            self.reason = None
        except Exception as error:  # dynamic control flow: torch.fx cannot see the graph
            self.graph, self.reason = None, f"torch.fx cannot trace the model ({type(error).__name__})"
            return
        output = next(n for n in self.graph.nodes if n.op == "output")
        top = output.all_input_nodes[0] if output.all_input_nodes else None
        if top is not None and top.op == "call_module" and top.target in monitored:
            self.output_layer = top.target
        # looked up once: `run` asks for each node's module a few times, 0.7 ms a run by name
        self._modules = {n: model.get_submodule(n.target) for n in self.graph.nodes if n.op == "call_module"}
        self._slopes: dict[fx.Node, homogeneous.TwoSlopes | None] = {}  # `_two_slopes`

    @_on_one_thread
    def run(
        self,
        input_shape: tuple[int, ...],
        input_moment: float,
        input_cross: float,
        variances: dict[str, tuple[float, float]],
        top_grad: float,
        batch: int = 1,
    ) -> LayerTheory:
        """`variances[name]`: the (Var[w], Var[b]) the forward used; `top_grad`: measured Var[∂L/∂out];
        `batch`: the samples the measured statistics average over, which narrows the band."""
        nan = [math.nan] * len(self.monitored)
        if self.graph is None:
            return LayerTheory(nan, nan, nan, nan, [self.reason], nan)
        self._variances, self._batch, self.notes = variances, max(batch, 1), []
        self._derivatives: dict[fx.Node, torch.Tensor] = {}  # per activation: E[φ′²] per position
        self._host = self._parameters_on_host()
        spatial = input_shape[1:] if len(input_shape) == 3 else (1, 1)
        first = Signal(
            torch.full(spatial, float(input_moment), dtype=torch.float64),
            torch.full(spatial, float(input_cross), dtype=torch.float64),
            channels=input_shape[0],
        )
        forward: dict[fx.Node, Signal | None] = {}
        for node in self.graph.nodes:
            forward[node] = first if node.op == "placeholder" else self._forward(node, forward)
        backward = self._backward(forward, top_grad)
        by_name = {node.target: node for node in self.graph.nodes if node.op == "call_module"}
        act, corr, grad, band, shift = [], [], [], [], []
        for name in self.monitored:
            signal = forward.get(by_name.get(name))
            g = backward.get(by_name.get(name))
            act.append(float(signal.m.mean()) if signal is not None else math.nan)
            corr.append(float(signal.mab.sum() / signal.m.sum()) if signal is not None else math.nan)
            grad.append(float(g.mean()) if g is not None else math.nan)
            band.append(signal.band if signal is not None else math.nan)
            shift.append(signal.shift if signal is not None else math.nan)
        return LayerTheory(act, corr, grad, band, self.notes, shift)

    def _module(self, node: fx.Node) -> nn.Module:
        return self._modules[node]

    def _two_slopes(self, node: fx.Node, phi: Callable) -> homogeneous.TwoSlopes | None:
        """`homogeneous.slopes(phi)`, probed once per node (1.3 ms a run on the bench's net) unless φ is a
        module with parameters of its own, which training may move."""
        if isinstance(phi, nn.Module) and any(True for _ in phi.parameters()):
            return homogeneous.slopes(phi)
        if node not in self._slopes:
            self._slopes[node] = homogeneous.slopes(phi)
        return self._slopes[node]

    def read_parameters(self) -> None:
        """Reduce, where they live, the parameters the maps will read, and keep the result there until
        `run`. The monitor calls this as a logging step's batch starts: `run` comes after the optimizer
        has stepped, when Fixup's scalar biases are no longer exactly zero (1e-4 after one SGD step, which
        ended the theory at the first block) and batch norm's weights have moved; the variances of the
        monitored layers are read before the update too, by the accumulator, which is why they are
        skipped here. No transfer happens here."""
        if self.graph is not None:
            self._pending = self._parameter_statistics(skip=set(self.monitored))

    def _parameter_statistics(self, skip) -> tuple[list[tuple[str, str]], torch.Tensor | None]:
        """Every statistic of the model's parameters the maps read — batch norm's mean squared weight and
        bias, Fixup's scalars, each weight layer's spread of squared unit norms and squared biases, the
        variances of the weight layers not in `skip` — as keys and one float64 tensor (keys,) on the
        parameters' device."""
        keys, values = [], []

        def add(key, value):
            keys.append(key)
            values.append(value.detach().reshape(()).to(torch.float64))

        for node in self.graph.nodes:
            if node.op == "get_attr":
                value = operator.attrgetter(node.target)(self.model)  # a parameter or a buffer
                add(("scalar", node.target), value if value.numel() == 1 else value.abs().amax())
                continue
            if node.op != "call_module":
                continue
            module = self._module(node)
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                for kind, parameter in (("gain", module.weight), ("shift", module.bias)):
                    if parameter is not None:
                        add((kind, node.target), parameter.detach().double().square().mean())
            elif isinstance(module, nn.Conv2d | nn.Linear):
                # each output unit's squared weight norm, relative to the mean: its own scale of q
                norms = module.weight.detach().double().flatten(1).square().sum(1)  # (units,)
                add(
                    ("unit_spread", node.target),
                    norms.var(correction=0) / norms.mean().square().clamp(min=1e-300),
                )
                if module.bias is not None:
                    add(
                        ("bias_spread", node.target), module.bias.detach().double().square().var(correction=0)
                    )
                if node.target not in skip:
                    add(("weight_var", node.target), module.weight.detach().double().var(correction=0))
                    if module.bias is not None:
                        add(("bias_var", node.target), module.bias.detach().double().var(correction=0))
        return keys, torch.stack(values) if values else None

    def _parameters_on_host(self) -> dict[tuple[str, str], float]:
        """The statistics `read_parameters` kept — or, without it, or where `run` was given no variances
        for a layer it skipped, read now — brought to the host in one transfer: one sync per logging step
        on a GPU, not one per parameter (tests/monitor/test_monitor_sync.py counts it, and runs this on
        parameters that cannot be read)."""
        pending, self._pending = self._pending, None
        missing = [
            node.target
            for node in self.graph.nodes
            if node.op == "call_module"
            and node.target not in self._variances
            and isinstance(self._module(node), nn.Conv2d | nn.Linear)
        ]
        if pending is None or any(("weight_var", name) not in pending[0] for name in missing):
            pending = self._parameter_statistics(skip=set(self._variances))
        keys, values = pending
        if values is None:
            return {}
        return dict(zip(keys, values.cpu().tolist(), strict=True))  # the one transfer

    def _layer_variances(self, name: str) -> tuple[float, float]:
        given = self._variances.get(name)
        return given or (self._host[("weight_var", name)], self._host.get(("bias_var", name), 0.0))

    def _stop(self, node: fx.Node, why: str) -> None:
        if not self.notes:
            self.notes.append(f"theory stops at {node.name}: {why}")
        return None

    def _forward(self, node: fx.Node, forward: dict) -> Signal | None:
        if node.op == "get_attr":
            return None
        inputs = [forward.get(a) for a in node.all_input_nodes if a.op != "get_attr"]
        if node.op == "output":
            return inputs[0] if inputs else None
        if any(i is None for i in inputs):
            return None
        x = inputs[0] if inputs else None
        if node.op == "call_module":
            module = self._module(node)
            if isinstance(module, nn.Conv2d | nn.Linear):
                return self._weight_layer(node.target, module, x)
            if isinstance(module, ELEMENTWISE_MODULES):
                return self._activation(node, module, x)
            if isinstance(module, POOLS):
                return x.scaled(
                    1.0,
                    m=position_maps.window_mean(x.m, module),
                    mab=position_maps.window_mean(x.mab, module),
                )
            if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
                size = module.output_size
                return x.scaled(
                    1.0,
                    m=F.adaptive_avg_pool2d(x.m[None], size)[0],
                    mab=F.adaptive_avg_pool2d(x.mab[None], size)[0],
                )
            if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                gain = self._host.get(("gain", node.target), 1.0)
                shift = self._host.get(("shift", node.target), 0.0)
                ones = torch.ones_like(x.m)
                # normalised by the batch's own statistics: whatever the layers below did to this draw's
                # variance is undone, so the deviation starts afresh (band and shift 0)
                return Signal(ones * (gain + shift), ones * math.nan, x.channels)
            if isinstance(module, nn.Flatten):
                return _flatten(x)
            if isinstance(module, PASS_THROUGH):
                return x
            return self._stop(node, f"{type(module).__name__} is not modelled")
        if node.op in ("call_function", "call_method"):
            return self._function(node, inputs, forward)
        return self._stop(node, f"{node.op} {node.target} is not modelled")

    def _weight_layer(self, name: str, module: nn.Module, x: Signal) -> Signal:
        weight_var, bias_var = self._layer_variances(name)
        if isinstance(module, nn.Linear):
            fan = module.in_features
            m, mab = x.m.mean().reshape(1, 1), x.mab.mean().reshape(1, 1)
            out = Signal(
                m * weight_var * fan + bias_var, mab * weight_var * fan + bias_var, module.out_features
            )
        else:
            fan = module.in_channels // module.groups
            out = x.scaled(
                1.0,
                m=position_maps.conv_sum(x.m, module),
                mab=position_maps.conv_sum(x.mab, module),
                channels=module.out_channels,
            )
            out.m, out.mab = out.m * weight_var * fan + bias_var, out.mab * weight_var * fan + bias_var
        # Unit u's q is its own squared weight norm times the input's, plus its own squared bias: over the
        # units it varies by (q − σ²_b)² times the norms' relative variance (2/fan for Gaussian weights,
        # 0 for orthogonal ones) plus the squared biases' variance. What this does to the next activation
        # is `finite_width.over_units`'.
        weighted = out.m - bias_var
        out.unit_var = weighted.square() * self._host.get(("unit_spread", name), 0.0) + self._host.get(
            ("bias_spread", name), 0.0
        )
        # One draw of the weights meets this batch: w·S·w about Var[w] tr(S), S the input's second-moment
        # matrix over the batch, has relative variance 2 (‖S‖²/tr(S)² − 1/fan) per output unit, and
        # ‖S‖²/tr(S)² = 1/B + (1 − 1/B) E[cos²] over pairs of samples, E[cos²] ≈ c² + 1/fan.
        c = float(x.mab.mean() / x.m.mean()) if float(x.m.mean()) > 0 else 0.0
        c = c if math.isfinite(c) else 0.0
        # The input's deviation, a factor e^δ on its second moment, reaches the output's mean as
        # ln(e^δ a + b) − ln(a + b), a = Σ of the weighted part, b = the biases': slope a/(a + b).
        total = float(out.m.sum())
        slope = float(out.m.sum() - bias_var * out.m.numel()) / total if total > 0 else 1.0
        out.band, out.shift = x.stretched(
            slope, slope * (1 - slope), 2 * (c * c + 1 / self._batch) / out.channels
        )
        return out

    def _activation(self, node: fx.Node, phi: Callable, x: Signal) -> Signal:
        """Mean field takes every pre-activation as Gaussian, a sum of many terms. A positively homogeneous
        φ (ReLU, leaky ReLU) has every moment in closed form (`homogeneous`); any other φ is integrated by
        quadrature once per distinct (q, c) of the map, to eight digits: a map's interior is one value."""
        q_mean, qab_mean = x.m.mean(), x.mab.mean()
        qab_mean = qab_mean if torch.isfinite(qab_mean) else q_mean
        two_slopes = self._two_slopes(node, phi)
        if two_slopes is not None:
            # linear in q: each unit's own q averages to the mean's moment, and a deviation of q passes
            # unchanged (log-slope 1, no curvature) wherever the map is not all zero
            self._derivatives[node] = torch.full_like(x.m, two_slopes.derivative_second)
            second, cross = two_slopes.second(x.m), two_slopes.cross(x.m, x.mab)
            spread = meanfield.spread(
                two_slopes.second(q_mean),
                two_slopes.fourth(q_mean),
                two_slopes.cross_squared(q_mean, qab_mean),
                self._batch,
            )
            slope, curvature = (1.0, 0.0) if float(second.sum()) > 0 else (0.0, 0.0)
        else:
            (q, c, unit_var), inverse = position_maps.distinct(
                x.m, x.mab / x.m.clamp(min=1e-300), _relative_unit_var(x)
            )
            derivative = finite_width.over_units(
                lambda s: meanfield.moment(phi, q * s, derivative=True), unit_var
            )
            self._derivatives[node] = derivative[inverse].reshape(x.m.shape)  # E[φ′²], for the backward
            second = finite_width.over_units(lambda s: meanfield.moment(phi, q * s), unit_var)
            second = second[inverse].reshape(x.m.shape)
            cross = finite_width.over_units(lambda s: meanfield.cross_moment(phi, q * s, c * q * s), unit_var)
            cross = torch.where(x.mab.isnan(), math.nan, cross[inverse].reshape(x.m.shape))
            spread = meanfield.batch_spread(phi, q_mean, qab_mean, self._batch)
            slope, curvature = finite_width.log_stretch(phi, x.m)
        out = Signal(second, cross, x.channels)
        out.band, out.shift = x.stretched(slope, curvature, float(spread) / (x.channels or 1))
        return out

    def _function(self, node: fx.Node, inputs: list[Signal], forward: dict) -> Signal | None:
        target, args = node.target, node.args
        if target in ELEMENTWISE_FUNCTIONS or (
            node.op == "call_method" and target in ("relu", "tanh", "sigmoid")
        ):
            function = target if node.op == "call_function" else getattr(torch, target)
            extra = [a for a in args[1:] if not isinstance(a, fx.Node)]
            return self._activation(node, lambda t: function(t, *extra, **node.kwargs), inputs[0])
        if target in (operator.add, torch.add) or (node.op == "call_method" and target == "add"):
            tensors = [a for a in args if isinstance(a, fx.Node) and forward.get(a) is not None]
            scalars = [a for a in args if isinstance(a, fx.Node) and a.op == "get_attr"]
            if len(tensors) == 2:
                a, b = (forward[t] for t in tensors)
                total = a.m + b.m
                band = (a.band * a.m.mean() ** 2 + b.band * b.m.mean() ** 2) / total.mean() ** 2
                shift = (a.shift * a.m.mean() + b.shift * b.m.mean()) / total.mean()  # first order
                return Signal(total, a.mab + b.mab, a.channels, float(band), float(shift))
            if len(tensors) == 1 and len(scalars) == 1 and self._host[("scalar", scalars[0].target)] == 0:
                return forward[tensors[0]]  # + a zero scalar bias (Fixup at init)
        if target in (operator.mul, torch.mul) and len(inputs) == 1:
            scalar = next((a for a in args if isinstance(a, fx.Node) and a.op == "get_attr"), None)
            if scalar is not None and operator.attrgetter(scalar.target)(self.model).numel() == 1:
                return inputs[0].scaled(self._host[("scalar", scalar.target)] ** 2)
        if _spatial_mean(node):
            one = torch.ones(1, 1, dtype=torch.float64)
            x = inputs[0]
            return Signal(one * x.m.mean(), one * x.mab.mean(), x.channels, x.band, x.shift)
        if target in (torch.flatten,) or (
            node.op == "call_method" and target in ("flatten", "view", "reshape")
        ):
            return _flatten(inputs[0])
        if target is operator.getitem and _spatial_stride(args[1]) is not None:
            step = _spatial_stride(args[1])
            return inputs[0].scaled(1.0, m=inputs[0].m[::step, ::step], mab=inputs[0].mab[::step, ::step])
        if target is F.pad and _channel_padding(node) is not None and inputs[0].channels:
            extra = _channel_padding(node)
            channels = inputs[0].channels
            return inputs[0].scaled(channels / (channels + extra), channels=channels + extra)
        return self._stop(node, f"{getattr(target, '__name__', target)} is not modelled")

    def _backward(self, forward: dict, top_grad: float) -> dict[fx.Node, torch.Tensor]:
        """Second moment of ∂L/∂(node) per position, from the output down, for what the forward modelled."""
        nodes = list(self.graph.nodes)
        grads: dict[fx.Node, torch.Tensor] = {}
        output = next(n for n in nodes if n.op == "output")
        top = output.all_input_nodes[0] if output.all_input_nodes else None
        if top is None or forward.get(top) is None or not math.isfinite(top_grad):
            return grads
        grads[top] = torch.full_like(forward[top].m, top_grad)
        for node in reversed(nodes):
            g = grads.get(node)
            if g is None or node.op in ("placeholder", "output", "get_attr"):
                continue
            for source, contribution in self._grad_inputs(node, g, forward):
                if contribution is None or source not in forward or forward[source] is None:
                    continue
                grads[source] = grads[source] + contribution if source in grads else contribution
        return grads

    def _grad_inputs(
        self, node: fx.Node, g: torch.Tensor, forward: dict
    ) -> list[tuple[fx.Node, torch.Tensor]]:
        sources = [a for a in node.all_input_nodes if a.op != "get_attr"]
        if not sources:
            return []
        x = forward.get(sources[0])
        if x is None:
            return []
        module = self._module(node) if node.op == "call_module" else None
        if isinstance(module, nn.Conv2d):
            weight_var, _ = self._layer_variances(node.target)
            spread = (
                position_maps.conv_transpose_sum(g, module, x.m.shape)
                * weight_var
                * (module.out_channels // module.groups)
            )
            return [(sources[0], spread)]
        if isinstance(module, nn.Linear):
            weight_var, _ = self._layer_variances(node.target)
            return [(sources[0], torch.full_like(x.m, float(g.mean()) * weight_var * module.out_features))]
        if node in self._derivatives:  # an activation, module or function: E[φ′²] from its forward
            return [(sources[0], self._derivatives[node] * g)]
        if isinstance(module, POOLS):
            k = position_maps.pair(module.kernel_size)
            stride = position_maps.pair(module.stride or module.kernel_size)
            spread = F.conv_transpose2d(g[None, None], torch.ones(1, 1, *k, dtype=g.dtype), stride=stride)[
                0, 0
            ]
            windows = torch.zeros_like(x.m)
            h, w = min(spread.shape[0], windows.shape[0]), min(spread.shape[1], windows.shape[1])
            windows[:h, :w] = spread[:h, :w]
            share = 1 / (k[0] * k[1]) if isinstance(module, nn.MaxPool2d) else 1 / (k[0] * k[1]) ** 2
            return [(sources[0], windows * share)]
        if (isinstance(module, nn.AdaptiveAvgPool2d) or _spatial_mean(node)) and g.numel() == 1:
            return [(sources[0], torch.full_like(x.m, float(g) / x.m.numel() ** 2))]
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
            gain = self._host.get(("gain", node.target), 1.0)
            return [(sources[0], g * gain / float(x.m.mean()))]
        if isinstance(module, nn.Flatten) or (node.target in (torch.flatten, "flatten", "view", "reshape")):
            return [(sources[0], torch.full_like(x.m, float(g.mean())))]
        if isinstance(module, PASS_THROUGH):
            return [(sources[0], g)]
        if node.target in (operator.add, torch.add, "add"):
            return [(s, g) for s in sources if forward.get(s) is not None and s.op != "get_attr"]
        if node.target in (operator.mul, torch.mul):
            scalar = next((a for a in node.args if isinstance(a, fx.Node) and a.op == "get_attr"), None)
            return (
                [(sources[0], g * self._host[("scalar", scalar.target)] ** 2)] if scalar is not None else []
            )
        if node.target is operator.getitem:
            step = _spatial_stride(node.args[1])
            full = torch.zeros_like(x.m)
            full[::step, ::step] = g
            return [(sources[0], full)]
        if node.target is F.pad:
            channels = forward[node].channels
            return [(sources[0], g)] if channels else []
        return []


def _relative_unit_var(x: Signal) -> torch.Tensor:
    if x.unit_var is None:
        return torch.zeros_like(x.m)
    return torch.where(x.m > 0, x.unit_var / x.m.square().clamp(min=1e-300), 0.0)


def parameter_variances(module: nn.Module) -> tuple[float, float]:
    weight = module.weight.detach().double()
    bias = getattr(module, "bias", None)
    return float(weight.var(correction=0)), float(
        bias.detach().double().var(correction=0)
    ) if bias is not None else 0.0


def _flatten(x: Signal) -> Signal:
    one = torch.ones(1, 1, dtype=torch.float64)
    units = (x.channels or 1) * x.m.numel()
    return Signal(one * x.m.mean(), one * x.mab.mean(), units, x.band, x.shift)


def _spatial_mean(node: fx.Node) -> bool:
    """`x.mean(dim=(2, 3))` or `torch.mean(x, (2, 3))`: global average pooling written as a call."""
    if node.target not in ("mean", torch.mean):
        return False
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    return isinstance(dims, tuple | list) and sorted(d % 4 for d in dims) == [2, 3]


def _spatial_stride(index) -> int | None:
    """`x[:, :, ::s, ::s]`, the option-A shortcut's subsampling: s, else None."""
    if not (isinstance(index, tuple) and len(index) == 4 and all(isinstance(i, slice) for i in index)):
        return None
    first, second, rows, cols = index
    if first != slice(None) or second != slice(None) or rows != cols or rows.start or rows.stop:
        return None
    return rows.step or 1


def _channel_padding(node: fx.Node) -> int | None:
    pads = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
    if not (isinstance(pads, tuple | list) and len(pads) == 6 and not any(pads[:5])):
        return None
    return pads[5] if not node.kwargs.get("value") else None
