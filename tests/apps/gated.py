"""App of the exec and pickle gate tests (tests/integration/test_exec.c,
tests/python/test_exec.py): functions that take and return values with no
gild form, which only travel pickled."""
import fractions


def kind(x):
    """The type name of what arrived (a pickle is unpickled first)."""
    return type(x).__name__


def echo(x):
    return x


def a_set():
    """A set has no gild form: pickled with --allow-pickle, else an error."""
    return {1, 2, 3}


def half(x):
    return fractions.Fraction(x, 2)


def spin(forever=True):
    """Runs until cancelled (a plain call that holds its worker); with
    forever false it returns at once (a short call of the same function)."""
    import time
    while forever:
        time.sleep(0.01)


class Local:
    """A class only the server can import (this app is no module of the
    client's)."""


def local_thing():
    """Pickled with --allow-pickle: a client cannot unpickle it."""
    return Local()
