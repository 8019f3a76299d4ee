/* Subcommands of the wafer binary. Each is a handler taking argc/argv after
 * the subcommand name; main.c holds the table. */
#ifndef WAFER_CLI_CLI_H
#define WAFER_CLI_CLI_H

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

int cmd_run(int argc, char **argv);

#endif
