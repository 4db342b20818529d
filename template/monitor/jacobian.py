"""The input–output Jacobian's spectrum at initialisation: what decides trainability of deep nets without
normalisation or skips (Pennington et al. 2017, Xiao et al. 2018), and what a variance monitor cannot
see — Gaussian and orthogonal weights of one variance give the same variances, not the same spectrum.

J = ∂h_to/∂h_from, one sample's Jacobian between two layers' outputs (pre-activations), by default
from the first monitored layer whose output has the shape of the last hidden layer's to that last
hidden layer: the longest stretch of the body that maps a space onto itself (for the vanilla CNN,
every conv after the downsampling stem). With k = min(n_from, n_to) it reports the moments of the k
squared singular values λ:
  mean  m₁ = tr(JJᵀ)/k          Hutchinson: E‖Jv‖² = tr(JᵀJ), v Rademacher, one jvp per probe
  nvar  m₂/m₁² − 1, m₂ = tr((JJᵀ)²)/k   E‖JᵀJv‖² = tr((JᵀJ)²), one jvp and one vjp per probe
  sv_max  the largest singular value, by power iteration on JᵀJ (a lower bound that converges)
  partial  per monitored layer l in the stretch, tr(J_l J_lᵀ)/min(n_l, n_to), J_l = ∂h_to/∂h_l, from one
           backward pass per probe that collects the gradient at every layer
Standard errors are the probes' (conditional on the samples): what separates the estimate from the
dense Jacobian of the same inputs, which tests/monitor/test_monitor_jacobian.py checks with jacrev. With
few probes a normal ±2 s.e. is too narrow (the standard error is itself estimated from those few
probes), so each estimate also carries its 95 % half-width from Student's t (`*_ci95`).

The theory these estimates are compared with is `template.theory.spectrum`'s.

Samples never interact (the model runs in eval mode, so batch norm uses its running statistics) and the
probes come from a generator of their own, so measuring changes neither the run's random stream nor the
weights.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.func import jvp, vjp

from template.theory import spectrum
from template.theory.spectrum import Stretch

DENSE_MAX_UNITS = 1024  # the histogram's dense Jacobian: at most this many vjps of one sample


def stretch(
    model: nn.Module, monitored: list[str], x: torch.Tensor, start: str | None = None, end: str | None = None
) -> Stretch:
    """By default from the first monitored layer shaped like the last hidden one to the last hidden one
    (the layer before the classifier; with a single monitored layer, that one)."""
    shapes = _output_shapes(model, monitored, x[:1])
    end = end or (monitored[-2] if len(monitored) > 1 else monitored[0])
    start = start or next(name for name in monitored if shapes[name] == shapes[end])
    first, last = monitored.index(start), monitored.index(end)
    return Stretch(start, end, monitored[first : last + 1], shapes)


def _output_shapes(model, names, x) -> dict[str, tuple[int, ...]]:
    shapes, handles = {}, []
    for name in names:
        hook = lambda m, a, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))  # noqa: B023
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


class _Body:
    """h_start ↦ h_end through the model's own forward: a hook puts `h` in place of start's output and
    another keeps end's. Any architecture works (residual sums included); the layers before start run on
    the real input, and what follows end is computed and dropped."""

    def __init__(self, model: nn.Module, x: torch.Tensor, start: str, end: str, keep: list[str] = ()):
        self.model, self.x = model, x
        self.start, self.end, self.keep = model.get_submodule(start), model.get_submodule(end), keep
        self.kept: dict[str, torch.Tensor] = {}

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        captured = {}
        # The model sees copies: an in-place activation (ReLU(inplace=True)) after a layer would otherwise
        # overwrite the very tensor the derivative is taken at or with respect to.
        handles = [
            self.start.register_forward_hook(lambda m, a, out: h.clone()),
            self.end.register_forward_hook(lambda m, a, out: self._end(captured, out)),
        ]
        for name in self.keep:
            keep = lambda m, a, out, name=name: self._keep(name, out)  # noqa: B023
            handles.append(self.model.get_submodule(name).register_forward_hook(keep))
        try:
            self.model(self.x)
        finally:
            for handle in handles:
                handle.remove()
        return captured["out"]

    @staticmethod
    def _end(captured: dict, out: torch.Tensor) -> torch.Tensor:
        captured["out"] = out
        return out.clone()

    def _keep(self, name: str, out: torch.Tensor) -> torch.Tensor:
        self.kept[name] = out
        return out.clone()

    def start_output(self) -> torch.Tensor:
        captured = {}
        handle = self.start.register_forward_hook(lambda m, a, out: captured.__setitem__("h", out.clone()))
        try:
            with torch.no_grad():
                self.model(self.x)
        finally:
            handle.remove()
        return captured["h"].detach()


def measure(
    model: nn.Module,
    x: torch.Tensor,
    span: Stretch,
    probes: int = 16,
    power_iterations: int = 20,
    seed: int = 0,
) -> dict:
    """The spectrum's moments of each sample of `x`, pooled: a JSON-ready dict (docs/theory.md:
    at_init.jacobian)."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # torch's forward-mode decompositions call its own deprecated torch.jit.script on the first jvp
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated")
            return _measure(model, x.detach(), span, probes, power_iterations, seed)
    finally:
        model.train(was_training)


