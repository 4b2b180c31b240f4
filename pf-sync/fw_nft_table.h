/*
 * fw_nft_table.h - is one nftables table there: one netlink request,
 * never the sets' elements (see fw_nft_table.c).
 */
#ifndef FW_NFT_TABLE_H
#define FW_NFT_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* fw_nft_table_handle - ask the kernel for table of family ("inet",
 * "ip", ...): 1 there (its handle, new each time the table is made, in
 * *handle), 0 no such table, -1 cannot tell (errno; a 2 s bound on the
 * answer) */
int	fw_nft_table_handle(const char *family, const char *table,
	    uint64_t *handle);
/* the parts, for the unit test: the NFPROTO_ of a family name (-1
 * unknown); the request's bytes (0: the name does not fit); one answer
 * datagram read (1 table, 0 none, -1 error, 2 read on; *seen set once
 * the table's message went by) */
int	fw_nft_table_family(const char *family);
size_t	fw_nft_table_request(char *buf, size_t bufsz, int proto,
	    const char *table, uint32_t seq);
int	fw_nft_table_reply(const char *buf, size_t n, uint32_t seq,
	    uint64_t *handle, int *seen);

#endif
