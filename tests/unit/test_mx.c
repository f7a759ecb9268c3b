/* test_mx - MX ordering, self and null MX, address filter (SECURITY.md Y1-Y3) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "dns/mx.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* rng - a seeded xorshift32, so tie-breaking is reproducible */
static uint32_t rng(void *arg)
{
	uint32_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* sa - an address (IPv4 or IPv6 text) as a sockaddr_storage, port 0 */
static struct sockaddr_storage sa(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (void *)&ss;
	struct sockaddr_in6 *s6 = (void *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
	}
	return ss;
}

static void test_sort_and_normalize(void **state)
{
	const struct mx_rr rr[] = {
		{ "MX30.Example.ORG.", 30 },
		{ "mx10.example.org", 10 },
		{ "mx20.example.org.", 20 },
		{ "mx0.example.org", 0 },
	};
	struct mx_list l;

	assert_int_equal(mx_order(rr, NELEM(rr), NULL, NULL, NULL, &l), MX_OK);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.host[0].name, "mx0.example.org");
	assert_string_equal(l.host[1].name, "mx10.example.org");
	assert_string_equal(l.host[2].name, "mx20.example.org");
	assert_string_equal(l.host[3].name, "mx30.example.org");
	assert_int_equal(l.host[0].pref, 0);
	assert_int_equal(l.host[3].pref, 30);
	assert_int_equal(l.nbad, 0);
	assert_false(l.self_seen);
}

static void test_ties_deterministic(void **state)
{
	const struct mx_rr rr[] = {
		{ "c.example", 20 }, { "a.example", 10 }, { "d.example", 20 },
		{ "b.example", 10 }, { "e.example", 20 },
	};
	struct mx_list l1, l2, plain;
	uint32_t s1 = 12345, s2 = 12345, s;
	unsigned first_a = 0, first_b = 0, seed;
	size_t i;

	/* no rng: equal preferences keep the DNS order */
	assert_int_equal(mx_order(rr, NELEM(rr), NULL, NULL, NULL, &plain),
	    MX_OK);
	assert_string_equal(plain.host[0].name, "a.example");
	assert_string_equal(plain.host[1].name, "b.example");
	assert_string_equal(plain.host[2].name, "c.example");
	assert_string_equal(plain.host[3].name, "d.example");
	assert_string_equal(plain.host[4].name, "e.example");

	/* the same seed gives the same order */
	assert_int_equal(mx_order(rr, NELEM(rr), NULL, rng, &s1, &l1), MX_OK);
	assert_int_equal(mx_order(rr, NELEM(rr), NULL, rng, &s2, &l2), MX_OK);
	assert_int_equal(l1.n, 5);
	for (i = 0; i < l1.n; i++)
		assert_string_equal(l1.host[i].name, l2.host[i].name);

	/* over many seeds both orders of a tie appear, never across prefs */
	for (seed = 1; seed <= 200; seed++) {
		s = seed;
		assert_int_equal(mx_order(rr, NELEM(rr), NULL, rng, &s, &l1),
		    MX_OK);
		assert_int_equal(l1.n, 5);
		assert_int_equal(l1.host[0].pref, 10);
		assert_int_equal(l1.host[1].pref, 10);
		for (i = 2; i < 5; i++) {
			assert_int_equal(l1.host[i].pref, 20);
			assert_true(strcmp(l1.host[i].name, "a.example") &&
			    strcmp(l1.host[i].name, "b.example"));
		}
		if (strcmp(l1.host[0].name, "a.example") == 0)
			first_a++;
		else
			first_b++;
	}
	assert_true(first_a > 50 && first_b > 50);
}

