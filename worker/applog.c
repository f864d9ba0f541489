/* applog: sys.stdout, sys.stderr and a root logging handler that send
 * records gild logs (see applog.h, proto/applog_frame.h). */
#include "applog.h"

#include <Python.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "applog_frame.h"

/* The module _gild_applog. Given _RS, _US and _MAX (applog_frame.h) and
 * _context (_gild_worker.log_context). A line is written as one record
 * under a lock, so lines of different threads never mix; the part of a
 * line not ended yet is kept per thread, with the call it was written in,
 * and sent when its line ends, when the thread writes in another call, at
 * flush() (that thread's), before a fork and at exit (all). */
static const char source[] =
    "import atexit, os, threading\n"
    "\n"
    "def _field(s):\n"
    "    return str(s).replace(_RS, ' ').replace(_US, ' ')"
    ".replace('\\n', ' ')[:100]\n"
    "\n"
    "def _record(ctx, level, logger, text):\n"
    "    data = text.encode('utf-8', 'backslashreplace')[:_MAX + 1]\n"
    "    rid, fn = ('', '') if ctx is None else ctx\n"
    "    head = '%sl%s%s%s%s%s%s%s%s%d\\n' % (_RS, rid, _US, _field(fn), _US,\n"
    "        level, _US, _field(logger), _US, len(data))\n"
    "    return head.encode('utf-8', 'backslashreplace') + data\n"
    "\n"
    "class _Binary:\n"
    "    '''sys.stdout.buffer: bytes, taken as UTF-8.'''\n"
    "    def __init__(self, text):\n"
    "        self._text = text\n"
    "    def write(self, b):\n"
    "        self._text.write(bytes(b).decode('utf-8', 'backslashreplace'))\n"
    "        return len(b)\n"
    "    def flush(self):\n"
    "        self._text.flush()\n"
    "    def writable(self):\n"
    "        return True\n"
    "    def fileno(self):\n"
    "        return self._text.fileno()\n"
    "    def isatty(self):\n"
    "        return False\n"
    "\n"
    "class Writer:\n"
    "    '''A gild worker's sys.stdout or sys.stderr: each line is one gild\n"
    "    log event, naming the call running on the thread that wrote it.'''\n"
    "    encoding = 'utf-8'\n"
    "    errors = 'backslashreplace'\n"
    "    newlines = None\n"
    "    line_buffering = True\n"
    "    closed = False\n"
    "    def __init__(self, fd, name):\n"
    "        self._fd = fd\n"
    "        self.name = '<gild %s>' % name\n"
    "        self._mu = threading.Lock()\n"
    "        self._pending = {}\n"
    "        self.buffer = _Binary(self)\n"
    "    def _send(self, data):\n"
    "        while data:\n"
    "            try:\n"
    "                n = os.write(self._fd, data)\n"
    "            except InterruptedError:\n"
    "                continue\n"
    "            except OSError:\n"
    "                return\n"
    "            data = data[n:]\n"
    "    def record(self, ctx, level, logger, text):\n"
    "        rec = _record(ctx, level, logger, text)\n"
    "        with self._mu:\n"
    "            self._send(rec)\n"
    "    def write(self, s):\n"
    "        if not isinstance(s, str):\n"
    "            raise TypeError('write() argument must be str, not '\n"
    "                            + type(s).__name__)\n"
    "        if not s:\n"
    "            return 0\n"
    "        ctx = _context()\n"
    "        tid = threading.get_ident()\n"
    "        lines = s.split('\\n')\n"
    "        out = []\n"
    "        with self._mu:\n"
    "            was = self._pending.pop(tid, None)\n"
    "            pend = ''\n"
    "            if was is not None and was[0] != ctx:\n"
    "                out.append(_record(was[0], '', '', was[1]))\n"
    "            elif was is not None:\n"
    "                pend = was[1]\n"
    "            for piece in lines[:-1]:\n"
    "                out.append(_record(ctx, '', '',\n"
    "                                   (pend + piece[:_MAX + 1])[:_MAX + 1]))\n"
    "                pend = ''\n"
    "            pend = (pend + lines[-1][:_MAX + 1])[:_MAX + 1]\n"
    "            if pend:\n"
    "                self._pending[tid] = (ctx, pend)\n"
    "            if out:\n"
    "                self._send(b''.join(out))\n"
    "        return len(s)\n"
    "    def writelines(self, lines):\n"
    "        for s in lines:\n"
    "            self.write(s)\n"
    "    def flush(self):\n"
    "        with self._mu:\n"
    "            was = self._pending.pop(threading.get_ident(), None)\n"
    "            if was is not None:\n"
    "                self._send(_record(was[0], '', '', was[1]))\n"
    "    def flush_all(self):\n"
    "        with self._mu:\n"
    "            out = [_record(c, '', '', t) for c, t in\n"
    "                   self._pending.values()]\n"
    "            self._pending.clear()\n"
    "            if out:\n"
    "                self._send(b''.join(out))\n"
    "    def _after_fork(self):\n"
    "        self._mu = threading.Lock()\n"
    "        self._pending = {}\n"
    "    def fileno(self):\n"
    "        return self._fd\n"
    "    def isatty(self):\n"
    "        return False\n"
    "    def readable(self):\n"
    "        return False\n"
    "    def writable(self):\n"
    "        return True\n"
    "    def seekable(self):\n"
    "        return False\n"
    "    def close(self):\n"
    "        self.flush_all()\n"
    "    def reconfigure(self, **kwargs):\n"
    "        pass\n"
    "\n"
    "def install():\n"
    "    import sys\n"
    "    global stdout, stderr\n"
    "    stdout = sys.stdout = Writer(1, 'stdout')\n"
    "    stderr = sys.stderr = Writer(2, 'stderr')\n"
    "    for w in (stdout, stderr):\n"
    "        os.register_at_fork(before=w.flush_all,\n"
    "                            after_in_child=w._after_fork)\n"
    "        atexit.register(w.flush_all)\n"
    "\n"
    "def install_handler():\n"
    "    import logging\n"
    "    root = logging.getLogger()\n"
    "    if root.handlers:\n"
    "        return\n"
    "    class GildHandler(logging.Handler):\n"
    "        '''Makes each logging record one gild log event.'''\n"
    "        def emit(self, record):\n"
    "            try:\n"
    "                stderr.record(_context(), record.levelname,\n"
    "                              record.name, self.format(record))\n"
    "            except RecursionError:\n"
    "                raise\n"
    "            except Exception:\n"
    "                self.handleError(record)\n"
    "    root.addHandler(GildHandler())\n"
    "    if root.level == logging.WARNING:\n"
    "        root.setLevel(logging.INFO)\n";

