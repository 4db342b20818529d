"""The registry: one name per distribution, its options read off the function that implements it.

A scheme is a plain function registered with `@register`. Its first parameter says what it works on:

* `layer` — a `fans.Layer`; `initialize` calls it once per Conv/Linear/ConvTranspose. It sets the
  weight and returns None, in which case the bias is zeroed, or a string saying what set the bias.
* `model` — the whole `nn.Module`, for schemes that need to see the architecture or data. It returns
  the report's `set_by` entries for the parameters it set.

Every other parameter is keyword-only with a default and a type annotation, and is an option the user
may pass as `init.options.<name>`. The annotation is the validation: a `Literal[...]` lists the valid
choices, `float`/`int` accept numbers, and `Annotated[..., Check(...)]` adds a bound. A parameter called
`batch` is not an option: it marks the scheme as data-dependent (`needs_batch`). Reading all this from
the signature keeps the option list, the defaults and the error messages from drifting apart.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from template.errors import UsageError


@dataclass(frozen=True)
class Check:
    """A bound on a numeric option, attached with `Annotated`; `expected` finishes "expected ..."."""

    accepts: Callable[[float], bool]
    expected: str


Positive = Annotated[float, Check(lambda v: v > 0, "a positive number")]
Fraction = Annotated[float, Check(lambda v: 0 <= v <= 1, "a number in [0, 1]")]
Count = Annotated[int, Check(lambda v: v >= 1, "a positive integer")]
Mode = Literal["fan_in", "fan_out"]
Nonlinearity = Literal[
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "sigmoid", "tanh", "relu", "leaky_relu", "selu",
]  # fmt: skip


def _problem(annotation: Any, value: Any) -> str | None:
    """What is wrong with an option's value, phrased to follow "is not valid for <scheme>; ", or None."""
    annotated = get_origin(annotation) is Annotated
    kind, *checks = get_args(annotation) if annotated else (annotation,)
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        return None if value in choices else f"choose one of: {', '.join(choices)}"
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and not (numeric and isinstance(value, int)):
        return "expected an integer"
    if not numeric or not math.isfinite(value):
        return "expected a number"
    for check in checks:
        if not check.accepts(value):
            return f"expected {check.expected}"
    return None


@dataclass(frozen=True, eq=False)
class Scheme:
    name: str
    fn: Callable
    aliases: tuple[str, ...]
    convention: str
    formula: str
    options: dict[str, Any]  # option name -> its type annotation, which is its validation
    per_layer: bool
    needs_batch: bool


_NAMES: dict[str, Scheme] = {}  # every accepted name, canonical or alias, in registration order


def register(
    name: str, *, aliases: Iterable[str] = (), convention: str = "", formula: str = ""
) -> Callable[[Callable], Callable]:
    """Decorator: make `fn` available as `INIT=<name>` (and each alias). See the module docstring."""

    def decorate(fn: Callable) -> Callable:
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].name not in ("layer", "model"):
            raise TypeError(f"init scheme {name!r}: the first parameter must be `layer` or `model`")
        hints = get_type_hints(fn, include_extras=True)
        options = {}
        for p in params[1:]:
            if p.name == "batch":
                continue
            if p.kind is not p.KEYWORD_ONLY or p.default is p.empty or p.name not in hints:
                raise TypeError(
                    f"init scheme {name!r}: option {p.name!r} must be keyword-only, typed, defaulted"
                )
            hint = hints[p.name]
            kind = get_args(hint)[0] if get_origin(hint) is Annotated else hint
            if kind not in (float, int) and get_origin(kind) is not Literal:
                raise TypeError(f"init scheme {name!r}: option {p.name!r} must be a float, int or Literal")
            options[p.name] = hint
        for n in (name, *aliases):
            if n in _NAMES:
                raise ValueError(f"init scheme name {n!r} is already registered")
        scheme = Scheme(
            name=name,
            fn=fn,
            aliases=tuple(aliases),
            convention=convention,
            formula=formula,
            options=options,
            per_layer=params[0].name == "layer",
            needs_batch=any(p.name == "batch" for p in params),
        )
        for n in (name, *aliases):
            _NAMES[n] = scheme
        return fn

    return decorate


def lookup(name: str) -> Scheme:
    if name not in _NAMES:
        raise UsageError(f"init.name={name!r} is unknown; choose one of: {', '.join(available())}")
    return _NAMES[name]


def available() -> list[str]:
    """Every accepted name, canonical names and aliases together, sorted."""
    return sorted(_NAMES)


def needs_batch(name: str) -> bool:
    """True for data-dependent schemes (LSUV): the caller must pass `batch=`, a tensor of inputs."""
    return lookup(name).needs_batch


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse an unknown option or a bad value in one line, before any work starts."""
    scheme = lookup(name)
    for key, value in options.items():
        if key not in scheme.options:
            valid = ", ".join(scheme.options) or "(none)"
            raise UsageError(f"init.options.{key} is not an option of {scheme.name}; valid options: {valid}")
        problem = _problem(scheme.options[key], value)
        if problem:
            raise UsageError(f"init.options.{key}={value!r} is not valid for {scheme.name}; {problem}")


def table() -> list[dict[str, Any]]:
    """One row per scheme, in registration order, for `make inits` and the README."""
    return [
        {"name": s.name, "aliases": list(s.aliases), "convention": s.convention, "formula": s.formula}
        for n, s in _NAMES.items()
        if n == s.name
    ]
