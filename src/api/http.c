/* The control API's HTTP/1.1 transport: libmicrohttpd serving the router on a
 * UNIX socket we create (Firecracker's model: the socket is the API's only
 * access control, so it is 0600 in a 0700 directory). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api.h"
#include "api/json.h"
#include "vmm/log.h"

#define HTTP_MAX_CONNECTIONS  256
#define HTTP_IDLE_TIMEOUT_S   60     /* an idle keep-alive client is dropped after this */
#define HTTP_BACKLOG          128
#define HTTP_DRAIN_MAX        (16u << 20)   /* oversized bodies up to this are read and dropped */
#define TOO_LARGE_MSG         "Request body larger than 65536 bytes."

struct api_server {
	struct MHD_Daemon *daemon;
	struct api_router *router;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;        /* the socket file we bound, so stop removes only ours */
	ino_t ino;
};

/* Per-request state: the body collected so far. */
struct http_request {
	char *body;
	size_t len, cap;
	bool too_large;
	size_t drained;   /* bytes of an oversized body read and dropped */
};

static enum MHD_Result http_queue(struct MHD_Connection *conn, struct api_response *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->body) {
		/* MHD frees the malloc'd body once it is sent. */
		resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
		if (resp)
			r->body = NULL;
	} else {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	}
	api_response_release(r);
	if (!resp)
		return MHD_NO;
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result http_fault(struct MHD_Connection *conn, int status, const char *msg)
{
	struct api_response r = { .status = status, .content_type = "application/json" };

	if (api_json_render_fault(msg, &r.body))
		r = (struct api_response){ .status = 500 };
	else
		r.len = strlen(r.body);
	return http_queue(conn, &r);
}

static enum MHD_Result http_console(struct api_server *s, struct MHD_Connection *conn);

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version,
				   const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct api_server *s = cls;
	struct http_request *rq = *con_cls;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (!cl)
			return MHD_YES;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		bool unreadable = errno || end == cl || n > HTTP_DRAIN_MAX;
		if (!unreadable && n <= API_BODY_MAX)
			return MHD_YES;
		rq->too_large = true;
		/* Answering before the body arrives makes MHD close the connection,
		 * and a client still sending sees EPIPE instead of our 413. So
		 * refuse early only a client that waits for "100 Continue" (it then
		 * sends nothing) or a body not worth reading; others are drained. */
		const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								 MHD_HTTP_HEADER_EXPECT);
		if ((expect && !strcasecmp(expect, "100-continue")) || unreadable)
			return http_fault(conn, MHD_HTTP_CONTENT_TOO_LARGE, TOO_LARGE_MSG);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (!rq->too_large && n > API_BODY_MAX - rq->len) {
			rq->too_large = true;
			rq->drained = rq->len;
			free(rq->body);
			rq->body = NULL;
			rq->len = rq->cap = 0;
		}
		if (rq->too_large) {
			rq->drained += n;
			/* Past this, stop reading: drop the connection. */
			return rq->drained > HTTP_DRAIN_MAX ? MHD_NO : MHD_YES;
		}
		if (rq->len + n + 1 > rq->cap) {
			size_t cap = rq->cap ? rq->cap : 1024;
			while (cap < rq->len + n + 1)
				cap *= 2;
			char *b = realloc(rq->body, cap);
			if (!b)
				return MHD_NO;
			rq->body = b;
			rq->cap = cap;
		}
		memcpy(rq->body + rq->len, upload_data, n);
		rq->len += n;
		rq->body[rq->len] = '\0';
		return MHD_YES;
	}
	if (rq->too_large)
		return http_fault(conn, MHD_HTTP_CONTENT_TOO_LARGE, TOO_LARGE_MSG);

	if (!strcmp(method, "GET") && !strcmp(url, "/console"))
		return http_console(s, conn);
	struct api_response r;
	api_router_handle(s->router, method, url, rq->body, rq->len, &r);
	return http_queue(conn, &r);
}

/* ---- GET /console: HTTP/1.1 upgrade to a raw byte stream with COM1 ---- */

static void http_console_done(void *arg)
{
	MHD_upgrade_action(arg, MHD_UPGRADE_ACTION_CLOSE);
}

static void http_console_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
				  const char *extra_in, size_t extra_in_size, MHD_socket sock,
				  struct MHD_UpgradeResponseHandle *urh)
{
	struct api_server *s = cls;
	(void)conn, (void)con_cls, (void)extra_in, (void)extra_in_size;
	/* Bytes the client sent right after its request (extra_in) are
	 * keystrokes typed before the switch; dropping them loses nothing a
	 * console user would miss. */
	if (api_router_console_attach(s->router, sock, http_console_done, urh))
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result http_console(struct api_server *s, struct MHD_Connection *conn)
{
	char err[API_ERR_MAX];
	int rc = api_router_console_check(s->router, err, sizeof(err));

	if (rc)
		return http_fault(conn, MHD_HTTP_BAD_REQUEST, err);
	struct MHD_Response *resp = MHD_create_response_for_upgrade(http_console_upgraded, s);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "wafer-console");
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Also runs when a client disconnects mid-request or the server stops. */
static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct http_request *rq = *con_cls;

	(void)cls, (void)conn;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_debug("api: request ended early (MHD code %d)", (int)toe);
	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static void http_log(void *cls, const char *fmt, va_list ap)
{
	char line[256];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("api: %s", line);
}

/* mkdir -p of path's parent; directories we create are 0700. */
static int http_make_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		bool last = *p == '\0';
		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST) {
			int rc = -errno;
			snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
			return rc;
		}
		if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s: not a directory", dir);
			return -ENOTDIR;
		}
		if (last)
			break;
		*p = '/';
	}
	return 0;
}

