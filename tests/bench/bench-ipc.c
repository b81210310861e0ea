/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * bench-ipc.c: IPC round trips of a running pmxcfs, through libcfs.
 *
 * Prints one line per figure, asserts nothing:
 * - GET_FS_VERSION round trips/s (the smallest request and reply);
 * - GET_CONFIG of CONFIG (the driver makes it 4 KiB) round trips/s;
 * - GET_GUEST_CONFIG_PROPERTY (op 11) of PROP over all guests (vmid 0):
 *   the first call, then ms per call; and for the one guest VMID;
 * - GET_GUEST_CONFIG_PROPERTIES (op 13) of PROP and "tags" over all guests.
 * Each figure is measured for SECONDS (default 2) after one warm-up call:
 * calls per second, the mean and the median time of a call and, with
 * --pid, the daemon's CPU time per call (user + system, from
 * /proc/PID/stat): the median and the CPU time stay meaningful when other
 * processes compete for the CPUs.  tests/bench/bench-ipc.py starts a
 * daemon, writes the guest configs and runs this program (`make bench`);
 * by hand:
 *
 *   tests/bench/bench-ipc [--pid PID] SERVICE CONFIG VMID [PROP [SECONDS]]
 *   tests/bench/bench-ipc [--pid PID] --first SERVICE PROP  (the first call)
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "cfs.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef int (*call_fn)(cfs_client_t *h, const void *arg, cfs_buf_t *reply);

static cfs_client_t *client;
static double seconds = 2.0;
static pid_t daemon_pid; /* 0: unknown */

/* the daemon's CPU time so far in seconds, or -1 */
static double daemon_cpu(void)
{
	if (!daemon_pid)
		return -1;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)daemon_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after the command name in parentheses: state is field 3, utime 14 */
	const char *p = strrchr(buf, ')');
	unsigned long utime, stime;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			 &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void fail(const char *what, int r)
{
	fprintf(stderr, "bench-ipc: %s: %s\n", what, strerror(-r));
	exit(1);
}

/* the guests in a properties reply: one "<vmid>":{ each */
static unsigned guests_in(const cfs_buf_t *b)
{
	unsigned n = 0;
	for (const char *p = b->data; p && (p = strstr(p, "\":{")); p += 3)
		n++;
	return n;
}

static int call_version(cfs_client_t *h, const void *arg, cfs_buf_t *reply)
{
	return cfs_get_fs_version(h, reply);
}

static int call_config(cfs_client_t *h, const void *arg, cfs_buf_t *reply)
{
	return cfs_get_config(h, arg, reply);
}

typedef struct props_req {
	uint32_t vmid;
	const char *props[2];
	unsigned n;
} props_req_t;

/* op 11 for one property (as PVE::Cluster::get_guest_config_property),
 * op 13 for several */
static int call_props(cfs_client_t *h, const void *arg, cfs_buf_t *reply)
{
	const props_req_t *q = arg;
	if (q->n > 1)
		return cfs_get_guest_config_properties(h, q->vmid, q->props, q->n, reply);
	size_t l = strlen(q->props[0]) + 1;
	uint8_t req[4 + 256];
	if (l > 256)
		return -EINVAL;
	for (int i = 0; i < 4; i++)
		req[i] = (uint8_t)(q->vmid >> (8 * i));
	memcpy(req + 4, q->props[0], l);
	return cfs_ipc_call(h, 11, req, 4 + l, reply);
}

/* the version cache: a parser that keeps the text, registered once */
static unsigned parses;

static int text_parse(const char *fullpath, const char *raw, size_t len, int exists, void **obj,
		      void *ud)
{
	parses++;
	*obj = exists ? g_strndup(raw, len) : NULL;
	return 0;
}

static void text_free(void *obj, void *ud)
{
	g_free(obj);
}

static int call_read_cached(cfs_client_t *h, const void *arg, cfs_buf_t *reply)
{
	cfs_obj_t *o = NULL;
	int r = cfs_read_file(h, arg, &o);
	cfs_obj_unref(o);
	return r;
}

