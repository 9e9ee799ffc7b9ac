/*
 * ui_assets.h - the web console's files, compiled into the coordinator.
 *
 * The table is generated at build time (coordinator/ui/embed.sh, run by
 * coordinator/build.mk) from every file of coordinator/ui/ that the
 * console serves; it ends with an entry whose name is NULL.  Each data
 * array carries a NUL after its len bytes.
 */
#ifndef GP_COORD_UI_ASSETS_H
#define GP_COORD_UI_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;             /* file name, e.g. "app.js" */
    const unsigned char *data;
    size_t len;
} coord_ui_asset_t;

extern const coord_ui_asset_t coord_ui_assets[];

#endif
