"""The app-side API: decorators read by gild-worker."""

import math

try:
    # Inside gild-worker: the classes the worker raises to interrupt a call.
    from _gild_worker import Interrupted, DeadlineInterrupt, CancelInterrupt
except ImportError:  # a plain interpreter (a client, a unit test)
    class Interrupted(BaseException):
        """A call was stopped from outside while it ran."""

    class DeadlineInterrupt(Interrupted):
        """The call's deadline passed while it ran."""

    class CancelInterrupt(Interrupted):
        """The client cancelled the call (or went away) while it ran."""

# The worker reads this attribute of each exported function.
OPTIONS_ATTR = "__gild__"


def _check_timeout(timeout):
    if timeout is None:
        return 0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"gild.function: timeout must be a number of seconds, "
            f"not {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(
            f"gild.function: timeout must be a positive number of seconds, "
            f"not {timeout!r}")
    ms = math.ceil(timeout * 1000)
    if ms > 2**32 - 1:
        raise ValueError(
            f"gild.function: timeout {timeout!r} s is too long "
            f"(at most {(2**32 - 1) // 1000} s)")
    return ms


def _check_retries(retries):
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(
            f"gild.function: retries must be an int, "
            f"not {type(retries).__name__}")
    if not 0 <= retries <= 100:
        raise ValueError(
            f"gild.function: retries must be between 0 and 100, "
            f"not {retries!r}")
    return retries


def function(fn=None, *, timeout=None, retries=0):
    """Declares how gild runs an exported function.

    timeout: seconds from when the server receives a call to its deadline,
        unless the call sets its own; None means --default-timeout.
    retries: how many times a call is run again on another worker when the
        worker running it dies (for idempotent functions only).

    Usable bare (``@gild.function``) or with options
    (``@gild.function(timeout=1.5)``); the function itself is returned
    unchanged apart from the ``__gild__`` attribute the worker reads.
    """
    options = {"timeout_ms": _check_timeout(timeout),
               "retries": _check_retries(retries)}

    def mark(f):
        if not callable(f):
            raise TypeError("gild.function decorates a function")
        setattr(f, OPTIONS_ATTR, dict(options))
        return f

    return mark(fn) if fn is not None else mark
