"""The command line: `python -m template <command> [key=value ...]`, what every Make target calls.

Bad input is one line on stderr and exit code 2; a run stopped by non-finite values is one line and
exit code 1; SIGTERM or Ctrl-C, after saving `last.ckpt`, one line and 143 or 130. None prints a
traceback: the message says what to do next.
"""

from __future__ import annotations

import sys

from template.errors import UsageError

USAGE = """usage: python -m template <command> [key=value ...]

commands:
  train   train one model; overrides like init=kaiming model.depth=30 data=synthetic trainer.max_epochs=5
  inits   print the table of initialisation schemes
  compare train every init x seed of an experiment and compare them: inits=kaiming,glorot seeds=0,1,2
  bench   measure the template's speed against a plain PyTorch loop
  theory  print what mean-field theory predicts for a config, per layer, before any training
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, overrides = argv[0], argv[1:]
    commands = {"train": _train, "inits": _inits, "compare": _compare, "bench": _bench, "theory": _theory}
    try:
        if command not in commands:
            raise UsageError(f"command {command!r} is unknown; choose one of: {', '.join(commands)}")
        return commands[command](overrides)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


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


def _bench(overrides: list[str]) -> int:
    from template.bench import main as bench

    return bench(overrides)


def _theory(overrides: list[str]) -> int:
    from template import config
    from template.theory import main as theory

    return theory(config.load(overrides))


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
