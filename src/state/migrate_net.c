/* Live migration's endpoints (see migrate.h): "tcp:HOST:PORT" and
 * "unix:PATH" parsed, connected with a timeout, listened on and accepted;
 * socket buffers sized for bulk page transfer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "state/migrate.h"

struct mig_url {
	bool is_unix;
	char host[256];
	char port[6];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int url_parse(const char *url, bool listening, struct mig_url *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (!strncmp(url, "unix:", 5)) {
		size_t n = strlen(url + 5);
		if (!n || n >= sizeof(u->path)) {
			snprintf(err, errlen, "%s: expected unix:PATH with a path of 1..%zu bytes", url,
				 sizeof(u->path) - 1);
			return -EINVAL;
		}
		memcpy(u->path, url + 5, n + 1);
		u->is_unix = true;
		return 0;
	}
	const char *hp = url + 4, *colon = strrchr(url, ':');
	if (strncmp(url, "tcp:", 4) || !colon || colon < hp) {
		snprintf(err, errlen, "%s: expected tcp:HOST:PORT or unix:PATH", url);
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - hp);
	if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	} else if (memchr(hp, ':', hl)) {
		snprintf(err, errlen, "%s: an IPv6 address goes in brackets (tcp:[::1]:PORT)", url);
		return -EINVAL;
	}
	if (hl >= sizeof(u->host) || (!hl && !listening)) {
		snprintf(err, errlen, "%s: %s host", url, hl ? "overlong" : "missing");
		return -EINVAL;
	}
	memcpy(u->host, hp, hl);
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || colon[1] == '-' || colon[1] == '+' || port > 65535 ||
	    (!port && !listening)) {
		snprintf(err, errlen, "%s: port '%s' is not a number in %d..65535", url, colon + 1,
			 listening ? 0 : 1);
		return -EINVAL;
	}
	snprintf(u->port, sizeof(u->port), "%lu", port);
	return 0;
}

static void unix_addr(const struct mig_url *u, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, u->path, strlen(u->path) + 1);
}

/* Connect fd to sa within timeout_ms: 0 or -errno. */
static int connect_timed(int fd, const struct sockaddr *sa, socklen_t len, unsigned timeout_ms)
{
	if (!connect(fd, sa, len))
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return -errno;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int r;
	do
		r = poll(&pfd, 1, timeout_ms ? (int)timeout_ms : -1);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

static void sock_tune(int fd, int family)
{
	int one = 1;
	if (family == AF_INET || family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

int migrate_connect(const char *url, unsigned timeout_ms, int *fdp, char *err, size_t errlen)
{
	struct mig_url u;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
	int fd = -1, rc;

	rc = url_parse(url, false, &u, err, errlen);
	if (rc)
		return rc;
	if (u.is_unix) {
		struct sockaddr_un sa;
		unix_addr(&u, &sa);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		rc = fd < 0 ? -errno : connect_timed(fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms);
		if (rc)
			snprintf(err, errlen, "%s: %s", url, strerror(-rc));
		goto out;
	}
	int g = getaddrinfo(u.host, u.port, &hints, &ai);
	if (g) {
		rc = -EHOSTUNREACH;
		snprintf(err, errlen, "%s: cannot resolve %s: %s", url, u.host, gai_strerror(g));
		goto out;
	}
	rc = -EHOSTUNREACH;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = connect_timed(fd, a->ai_addr, a->ai_addrlen, timeout_ms);
		if (!rc) {
			sock_tune(fd, a->ai_family);
			break;
		}
		close(fd);
		fd = -1;
	}
	if (rc)
		snprintf(err, errlen, "%s: %s", url, strerror(-rc));
out:
	if (ai)
		freeaddrinfo(ai);
	if (rc && fd >= 0)
		close(fd);
	if (!rc)
		*fdp = fd;
	return rc;
}

/* A unix socket path left by a receiver that died is reused; a live one
 * is not taken over. */
static int unix_listen(const char *url, const struct mig_url *u, int *fdp, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat stt;
	int fd = -1, rc = 0;

	unix_addr(u, &sa);
	if (!lstat(u->path, &stt) && S_ISSOCK(stt.st_mode)) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno == ECONNREFUSED)
			unlink(u->path);
		if (probe >= 0)
			close(probe);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", url, strerror(errno));
		goto out;
	}
	*fdp = fd;
out:
	if (rc && fd >= 0)
		close(fd);
	return rc;
}

int migrate_listen(const char *url, int *fdp, char *err, size_t errlen)
{
	struct mig_url u;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE }, *ai = NULL;
	int fd = -1, rc, one = 1;

	rc = url_parse(url, true, &u, err, errlen);
	if (rc)
		return rc;
	if (u.is_unix)
		return unix_listen(url, &u, fdp, err, errlen);
	int g = getaddrinfo(u.host[0] ? u.host : NULL, u.port, &hints, &ai);
	if (g) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", url, u.host, gai_strerror(g));
		return -EADDRNOTAVAIL;
	}
	rc = -EADDRNOTAVAIL;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, a->ai_addr, a->ai_addrlen) && !listen(fd, 1)) {
			rc = 0;
			break;
		}
		rc = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (rc) {
		snprintf(err, errlen, "%s: %s", url, strerror(-rc));
		return rc;
	}
	*fdp = fd;
	return 0;
}

int migrate_accept(int listen_fd, unsigned timeout_ms, int *fdp, char *err, size_t errlen)
{
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;

	do
		r = poll(&pfd, 1, timeout_ms ? (int)timeout_ms : -1);
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		snprintf(err, errlen, "no incoming migration within %u ms", timeout_ms);
		return -ETIMEDOUT;
	}
	int fd = r < 0 ? -1 : accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "accept: %s", strerror(errno));
		return -errno;
	}
	sock_tune(fd, ss.ss_family);
	*fdp = fd;
	return 0;
}

int migrate_listen_url(int listen_fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN];
	int n;

	if (getsockname(listen_fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_UNIX) {
		n = snprintf(buf, len, "unix:%s", ((struct sockaddr_un *)&ss)->sun_path);
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		n = snprintf(buf, len, "tcp:%s:%u", a, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		n = snprintf(buf, len, "tcp:[%s]:%u", a, ntohs(in6->sin6_port));
	} else {
		return -EAFNOSUPPORT;
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
