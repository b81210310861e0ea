/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-confirm.c: libFuzzer target for the decoder of the confirm group's
 * messages (pmxcfs/confirm.h), and for what the daemon does with what it
 * accepts.
 *
 * The input is a message as a peer would send it.  Beyond "no crash, no
 * read outside the buffer":
 *
 * - the result is 0, -EINVAL or -EPROTONOSUPPORT, and a message that
 *   decodes has exactly the length its entry count gives;
 * - receiving it changes only what the sender confirmed of the messages
 *   addressed to us (node 1, pid 100), to the highest count named;
 * - the entries, noted as applied here and sent again, decode to the same
 *   set of senders, each with its highest count.
 *
 * A failed check aborts with a message.
 */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "confirm.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	confirm_entry_t *e = NULL;
	size_t n = 0;
	int r = confirm_decode(data, size, &e, &n);
	CHECK(r == 0 || r == -EINVAL || r == -EPROTONOSUPPORT);
	CHECK(confirm_decode(data, size, NULL, NULL) == r);
	confirm_t *c = confirm_new(1, 100);
	CHECK(confirm_receive(c, 7, data, size) == r);
	if (r < 0) {
		CHECK(e == NULL && n == 0);
		CHECK(confirm_confirmed(c, 7) == 0);
		confirm_free(c);
		return 0;
	}
	CHECK(size == CONFIRM_HEADER_LEN + n * CONFIRM_ENTRY_LEN && n <= CONFIRM_MAX_ENTRIES);
	uint64_t want = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].nodeid == 1 && e[i].pid == 100 && e[i].count > want)
			want = e[i].count;
	}
	CHECK(confirm_confirmed(c, 7) == want);
	CHECK(confirm_confirmed(c, 1) == 0);

	/* the confirming side: note every entry, send, decode again */
	confirm_t *d = confirm_new(2, 200);
	for (size_t i = 0; i < n; i++)
		confirm_applied(d, e[i].nodeid, e[i].pid, e[i].count);
	GBytes *b = confirm_take(d, false);
	CHECK((b != NULL) == (n > 0));
	if (b) {
		gsize len;
		const void *p = g_bytes_get_data(b, &len);
		confirm_entry_t *f = NULL;
		size_t m = 0;
		CHECK(confirm_decode(p, len, &f, &m) == 0);
		CHECK(m >= 1 && m <= n);
		for (size_t j = 0; j < m; j++) {
			uint64_t high = 0;
			bool named = false;
			for (size_t i = 0; i < n; i++) {
				if (e[i].nodeid == f[j].nodeid && e[i].pid == f[j].pid) {
					named = true;
					high = MAX(high, e[i].count);
				}
			}
			CHECK(named && f[j].count == high);
		}
		g_free(f);
		g_bytes_unref(b);
	}
	CHECK(confirm_take(d, false) == NULL);
	confirm_free(d);
	confirm_free(c);
	g_free(e);
	return 0;
}
