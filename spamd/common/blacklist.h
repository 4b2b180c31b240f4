/*
 * blacklist.h - the engine's in-memory blacklists.
 *
 * spamd-setup sends one list per connection to the config port in the
 * OpenBSD format (see shared DESIGN.md):
 *   tag;"message";inet;COUNT;a.b.c.d/m;...[;inet6;COUNT;addr/m;...]\n
 * "tag;" alone clears the list; the same tag again replaces it. A set holds
 * many named lists; a lookup is a longest-prefix style search over IPv4 and
 * IPv6 that returns every list containing the address, in load order.
 */
#ifndef SPAMD_BLACKLIST_H
#define SPAMD_BLACKLIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BL_TAG_MAX	64	/* list name, NUL included */
#define BL_MSG_MAX	4096	/* message template, NUL included */
#define BL_MAX_LISTS	64	/* lists in one set (a match is a bitmask) */

struct bl_set;			/* every loaded list, ready for lookups */
struct bl_list;			/* one parsed list, not yet in a set */

/* An address to look up: family AF_INET or AF_INET6, bytes in network order. */
struct bl_addr {
	int		family;
	uint8_t		a[16];
};

/* Result of a lookup: every list that contains the address, in order. */
struct bl_match {
	int		n;
	const char	*tag[BL_MAX_LISTS];
	const char	*msg[BL_MAX_LISTS];	/* template, see bl_expand */
};

/* bl_set_new / bl_set_free - an empty set */
struct bl_set	*bl_set_new(void);
void		 bl_set_free(struct bl_set *set);

/*
 * bl_parse - parse one control message (without its trailing newline) into
 * a list. On error returns NULL and writes "what at byte N" to err.
 * A message with a tag and nothing else gives a list with no entries (clear).
 * Host bits below the prefix length are masked off as OpenBSD spamd does
 * ("10.1.2.3/8" is 10.0.0.0/8); an inet6 prefix inside ::ffff:0:0/96 is
 * kept as the IPv4 prefix it stands for. The message is checked with
 * bl_check_template. buf need not be NUL-terminated; nothing past len is read.
 */
struct bl_list	*bl_parse(const char *buf, size_t len, char *err, size_t errsz);
void		 bl_list_free(struct bl_list *list);
/* bl_list_tag - the list's tag */
const char	*bl_list_tag(const struct bl_list *list);

/*
 * bl_set_apply - put list into set (replacing a list of the same tag, or
 * removing it when list has no entries); takes ownership of list (freed
 * on error too). Returns 0, or -1 with err set (too many lists, out of
 * memory; the set is then unchanged). Lookups see the old or the new set,
 * never a mix: the set's search structure is rebuilt, then swapped.
 * A replaced list keeps its place in the load order; a new tag goes last.
 * The tag and msg pointers of an earlier bl_match die with this call.
 */
int		 bl_set_apply(struct bl_set *set, struct bl_list *list,
		    char *err, size_t errsz);

/* bl_lookup - fill m with every list containing addr; returns m->n */
int		 bl_lookup(const struct bl_set *set, const struct bl_addr *addr,
		    struct bl_match *m);
/* bl_addr_from_sa - fill a bl_addr from a socket address (v4-mapped v6
 * addresses become IPv4); -1 for other families */
int		 bl_addr_from_sa(const struct sockaddr *sa, struct bl_addr *out);
/* bl_count - number of lists and of prefixes loaded, for logs */
void		 bl_count(const struct bl_set *set, int *lists, long *prefixes);
/* bl_memory - bytes held by the set's search structure and lists */
size_t		 bl_memory(const struct bl_set *set);
/* bl_list_size - number of prefixes in a parsed list (0: a clear) */
long		 bl_list_size(const struct bl_list *list);

/*
 * bl_check_template - validate a reply template: escapes are \" \\ \n and
 * %A (client address) and %% only. 0 ok; -1 with err naming the offset.
 */
int		 bl_check_template(const char *tmpl, char *err, size_t errsz);
/* bl_check_template_at - the same, offsets in err counted from base */
int		 bl_check_template_at(const char *tmpl, size_t base, char *err,
		    size_t errsz);
/*
 * bl_expand - expand a checked template for a client into SMTP reply lines:
 * each line prefixed with "code " ("450 " / "550 "), CRLF-terminated; no CR
 * or LF from the template reaches the output except as line breaks.
 * Returns bytes written (output cut at outsz - 1, always NUL-terminated).
 * A cut reply still ends with a whole CRLF line: the last line is shortened
 * and further lines dropped (nothing at all if "450 \r\n" does not fit).
 * A trailing \n does not add an empty line; an empty template gives one
 * empty line. Bytes of addr other than printable ASCII are dropped.
 */
size_t		 bl_expand(const char *tmpl, const char *addr, int code,
		    char *out, size_t outsz);

#endif /* SPAMD_BLACKLIST_H */
