/* gz.h — gzip in one call (zlib), for OTLP/HTTP request bodies
 * (otlp.gzip = true). */
#ifndef CDCR_GZ_H
#define CDCR_GZ_H

#include <stddef.h>
#include <stdint.h>

/* in[0..len) as one gzip member in *out (malloc'd, *outlen bytes): 0, or -1
 * (out of memory, or zlib refused). */
int gz_compress(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen);

#endif
