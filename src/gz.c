/* gz.c — see gz.h. */
#include "gz.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int gz_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t cap = deflateBound(&zs, (uLong)len) + 32;    /* + gzip header/trailer */
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)cap;
	int rc = deflate(&zs, Z_FINISH);
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = zs.total_out;
	return 0;
}