/* what an API request does: cfs_update (one round trip), then the read */
static int call_update_read(cfs_client_t *h, const void *arg, cfs_buf_t *reply)
{
	int r = cfs_update(h);
	return r < 0 ? r : call_read_cached(h, arg, reply);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One warm-up call, then calls for @seconds; prints the rate, and the mean
 * and median time of a call (the median is what a call costs when other
 * processes compete for the CPUs now and then, the mean what it costs on
 * average). */
static void measure(const char *what, call_fn fn, const void *arg)
{
	cfs_buf_t b = {0};
	int r = fn(client, arg, &b);
	if (r < 0)
		fail(what, r);
	size_t bytes = b.len;
	unsigned guests = guests_in(&b);
	cfs_buf_free(&b);
	size_t n = 0, cap = 1024;
	double *times = malloc(cap * sizeof(*times));
	double cpu0 = daemon_cpu();
	double t0 = now(), t = t0;
	do {
		double c0 = t;
		r = fn(client, arg, &b);
		if (r < 0)
			fail(what, r);
		cfs_buf_free(&b);
		t = now();
		if (n == cap)
			times = realloc(times, (cap *= 2) * sizeof(*times));
		if (!times)
			fail("memory", -ENOMEM);
		times[n++] = t - c0;
	} while (t - t0 < seconds);
	double cpu = daemon_cpu() - cpu0;
	qsort(times, n, sizeof(*times), cmp_double);
	double mean = (t - t0) / n, median = times[n / 2];
	free(times);
	printf("%-48s %7.0f /s  mean %7.3f ms  median %7.3f ms", what, 1 / mean, mean * 1e3,
	       median * 1e3);
	if (cpu0 >= 0)
		printf("  daemon CPU %7.3f ms", cpu * 1e3 / n);
	printf("  reply %6zu bytes", bytes);
	if (guests)
		printf(", %u guests", guests);
	printf("\n");
	fflush(stdout);
}

static void first_call(const char *what, const props_req_t *q)
{
	cfs_buf_t b = {0};
	double t0 = now();
	int r = call_props(client, q, &b);
	double t = now() - t0;
	if (r < 0)
		fail(what, r);
	printf("%-48s %9s  once %7.3f ms %15s  reply %6zu bytes, %u guests\n", what, "", t * 1e3,
	       "", b.len, guests_in(&b));
	fflush(stdout);
	cfs_buf_free(&b);
}

int main(int argc, char **argv)
{
	bool only_first = false;
	while (argc > 1 && argv[1][0] == '-') {
		if (strcmp(argv[1], "--first") == 0) {
			only_first = true;
		} else if (strcmp(argv[1], "--pid") == 0 && argc > 2) {
			daemon_pid = (pid_t)atoi(argv[2]);
			argc--;
			argv++;
		} else {
			break;
		}
		argc--;
		argv++;
	}
	if (only_first ? argc != 3 : argc < 4 || argc > 6) {
		fprintf(stderr,
			"usage: bench-ipc [--pid PID] SERVICE CONFIG VMID [PROP [SECONDS]]\n"
			"       bench-ipc [--pid PID] --first SERVICE PROP\n");
		return 2;
	}
	const char *service = argv[1];
	cfs_client_opts_t opts = {.service = service};
	int r = cfs_client_new(&opts, &client);
	if (r < 0)
		fail("cfs_client_new", r);

	char what[128];
	if (only_first) {
		props_req_t all = {.vmid = 0, .props = {argv[2]}, .n = 1};
		snprintf(what, sizeof(what), "GET_GUEST_CONFIG_PROPERTY %s, all, first call",
			 argv[2]);
		first_call(what, &all);
		cfs_client_free(client);
		return 0;
	}

	const char *config = argv[2];
	uint32_t vmid = (uint32_t)strtoul(argv[3], NULL, 10);
	const char *prop = argc > 4 ? argv[4] : "lock";
	if (argc > 5)
		seconds = strtod(argv[5], NULL);

	props_req_t all = {.vmid = 0, .props = {prop}, .n = 1};
	props_req_t one = {.vmid = vmid, .props = {prop}, .n = 1};
	props_req_t two = {.vmid = 0, .props = {prop, "tags"}, .n = 2};

	snprintf(what, sizeof(what), "GET_GUEST_CONFIG_PROPERTY %s, all, first call", prop);
	first_call(what, &all);
	measure("GET_FS_VERSION", call_version, NULL);
	snprintf(what, sizeof(what), "GET_CONFIG %s", config);
	measure(what, call_config, config);
	snprintf(what, sizeof(what), "GET_GUEST_CONFIG_PROPERTY %s, all guests", prop);
	measure(what, call_props, &all);
	snprintf(what, sizeof(what), "GET_GUEST_CONFIG_PROPERTY %s, vmid %u", prop, vmid);
	measure(what, call_props, &one);
	snprintf(what, sizeof(what), "GET_GUEST_CONFIG_PROPERTIES %s+tags, all guests", prop);
	measure(what, call_props, &two);

	/* the version cache of libcfs on a 4 KiB storage.cfg */
	cfs_file_ops_t ops = {.parse = text_parse, .free = text_free};
	r = cfs_register_file(client, "storage.cfg", &ops, 0);
	if (r == 0)
		r = cfs_update(client);
	if (r < 0)
		fail("cfs_register_file/cfs_update", r);
	uint64_t req0 = cfs_request_count(client);
	unsigned parses0 = parses;
	measure("cfs_read_file storage.cfg, cached", call_read_cached, "storage.cfg");
	printf("%-48s %llu round trips, %u parses over all those calls\n", "",
	       (unsigned long long)(cfs_request_count(client) - req0), parses - parses0);
	measure("cfs_update + cfs_read_file storage.cfg", call_update_read, "storage.cfg");
	cfs_client_free(client);
	return 0;
}