static void test_truncate_hosts(void **state)
{
	struct mx_rr rr[15];
	char names[15][32];
	struct mx_list l;
	uint32_t s = 7;
	size_t i, j;

	/* 15 distinct preferences: the 10 best, in order */
	for (i = 0; i < 15; i++) {
		snprintf(names[i], sizeof(names[i]), "mx%zu.example", i);
		rr[i].name = names[i];
		rr[i].pref = (unsigned)(100 - i);
	}
	assert_int_equal(mx_order(rr, 15, NULL, rng, &s, &l), MX_OK);
	assert_int_equal(l.n, MX_MAX_HOSTS);
	for (i = 0; i < MX_MAX_HOSTS; i++)
		assert_int_equal(l.host[i].pref, 86 + i);

	/* 15 equal ones: 10 distinct names */
	for (i = 0; i < 15; i++)
		rr[i].pref = 5;
	assert_int_equal(mx_order(rr, 15, NULL, rng, &s, &l), MX_OK);
	assert_int_equal(l.n, MX_MAX_HOSTS);
	for (i = 0; i < l.n; i++)
		for (j = i + 1; j < l.n; j++)
			assert_true(strcmp(l.host[i].name, l.host[j].name));
}

static void test_self_by_name(void **state)
{
	const char *names[] = { "relay.example.net", "mx.example.org." };
	const struct mx_self self = { names, 2, NULL, 0 };
	const struct mx_rr backup[] = {
		{ "mx1.example.org", 10 },
		{ "MX.example.org", 20 },	/* us, any case */
		{ "other.example.org", 20 },	/* as good as us: dropped */
		{ "worse.example.org", 30 },
		{ "better.example.org", 5 },
	};
	const struct mx_rr best[] = {
		{ "relay.example.net.", 10 },	/* us, best */
		{ "mx2.example.org", 20 },
		{ "mx3.example.org", 10 },	/* equal to us */
	};
	const struct mx_rr only[] = { { "relay.example.net", 0 } };
	struct mx_list l;

	assert_int_equal(mx_order(backup, NELEM(backup), &self, NULL, NULL,
	    &l), MX_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.host[0].name, "better.example.org");
	assert_string_equal(l.host[1].name, "mx1.example.org");
	assert_true(l.self_seen);
	assert_int_equal(l.self_pref, 20);

	/* we are the best MX: nothing may be used, a loop */
	assert_int_equal(mx_order(best, NELEM(best), &self, NULL, NULL, &l),
	    MX_LOOP);
	assert_int_equal(l.n, 0);
	assert_int_equal(mx_order(only, 1, &self, NULL, NULL, &l), MX_LOOP);

	/* a suffix or prefix of our name is not our name */
	{
		const struct mx_rr near[] = {
			{ "xrelay.example.net", 10 }, { "relay.example", 10 },
		};

		assert_int_equal(mx_order(near, 2, &self, NULL, NULL, &l),
		    MX_OK);
		assert_int_equal(l.n, 2);
	}
}

static void test_null_mx(void **state)
{
	const struct mx_rr dot[] = { { ".", 0 } };
	const struct mx_rr empty[] = { { "", 0 } };
	const struct mx_rr mixed[] = { { "", 0 }, { "mx.example.org", 10 } };
	const struct mx_rr twonull[] = { { "", 0 }, { ".", 0 } };
	struct mx_list l;

	assert_int_equal(mx_order(dot, 1, NULL, NULL, NULL, &l), MX_NULL);
	assert_int_equal(l.n, 0);
	assert_int_equal(mx_order(empty, 1, NULL, NULL, NULL, &l), MX_NULL);
	/* not alone: not a null MX, the root name is just unusable */
	assert_int_equal(mx_order(mixed, 2, NULL, NULL, NULL, &l), MX_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.nbad, 1);
	assert_string_equal(l.host[0].name, "mx.example.org");
	assert_int_equal(mx_order(twonull, 2, NULL, NULL, NULL, &l), MX_NONE);
	assert_int_equal(l.nbad, 2);
}

