/*
 * fuzz_setup_conf.c - libFuzzer target: spamd.conf text as spamd-setup
 * reads it (getcap records, continuation lines, tc= chains, escapes), then
 * each black list's message through the control-message escaping, as
 * spamd-setup does before sending.
 * fuzz-sources: spamd/setup/setup_conf.c spamd/setup/setup_cidr.c spamd/setup/setup_fetch.c spamd/setup/setup_list.c spamd/common/bltemplate.c spamd/common/blacklist.c spamd/common/log.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spamd/setup/setup.h"

/* LLVMFuzzerTestOneInput - parse one spamd.conf and check what it gave */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct setup_conf c;
	struct setup_addrs none;
	struct setup_buf line;
	char err[512], esc[BL_MSG_MAX + 1];
	size_t i;

	memset(&c, 0, sizeof(c));
	if (setup_conf_parse((const char *)data, size, "fuzz.conf", &c, err,
	    sizeof(err)) == -1) {
		/* an error names the file */
		if (strncmp(err, "fuzz.conf", 9) != 0)
			__builtin_trap();
		setup_conf_free(&c);
		return 0;
	}
	memset(&none, 0, sizeof(none));
	for (i = 0; i < c.n; i++) {
		const struct setup_lconf *l = &c.list[i];

		if (memchr(l->name, '\0', sizeof(l->name)) == NULL)
			__builtin_trap();
		/* a bad entry costs its list: the error names the file */
		if (l->error != NULL) {
			if (strncmp(l->error, "fuzz.conf", 9) != 0)
				__builtin_trap();
			continue;
		}
		if (l->file == NULL)
			__builtin_trap();
		(void)setup_method_name(l->method);
		if (l->white || l->msg == NULL)
			continue;
		/* the message as it would travel, with an empty list */
		(void)setup_msg_escape(l->msg, esc, sizeof(esc), err,
		    sizeof(err));
		memset(&line, 0, sizeof(line));
		(void)setup_message(l->name, l->msg, &none, &line, err,
		    sizeof(err));
		setup_buf_free(&line);
	}
	setup_conf_free(&c);
	return 0;
}
