/* burst: submits N calls of `add` from one client as fast as it can, then
 * counts the replies that never arrive (within a timeout). Measures whether
 * the server loses replies under bursts.
 * usage: burst URL N [ROUNDS] */
#include "gild.h"

#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	const char *urls[1];
	gild_client *c;
	gild_error err = {0};
	int n, rounds, lost_total = 0, wrong = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: burst URL N [ROUNDS]\n");
		return 2;
	}
	urls[0] = argv[1];
	n = atoi(argv[2]);
	rounds = argc > 3 ? atoi(argv[3]) : 1;
	if (gild_connect(&c, urls, 1, &err) != GILD_OK) {
		fprintf(stderr, "%s: %s\n", gild_code_name(err.code), err.message);
		return 1;
	}
	for (int r = 0; r < rounds; r++) {
		int got = 0;
		for (int i = 0; i < n; i++) {
			gild_value *args = gild_list();
			gild_call_id id;
			gild_list_append(args, gild_int(i));
			gild_list_append(args, gild_int(1));
			gild_submit(c, "add", args, NULL, &id, NULL);
			gild_value_free(args);
		}
		for (;;) {
			gild_result res = {0};
			if (gild_poll(c, 5000, &res) != GILD_OK)
				break;
			got++;
			wrong += res.code != GILD_OK;
			gild_result_clear(&res);
		}
		printf("round %d: %d of %d replies\n", r, got, n);
		lost_total += n - got;
	}
	printf("lost %d, errors %d\n", lost_total, wrong);
	gild_close(c);
	return lost_total != 0;
}
