/* libFuzzer target: the SQL template parser (named :params, casts, quotes,
 * comments, dollar quoting) on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqltpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256];
	struct sqltpl t;

	memcpy(text, data, size);
	text[size] = '\0';
	memset(&t, 0, sizeof(t));
	if (sqltpl_parse(text, &t, err, sizeof(err)) == 0)
		sqltpl_free(&t);
	free(text);
	return 0;
}
