/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * log.h: the daemon's log: one line per event, "[domain] level: message",
 * to syslog (facility daemon, ident pmxcfs) and, in the foreground, to
 * stderr.  Every module logs through GLib (g_message, g_warning, ...) with
 * its G_LOG_DOMAIN; this module only decides where the lines go.
 */
#pragma once

#include <stdbool.h>

/* Install the GLib log writer.  @to_stderr: also print to stderr. */
void log_init(bool to_stderr, bool debug);
/* Stop printing to stderr (after daemonizing). */
void log_stderr_off(void);
void log_set_debug(bool on);
bool log_get_debug(void);
