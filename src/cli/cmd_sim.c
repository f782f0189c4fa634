/* cmd_sim.c - `linkprobe sim --list`: the simulated-device profiles. */
#include <stdio.h>

#include "src/cli/app.h"
#include "src/device/simdev.h"

int cmd_sim(struct lp_app *app)
{
	if (!app->list_profiles) {
		return out_usage_error(app, "sim needs --list: linkprobe sim --list");
	}
	if (app->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < simdev_profile_count(); i++) {
			const char *name, *summary;
			json_object *o = json_object_new_object();
			simdev_profile_at(i, &name, &summary);
			json_object_object_add(o, "name", json_object_new_string(name));
			json_object_object_add(o, "summary", json_object_new_string(summary));
			json_object_array_add(arr, o);
		}
		json_object *top = json_object_new_object();
		json_object_object_add(top, "command", json_object_new_string("sim"));
		json_object_object_add(top, "profiles", arr);
		printf("%s\n", json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY));
		json_object_put(top);
		return EXIT_GOOD;
	}
	for (size_t i = 0; i < simdev_profile_count(); i++) {
		const char *name, *summary;
		simdev_profile_at(i, &name, &summary);
		printf("%-20s %s\n", name, summary);
	}
	return EXIT_GOOD;
}
