/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fuzz-guest-props.c: libFuzzer target for the guest config property index
 * (pmxcfs/guest-props.h), differential: the index, the line scan and a
 * plain reference (the rules of cluster.md §4.5 written the obvious way)
 * must give the same value for every name.
 *
 * An input is a first line of names separated by ',' and a guest config
 * after it.  A disagreement aborts with the name and both answers.
 */
#include "config.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "guest-props.h"

/* the value of @prop in @conf as a new string, or NULL */
static char *reference(const char *conf, size_t len, const char *prop, size_t pl)
{
	char *found = NULL;
	for (size_t o = 0; o < len;) {
		const char *line = conf + o;
		const char *nl = memchr(line, '\n', len - o);
		size_t l = nl ? (size_t)(nl - line) : len - o;
		o += l + 1;
		if (l > 0 && line[0] == '[')
			break;
		if (l <= pl + 1 || memcmp(line, prop, pl) != 0 || line[pl] != ':')
			continue;
		char *v = g_strndup(line + pl + 1, l - pl - 1);
		g_strstrip(v);
		if (v[0]) {
			g_free(found);
			found = v;
		} else {
			g_free(v);
		}
	}
	return found;
}

static void agree(const char *how, const char *name, const char *want, bool found, const char *v,
		  size_t vl)
{
	if (found == (want != NULL) && (!found || (vl == strlen(want) && !memcmp(v, want, vl))))
		return;
	fprintf(stderr, "fuzz-guest-props: %s of '%s': %s '%.*s', reference %s '%s'\n", how, name,
		found ? "found" : "not found", found ? (int)vl : 0, found ? v : "",
		want ? "found" : "not found", want ? want : "");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nl = memchr(in, '\n', size);
	if (!nl)
		return 0;
	const char *conf = nl + 1;
	size_t len = size - (size_t)(conf - in);
	guest_conf_index_t *ix = guest_conf_index_new(conf, len);

	/* names: the pieces of the first line (no NUL in a name: the IPC
	 * decoder gives C strings) */
	g_autofree char *names = g_strndup(in, (size_t)(nl - in));
	g_auto(GStrv) list = g_strsplit(names, ",", 16);
	for (char **p = list; *p; p++) {
		const char *name = *p;
		size_t pl = strlen(name);
		if (pl == 0)
			continue; /* the decoder refuses empty names */
		g_autofree char *want = reference(conf, len, name, pl);
		const char *v = NULL;
		size_t vl = 0;
		bool found = guest_conf_scan(conf, len, name, pl, &v, &vl);
		agree("scan", name, want, found, v, vl);
		if (strchr(name, ':'))
			continue;
		found = guest_conf_index_get(ix, conf, name, pl, &v, &vl);
		agree("index", name, want, found, v, vl);
	}
	g_free(ix);
	return 0;
}