/* A socket file left by a dead process is replaced; a live one is not. */
static int http_clear_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc = 0;

	if (lstat(sa->sun_path, &st)) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		snprintf(err, errlen, "%s: %s", sa->sun_path, strerror(-rc));
		return rc;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s: exists and is not a socket", sa->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0) {
		snprintf(err, errlen, "%s: another process is serving on this socket",
			 sa->sun_path);
		rc = -EADDRINUSE;
	} else if (errno == ECONNREFUSED) {
		if (unlink(sa->sun_path) && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "%s: removing stale socket: %s", sa->sun_path,
				 strerror(-rc));
		}
	} else {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", sa->sun_path, strerror(-rc));
	}
	close(fd);
	return rc;
}

static int http_listen(struct api_server *s, const char *path, int *out_fd, char *err,
		       size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd = -1, rc;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%.200s: socket path must be 1..%zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((rc = http_make_parent(path, err, errlen)) ||
	    (rc = http_clear_stale(&sa, err, errlen)))
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-rc));
		return rc;
	}
	/* Linux creates the socket file with the socket inode's mode (minus the
	 * umask), so setting it before bind leaves no window where it is 0777. */
	if (fchmod(fd, 0600) || bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", sa.sun_path, strerror(-rc));
		goto out;
	}
	if (stat(path, &st) || ((st.st_mode & 0777) != 0600 && chmod(path, 0600))) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", sa.sun_path, strerror(-rc));
		unlink(path);
		goto out;
	}
	if (listen(fd, HTTP_BACKLOG)) {
		rc = -errno;
		snprintf(err, errlen, "%s: listen: %s", sa.sun_path, strerror(-rc));
		unlink(path);
		goto out;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	*out_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The thread that starts libmicrohttpd after thread_init, so MHD's own
 * thread (created from this one) inherits its set-up. */
struct http_starter {
	struct api_server *s;
	int fd;
	int (*thread_init)(void *arg, char *err, size_t errlen);
	void *arg;
	char *err;
	size_t errlen;
	int init_rc;
};

static void *http_starter_thread(void *p)
{
	struct http_starter *st = p;

	st->init_rc = st->thread_init(st->arg, st->err, st->errlen);
	if (st->init_rc)
		return NULL;
	/* One MHD-owned thread polls with epoll and runs every request; the
	 * router's lock makes calls from elsewhere (config-file start) safe. */
	st->s->daemon = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
				     MHD_ALLOW_UPGRADE, 0,
				     NULL, NULL, http_access, st->s,
				     MHD_OPTION_EXTERNAL_LOGGER, http_log, st->s,
				     MHD_OPTION_LISTEN_SOCKET, st->fd,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_TIMEOUT_S,
				     MHD_OPTION_NOTIFY_COMPLETED, http_completed, st->s,
				     MHD_OPTION_END);
	return NULL;
}

static int http_no_init(void *arg, char *err, size_t errlen)
{
	(void)arg, (void)err, (void)errlen;
	return 0;
}

int api_server_start(struct api_server **out, const char *path, struct api_router *r,
		     int (*thread_init)(void *arg, char *err, size_t errlen), void *arg,
		     char *err, size_t errlen)
{
	struct http_starter st = { .thread_init = thread_init ? thread_init : http_no_init,
				   .arg = arg, .err = err, .errlen = errlen };
	struct api_server *s;
	pthread_t t;
	int fd = -1, rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->router = r;
	rc = http_listen(s, path, &fd, err, errlen);
	if (rc)
		goto out;
	snprintf(s->path, sizeof(s->path), "%s", path);

	st.s = s;
	st.fd = fd;
	if (thread_init) {
		rc = -pthread_create(&t, NULL, http_starter_thread, &st);
		if (rc) {
			snprintf(err, errlen, "%s: cannot start the API thread: %s", path, strerror(-rc));
			unlink(path);
			close(fd);
			goto out;
		}
		pthread_join(t, NULL);
	} else {
		http_starter_thread(&st);
	}
	if (st.init_rc) {
		rc = st.init_rc;
		unlink(path);
		close(fd);
		goto out;
	}
	if (!s->daemon) {
		rc = -EIO;
		snprintf(err, errlen, "%s: starting the HTTP server failed", path);
		unlink(path);
		/* fd is not closed: whether MHD already closed a socket it was
		 * given differs between versions, and closing a reused fd number
		 * would be worse than leaking one on this failure path. */
		goto out;
	}
	*out = s;
	s = NULL;
out:
	free(s);
	return rc;
}

void api_server_stop(struct api_server *s)
{
	struct stat st;

	if (!s)
		return;
	MHD_stop_daemon(s->daemon);   /* joins its thread, closes the listen socket */
	/* Someone may have replaced the file since; remove only the one we made. */
	if (!lstat(s->path, &st) && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s);
}

int api_name_validate(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

int api_socket_default_path(const char *name, char *buf, size_t len)
{
	const char *base = "/run";
	int n;

	if (api_name_validate(name))
		return -EINVAL;
	if (geteuid() != 0) {
		base = getenv("XDG_RUNTIME_DIR");
		if (!base || base[0] != '/')
			return -ENOENT;
	}
	n = snprintf(buf, len, "%s/wafer/%s/api.sock", base, name);
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}
