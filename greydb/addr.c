/*
 * addr.c - canonical forms of what becomes a key: IP addresses and mail
 * addresses, and the record type names.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <string.h>

#include "greydb/greydb.h"

/* gdb_addr_canon - parse an IPv4/IPv6 address into canonical text */
int
gdb_addr_canon(const char *in, char out[GDB_ADDR_MAX])
{
	struct in_addr a4;
	struct in6_addr a6;

	if (in == NULL)
		return -1;
	if (inet_pton(AF_INET, in, &a4) == 1) {
		if (inet_ntop(AF_INET, &a4, out, GDB_ADDR_MAX) == NULL)
			return -1;
		return 0;
	}
	if (inet_pton(AF_INET6, in, &a6) != 1)
		return -1;
	/* An IPv4-mapped address is the IPv4 host: one key, not two. */
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], 4);
		if (inet_ntop(AF_INET, &a4, out, GDB_ADDR_MAX) == NULL)
			return -1;
		return 0;
	}
	if (inet_ntop(AF_INET6, &a6, out, GDB_ADDR_MAX) == NULL)
		return -1;
	return 0;
}

/* gdb_mail_norm - strip <> and surrounding space, lowercase, cut to size */
void
gdb_mail_norm(const char *in, char *out, size_t outsz)
{
	const char *b, *e;
	size_t n, i;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (in == NULL)
		return;
	b = in;
	e = in + strlen(in);
	while (b < e && isspace((unsigned char)*b))
		b++;
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if (b < e && *b == '<') {
		b++;
		if (e > b && e[-1] == '>')
			e--;
		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
	}
	n = (size_t)(e - b);
	if (n > outsz - 1)
		n = outsz - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)b[i]);
	out[n] = '\0';
}

/* gdb_type_name - "GREY", "WHITE", "TRAPPED", "SPAMTRAP" */
const char *
gdb_type_name(enum gdb_type type)
{
	switch (type) {
	case GDB_GREY:
		return "GREY";
	case GDB_WHITE:
		return "WHITE";
	case GDB_TRAPPED:
		return "TRAPPED";
	case GDB_SPAMTRAP:
		return "SPAMTRAP";
	}
	return "UNKNOWN";
}