/* _gild_applog, made on first use (new reference), or NULL. */
static PyObject *
module(void)
{
	PyObject *m, *d, *wm = NULL, *ctx = NULL, *r = NULL;
	char sep[2][2] = {{APPLOG_RS, 0}, {APPLOG_US, 0}};

	if ((m = PyImport_ImportModule("_gild_applog")) != NULL)
		return m;
	PyErr_Clear();
	if ((m = PyImport_AddModule("_gild_applog")) == NULL) /* borrowed */
		return NULL;
	Py_INCREF(m);
	d = PyModule_GetDict(m); /* borrowed */
	if ((wm = PyImport_ImportModule("_gild_worker")) == NULL ||
	    (ctx = PyObject_GetAttrString(wm, "log_context")) == NULL ||
	    PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins()) ||
	    PyDict_SetItemString(d, "_context", ctx) ||
	    PyModule_AddStringConstant(m, "_RS", sep[0]) ||
	    PyModule_AddStringConstant(m, "_US", sep[1]) ||
	    PyModule_AddIntConstant(m, "_MAX", APPLOG_LINE_MAX) ||
	    (r = PyRun_String(source, Py_file_input, d, d)) == NULL) {
		/* The worker does not start: what is left of the module
		 * does not matter. */
		Py_CLEAR(m);
	}
	Py_XDECREF(r);
	Py_XDECREF(ctx);
	Py_XDECREF(wm);
	return m;
}

/* Calls _gild_applog.fn(). Returns 0 or -1 with err set. */
static int
call(const char *fn, werr *err)
{
	PyObject *m = module(), *r = NULL;

	if (m != NULL)
		r = PyObject_CallMethod(m, fn, NULL);
	Py_XDECREF(m);
	if (r == NULL)
		return werr_from_python(err, GILD__V1__CODE__INTERNAL);
	Py_DECREF(r);
	return 0;
}

void
applog_announce(void)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%cp%ld\n", APPLOG_RS,
	    (long) getpid());

	for (int fd = 1; fd <= 2; fd++)
		if (write(fd, buf, (size_t) n) < 0)
			(void) 0; /* nobody reads: nothing to tell */
}

int
applog_install(werr *err)
{
	return call("install", err);
}

int
applog_install_handler(werr *err)
{
	return call("install_handler", err);
}
