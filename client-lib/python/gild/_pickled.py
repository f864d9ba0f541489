"""gild.Pickled: a pickled Python object on its way to or from a server.

A server started with --allow-pickle takes pickled values as arguments and
sends back, pickled, results that have no other gild form (instances of
your classes, sets, datetimes...). A client connected with
``gild.connect(url, pickle=True)`` does both transparently: objects it
cannot otherwise send go out pickled and pickled results are unpickled.
Without pickle=True nothing is unpickled on the client: a pickled result
arrives as a ``Pickled`` holding the bytes, and only an explicit
``Pickled(...)`` argument is sent as a pickle.
"""
import pickle as _pickle


class Pickled:
    """The bytes of one pickled object. ``Pickled.dumps(obj)`` pickles obj;
    ``p.loads()`` unpickles it (only for data you trust: unpickling runs
    code)."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = bytes(data)

    @classmethod
    def dumps(cls, obj, protocol=None):
        return cls(_pickle.dumps(obj, protocol))

    def loads(self):
        return _pickle.loads(self.data)

    def __eq__(self, other):
        return isinstance(other, Pickled) and other.data == self.data

    def __hash__(self):
        return hash((Pickled, self.data))

    def __repr__(self):
        return f"<gild.Pickled {len(self.data)} bytes>"
