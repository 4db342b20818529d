"""The command line: `python -m template <command> [key=value ...]`, what every Make target calls.

Bad input is one line on stderr and exit code 2; a run stopped by non-finite values is one line and
exit code 1; SIGTERM or Ctrl-C, after saving `last.ckpt`, one line and 143 or 130. None prints a
traceback: the message says what to do next.
"""

from __future__ import annotations

import sys

from template.errors import UsageError

USAGE = """usage: python -m template <command> [key=value ...]
       python -m template <command> --help   (every key it takes, with its default and its choices)

commands:
{commands}
Every command but inits takes the same dotted key=value overrides of one config (configs/default.yaml),
e.g. init=kaiming model.depth=30 data=synthetic trainer.max_epochs=5; `make help` maps variables onto them.
"""

ABOUT = {
    "train": "train one model",
    "inits": "print the table of initialisation schemes (takes no keys)",
    "compare": "train every compare.inits x compare.seeds (each an ordinary run) and compare them",
    "reproduce": "quick_demo at 1 and 2 threads and oneDNN off: exit 1 unless Kaiming learns and Glorot not",
    "bench": "time the template against a plain PyTorch loop, on the model and data the keys describe",
    "theory": "print what mean-field theory predicts for the config, per layer, before any training",
    "phase": "draw the (σ²_w, σ²_b) phase diagram of model.activation (phase.sweep=true: train over it)",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return 0
    command, overrides = argv[0], argv[1:]
    commands = {
        "train": _train,
        "inits": _inits,
        "compare": _compare,
        "reproduce": _reproduce,
        "bench": _bench,
        "theory": _theory,
        "phase": _phase,
    }
    try:
        if command not in commands:
            raise UsageError(f"command {command!r} is unknown; choose one of: {', '.join(commands)}")
        if any(argument in ("-h", "--help") for argument in overrides):
            print(command_help(command), end="")
            return 0
        return commands[command](overrides)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def usage() -> str:
    return USAGE.format(commands="".join(f"  {name:<10}{about}\n" for name, about in ABOUT.items()))


def command_help(command: str) -> str:
    """The command's line, then (but for inits) every key it takes with its default and choices."""
    if command == "inits":
        return f"usage: python -m template inits\n{ABOUT['inits']}\n"
    head = f"usage: python -m template {command} [key=value ...]\n{ABOUT.get(command, '')}\n"
    from template import config

    shorthand = f"{', '.join(f'{group}=' for group in config.NAMED_GROUPS)} name a group's choice"
    return f"{head}keys are dotted (model.depth=30); {shorthand}\n\n{config.describe()}"


def _train(overrides: list[str]) -> int:
    from template import config
    from template.monitor import NonFiniteError
    from template.train import Interrupted, train

    cfg = config.load(overrides)
    try:
        run_dir = train(cfg)
    except NonFiniteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Interrupted as stop:
        print(stop, file=sys.stderr)
        return stop.exit_code
    print(f"run folder: {run_dir}")
    return 0


def _compare(overrides: list[str]) -> int:
    from template.compare import main as compare

    return compare(overrides)


def _reproduce(overrides: list[str]) -> int:
    from template.compare.reproduce import main as reproduce

    return reproduce(overrides)


def _bench(overrides: list[str]) -> int:
    from template.bench import main as bench

    return bench(overrides)


def _theory(overrides: list[str]) -> int:
    from template import config
    from template.predict import main as theory

    return theory(config.load(overrides))


def _phase(overrides: list[str]) -> int:
    from template.sweep import main as phase

    return phase(overrides)


def _inits(overrides: list[str]) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from template import inits

    if overrides:
        raise UsageError(f"inits takes no arguments, got {' '.join(overrides)!r}")
    table = Table(title="Initialisation schemes (init.name=...)")
    for column in ("name", "aliases", "convention", "formula"):
        table.add_column(column)
    for row in inits.table():
        cells = (row["name"], ", ".join(row["aliases"]), row["convention"], row["formula"])
        table.add_row(*map(escape, cells))  # formulas hold brackets, which rich would read as markup
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
