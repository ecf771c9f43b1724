/* libFuzzer target: the W3C traceparent parser; what it accepts must
 * format back to a valid header. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t trace[16], span[8], flags, t2[16], s2[8], f2;
	char *copy = malloc(size ? size : 1);   /* exactly size bytes: an overread is seen */

	memcpy(copy, data, size);
	if (tele_parse_traceparent(copy, size, trace, span, &flags) == 0) {
		struct tele_ctx ctx;
		char out[56];

		memset(&ctx, 0, sizeof(ctx));
		memcpy(ctx.trace_id, trace, 16);
		memcpy(ctx.span_id, span, 8);
		for (int i = 0; i < 16; i++)
			snprintf(ctx.trace_hex + 2 * i, 3, "%02x", trace[i]);
		for (int i = 0; i < 8; i++)
			snprintf(ctx.span_hex + 2 * i, 3, "%02x", span[i]);
		ctx.sampled = flags & 1;
		tele_format_traceparent(&ctx, out);
		if (tele_parse_traceparent(out, strlen(out), t2, s2, &f2) != 0 || memcmp(t2, trace, 16) ||
		    memcmp(s2, span, 8))
			abort();
	}
	free(copy);
	return 0;
}
