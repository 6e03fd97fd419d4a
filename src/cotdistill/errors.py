"""The one exception type the command line turns into a single clear error line."""


class CotdistillError(Exception):
    """A problem with the user's input or settings: reported as one line, exit status 1.

    Raise it with a message that names the file, line or key at fault, so the user can fix it
    without reading a traceback.
    """
