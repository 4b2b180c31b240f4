/* fw_pf.c - placeholder until the backend lands (same commit series). */
#include <stdio.h>

#include "pf-sync/fw.h"

/* fw_pf_open - not written yet */
static int
fw_pf_open(const struct fw_names *nm, void **state, char *err, size_t errsz)
{
	snprintf(err, errsz, "firewall backend pf: not implemented yet");
	return -1;
}

/* fw_pf_close - nothing */
static void
fw_pf_close(void *state)
{
}

/* fw_pf_flush - never reached */
static int
fw_pf_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	return -1;
}

/* fw_pf_list - never reached */
static int
fw_pf_list(void *state, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	return -1;
}

const struct fw_backend fw_backend_pf = {
	.name = "pf",
	.open = fw_pf_open,
	.close = fw_pf_close,
	.flush = fw_pf_flush,
	.list = fw_pf_list,
};
