/*
 * setup.h - spamd-setup: read spamd.conf, fetch the lists it names, cut the
 * white lists out of the black lists before them, collapse each black list
 * to the fewest CIDR blocks and send it to the engine's config port (and,
 * with -b, into the firewall's black sets).
 *
 * Files: setup_conf.c (getcap-style spamd.conf), setup_list.c (list files,
 * gzip), setup_cidr.c (ranges, subtraction, CIDR collapse, the control
 * message), setup_fetch.c (file, exec, http/https), setup_send.c (config
 * port), setup_main.c (the program).
 */
#ifndef SPAMD_SETUP_H
#define SPAMD_SETUP_H

#include <stddef.h>
#include <stdint.h>

#include "spamd/common/blacklist.h"

#define SETUP_CONF_DEFAULT	"/etc/mail/spamd.conf"
#define SETUP_STATE_DEFAULT	"/var/db/spamd/spamd-setup.state"
#define SETUP_PORT_DEFAULT	8026
#define SETUP_MAXSIZE_DEFAULT	(256UL * 1024 * 1024)	/* bytes, raw and inflated */
#define SETUP_TIMEOUT_DEFAULT	300	/* seconds for one fetch */
#define SETUP_TC_DEPTH		32	/* tc= nesting, as getcap */

/* --- addresses and ranges (setup_cidr.c) ----------------------------- */

/* A 128-bit value, most significant half first. */
struct setup_u128 {
	uint64_t	hi;
	uint64_t	lo;
};

struct setup_r4 {
	uint32_t	lo, hi;
};

struct setup_r6 {
	struct setup_u128 lo, hi;
};

/* A set of address ranges of both families (unsorted until collapsed). */
struct setup_addrs {
	struct setup_r4	*v4;
	size_t		 n4, cap4;
	struct setup_r6	*v6;
	size_t		 n6, cap6;
};

/* setup_addrs_free - free the arrays and zero the set */
void	setup_addrs_free(struct setup_addrs *a);
/* setup_addrs_add4 / add6 - append a range; -1 when out of memory */
int	setup_addrs_add4(struct setup_addrs *a, uint32_t lo, uint32_t hi);
int	setup_addrs_add6(struct setup_addrs *a, struct setup_u128 lo,
	    struct setup_u128 hi);
/* setup_addrs_merge - append every range of src to dst; -1 on memory */
int	setup_addrs_merge(struct setup_addrs *dst, const struct setup_addrs *src);
/* setup_collapse - sort and merge overlapping and adjacent ranges */
void	setup_collapse(struct setup_addrs *a);
/* setup_subtract - cut white out of black; both collapsed; -1 on memory */
int	setup_subtract(struct setup_addrs *black, const struct setup_addrs *white);
/* setup_u128_load - 16 network-order bytes as a value; store is the reverse */
struct setup_u128 setup_u128_load(const uint8_t *b);
void	setup_u128_store(struct setup_u128 v, uint8_t *b);

/* A growing byte buffer (the control message, fetched data). */
struct setup_buf {
	char	*p;
	size_t	 len, cap;
};

/* setup_buf_add - append n bytes; -1 when out of memory */
int	setup_buf_add(struct setup_buf *b, const void *s, size_t n);
/* setup_buf_free - free and zero */
void	setup_buf_free(struct setup_buf *b);

/*
 * setup_cidr_count - number of CIDR blocks the collapsed set needs per
 * family; -1 with err when a range would need a /0 (every address).
 */
int	setup_cidr_count(const struct setup_addrs *a, long *n4, long *n6,
	    char *err, size_t errsz);
/*
 * setup_cidr_each - call fn for every CIDR block, text "addr/m", in order;
 * stops and returns fn's value when it is not 0. The set must be collapsed
 * and must have passed setup_cidr_count.
 */
int	setup_cidr_each(const struct setup_addrs *a,
	    int (*fn)(void *arg, int af, const char *cidr), void *arg);
/*
 * setup_msg_escape - a message as the control protocol carries it, read
 * as OpenBSD's spamd reads it: \n \" \\ %A %% kept, any other '\' or '%'
 * a literal one (written doubled), '"' -> \", newline -> \n (CRLF too);
 * then checked with bl_check_template. -1 with err (control character,
 * too long).
 */
int	setup_msg_escape(const char *raw, char *out, size_t outsz, char *err,
	    size_t errsz);
/*
 * setup_message - the whole control line for a black list, '\n' included:
 * tag;"escaped";inet;N;a/m;...[;inet6;M;a/m;...]. a must be collapsed.
 * -1 with err (bad message, /0, memory).
 */
