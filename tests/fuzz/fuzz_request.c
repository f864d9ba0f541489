/* libFuzzer target: arbitrary bytes as a client's Request, through the front
 * end's decoder and validator (server/parse.c). Checks the borrowed slices
 * stay inside the input and a refused request always says why. */
#include "server/parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parsed_request pr;

	parse_request(data, size, 1u << 20, &pr);
	if (pr.code != 0 && pr.message[0] == '\0')
		abort();
	/* A Request.shm is served from its memfd, whatever else it holds
	 * (shm.h): its body, if any, is not used. */
	if (pr.code == 0 && !pr.shm) {
		if (pr.body == BODY_NONE || pr.data < data ||
		    pr.data + pr.len > data + size)
			abort();
		if (pr.ping_payload != NULL &&
		    (pr.ping_payload < pr.data ||
			pr.ping_payload + pr.ping_payload_len > pr.data + pr.len))
			abort();
		if (pr.body == BODY_CALL &&
		    (pr.function_len == 0 ||
			(const uint8_t *) pr.function < pr.data ||
			(const uint8_t *) pr.function + pr.function_len >
			    pr.data + pr.len))
			abort();
	}
	return 0;
}
