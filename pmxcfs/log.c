/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * log.c: where log lines go (see log.h).
 *
 * Lines are "[domain] level: message" as the original's, with control
 * characters escaped so that one event is one line.  Debug lines are
 * dropped unless debug is on (-d, or "1" written to /etc/pve/.debug).
 */
#include "config.h"

#include <glib.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

static bool log_stderr;
static bool log_debug;

static const char *level_name(GLogLevelFlags level, int *prio)
{
	if (level & G_LOG_LEVEL_ERROR) {
		*prio = LOG_ERR;
		return "err";
	}
	if (level & G_LOG_LEVEL_CRITICAL) {
		*prio = LOG_CRIT;
		return "crit";
	}
	if (level & G_LOG_LEVEL_WARNING) {
		*prio = LOG_WARNING;
		return "warning";
	}
	if (level & G_LOG_LEVEL_MESSAGE) {
		*prio = LOG_NOTICE;
		return "notice";
	}
	if (level & G_LOG_LEVEL_INFO) {
		*prio = LOG_INFO;
		return "info";
	}
	*prio = LOG_DEBUG;
	return "debug";
}

static void log_handler(const char *domain, GLogLevelFlags level, const char *message,
			gpointer userdata)
{
	if ((level & G_LOG_LEVEL_DEBUG) && !log_debug)
		return;
	int prio;
	const char *lname = level_name(level, &prio);
	GString *line = g_string_sized_new(128);
	g_string_append_printf(line, "[%s] %s: ", domain ? domain : "main", lname);
	for (const char *p = message; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 32 || c == 127)
			g_string_append_printf(line, "#%03o", c);
		else
			g_string_append_c(line, (char)c);
	}
	syslog(prio, "%s", line->str);
	if (log_stderr)
		fprintf(stderr, "%s\n", line->str);
	g_string_free(line, TRUE);
}

void log_init(bool to_stderr, bool debug)
{
	log_stderr = to_stderr;
	log_debug = debug;
	openlog("pmxcfs", LOG_PID, LOG_DAEMON);
	g_log_set_default_handler(log_handler, NULL);
}

void log_stderr_off(void)
{
	log_stderr = false;
}

void log_set_debug(bool on)
{
	log_debug = on;
}

bool log_get_debug(void)
{
	return log_debug;
}
