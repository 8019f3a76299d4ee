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
int cmd_snapshot(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

struct client_reply;
/* Request on VM name's socket; prints the error and returns -1 on failure or
 * an HTTP status other than want (r is then already freed). */
int vmctl_call(const char *name, const char *method, const char *path, const char *body,
	       long want, struct client_reply *r);

#endif