int	setup_message(const char *tag, const char *rawmsg,
	    const struct setup_addrs *a, struct setup_buf *out, char *err,
	    size_t errsz);

/* --- list files (setup_list.c) --------------------------------------- */

/* Called for each bad line with "name:line: what". */
typedef void setup_warn_fn(void *arg, const char *text);

/*
 * setup_list_line - parse one line (comment and blank allowed) into out:
 * 1 added, 0 nothing on the line, -1 bad with what set.
 */
int	setup_list_line(const char *line, size_t len, struct setup_addrs *out,
	    char *what, size_t whatsz);
/*
 * setup_list_parse - parse a whole list (plain text; gzip must be inflated
 * first). Bad lines go to warn (NULL: log_warnx) and are skipped; *nbad
 * counts them. -1 only when out of memory.
 */
int	setup_list_parse(const char *buf, size_t len, const char *name,
	    struct setup_addrs *out, setup_warn_fn *warn, void *arg,
	    long *nbad);
/* setup_is_gzip - whether the data starts with the gzip magic */
int	setup_is_gzip(const void *buf, size_t len);
/*
 * setup_gunzip - inflate gzip data (several members allowed) into out,
 * at most cap bytes; -1 with err (corrupt, truncated, too big).
 */
int	setup_gunzip(const void *in, size_t len, size_t cap,
	    struct setup_buf *out, char *err, size_t errsz);

/* --- spamd.conf (setup_conf.c) --------------------------------------- */

enum setup_method {
	SETUP_M_FILE = 0,
	SETUP_M_EXEC,
	SETUP_M_HTTP,
	SETUP_M_HTTPS
};

/* One list named by all:, in order. */
struct setup_lconf {
	char		 name[BL_TAG_MAX];
	int		 white;		/* 1 :white:, 0 :black:, -1 not known */
	char		*msg;		/* black: message text, unescaped */
	enum setup_method method;
	char		*file;		/* path, command line or host/path */
	char		 where[128];	/* "conf:line" of the entry, for logs */
	char		*error;		/* why its entry is unusable, or NULL */
};

struct setup_conf {
	struct setup_lconf	*list;
	size_t			 n;
};

/*
 * setup_conf_parse - parse spamd.conf text (path only names it in
 * errors). A list whose entry is bad is kept with its error set
 * ("path:line: entry 'x': what") and white -1 when its kind is not known:
 * it costs that list only. -1 with err when the whole file is unusable
 * (no all: entry, a NUL byte, a record too long, out of memory).
 */
int	setup_conf_parse(const char *buf, size_t len, const char *path,
	    struct setup_conf *out, char *err, size_t errsz);
/* setup_conf_load - read and parse a spamd.conf file */
int	setup_conf_load(const char *path, struct setup_conf *out, char *err,
	    size_t errsz);
/* setup_conf_free - free the lists */
void	setup_conf_free(struct setup_conf *c);
/* setup_method_name - "file", "exec", "http", "https" */
const char *setup_method_name(enum setup_method m);

/* --- fetching (setup_fetch.c) ---------------------------------------- */

struct setup_fetchopt {
	size_t		 maxsize;	/* raw and inflated cap */
	long		 timeout;	/* seconds */
};

/*
 * setup_fetch - fetch a list's bytes (file, exec argv-split with no shell,
 * http/https with libcurl: no redirect to another scheme) and inflate
 * gzip. -1 with err.
 */
int	setup_fetch(const struct setup_lconf *l, const struct setup_fetchopt *o,
	    struct setup_buf *out, char *err, size_t errsz);
/* setup_split_argv - split a command line on blanks into a NULL-ended
 * argv (one allocation, free(argv)); NULL when empty or out of memory */
char	**setup_split_argv(const char *cmd);
/* setup_read_file - read a whole file, at most cap bytes; -1 with err */
int	setup_read_file(const char *path, size_t cap, struct setup_buf *out,
	    char *err, size_t errsz);

/* --- delivery (setup_send.c) ----------------------------------------- */

/*
 * setup_send - connect to host:port, send the line, half-close, read the
 * engine's answer ("ok TAG N" / "error TAG: reason"; EOF with nothing is
 * success, as OpenBSD spamd answers nothing). 0 ok; -1 with err.
 * answer receives what the engine said (may be empty).
 */
int	setup_send(const char *host, int port, const char *line, size_t len,
	    int timeout, char *answer, size_t answersz, char *err,
	    size_t errsz);

#endif /* SPAMD_SETUP_H */
