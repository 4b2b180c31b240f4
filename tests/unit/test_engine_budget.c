/*
 * test_engine_budget.c - the -c/-B budget shared by the engines
 * (spamd/engine/engine_budget.c): scripts of take/put/black steps from several
 * slots against the daemon-wide counts, the reset, and two processes
 * sharing one page as the forked engines do.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "spamd/engine/engine.h"

enum op { TAKE, PUT, BLACK, UNBLACK, RESET, END };

/* One step: what slot does, what it must return (TAKE), and the
 * daemon-wide counts and full flags after it. */
struct step {
	enum op	 op;
	int	 slot;
	int	 ret;		/* TAKE: 1 taken, 0 refused */
	int	 conns, black;
	int	 full, black_full;
};

/* One script against a fresh budget. */
struct script {
	const char	*name;
	int		 nslots, maxcon, maxblack;
	struct step	 steps[16];
};

static const struct script scripts[] = {
	{ "-c 3 over three engines, unevenly", 3, 3, 3, {
		{ TAKE, 0, 1, 1, 0, 0, 0 },
		{ TAKE, 0, 1, 2, 0, 0, 0 },
		{ TAKE, 0, 1, 3, 0, 1, 0 },	/* one engine holds all */
		{ TAKE, 1, 0, 3, 0, 1, 0 },	/* another is refused */
		{ TAKE, 2, 0, 3, 0, 1, 0 },
		{ PUT, 0, 0, 2, 0, 0, 0 },	/* a close in engine 0 ... */
		{ TAKE, 2, 1, 3, 0, 1, 0 },	/* ... lets engine 2 in */
		{ TAKE, 1, 0, 3, 0, 1, 0 },
		{ END, 0, 0, 0, 0, 0, 0 } } },
	{ "-B 2: the tarpitted count is daemon-wide", 2, 10, 2, {
		{ TAKE, 0, 1, 1, 0, 0, 0 },
		{ BLACK, 0, 0, 1, 1, 0, 0 },
		{ TAKE, 1, 1, 2, 1, 0, 0 },
		{ BLACK, 1, 0, 2, 2, 0, 1 },
		{ UNBLACK, 0, 0, 2, 1, 0, 0 },
		{ PUT, 0, 0, 1, 1, 0, 0 },
		{ END, 0, 0, 0, 0, 0, 0 } } },
	{ "reset: counts of dead engines are gone", 2, 2, 2, {
		{ TAKE, 0, 1, 1, 0, 0, 0 },
		{ TAKE, 1, 1, 2, 0, 1, 0 },
		{ BLACK, 1, 0, 2, 1, 1, 0 },
		{ RESET, 0, 0, 0, 0, 0, 0 },
		{ TAKE, 1, 1, 1, 0, 0, 0 },
		{ TAKE, 1, 1, 2, 0, 1, 0 },
		{ END, 0, 0, 0, 0, 0, 0 } } },
	{ "-c 1, one engine", 1, 1, 1, {
		{ TAKE, 0, 1, 1, 0, 1, 0 },
		{ TAKE, 0, 0, 1, 0, 1, 0 },
		{ PUT, 0, 0, 0, 0, 0, 0 },
		{ TAKE, 0, 1, 1, 0, 1, 0 },
		{ END, 0, 0, 0, 0, 0, 0 } } },
};

/* run_script - every step of one script, checking after each */
static void
run_script(const struct script *sc)
{
	struct engine_budget *b;
	const struct step *st;
	int conns, black, i, r;

	b = engine_budget_new(sc->nslots, sc->maxcon, sc->maxblack);
	assert_non_null(b);
	for (i = 0; sc->steps[i].op != END; i++) {
		st = &sc->steps[i];
		r = 0;
		switch (st->op) {
		case TAKE:
			r = engine_budget_take(b, st->slot);
			break;
		case PUT:
			engine_budget_put(b, st->slot);
			break;
		case BLACK:
			engine_budget_black(b, st->slot, 1);
			break;
		case UNBLACK:
			engine_budget_black(b, st->slot, -1);
			break;
		case RESET:
			engine_budget_reset(b);
			break;
		case END:
			break;
		}
		if (st->op == TAKE && r != st->ret)
			fail_msg("%s: step %d: take returned %d, want %d",
			    sc->name, i, r, st->ret);
		engine_budget_counts(b, &conns, &black);
		if (conns != st->conns || black != st->black ||
		    engine_budget_full(b) != st->full ||
		    engine_budget_black_full(b) != st->black_full)
			fail_msg("%s: step %d: conns=%d black=%d full=%d "
			    "black_full=%d, want %d %d %d %d", sc->name, i,
			    conns, black, engine_budget_full(b),
			    engine_budget_black_full(b), st->conns, st->black,
			    st->full, st->black_full);
	}
	engine_budget_free(b);
}

/* test_scripts - every script of the table */
static void
test_scripts(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
		run_script(&scripts[i]);
}

/* test_bad_slots - no page for 0 or more than ENGINE_BUDGET_SLOTS */
static void
test_bad_slots(void **state)
{
	(void)state;
	assert_null(engine_budget_new(0, 10, 10));
	assert_null(engine_budget_new(ENGINE_BUDGET_SLOTS + 1, 10, 10));
	engine_budget_free(NULL);
}

/* test_processes - two forked processes take from one page at the same
 * time: together never more than -c, and what they hold is seen here */
static void
test_processes(void **state)
{
	enum { MAX = 5000, EACH = 4000 };
	struct engine_budget *b;
	pid_t pid[2];
	int conns, black, i, k, st, got = 0;

	(void)state;
	b = engine_budget_new(2, MAX, MAX);
	assert_non_null(b);
	for (k = 0; k < 2; k++) {
		pid[k] = fork();
		assert_true(pid[k] != -1);
		if (pid[k] == 0) {
			/* what it takes stays taken when it exits */
			for (i = 0; i < EACH; i++)
				(void)engine_budget_take(b, k);
			_exit(0);
		}
	}
	for (k = 0; k < 2; k++) {
		assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
		assert_true(WIFEXITED(st));
	}
	engine_budget_counts(b, &conns, &black);
	assert_int_equal(conns, MAX);	/* 8000 tries, exactly -c taken */
	assert_int_equal(black, 0);
	assert_true(engine_budget_full(b));
	/* the slots were the children's; the reset frees what they held */
	engine_budget_reset(b);
	for (i = 0; i < MAX + 10; i++)
		got += engine_budget_take(b, 0);
	assert_int_equal(got, MAX);
	engine_budget_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_bad_slots),
		cmocka_unit_test(test_processes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
