"""Progress bars that suit where they are drawn: a widget in Jupyter where ipywidgets is installed (else the
plain bar, without tqdm.auto's TqdmWarning), a live bar on a terminal, and in a log or a pipe (CI, `| tee`) a
line now and then instead of one per redraw."""
import sys

from tqdm import tqdm as text_bar

LOG_INTERVAL_S = 30.0  # a bar drawn into a file or a pipe redraws at most this often


def in_notebook() -> bool:
    """True in a Jupyter kernel (IPython's ZMQ shell), False in a terminal, a script or pytest."""
    ipython = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(ipython).__name__ == "ZMQInteractiveShell"


def progress_bar(iterable=None, file=None, **options):
    """tqdm(iterable, file=file, **options), drawn as the module says."""
    if in_notebook() and file is None:
        try:
            import ipywidgets  # noqa: F401  tqdm's widget needs it
            from tqdm.notebook import tqdm as widget
        except ImportError:
            return text_bar(iterable, **options)  # Jupyter draws the plain bar well, and nothing warns
        return widget(iterable, **options)
    if not getattr(file or sys.stderr, "isatty", lambda: False)():
        options.setdefault("mininterval", LOG_INTERVAL_S)
        options.setdefault("maxinterval", LOG_INTERVAL_S)  # tqdm's monitor would redraw a quiet bar every 10 s
    return text_bar(iterable, file=file, **options)
