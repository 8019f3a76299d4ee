/* libFuzzer target: Firecracker-style --config-file JSON through
 * api_json_parse_config (what api_config_load_file does with the file's
 * text), then rendering an accepted config back as JSON (GET /vm/config).
 * Input: the file's bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json.h"
#include "vmm/log.h"

static struct api_config cfg;   /* large: not on the stack */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_threshold = LOG_ERROR;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[API_ERR_MAX];
	char *out = NULL;

	/* An exact-size buffer: the parser gets (text, len), no NUL promised. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	if (api_json_parse_config(text, size, &cfg, err, sizeof(err)) == 0 &&
	    api_json_render_config(&cfg, &out) == 0) {
		free(out);
	}
	free(text);
	return 0;
}
