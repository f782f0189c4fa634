/* cmd_analyze.c - `linkprobe analyze FILE` (placeholder until implemented). */
#include "app.h"

int cmd_analyze(struct lp_app *app)
{
	out_error(app, "analyze is not implemented yet");
	return EXIT_RUNTIME;
}
