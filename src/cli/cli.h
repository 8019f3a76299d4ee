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
int cmd_ls(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_set(int argc, char **argv);

#endif
