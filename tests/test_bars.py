"""Progress bars: no TqdmWarning in a notebook without ipywidgets, no flood of redraws in a log or a pipe."""
import io
import sys
import time
import warnings

from tqdm import TqdmWarning
from tqdm import tqdm as text_bar

from lil_transformy import bars


class Terminal(io.StringIO):
    def isatty(self):
        return True


def redraws(stream: io.StringIO, seconds: float = 0.6, steps: int = 30) -> int:
    for _ in bars.progress_bar(range(steps), file=stream, desc="training"):
        time.sleep(seconds / steps)
    return stream.getvalue().count("\r")


def test_a_bar_in_a_log_or_a_pipe_redraws_rarely_and_live_on_a_terminal():
    assert redraws(io.StringIO()) <= 2  # the first draw and the last: tqdm's default 0.1 s would give 6 or more
    assert redraws(Terminal()) >= 4


def test_a_notebook_without_ipywidgets_gets_the_plain_bar_and_no_warning(monkeypatch):
    monkeypatch.setattr(bars, "in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    with warnings.catch_warnings():
        warnings.simplefilter("error", TqdmWarning)
        bar = bars.progress_bar(range(3), disable=True)
        assert list(bar) == [0, 1, 2] and type(bar) is text_bar


def test_outside_jupyter_no_notebook_is_detected():
    assert not bars.in_notebook()
