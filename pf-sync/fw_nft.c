/* fw_nft.c - placeholder until the backend lands (same commit series). */
#include <stdio.h>

#include "pf-sync/fw.h"

/* fw_nft_open - not written yet */
static int
fw_nft_open(const struct fw_names *nm, void **state, char *err, size_t errsz)
{
	snprintf(err, errsz, "firewall backend nft: not implemented yet");
	return -1;
}

/* fw_nft_close - nothing */
static void
fw_nft_close(void *state)
{
}

/* fw_nft_flush - never reached */
static int
fw_nft_flush(void *state, const struct fw_change *ch, size_t n, char *err,
    size_t errsz)
{
	return -1;
}

/* fw_nft_list - never reached */
static int
fw_nft_list(void *state, enum fw_set set, int v6, fw_list_fn fn, void *arg,
    char *err, size_t errsz)
{
	return -1;
}

const struct fw_backend fw_backend_nft = {
	.name = "nftables",
	.open = fw_nft_open,
	.close = fw_nft_close,
	.flush = fw_nft_flush,
	.list = fw_nft_list,
};
