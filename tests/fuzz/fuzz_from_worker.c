/* libFuzzer target: arbitrary bytes as a worker's FromWorker frame, through
 * the front end's decoder (server/parse.c), and the slice it would forward
 * wrapped into a Reply the way the server does, then decoded by libgild's
 * reply and value decoders, as a client would. */
#include "../../client-lib/codec.h"
#include "server/parse.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parsed_from_worker fw;
	codec_reply r;
	gild_value *v = NULL;
	gild_error err = {0};
	uint8_t *reply;
	size_t n = 0;

	parse_from_worker(data, size, &fw);
	if (fw.kind == FW_MALFORMED)
		return 0;
	if (fw.data < data || fw.data + fw.len > data + size)
		abort();
	if (fw.kind != FW_RESULT)
		return 0;
	/* What on_worker_result sends: Reply.id, then the forwarded field. */
	if ((reply = malloc(1 + WIRE_MAX_VARINT + fw.len)) == NULL)
		return 0;
	n += wire_put_tag(reply, 1, WIRE_VARINT);
	n += wire_put_varint(reply + n, 12345);
	memcpy(reply + n, fw.data, fw.len);
	n += fw.len;
	if (codec_scan_reply(reply, n, &r) == 0) {
		if (r.id != 12345)
			abort(); /* a worker must not be able to redirect it */
		if (r.body == 2)
			codec_decode_value(r.data, r.len, &v, &err);
		else if (r.body == 3)
			codec_decode_error(r.data, r.len, &err);
	}
	gild_value_free(v);
	gild_error_clear(&err);
	free(reply);
	return 0;
}
