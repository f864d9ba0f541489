"""Free-threaded workers only: the app's own functions get immortal
constants, so that threads running them do not contend for their
reference counts.

CPython 3.13t interns and immortalizes a code object's int, float,
complex, bytes and tuple constants when the code object is built by
code.replace() (Objects/codeobject.c: intern_code_constants), so that
threads running the same code never write to them. A module that
importlib compiles keeps them mortal: every LOAD_CONST of, say, 1000003
then writes its reference count, shared by all threads, and two threads
running the same loop slow each other down (bench/ftthreads.py: a loop
with such a constant took 1.18x its CPU time per call with two threads at
once, 0.99x once its code was rebuilt; docs/runtimes.md). gild-worker-ft
rebuilds the code of the app's functions, methods and nested functions
once, when it loads the app (worker/app.c)."""

import types


def _rebuilt(code):
    """code, with its constants interned: nested code objects too."""
    consts = tuple(_rebuilt(c) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_consts=consts)


def intern_constants(module):
    """Rebuilds the code of every function defined in module: at its top
    level, in its classes (methods, static and class methods, properties)
    and behind decorators that set __wrapped__. Returns how many."""
    seen = set()
    done = 0

    def visit(obj):
        nonlocal done
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, (staticmethod, classmethod)):
            visit(obj.__func__)
        elif isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                visit(f)
        elif isinstance(obj, types.FunctionType):
            if obj.__module__ == module.__name__:
                obj.__code__ = _rebuilt(obj.__code__)
                done += 1
            visit(getattr(obj, "__wrapped__", None))
        elif isinstance(obj, type) and obj.__module__ == module.__name__:
            for v in list(vars(obj).values()):
                visit(v)

    for v in list(vars(module).values()):
        visit(v)
    return done
