"""The one error type the command line turns into a one-line message and a non-zero exit."""


class LilTransformyError(RuntimeError):
    """A problem the user can fix; its message says how."""
