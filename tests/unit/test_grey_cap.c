/*
 * test_grey_cap.c - the writer's count of new tuples per client address
 * (spamd/grey_cap.c, --max-new-tuples): what one address or IPv6 /64 may
 * still store, the window, the first-refusal signal, eviction from the
 * fixed table and its bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "spamd/writer/grey.h"

#define T0	1800000000LL
#define WIN	3600

/* test_budget - an address's budget, spent, refused once, then silent */
static void
test_budget(void **state)
{
	struct grey_cap *c = grey_cap_new(3, WIN, GREY_CAP_SLOTS);
	struct grey_cap_slot *s, *s2;
	long live, capped, evicted;
	char buf[64];

	assert_non_null(c);
	grey_cap_batch(c);
	s = grey_cap_get(c, "192.0.2.1", T0);
	assert_non_null(s);
	assert_int_equal(grey_cap_left(c, s), 3);
	assert_int_equal(grey_cap_used(c, s, 2, 0), 0);
	assert_int_equal(grey_cap_left(c, s), 1);
	/* the same address, later in the window: the same slot */
	grey_cap_batch(c);
	s2 = grey_cap_get(c, "192.0.2.1", T0 + WIN - 1);
	assert_ptr_equal(s, s2);
	assert_int_equal(grey_cap_left(c, s2), 1);
	/* one stored, two refused: the first refusal says so, once */
	assert_int_equal(grey_cap_used(c, s2, 1, 2), 1);
	assert_int_equal(grey_cap_left(c, s2), 0);
	assert_int_equal(grey_cap_used(c, s2, 0, 5), 0);
	assert_string_equal(grey_cap_prefix(s2, buf, sizeof(buf)),
	    "192.0.2.1/32");
	grey_cap_counts(c, T0 + 10, &live, &capped, &evicted);
	assert_int_equal(live, 1);
	assert_int_equal(capped, 1);
	assert_int_equal(evicted, 0);
	/* another address has its own budget */
	s2 = grey_cap_get(c, "192.0.2.2", T0 + 10);
	assert_non_null(s2);
	assert_ptr_not_equal(s, s2);
	assert_int_equal(grey_cap_left(c, s2), 3);
	/* the window is over: the count and the log start again */
	grey_cap_batch(c);
	s2 = grey_cap_get(c, "192.0.2.1", T0 + WIN);
	assert_ptr_equal(s, s2);
	assert_int_equal(grey_cap_left(c, s2), 3);
	assert_int_equal(grey_cap_used(c, s2, 3, 1), 1);
	grey_cap_counts(c, T0 + WIN, &live, &capped, &evicted);
	assert_int_equal(capped, 2);
	/* a NULL slot has nothing left and is never logged */
	assert_int_equal(grey_cap_left(c, NULL), 0);
	assert_int_equal(grey_cap_used(c, NULL, 0, 1), 0);
	/* not an address */
	assert_null(grey_cap_get(c, "nope", T0));
	assert_null(grey_cap_get(c, "", T0));
	grey_cap_free(c);
	grey_cap_free(NULL);
	/* bad arguments */
	assert_null(grey_cap_new(0, WIN, GREY_CAP_SLOTS));
	assert_null(grey_cap_new(1, 0, GREY_CAP_SLOTS));
	assert_null(grey_cap_new(1, WIN, GREY_CAP_WAYS - 1));
}

/* test_v6_prefix - IPv6 is counted per /64; IPv4-mapped as IPv4 */
static void
test_v6_prefix(void **state)
{
	struct grey_cap *c = grey_cap_new(5, WIN, GREY_CAP_SLOTS);
	struct grey_cap_slot *a, *b, *o, *v4, *m;
	char buf[64];

	assert_non_null(c);
	grey_cap_batch(c);
	a = grey_cap_get(c, "2001:db8:1:2::1", T0);
	b = grey_cap_get(c, "2001:db8:1:2:ffff:eeee:dddd:cccc", T0);
	o = grey_cap_get(c, "2001:db8:1:3::1", T0);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, o);
	assert_string_equal(grey_cap_prefix(a, buf, sizeof(buf)),
	    "2001:db8:1:2::/64");
	assert_string_equal(grey_cap_prefix(o, buf, sizeof(buf)),
	    "2001:db8:1:3::/64");
	grey_cap_used(c, a, 4, 0);
	assert_int_equal(grey_cap_left(c, b), 1);
	assert_int_equal(grey_cap_left(c, o), 5);
	/* an IPv4 address and its mapped IPv6 form are one client; the
	 * IPv6 /64 with the same 64 bits as a number is another */
	v4 = grey_cap_get(c, "198.51.100.7", T0);
	m = grey_cap_get(c, "::ffff:198.51.100.7", T0);
	assert_ptr_equal(v4, m);
	assert_ptr_not_equal(v4, grey_cap_get(c, "0:0:c633:6407::", T0));
	grey_cap_free(c);
}

