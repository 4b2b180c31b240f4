/* fw_ipset.c - placeholder until the backend lands (same commit series). */
#include <stdio.h>

#include "pf-sync/fw.h"

/* fw_ipset_open - not written yet */
static int
fw_ipset_open(const struct fw_names *nm, void **state, char *err, size_t errsz)
{
	snprintf(err, errsz, "firewall backend ipset: not implemented yet");
	return -1;
}

/* fw_ipset_close - nothing */
static void
fw_ipset_close(void *state)
{
}

/* fw_ipset_flush - never reached */
static int
fw_ipset_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	return -1;
}

/* fw_ipset_list - never reached */
static int
fw_ipset_list(void *state, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	return -1;
}

const struct fw_backend fw_backend_ipset = {
	.name = "ipset",
	.open = fw_ipset_open,
	.close = fw_ipset_close,
	.flush = fw_ipset_flush,
	.list = fw_ipset_list,
};
