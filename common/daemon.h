/*
 * daemon.h - what makes a gpupool program a well-mannered Unix daemon.
 *
 * Signals: gp_daemon_signals_init() installs handlers for SIGTERM, SIGINT
 * and SIGHUP that only record the signal and write one byte to a
 * non-blocking self-pipe; SIGPIPE is ignored.  The event loop polls
 * gp_daemon_signal_fd() next to its sockets and, when it is readable, calls
 * gp_daemon_take_signals() to learn what arrived:
 *
 *     for (;;) {
 *         poll(... gp_daemon_signal_fd() ...);
 *         unsigned sig = gp_daemon_take_signals();
 *         if (sig & GP_SIG_RELOAD)  reload();      // SIGHUP: build, validate, swap
 *         if (sig & GP_SIG_STOP)    break;         // SIGTERM/SIGINT: drain, exit 0
 *         ...
 *     }
 *
 * Readiness: gp_daemon_ready() prints the program's fixed readiness line
 * ("<prog> ready <details>") on stdout and tells systemd READY=1 through
 * $NOTIFY_SOCKET when it is set (Type=notify units).  Tests wait for that
 * line.  gp_daemon_notify() sends any other sd_notify state ("STOPPING=1",
 * "RELOADING=1", "STATUS=...").
 */
#ifndef GP_DAEMON_H
#define GP_DAEMON_H

#include "err.h"

#define GP_SIG_STOP   1u   /* SIGTERM or SIGINT */
#define GP_SIG_RELOAD 2u   /* SIGHUP */

int gp_daemon_signals_init(gp_err_t *err);
int gp_daemon_signal_fd(void);
/* The signals that arrived since the last call (GP_SIG_* bits); drains the pipe. */
unsigned gp_daemon_take_signals(void);

/* Print "<prog> ready <fmt...>" on stdout, flush, and send READY=1. */
void gp_daemon_ready(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send one sd_notify state; a no-op (returning 0) without $NOTIFY_SOCKET. */
int gp_daemon_notify(const char *state);

/* Fix malloc's large-block and heap-trim thresholds (glibc; see daemon.c),
 * before the daemon allocates much.  Call once, early in main. */
void gp_daemon_memory_init(void);

/* A periodic duty of long-running daemons (call it from every loop tick; it
 * acts at most once a second): when more than 1 MiB of the heap is free
 * inside it, hand those pages back to the system (glibc's malloc_trim), so
 * that memory freed after a burst does not stay resident. */
void gp_daemon_trim_memory(void);
/* For a caller that just ended a burst it knows was large (a bid round of
 * hundreds of jobs): the check comes as soon as such bursts stop for a
 * moment (gp_daemon_trim_memory, called from the loop, does it), not while
 * they follow each other, when the next one would only fault the pages
 * handed back in again. */
void gp_daemon_trim_memory_after_burst(void);

/* The version of gpupool, printed by --version. */
#define GP_VERSION "0.2.0"

#endif