/* test_eviction - a full set: a window that is over is reused first,
 * then the oldest window is evicted (counted), never a slot taken in the
 * current batch */
static void
test_eviction(void **state)
{
	struct grey_cap *c = grey_cap_new(2, WIN, GREY_CAP_WAYS);
	struct grey_cap_slot *s[GREY_CAP_WAYS], *x;
	long live, capped, evicted;
	char ip[32];
	int i;

	assert_non_null(c);	/* one set: every address shares it */
	grey_cap_batch(c);
	for (i = 0; i < GREY_CAP_WAYS; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
		s[i] = grey_cap_get(c, ip, T0 + i);
		assert_non_null(s[i]);
		grey_cap_used(c, s[i], 2, 0);
	}
	/* the set is full of this batch's slots: no room */
	assert_null(grey_cap_get(c, "10.0.1.1", T0 + 20));
	/* next batch: the oldest (10.0.0.1, from T0) goes */
	grey_cap_batch(c);
	x = grey_cap_get(c, "10.0.1.1", T0 + 20);
	assert_ptr_equal(x, s[0]);
	assert_int_equal(grey_cap_left(c, x), 2);
	grey_cap_used(c, x, 1, 0);
	grey_cap_counts(c, T0 + 20, &live, &capped, &evicted);
	assert_int_equal(evicted, 1);
	assert_int_equal(live, GREY_CAP_WAYS);
	/* 10.0.0.1 was forgotten: it starts over (evicting 10.0.0.2) */
	x = grey_cap_get(c, "10.0.0.1", T0 + 21);
	assert_ptr_equal(x, s[1]);
	assert_int_equal(grey_cap_left(c, x), 2);
	/* 10.0.0.3 is still counted */
	assert_int_equal(grey_cap_left(c, grey_cap_get(c, "10.0.0.3",
	    T0 + 22)), 0);
	/* after the hour, a free window is reused without an eviction */
	grey_cap_batch(c);
	x = grey_cap_get(c, "10.0.2.1", T0 + 5 + WIN);
	assert_non_null(x);
	grey_cap_counts(c, T0 + 5 + WIN, &live, &capped, &evicted);
	assert_int_equal(evicted, 2);
	grey_cap_free(c);
}

/* test_known_only - a client whose tuples were all known holds its
 * slot only for its batch: the next address takes it, no eviction */
static void
test_known_only(void **state)
{
	struct grey_cap *c = grey_cap_new(2, WIN, GREY_CAP_WAYS);
	struct grey_cap_slot *s[GREY_CAP_WAYS], *x;
	long live, capped, evicted;
	char ip[32];
	int i;

	assert_non_null(c);
	grey_cap_batch(c);
	for (i = 0; i < GREY_CAP_WAYS; i++) {
		snprintf(ip, sizeof(ip), "10.9.0.%d", i + 1);
		s[i] = grey_cap_get(c, ip, T0 + i);
		grey_cap_used(c, s[i], i == 3 ? 0 : 1, 0);
	}
	grey_cap_counts(c, T0 + 10, &live, &capped, &evicted);
	assert_int_equal(live, GREY_CAP_WAYS - 1);
	/* in the same batch its slot stays */
	assert_null(grey_cap_get(c, "10.9.1.1", T0 + 10));
	grey_cap_batch(c);
	x = grey_cap_get(c, "10.9.1.1", T0 + 10);
	assert_ptr_equal(x, s[3]);
	grey_cap_counts(c, T0 + 10, &live, &capped, &evicted);
	assert_int_equal(evicted, 0);
	grey_cap_free(c);
}

/* test_bounded - 200,000 addresses in a 65,536-slot table: it never
 * holds more, and each address it still holds has its own count */
static void
test_bounded(void **state)
{
	struct grey_cap *c = grey_cap_new(200, WIN, GREY_CAP_SLOTS);
	struct grey_cap_slot *s;
	long live, capped, evicted;
	char ip[32];
	int i;

	assert_non_null(c);
	for (i = 0; i < 200000; i++) {
		if (i % 256 == 0)
			grey_cap_batch(c);
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255,
		    i >> 8 & 255, i & 255);
		s = grey_cap_get(c, ip, T0 + i / 100);
		assert_non_null(s);
		grey_cap_used(c, s, 1, 0);
	}
	grey_cap_counts(c, T0 + 2000, &live, &capped, &evicted);
	assert_true(live <= GREY_CAP_SLOTS);
	assert_true(live > GREY_CAP_SLOTS / 2);
	assert_int_equal(evicted, 200000 - live);
	/* the last address is held, with its one tuple */
	grey_cap_batch(c);
	s = grey_cap_get(c, "10.3.13.63", T0 + 2000);	/* i = 199999 */
	assert_int_equal(grey_cap_left(c, s), 199);
	grey_cap_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_v6_prefix),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_known_only),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
