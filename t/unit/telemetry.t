#!/bin/sh
exec "$CDCR_SRCDIR/t/lib/unit" test_telemetry
