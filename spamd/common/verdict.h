/*
 * verdict.h - what the store made of one greylisting tuple: the reply
 * codes gdb_tuple_seen returns and the writer sends back to the engine in
 * MSG_RESULT (msg.num). Kept here, apart from greydb/greydb.h, so that the
 * engine (which holds no database) reads the writer's answers without the
 * store's header; greydb.h includes this one. The values are on the wire
 * between writer and engine: do not renumber.
 */
#ifndef SPAMD_VERDICT_H
#define SPAMD_VERDICT_H

/* Outcome of gdb_tuple_seen. */
enum gdb_result {
	GDB_R_NEW = 1,		/* first time this tuple was seen */
	GDB_R_GREY,		/* seen again, passtime not reached yet */
	GDB_R_PASSED,		/* passed now: the ip got a WHITE entry */
	GDB_R_WHITE,		/* ip already WHITE (entry refreshed) */
	GDB_R_TRAPPED,		/* ip is TRAPPED (never whitelisted) */
	GDB_R_TRAP,		/* to is a spamtrap or outside allowed
				 * domains: the ip was trapped now */
	GDB_R_REFUSED,		/* (added) would be NEW, but new tuples
				 * are refused (gdb_tuple.new_left spent,
				 * or gdb_set_no_new_grey): nothing was
				 * written; rec is what NEW would have
				 * stored. The writer never sends it to
				 * an engine: the engine hears GDB_R_NEW */
};

#endif /* SPAMD_VERDICT_H */
