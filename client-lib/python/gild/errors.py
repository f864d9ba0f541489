"""The exceptions a gild client raises: one class per gild error code.

Each also derives from the standard exception a Python programmer would
reach for (DeadlineExceeded is a TimeoutError, Unavailable a
ConnectionError...), and a remote exception of a built-in type is raised
as a class that is both RemoteError and that type (see RemoteError)."""

import builtins
import concurrent.futures
import threading


class Error(Exception):
    """A call (or request) to a gild server failed. ``code`` is the gild
    code name ("NOT_FOUND", ...), ``message`` the server's explanation.
    ``remote_traceback``: for a call stopped while it ran (its deadline
    passed, or it was cancelled), where it was then, which ``str()``
    shows; else "". (A RemoteError's is its exception's.)"""

    code = "UNKNOWN"
    remote_traceback = ""

    def __new__(cls, message="", *rest, **kwargs):
        # Only the message reaches the standard base's constructor:
        # OSError's would read more arguments as errno and strerror.
        return super().__new__(cls, message)

    def __init__(self, message="", code=None):
        # BaseException's, not the next class's in the MRO: a standard
        # base such as UnicodeDecodeError takes other arguments.
        BaseException.__init__(self, message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return _with_traceback(f"{self.code}: {self.message}",
                               self.remote_traceback)

    def __reduce__(self):
        return (_error, (type(self), self.message, self.code,
                         self.remote_traceback))


def _with_traceback(head, traceback):
    if traceback:
        return f"{head}\n\nRemote traceback:\n{traceback.rstrip()}"
    return head


def _error(cls, message, code, traceback=""):
    e = cls(message, code)
    if traceback:
        e.remote_traceback = traceback
    return e


class Cancelled(Error, concurrent.futures.CancelledError):
    code = "CANCELLED"


class Unknown(Error):
    code = "UNKNOWN"


class InvalidArgument(Error, ValueError):
    code = "INVALID_ARGUMENT"


class DeadlineExceeded(Error, TimeoutError):
    code = "DEADLINE_EXCEEDED"


class NotFound(Error, LookupError):
    code = "NOT_FOUND"


class AlreadyExists(Error):
    code = "ALREADY_EXISTS"


class PermissionDenied(Error, PermissionError):
    code = "PERMISSION_DENIED"


class ResourceExhausted(Error):
    code = "RESOURCE_EXHAUSTED"


class FailedPrecondition(Error):
    code = "FAILED_PRECONDITION"


class Unimplemented(Error, NotImplementedError):
    code = "UNIMPLEMENTED"


class Internal(Error):
    code = "INTERNAL"


class Unavailable(Error, ConnectionError):
    code = "UNAVAILABLE"


class Unauthenticated(Error, PermissionError):
    code = "UNAUTHENTICATED"


class WorkerLost(Error):
    """The worker running the call died (or ran out of memory under
    --worker-memory)."""
    code = "WORKER_LOST"


class RemoteError(Error):
    """The function raised. ``remote_type`` is the exception's qualified type
    name, ``remote_message`` its message and ``remote_traceback`` the
    formatted traceback, which ``str()`` shows, as Ray and Celery do.

    When the remote exception's type is a built-in exception (ValueError,
    KeyError, ZeroDivisionError, OSError...), the error raised is an
    instance of ``RemoteError[that type]``, a class derived from both, so
    ``except ValueError:`` and ``except gild.RemoteError:`` both catch
    it."""

    code = "PYTHON_ERROR"
    _typed = {}  # built-in exception class -> RemoteError[it]
    _typed_lock = threading.Lock()

    def __init__(self, message="", remote_type="", remote_traceback=""):
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = remote_traceback

    def __str__(self):
        return _with_traceback(f"{self.remote_type}: {self.remote_message}",
                               self.remote_traceback)

    def __reduce__(self):
        return (_remote_error, (self.remote_message, self.remote_type,
                                self.remote_traceback))

    def __class_getitem__(cls, base):
        """RemoteError[ValueError]: the class of remote ValueErrors, a
        subclass of both (its subclasses' remote errors are their own
        RemoteError[...], which does not derive from it: catch the
        built-in type to catch those too)."""
        if cls is not RemoteError:
            raise TypeError(f"{cls.__name__}[...] is not a class")
        if not (isinstance(base, type) and issubclass(base, Exception)
                and getattr(builtins, base.__name__, None) is base):
            raise TypeError(f"RemoteError[...] takes a built-in exception "
                            f"class, not {base!r}")
        with cls._typed_lock:
            typed = cls._typed.get(base)
            if typed is None:
                name = f"RemoteError[{base.__name__}]"
                typed = type(name, (RemoteError, base),
                             {"__module__": "gild", "__qualname__": name,
                              "__doc__": f"A {base.__name__} raised by a "
                                         f"remote function."})
                cls._typed[base] = typed
        return typed


# Built-in exceptions that stay plain RemoteErrors: raised from a future's
# result or a map's iterator, a StopIteration would end the caller's loop
# quietly (or turn into a RuntimeError in a generator), and an exception
# group's constructor needs its exceptions.
_UNTYPED = (StopIteration, StopAsyncIteration, BaseExceptionGroup)


def _builtin_exception(name):
    """The built-in Exception subclass named name, or None. BaseException
    subclasses that are not Exceptions (KeyboardInterrupt, SystemExit)
    stay plain RemoteErrors: they would stop the client."""
    if not name or "." in name:
        return None
    cls = getattr(builtins, name, None)
    if (isinstance(cls, type) and issubclass(cls, Exception)
            and not issubclass(cls, _UNTYPED)):
        return cls
    return None


def _remote_error(message, remote_type, traceback):
    base = _builtin_exception(remote_type)
    if base is not None:
        try:
            return RemoteError[base](message, remote_type, traceback)
        except Exception:  # a built-in that cannot be combined
            pass
    return RemoteError(message, remote_type, traceback)


_BY_NAME = {c.code: c for c in (
    Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound,
    AlreadyExists, PermissionDenied, ResourceExhausted, FailedPrecondition,
    Unimplemented, Internal, Unavailable, Unauthenticated, WorkerLost)}


def from_error(code_name, message, python_type="", traceback=""):
    """The exception for an error the server (or libgild) reported."""
    if code_name == "PYTHON_ERROR":
        # The server's message is "Type: message"; keep the message part.
        prefix = f"{python_type}: "
        if python_type and message.startswith(prefix):
            message = message[len(prefix):]
        return _remote_error(message, python_type, traceback)
    return _error(_BY_NAME.get(code_name, Error), message, code_name,
                  traceback)
