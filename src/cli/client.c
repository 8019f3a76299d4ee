/* HTTP/1.1 requests to a VM's API socket through libcurl. */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "cli/client.h"

#define CLIENT_MAX_BODY (16u << 20)

static size_t client_collect(char *p, size_t size, size_t n, void *opaque)
{
	struct client_reply *r = opaque;
	size_t add = size * n;
	if (r->len + add > CLIENT_MAX_BODY)
		return 0;  /* abort the transfer */
	char *b = realloc(r->body, r->len + add + 1);
	if (!b)
		return 0;
	memcpy(b + r->len, p, add);
	r->body = b;
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

int client_request(const char *sock, const char *method, const char *path, const char *body,
		   struct client_reply *r, char *err, size_t errlen)
{
	struct curl_slist *hdr = NULL;
	char url[512];
	int rc = 0;

	memset(r, 0, sizeof(*r));
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, client_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", sock, curl_easy_strerror(cc));
		rc = cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		if (!r->body)
			r->body = strdup("");
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (rc)
		client_reply_free(r);
	return rc;
}

void client_reply_free(struct client_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

int client_socket_for(const char *name, char *buf, size_t len, char *err, size_t errlen)
{
	struct stat st;
	int rc = api_socket_default_path(name, buf, len);

	if (rc) {
		snprintf(err, errlen, "%s: %s", name, rc == -EINVAL ? "not a valid VM name" :
			 "no runtime directory (set XDG_RUNTIME_DIR)");
		return rc;
	}
	if (stat(buf, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s: no such VM (no API socket at %s)", name, buf);
		return -ENOENT;
	}
	return 0;
}

const char *client_fault(const struct client_reply *r, char *buf, size_t len)
{
	json_object *o = json_tokener_parse(r->body ? r->body : ""), *m;
	if (o && json_object_object_get_ex(o, "fault_message", &m))
		snprintf(buf, len, "%s", json_object_get_string(m));
	else
		snprintf(buf, len, "HTTP %ld %s", r->status, r->body ? r->body : "");
	json_object_put(o);
	return buf;
}
