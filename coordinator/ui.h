/*
 * ui.h - the web console, served by every coordinator under /ui/ on the
 * API's listener (README "The web console").
 *
 * Two kinds of answers:
 *   - the console itself: /ui/ (index.html), /ui/app.js, /ui/app.css, ...
 *     These files are compiled into the coordinator (ui_assets.h, generated
 *     at build time from coordinator/ui/) and hold no data, so they are
 *     served without a token: a browser cannot send a bearer token when it
 *     navigates, and the page it gets is the login page.
 *   - the console's data: GET /ui/api/overview, /ui/api/nodes,
 *     /ui/api/jobs, /ui/api/jobs/<id>: read-only JSON built from the
 *     coordinator's watch-fed cache (never from etcd), behind the API's
 *     token like every /v1/ endpoint (401 otherwise, counted as
 *     unauthorized).
 *
 * Live updates are polling with entity tags: every data answer carries an
 * ETag naming the cache revision it was built from (and, for the overview,
 * the history sample); a console asks again every second with
 * If-None-Match and gets 304, no body, until the pool changes.  An answer
 * is rendered once per revision and shared by every console that asks for
 * the same view (a small memo), so twenty consoles cost about what one
 * does.
 *
 * The coordinator also keeps the overview's history here: every 10 s a
 * sample of the pool's GPU thousandths (total, allocated) and of what the
 * agents' usage records say is really in use, one hour of them in memory.
 *
 * Calling sequence (main.c's loop thread only): coord_http hands every
 * /ui request to coord_ui_http; main.c calls coord_ui_tick every tick and
 * coord_ui_stop at exit.  The state lives in c->ui.
 */
#ifndef GP_COORD_UI_H
#define GP_COORD_UI_H

#include "coord.h"

/* Answer one request whose path is /ui or under /ui/.  authorized: the
 * request carried a valid API token (intake.c checked it). */
void coord_ui_http(coord_t *c, gp_http_req_t *req, int authorized);
/* Take a history sample when one is due. */
void coord_ui_tick(coord_t *c);
/* Free the console's state. */
void coord_ui_stop(coord_t *c);

#endif
