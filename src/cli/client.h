/* Client side of the per-VM API socket, for the `wafer` subcommands that act
 * on a running VM by name (libcurl over a unix socket). */
#ifndef WAFER_CLI_CLIENT_H
#define WAFER_CLI_CLIENT_H

#include <stddef.h>

struct client_reply {
	long status;     /* HTTP status, 0 when the request failed */
	char *body;      /* malloc'd, NUL-terminated */
	size_t len;
};

/* 0 with *r filled, or -errno with err saying why (no such VM, refused...). */
int client_request(const char *sock, const char *method, const char *path, const char *body,
		   struct client_reply *r, char *err, size_t errlen);
void client_reply_free(struct client_reply *r);
/* The API socket of VM `name` (same rule as wafer run's default). */
int client_socket_for(const char *name, char *buf, size_t len, char *err, size_t errlen);
/* The fault_message of an error reply, or the raw body. */
const char *client_fault(const struct client_reply *r, char *buf, size_t len);

#endif