def _measure(model, x, span: Stretch, probes: int, power_iterations: int, seed: int) -> dict:
    samples = x.shape[0]
    # Every probe of every sample in one batch: row p·B + b is sample b's p-th probe.
    repeated = x.repeat(probes, *[1] * (x.dim() - 1))
    body = _Body(model, repeated, span.start, span.end)
    h = body.start_output()
    generator = torch.Generator(device=h.device).manual_seed(seed)
    v = _rademacher(h.shape, generator, h)
    out, pullback = vjp(body, h)
    _, jv = jvp(body, (h,), (v,))
    (jtjv,) = pullback(jv)
    n_in, n_out = h[0].numel(), out[0].numel()
    k = min(n_in, n_out)
    first = jv.detach().double().flatten(1).square().sum(1).view(probes, samples).cpu() / k  # ‖Jv‖²/k
    second = jtjv.detach().double().flatten(1).square().sum(1).view(probes, samples).cpu() / k  # ‖JᵀJv‖²/k
    m1, m1_se, m1_dof = _pooled(first)
    m2, m2_se, m2_dof = _pooled(second)
    covariance = _pooled_covariance(first, second)
    nvar = m2 / m1**2 - 1
    # delta method: ∂(m₂/m₁²)/∂m₂ = 1/m₁², ∂/∂m₁ = −2m₂/m₁³
    da, db = -2 * m2 / m1**3, 1 / m1**2
    nvar_se = math.sqrt(max(da * da * m1_se**2 + db * db * m2_se**2 + 2 * da * db * covariance, 0.0))
    single = _Body(model, x, span.start, span.end)
    return {
        "from": span.start,
        "to": span.end,
        "units_in": n_in,
        "units_out": n_out,
        "samples": samples,
        "probes": probes,
        "sv2_mean": m1,
        "sv2_mean_stderr": m1_se,
        "sv2_mean_ci95": _half_width(m1_se, m1_dof),
        "sv2_nvar": nvar,
        "sv2_nvar_stderr": nvar_se,
        "sv2_nvar_ci95": _half_width(nvar_se, min(m1_dof, m2_dof)),
        "sv_max": _largest(single, power_iterations, generator),
        "partial": _partials(model, repeated, span, probes, generator, h),
    }


def _rademacher(shape, generator, like: torch.Tensor) -> torch.Tensor:
    bits = torch.randint(0, 2, shape, generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)


def _pooled(values: torch.Tensor) -> tuple[float, float, float]:
    """Mean over samples (columns) of each sample's mean over probes (rows), its probe standard error, and
    the error's degrees of freedom (Welch–Satterthwaite: B samples' variances of p − 1 each)."""
    probes, samples = values.shape
    if probes < 2:
        return float(values.mean()), math.nan, math.nan
    variances = values.var(0, correction=1)  # (samples,)
    stderr = float(variances.sum().sqrt() / (math.sqrt(probes) * samples))
    dof = float(variances.sum() ** 2 / (variances.square().sum() / (probes - 1)).clamp(min=1e-300))
    return float(values.mean()), stderr, dof


def _half_width(stderr: float, dof: float) -> float:
    """The 95 % interval's half-width, Student's t on `dof` degrees of freedom. Over 300 probe seeds (two
    inputs, test_monitor_jacobian.py) a normal ±2 s.e. missed the dense Jacobian's value 26 %, 13 %, 7 %
    and 8 % of the time at 2, 4, 8 and 16 probes; these intervals 2.0 %, 7.0 %, 4.7 % and 6.7 %."""
    from scipy.stats import t  # only where a spectrum is measured: scipy.stats costs 0.5 s to import

    return float(t.ppf(0.975, dof) * stderr) if math.isfinite(dof) and dof > 0 else math.nan