static void test_bad_names_and_dups(void **state)
{
	const struct mx_rr bad[] = {
		{ "bad\\032name.test", 10 },	/* as c-ares escapes it */
		{ "a..b.example", 10 },
		{ ".lead.example", 10 },
		{ "sp ace.example", 10 },
		{ NULL, 10 },
	};
	const struct mx_rr dups[] = {
		{ "mx.example.org", 20 }, { "MX.example.org.", 10 },
		{ "mx.example.org", 10 }, { "other.example.org", 15 },
	};
	struct mx_list l;

	assert_int_equal(mx_order(bad, NELEM(bad), NULL, NULL, NULL, &l),
	    MX_NONE);
	assert_int_equal(l.nbad, NELEM(bad));
	assert_int_equal(mx_order(bad, 0, NULL, NULL, NULL, &l), MX_NONE);
	assert_int_equal(l.nbad, 0);

	/* what c-ares 1.18.1 expands from five 63-byte labels: 319 bytes */
	{
		char longname[320];
		struct mx_rr one[1] = { { longname, 10 } };
		int i;

		memset(longname, 'a', sizeof(longname));
		for (i = 63; i < 319; i += 64)
			longname[i] = '.';
		longname[319] = '\0';
		assert_int_equal(mx_order(one, 1, NULL, NULL, NULL, &l),
		    MX_NONE);
		assert_int_equal(l.nbad, 1);
	}

	assert_int_equal(mx_order(dups, NELEM(dups), NULL, NULL, NULL, &l),
	    MX_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.host[0].name, "mx.example.org");
	assert_int_equal(l.host[0].pref, 10);
	assert_string_equal(l.host[1].name, "other.example.org");
}

static void test_name_normalize(void **state)
{
	char out[MX_NAME_MAX + 1], name[400];

	assert_true(mx_name_normalize("A-b_C.Example.", 14, out));
	assert_string_equal(out, "a-b_c.example");
	assert_false(mx_name_normalize("", 0, out));
	assert_string_equal(out, "");
	assert_false(mx_name_normalize(".", 1, out));
	assert_false(mx_name_normalize("a..b", 4, out));
	assert_false(mx_name_normalize("a.b..", 5, out));
	assert_false(mx_name_normalize("a\0b", 3, out));

	/* labels of 63 bytes pass, 64 do not */
	memset(name, 'a', 63);
	assert_true(mx_name_normalize(name, 63, out));
	memset(name, 'a', 64);
	assert_false(mx_name_normalize(name, 64, out));

	/* 253 bytes pass (254 with the final dot), 254 do not */
	memset(name, 'a', sizeof(name));
	for (size_t i = 50; i < sizeof(name); i += 51)
		name[i] = '.';
	assert_true(mx_name_normalize(name, 253, out));
	assert_int_equal(strlen(out), 253);
	name[253] = '.';
	assert_true(mx_name_normalize(name, 254, out));
	name[253] = 'a';
	assert_false(mx_name_normalize(name, 254, out));
}

static void test_addr_equal(void **state)
{
	struct sockaddr_storage a = sa("192.0.2.1"), b = sa("::ffff:192.0.2.1");
	struct sockaddr_storage c = sa("2001:db8::1"), d = sa("2001:db8::1");
	struct sockaddr_storage e = sa("192.0.2.2"), z;

	assert_true(mx_addr_equal(&a, &b));
	assert_true(mx_addr_equal(&b, &a));
	assert_true(mx_addr_equal(&c, &d));
	assert_false(mx_addr_equal(&a, &e));
	assert_false(mx_addr_equal(&a, &c));
	e = sa("192.0.2.1");
	((struct sockaddr_in *)&e)->sin_port = htons(25);
	assert_true(mx_addr_equal(&a, &e));	/* ports do not matter */
	memset(&z, 0, sizeof(z));
	z.ss_family = AF_UNIX;
	assert_false(mx_addr_equal(&z, &z));
}

/* addrs - fill a[] from a table of (text, pref, host) */
struct arow {
	const char *ip;
	unsigned pref, host;
};

static size_t addrs(struct mx_addr *a, const struct arow *row, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].sa = sa(row[i].ip);
		a[i].pref = row[i].pref;
		a[i].host = row[i].host;
	}
	return n;
}

