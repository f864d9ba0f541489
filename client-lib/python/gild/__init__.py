"""gild: run Python functions in parallel as a network service.

This is the app-side half of the package: what an app served by
``gild serve`` imports to declare how its functions are run.

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

from ._app import (function, actor, context, Context, Interrupted,
                   DeadlineInterrupt, CancelInterrupt)

__all__ = ["function", "actor", "context", "Context", "Interrupted",
           "DeadlineInterrupt", "CancelInterrupt"]
