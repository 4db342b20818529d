"""The lockstep's bookkeeping: the plain loop and the template take turns on the same batches, each turn
is timed to the side that ran it, and the background that ran during plain turns is charged to the
template — checked on a real tiny run (the order of the steps, a thread that burns CPU beside it) and
on scripted clocks against the arithmetic done by hand."""

import hashlib
import threading

import pytest
import torch

from template import config
from template.bench import timing
from template.bench.timing import Lockstep, Setup, side_by_side
from template.module import Classifier
from tests.helpers.tiny import tiny

TINY = tiny(
    "model.depth=3", "data.batch_size=8", "bench.warmup=2", "bench.steps=6", "logger=none",
    "trainer.accelerator=cpu",
)  # fmt: skip


def order_of_steps(monkeypatch, tmp_path, *keys) -> list[tuple[str, int]]:
    """('plain' | 'template', step) in the order the two loops ran them."""
    events: list[tuple[str, int]] = []
    plain_step, training_step = timing.PlainLoop.step, Classifier.training_step

    def plain(self, inputs, targets):
        events.append(("plain", len(self.losses)))
        plain_step(self, inputs, targets)

    def template(self, batch, index):
        events.append(("template", index))
        return training_step(self, batch, index)

    monkeypatch.setattr(timing.PlainLoop, "step", plain)
    monkeypatch.setattr(Classifier, "training_step", template)
    side_by_side(Setup.create(config.load([*TINY, *keys]), torch.device("cpu")), True, tmp_path)
    return events


def test_one_step_turns_alternate_plain_first(monkeypatch, tmp_path):
    events = order_of_steps(monkeypatch, tmp_path)
    steps = 2 + 6 + 1  # warm-up, window, the step that closes it
    assert events == [(side, step) for step in range(steps) for side in ("plain", "template")]


def test_longer_turns_inside_the_window(monkeypatch, tmp_path):
    events = order_of_steps(monkeypatch, tmp_path, "bench.turn_steps=4")
    sides = "".join(side[0] for side, _ in events)
    # warm-up step by step; in the window (steps 2-7) 4 + 4 then 2 + 2; the closing step
    assert sides == "ptpt" + "ppppttttpptt" + "pt"
    assert [step for side, step in events if side == "plain"] == list(range(9))
    assert [step for side, step in events if side == "template"] == list(range(9))


class ScriptedClocks:
    """(wall, CPU, background CPU) readings from a list, one per read."""

    def __init__(self, readings):
        self.readings = iter(readings)

    def read(self):
        return next(self.readings)


def test_turns_and_background_charge_by_hand(monkeypatch):
    """Window of 2 steps after 1 warm-up step, turns of 1: reads at the window's steps 1, 2 (each
    before and after the plain turn) and at step 3, which closes it."""
    setup = Setup.create(
        config.load([*TINY, "bench.warmup=1", "bench.steps=2", "stats.every_n_steps=2"]), torch.device("cpu")
    )
    children = iter([10.0, 10.9])  # CPU seconds of child processes at the window's start and end
    monkeypatch.setattr(timing, "children_cpu_seconds", lambda: next(children))
    lockstep = Lockstep(setup, timing.PlainLoop(setup))
    lockstep.clocks = ScriptedClocks(
        [
            (100.0, 50.0, 5.0),  # step 1: plain turn starts
            (101.0, 52.0, 5.1),  # plain turn ends (1 s, 2 CPU-s, 0.1 s of it background)
            (103.0, 56.0, 5.2),  # step 2: template turn ended (2 s, 4 CPU-s)
            (104.0, 58.0, 5.4),  # plain turn ends (1 s, 2 CPU-s, 0.2 s background)
            (107.0, 64.0, 5.5),  # step 3: template turn ended (3 s, 6 CPU-s)
        ]
    )
    for index, batch in enumerate(setup.batches):
        lockstep.on_train_batch_start(None, None, batch, index)
        lockstep.on_train_batch_end(None, None, {"loss": torch.tensor(float(index))}, batch, index)
    template, plain = lockstep.records(lockstep.plain.model)
    plain_share = 2 / (2 + 5)
    charged = 0.3 + 0.9 * plain_share  # background in plain turns, and the children's share of them
    assert plain["seconds"] == pytest.approx(2.0)
    assert plain["cpu_seconds"] == pytest.approx(4.0 - 0.3)
    assert template["seconds"] == pytest.approx(5.0 + charged)
    assert template["charged_s"] == pytest.approx(charged)
    assert template["cpu_seconds"] == pytest.approx(10.0 + 0.3 + 0.9)
    assert template["background_cpu_s"] == pytest.approx(1.2)
    assert template["background_share"] == pytest.approx(charged / (5.0 + charged))
    assert plain["images"] == template["images"] == 2 * 8
    assert template["images_per_s"] == pytest.approx(16 / (5.0 + charged))
    assert template["losses"] == [0.0, 1.0, 2.0, 3.0] and len(plain["losses"]) == 4
    assert template["turns"] == [  # the monitor logs every 2 steps: step 2 is a logging step
        {"first_step": 1, "steps": 1, "logging_step": False, "plain_s": 1.0, "template_s": 2.0},
        {"first_step": 2, "steps": 1, "logging_step": True, "plain_s": 1.0, "template_s": 3.0},
    ]


def test_a_busy_background_thread_is_charged_to_the_template(tmp_path):
    """A thread hashing without the GIL for the whole run: its CPU during the plain turns shows up as
    the template's charge, and at least what it could take there (a share of a core) is charged."""
    setup = Setup.create(config.load([*TINY, "bench.steps=20"]), torch.device("cpu"))
    stop = threading.Event()

    def burn():
        block = bytes(1 << 20)
        while not stop.is_set():
            hashlib.sha256(block).digest()  # releases the GIL for large inputs

    thread = threading.Thread(target=burn, daemon=True)
    thread.start()
    try:
        pair = side_by_side(setup, False, tmp_path)
    finally:
        stop.set()
        thread.join()
    template, plain = pair.template, pair.plain
    assert template["background_cpu_s"] >= template["charged_s"] > 0.2 * plain["seconds"]
    assert template["seconds"] > template["charged_s"]
