"""The exceptions a gild client raises: one class per gild error code."""


class Error(Exception):
    """A call (or request) to a gild server failed. ``code`` is the gild
    code name ("NOT_FOUND", ...), ``message`` the server's explanation."""

    code = "UNKNOWN"

    def __init__(self, message="", code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self):
        return f"{self.code}: {self.message}"


class Cancelled(Error):
    code = "CANCELLED"


class Unknown(Error):
    code = "UNKNOWN"


class InvalidArgument(Error):
    code = "INVALID_ARGUMENT"


class DeadlineExceeded(Error):
    code = "DEADLINE_EXCEEDED"


class NotFound(Error):
    code = "NOT_FOUND"


class AlreadyExists(Error):
    code = "ALREADY_EXISTS"


class PermissionDenied(Error):
    code = "PERMISSION_DENIED"


class ResourceExhausted(Error):
    code = "RESOURCE_EXHAUSTED"


class FailedPrecondition(Error):
    code = "FAILED_PRECONDITION"


class Unimplemented(Error):
    code = "UNIMPLEMENTED"


class Internal(Error):
    code = "INTERNAL"


class Unavailable(Error):
    code = "UNAVAILABLE"


class Unauthenticated(Error):
    code = "UNAUTHENTICATED"


class WorkerLost(Error):
    """The worker running the call died (or ran out of memory under
    --worker-memory)."""
    code = "WORKER_LOST"


class RemoteError(Error):
    """The function raised. ``remote_type`` is the exception's qualified type
    name, ``remote_message`` its message and ``remote_traceback`` the
    formatted traceback, which ``str()`` shows, as Ray and Celery do."""

    code = "PYTHON_ERROR"

    def __init__(self, message="", remote_type="", remote_traceback=""):
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = remote_traceback

    def __str__(self):
        head = f"{self.remote_type}: {self.remote_message}"
        if self.remote_traceback:
            return f"{head}\n\nRemote traceback:\n{self.remote_traceback.rstrip()}"
        return head


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
        return RemoteError(message, python_type, traceback)
    return _BY_NAME.get(code_name, Error)(message, code_name)
