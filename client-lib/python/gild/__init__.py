"""gild: run Python functions in parallel as a network service.

Clients call functions of a gild server:

    import gild
    with gild.connect("tcp://127.0.0.1:7700") as c:
        c.call("add", 1, 2)

Apps served by ``gild serve`` import the same package to declare how their
functions are run:

    import gild

    @gild.function(timeout=2.0, retries=1)
    def lookup(key):
        ...

Inside a worker, a call stopped from outside (its deadline passed, or the
client cancelled it) sees ``gild.DeadlineInterrupt`` or
``gild.CancelInterrupt`` raised where it is running; both derive from
``gild.Interrupted``, a ``BaseException`` (like ``KeyboardInterrupt``), so
``except Exception:`` does not swallow them and ``finally:`` blocks run.
"""

import os as _os

# In a source checkout the C extension is built into build/python/gild
# (or $B/python/gild): let this package find it there.
_build = _os.path.join(_os.path.dirname(__file__), _os.pardir, _os.pardir,
                       _os.pardir, _os.environ.get("B", "build"), "python",
                       "gild")
if _os.path.isdir(_build):
    __path__.append(_os.path.normpath(_build))

from ._app import (function, actor, context, Context, Interrupted,
                   DeadlineInterrupt, CancelInterrupt, on_worker_start,
                   on_worker_stop, warmup, worker, Worker)
from .errors import (Error, RemoteError, Cancelled, Unknown, InvalidArgument,
                     DeadlineExceeded, NotFound, AlreadyExists,
                     PermissionDenied, ResourceExhausted, FailedPrecondition,
                     Unimplemented, Internal, Unavailable, Unauthenticated,
                     WorkerLost)
from ._pickled import Pickled

# The client is imported on first use: an app's workers import this
# package for the decorators only.
_CLIENT_NAMES = ("connect", "Client", "Function", "Future", "Stream",
                 "Actor", "ActorMethod")


def __getattr__(name):
    if name in _CLIENT_NAMES:
        from . import client
        return getattr(client, name)
    if name == "Executor":
        from .executor import Executor
        return Executor
    raise AttributeError(f"module 'gild' has no attribute {name!r}")


__all__ = ["connect", "Client", "Function", "Future", "Stream", "Actor",
           "ActorMethod",
           "Executor", "function", "actor", "context", "Context",
           "Interrupted", "DeadlineInterrupt", "CancelInterrupt",
           "on_worker_start", "on_worker_stop", "warmup", "worker", "Worker",
           "Error", "RemoteError", "Cancelled", "Unknown", "InvalidArgument",
           "DeadlineExceeded", "NotFound", "AlreadyExists",
           "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
           "Unimplemented", "Internal", "Unavailable", "Unauthenticated",
           "WorkerLost", "Pickled"]
