/* libFuzzer target: the route loader (libconfig syntax, every key's check,
 * jq programs, SQL templates, regexes) on an arbitrary route file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "route.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/cdcr-fuzz-route-XXXXXX", path[64];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/f.route", dir);
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs = { 0 };
	struct routes *rs;
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);
	rs = routes_load(dir, POLICY_SKIP, &errs);
	if (!rs && !errs.n)
		abort();                /* a refusal always says why */
	routes_free(&rs);
	errlist_free(&errs);
	return 0;
}
