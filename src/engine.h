/*
 * engine.h — the data path: consume → route → extract → apply → commit.
 *
 * One thread. A batch is collected from the consumer (up to
 * apply.batch_size messages, apply.batch_bytes or apply.batch_wait_ms), extracted, reduced and
 * applied in one sink transaction together with its offsets; then Kafka
 * offsets are committed and telemetry is told what happened. Signals only
 * set the flags below; reloads and shutdown happen between batches.
 */
#ifndef CDCR_ENGINE_H
#define CDCR_ENGINE_H

#include <signal.h>

#include "config.h"
#include "telemetry.h"

struct engine;

struct engine_flags {
	volatile sig_atomic_t stop;
	volatile sig_atomic_t reload;
	volatile sig_atomic_t status;    /* SIGUSR1: log a progress line now */
};

/* The telemetry of a configuration (NULL when otlp.endpoint is empty, or
 * when it cannot start: then *failed is set and the reason logged). */
struct tele *engine_telemetry(const struct config *c, int *failed);

/* Takes ownership of tele (may be NULL; freed on failure too) and, on
 * success, of cfg (the caller keeps cfg on failure). The engine replaces
 * tele when a reload changes otlp.* settings. */
struct engine *engine_new(struct config *cfg, struct tele *tele, struct engine_flags *flags, char *err,
                          size_t errlen);
/* The telemetry, handed back to the caller (who then frees it), e.g. to log
 * past engine_free(). */
struct tele *engine_take_telemetry(struct engine *e);
/* Runs until flags->stop; returns the process exit status. */
int engine_run(struct engine *e);
void engine_free(struct engine **ep);

enum { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_POLICY_STOP = 2, EXIT_FATAL = 3 };

#endif
