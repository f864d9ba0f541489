/* pyvalue: Python objects <-> gild_value for the gild._native extension,
 * through pyconv (common/pyconv.h), the converter the worker compiles too:
 * the client sends and accepts exactly the values the server does. Runs
 * with the GIL held (free-threaded Python: attached, in several threads at
 * once); large copies are made with it released. */
#ifndef GILD_PYVALUE_H
#define GILD_PYVALUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gild.h"

/* Caches what the conversions need. Call once, at import and before any
 * conversion: 0, or -1 with a Python exception set. */
int pyvalue_init(void);

/* Tests: with on == 0, tensors arrive as pyconv's no-numpy fallback even
 * when numpy can be imported, and numpy arrays are not recognised when
 * sent. */
void pyvalue_use_numpy(int on);

/* Pickling (pickle != 0, gild.connect(pickle=True)): objects with no
 * other gild form are sent as pickle.dumps(obj) (GILD_PICKLE), and received
 * GILD_PICKLE values are unpickled. Without it, only a gild.Pickled is sent
 * as a pickle (its bytes), and a received one becomes a gild.Pickled: the
 * client never unpickles what it did not ask for. */

/* A call's arguments: args (a tuple, a list or None) and kwargs (a dict with
 * str keys, or None) become a new GILD_LIST in *va and a new GILD_MAP in *vk
 * (NULL for None or empty), owned by the caller. Returns 0, or -1 with a
 * TypeError / ValueError naming the bad argument ("argument 2[0]: cannot
 * send set: ...") and nothing allocated. */
int pyvalue_call_args(PyObject *args, PyObject *kwargs, int pickle,
    gild_value **va, gild_value **vk);

/* One value (obj borrowed) as a new gild_value owned by the caller, or NULL
 * with a Python exception set. */
gild_value *pyvalue_from_py(PyObject *obj, int pickle);

/* v (borrowed) as a new Python object, or NULL with an exception set
 * (pyconv_wire_to_py says which). */
PyObject *pyvalue_to_py(const gild_value *v, int pickle);

#endif
