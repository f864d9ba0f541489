/* embed: the smallest program that embeds CPython (Python's own main), for
 * bench/linkcmp.py to link against each form of libpython and compare. */
#include <Python.h>

int
main(int argc, char **argv)
{
	return Py_BytesMain(argc, argv);
}
