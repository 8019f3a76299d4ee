/* wafer: entry point and subcommand table. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct command commands[] = {
	{ "run", cmd_run, "boot a guest (see wafer run --help)" },
	{ "ls", cmd_ls, "list running VMs: name, state, vCPUs, memory, uptime, pid" },
	{ "pause", cmd_pause, "pause a VM by name" },
	{ "resume", cmd_resume, "resume a paused VM" },
	{ "stop", cmd_stop, "stop a VM: Ctrl-Alt-Del, then hard after a timeout" },
	{ "stats", cmd_stats, "exits per vCPU and reason, device counters" },
	{ "console", cmd_console, "attach to a VM's serial console (Ctrl-] detaches)" },
	{ "snapshot", cmd_snapshot, "write a VM's state and memory to a directory" },
	{ "migrate", cmd_migrate, "move a running VM to another wafer (live migration)" },
	{ "set", cmd_set, "change a running VM's CPU weight, CPU cap, memory limit" },
};

static void main_usage(FILE *f)
{
	fprintf(f, "Usage: wafer COMMAND [options]\n"
		   "       wafer --help | --version\n\n"
		   "A KVM virtual machine monitor.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'wafer COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		main_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("wafer %s\n", WAFER_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "wafer: %s: unknown command (see wafer --help)\n", argv[1]);
	return 1;
}
