// The extension's entry points: module magic and _PG_init, which registers the GUCs and,
// when preloaded, the pipeline launcher.
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {}