static void test_filter_self_addr(void **state)
{
	const struct sockaddr_storage ours[] = {
		sa("127.0.0.9"), sa("2001:db8::25"),
	};
	const struct mx_self self = { NULL, 0, ours, 2 };
	const struct arow rows[] = {
		{ "192.0.2.1", 10, 0 },
		{ "192.0.2.2", 10, 0 },
		{ "192.0.2.3", 20, 1 },
		{ "::ffff:127.0.0.9", 20, 1 },	/* ours, mapped */
		{ "192.0.2.4", 20, 2 },	/* as good as us */
		{ "192.0.2.5", 30, 3 },
	};
	const struct arow best[] = {
		{ "2001:db8::25", 10, 0 },	/* ours, best */
		{ "192.0.2.1", 10, 1 },
		{ "192.0.2.2", 20, 2 },
	};
	struct mx_addr a[8];
	size_t n;
	bool seen;

	n = addrs(a, rows, NELEM(rows));
	assert_int_equal(mx_filter_addrs(a, &n, &self, &seen), MX_OK);
	assert_true(seen);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].host, 0);
	assert_int_equal(a[1].host, 0);
	{
		struct sockaddr_storage w0 = sa("192.0.2.1"), w1 = sa("192.0.2.2");

		assert_true(mx_addr_equal(&a[0].sa, &w0));
		assert_true(mx_addr_equal(&a[1].sa, &w1));
	}

	/* our address at the best preference: nothing left, a loop */
	n = addrs(a, best, NELEM(best));
	assert_int_equal(mx_filter_addrs(a, &n, &self, &seen), MX_LOOP);
	assert_true(seen);
	assert_int_equal(n, 0);

	/* none at all */
	n = 0;
	assert_int_equal(mx_filter_addrs(a, &n, &self, &seen), MX_NONE);
	assert_false(seen);

	/* without self everything stays (up to the limit) */
	n = addrs(a, best, NELEM(best));
	assert_int_equal(mx_filter_addrs(a, &n, NULL, NULL), MX_OK);
	assert_int_equal(n, 3);
}

static void test_filter_truncate_and_dups(void **state)
{
	const struct arow rows[] = {
		{ "192.0.2.1", 10, 0 }, { "2001:db8::1", 10, 0 },
		{ "192.0.2.1", 10, 1 },	/* duplicate */
		{ "::ffff:192.0.2.1", 20, 2 },	/* duplicate, mapped */
		{ "192.0.2.2", 20, 2 }, { "192.0.2.3", 20, 2 },
		{ "192.0.2.4", 30, 3 }, { "192.0.2.5", 30, 3 },
		{ "192.0.2.6", 40, 4 },
	};
	struct mx_addr a[16];
	size_t n;

	/* a[0] is not an IP address (skipped), then the rows */
	memset(&a[0], 0, sizeof(a[0]));
	a[0].sa.ss_family = AF_UNIX;
	a[0].pref = 0;
	n = 1 + addrs(a + 1, rows, NELEM(rows));
	assert_int_equal(mx_filter_addrs(a, &n, NULL, NULL), MX_OK);
	assert_int_equal(n, MX_MAX_ADDRS);
	{
		const char *want[MX_MAX_ADDRS] = {
			"192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3",
			"192.0.2.4",
		};
		size_t i;

		for (i = 0; i < MX_MAX_ADDRS; i++) {
			struct sockaddr_storage w = sa(want[i]);

			assert_true(mx_addr_equal(&a[i].sa, &w));
		}
		assert_int_equal(a[4].host, 3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort_and_normalize),
		cmocka_unit_test(test_ties_deterministic),
		cmocka_unit_test(test_truncate_hosts),
		cmocka_unit_test(test_self_by_name),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_bad_names_and_dups),
		cmocka_unit_test(test_name_normalize),
		cmocka_unit_test(test_addr_equal),
		cmocka_unit_test(test_filter_self_addr),
		cmocka_unit_test(test_filter_truncate_and_dups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