def _pooled_covariance(a: torch.Tensor, b: torch.Tensor) -> float:
    probes, samples = a.shape
    if probes < 2:
        return math.nan
    cov = ((a - a.mean(0)) * (b - b.mean(0))).sum(0) / (probes - 1) / probes
    return float(cov.sum() / samples**2)


def _largest(body: _Body, iterations: int, generator) -> float:
    """Power iteration on JᵀJ, every sample at once; the mean over samples of σ_max."""
    h = body.start_output()
    _, pullback = vjp(body, h)
    v = torch.randn(h.shape, generator=generator, device=h.device, dtype=h.dtype)
    estimate = torch.zeros(h.shape[0], dtype=torch.float64)
    for _ in range(iterations):
        v = v / v.flatten(1).norm(dim=1).clamp(min=1e-30).view(-1, *[1] * (v.dim() - 1))
        _, jv = jvp(body, (h,), (v,))
        estimate = jv.detach().double().flatten(1).norm(dim=1).cpu()  # ‖Jv‖ with ‖v‖ = 1
        (v,) = pullback(jv)
        v = v.detach()
    return float(estimate.mean())


def _partials(model, repeated, span: Stretch, probes: int, generator, h) -> list[dict]:
    """tr(J_l J_lᵀ)/min(n_l, n_to) for every layer of the stretch, from one backward pass of every probe."""
    body = _Body(model, repeated, span.start, span.end, keep=span.layers[1:-1])
    start = h.clone().requires_grad_(True)
    out = body(start)
    outputs = [start, *[body.kept[name] for name in span.layers[1:-1]], out][: len(span.layers)]
    u = _rademacher(out.shape, generator, out)
    grads = torch.autograd.grad(out, outputs, u, allow_unused=True)  # a side branch does not reach `to`
    n_out, samples = out[0].numel(), out.shape[0] // probes
    result = []
    for name, grad in zip(span.layers, grads, strict=True):
        if grad is None:
            result.append(
                {"layer": name, "sv2_mean": math.nan, "sv2_mean_stderr": math.nan, "sv2_mean_ci95": math.nan}
            )
            continue
        k = min(grad[0].numel(), n_out)
        per_probe = grad.detach().double().flatten(1).square().sum(1).view(probes, samples).cpu() / k
        mean, stderr, dof = _pooled(per_probe)
        result.append(
            {
                "layer": name,
                "sv2_mean": mean,
                "sv2_mean_stderr": stderr,
                "sv2_mean_ci95": _half_width(stderr, dof),
            }
        )
    return result


def dense(model: nn.Module, x: torch.Tensor, span: Stretch) -> torch.Tensor | None:
    """One sample's squared singular values from its full Jacobian (k vjps, batched by vmap), or None
    where the smaller side has more than DENSE_MAX_UNITS units."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            body = _Body(model, x[:1].detach(), span.start, span.end)
            h = body.start_output()
            out, pullback = vjp(body, h)
            if min(h.numel(), out.numel()) > DENSE_MAX_UNITS:
                return None
            basis = torch.eye(out.numel(), dtype=out.dtype, device=out.device).view(-1, *out.shape)
            (rows,) = torch.func.vmap(pullback, chunk_size=256)(basis)  # (n_out, 1, ...): rows of J
            rows = rows.detach().double().flatten(1)
            if not torch.isfinite(rows).all():  # a net that is already non-finite: the monitor says so
                return None
            return torch.linalg.svdvals(rows).square().cpu()
    finally:
        model.train(was_training)


def start_moments(model: nn.Module, x: torch.Tensor, span: Stretch) -> torch.Tensor:
    """Each sample's second moment at each position of the stretch's first output, over channels: the
    position-by-position theory's starting q (samples · H · W values)."""
    h = _Body(model, x.detach(), span.start, span.end).start_output().double()  # (N, C, H, W)
    return h.square().mean(1).flatten().cpu()  # (N·H·W,)


def position_theory(model: nn.Module, span: Stretch, phi: nn.Module | None, x: torch.Tensor) -> dict | None:
    """`template.theory.spectrum`'s theory position by position, from each position's measured start q;
    None where the stretch mixes positions (or the model has no activation)."""
    if phi is None or not spectrum.position_wise(model, span):
        return None
    return spectrum.position_by_position(model, span, phi, start_moments(model, x, span))
