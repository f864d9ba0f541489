/* codes: gild.v1.Code's names and numbers from its descriptor (codes.h). */
#include "codes.h"

#include "gild.pb-c.h"

/* protobuf-c keeps an enum's values sorted by number. */
static const ProtobufCEnumDescriptor *const desc = &gild__v1__code__descriptor;

const char *
codes_name(int code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(desc, code);

	return v != NULL ? v->name : NULL;
}

size_t
codes_count(void)
{
	return desc->n_values;
}

int
codes_at(size_t i)
{
	return i < desc->n_values ? desc->values[i].value : -1;
}

int
codes_index(int code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(desc, code);

	return v != NULL ? (int) (v - desc->values) : -1;
}
