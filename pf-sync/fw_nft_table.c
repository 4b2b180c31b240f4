/*
 * fw_nft_table.c - is one nftables table there, and its handle: one
 * NFT_MSG_GETTABLE request over a netfilter netlink socket.
 *
 * Why not libnftables' "list tables": nft 1.0.6 fills its cache with
 * every set's elements even for that command, so with 300,000 addresses
 * in spamd-white one look took 2 s on an idle machine and 8 s on a busy
 * one, all of it inside the writer's event loop, every 5 s. A GETTABLE
 * for one table by name is answered with that table's attributes only,
 * whatever its sets hold.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "pf-sync/fw_nft_table.h"

#define FW_NFT_TABLE_BUF	8192

/* fw_nft_table_family - the NFPROTO_ value of an nft family name; -1 if
 * unknown */
int
fw_nft_table_family(const char *family)
{
	static const struct {
		const char	*name;
		int		 proto;
	} fam[] = {
		{ "inet", NFPROTO_INET }, { "ip", NFPROTO_IPV4 },
		{ "ip6", NFPROTO_IPV6 }, { "arp", NFPROTO_ARP },
		{ "bridge", NFPROTO_BRIDGE }, { "netdev", NFPROTO_NETDEV },
	};
	size_t i;

	for (i = 0; i < sizeof(fam) / sizeof(fam[0]); i++)
		if (strcmp(fam[i].name, family) == 0)
			return fam[i].proto;
	return -1;
}

/* fw_nft_table_request - build the GETTABLE request for table into buf;
 * its length, 0 if the name does not fit */
size_t
fw_nft_table_request(char *buf, size_t bufsz, int proto, const char *table,
    uint32_t seq)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)(void *)buf;
	struct nfgenmsg *nf;
	struct nlattr *at;
	size_t namelen = strlen(table) + 1;
	size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*nf)) +
	    NLA_ALIGN(NLA_HDRLEN + namelen);

	if (len > bufsz || namelen > NFT_TABLE_MAXNAMELEN)
		return 0;
	memset(buf, 0, len);
	nh->nlmsg_len = (uint32_t)len;
	nh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
	nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nh->nlmsg_seq = seq;
	nf = (struct nfgenmsg *)(void *)(buf + NLMSG_HDRLEN);
	nf->nfgen_family = (uint8_t)proto;
	nf->version = NFNETLINK_V0;
	nf->res_id = 0;
	at = (struct nlattr *)(void *)(buf + NLMSG_HDRLEN +
	    NLMSG_ALIGN(sizeof(*nf)));
	at->nla_type = NFTA_TABLE_NAME;
	at->nla_len = (uint16_t)(NLA_HDRLEN + namelen);
	memcpy((char *)at + NLA_HDRLEN, table, namelen);
	return len;
}

/* fw_nft_table_reply - read one answer datagram: 1 the table (its handle
 * in *handle, 0 if absent), 0 no such table, -1 another error (errno),
 * 2 nothing decisive in it yet (read on) */
int
fw_nft_table_reply(const char *buf, size_t n, uint32_t seq, uint64_t *handle,
    int *seen)
{
	const struct nlmsghdr *nh;
	size_t left = n;

	for (nh = (const struct nlmsghdr *)(const void *)buf;
	    NLMSG_OK(nh, left); nh = NLMSG_NEXT(nh, left)) {
		if (nh->nlmsg_seq != seq)
			continue;
		if (nh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(nh);

			if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
				errno = EPROTO;
				return -1;
			}
			if (e->error == 0) {	/* the ack after the table */
				if (*seen)
					return 1;
				errno = EPROTO;	/* an ack and no table */
				return -1;
			}
			if (e->error == -ENOENT)
				return 0;
			errno = -e->error;
			return -1;
		}
		if (nh->nlmsg_type ==
		    ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE)) {
			const char *p = (const char *)NLMSG_DATA(nh) +
			    NLMSG_ALIGN(sizeof(struct nfgenmsg));
			const char *end = (const char *)nh + nh->nlmsg_len;

			*seen = 1;
			while (p + NLA_HDRLEN <= end) {
				const struct nlattr *at =
				    (const struct nlattr *)(const void *)p;
				uint64_t be;

				if (at->nla_len < NLA_HDRLEN ||
				    p + at->nla_len > end)
					break;
				if ((at->nla_type & NLA_TYPE_MASK) ==
				    NFTA_TABLE_HANDLE &&
				    at->nla_len >= NLA_HDRLEN + sizeof(be)) {
					memcpy(&be, p + NLA_HDRLEN, sizeof(be));
					*handle = be64toh(be);
				}
				p += NLA_ALIGN(at->nla_len);
			}
		}
	}
	return 2;
}

/* fw_nft_table_handle - is table of family there (see fw_nft_table.h) */
int
fw_nft_table_handle(const char *family, const char *table, uint64_t *handle)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct timeval tv = { 2, 0 };	/* why: never hang the event loop */
	char buf[FW_NFT_TABLE_BUF];
	uint32_t seq = (uint32_t)time(NULL);
	size_t len;
	ssize_t n;
	int fd, proto, r = 2, seen = 0, reads = 0, saved;

	*handle = 0;
	if ((proto = fw_nft_table_family(family)) == -1 ||
	    (len = fw_nft_table_request(buf, sizeof(buf), proto, table,
	    seq)) == 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
	    NETLINK_NETFILTER)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    sendto(fd, buf, len, 0, (struct sockaddr *)&kernel,
	    sizeof(kernel)) != (ssize_t)len) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	/* the table's message, then the ack; a few reads at most */
	while (r == 2 && reads++ < 8) {
		if ((n = recv(fd, buf, sizeof(buf), 0)) <= 0) {
			if (n == 0)
				errno = EPROTO;
			r = -1;
			break;
		}
		r = fw_nft_table_reply(buf, (size_t)n, seq, handle, &seen);
	}
	saved = errno;
	close(fd);
	errno = saved;
	if (r == 2) {
		errno = EPROTO;
		return -1;
	}
	return r;
}
