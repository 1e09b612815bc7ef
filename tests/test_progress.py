"""Progress output: a live bar on a terminal, plain periodic lines anywhere else (a log file, a pipe)."""

from __future__ import annotations

import io

from genlab.core.progress import ProgressLines, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_plain_lines_not_carriage_returns():
    log = io.StringIO()
    bar = progress_bar(3, desc="evaluator mnist", unit="batch", stream=log)
    assert isinstance(bar, ProgressLines)
    for _ in range(3):
        bar.update()
    bar.set_postfix(loss="0.250")
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert text.splitlines()[-1].startswith("evaluator mnist: 3/3 batch (100%), ")
    assert "loss=0.250" in text


def test_a_terminal_gets_a_live_bar():
    screen = Terminal()
    bar = progress_bar(3, desc="steps", stream=screen)
    assert not isinstance(bar, ProgressLines)
    bar.update(3)
    bar.close()
    assert "\r" in screen.getvalue()


def test_lines_come_at_most_once_per_interval_with_rate_and_eta():
    log, clock = io.StringIO(), Clock()
    bar = ProgressLines(100, desc="train", unit="step", stream=log, every_s=10, clock=clock)
    for _ in range(40):  # 40 steps at 0.5 s each: a line at 10 s and at 20 s, none in between
        clock.now += 0.5
        bar.update()
    lines = log.getvalue().splitlines()
    assert lines == ["train: 20/100 step (20%), 2 step/s, ETA 40s", "train: 40/100 step (40%), 2 step/s, ETA 30s"]
    bar.set_postfix({"loss_d": "0.700"})
    clock.now += 150
    bar.update(60)
    bar.close()
    bar.close()  # closing twice prints nothing more
    assert log.getvalue().splitlines()[2:] == ["train: 100/100 step (100%), 0.588 step/s, done in 2m50s, loss_d=0.700"]


def test_a_disabled_bar_prints_nothing():
    log = io.StringIO()
    bar = progress_bar(5, stream=log, disable=True)
    bar.update(5)
    bar.close()
    assert log.getvalue() == ""
