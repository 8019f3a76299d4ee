/* Control-API JSON: every request shape parses into the right typed struct,
 * every kind of bad input is refused with a message naming the field, config
 * files load, and responses render (and round-trip). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/json.h"

static char tmpdir[32], kernel[64], disk[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/wafer-apijson.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", tmpdir);
	snprintf(disk, sizeof(disk), "%s/disk.img", tmpdir);
	FILE *f = fopen(kernel, "w");
	FILE *g = fopen(disk, "w");
	if (!f || !g)
		return -1;
	fputs("k", f);
	fputs("d", g);
	fclose(f);
	fclose(g);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(kernel);
	unlink(disk);
	rmdir(tmpdir);
	return 0;
}

#define S(x) x, strlen(x)

/* A bad body must fail with -EINVAL and a message containing `want`. */
static void expect_machine_error(const char *body, const char *want)
{
	struct api_config c;
	struct api_machine m;
	char err[API_ERR_MAX] = "";

	api_config_init(&c);
	m = c.machine;
	m.vcpu_count = 77;
	int rc = api_json_parse_machine(body, strlen(body), &c.machine, false, &m, err, sizeof(err));
	if (rc != -EINVAL || !strstr(err, want))
		fail_msg("body %.80s: rc %d, err \"%s\", expected \"%s\"", body, rc, err, want);
	assert_int_equal(m.vcpu_count, 77);   /* untouched on failure */
}

static void test_machine_ok(void **state)
{
	(void)state;
	struct api_config c;
	struct api_machine m;
	char err[API_ERR_MAX];

	api_config_init(&c);
	assert_int_equal(c.machine.vcpu_count, 1);
	assert_int_equal(c.machine.mem_size_mib, 128);

	c.machine.smt = true;
	assert_int_equal(api_json_parse_machine(S("{\"vcpu_count\": 4, \"mem_size_mib\": 1024,"
		" \"track_dirty_pages\": true, \"huge_pages\": \"2M\", \"cpu_template\": \"baseline\"}"),
		&c.machine, false, &m, err, sizeof(err)), 0);
	assert_int_equal(m.vcpu_count, 4);
	assert_int_equal(m.mem_size_mib, 1024);
	assert_false(m.smt);              /* PUT resets what it omits */
	assert_true(m.track_dirty_pages);
	assert_int_equal(m.huge_pages, API_HUGE_2M);
	assert_string_equal(m.cpu_template, "baseline");

	/* PATCH merges into the current config. */
	struct api_machine p;
	assert_int_equal(api_json_parse_machine(S("{\"mem_size_mib\": 512}"), &m, true, &p,
						err, sizeof(err)), 0);
	assert_int_equal(p.vcpu_count, 4);
	assert_int_equal(p.mem_size_mib, 512);
	assert_true(p.track_dirty_pages);

	/* Firecracker's "None" template is the default; null means absent. */
	assert_int_equal(api_json_parse_machine(S("{\"vcpu_count\": 1, \"mem_size_mib\": 16, "
		"\"cpu_template\": \"None\", \"smt\": null}"), &c.machine, false, &m, err,
		sizeof(err)), 0);
	assert_string_equal(m.cpu_template, "");
	assert_int_equal(m.mem_size_mib, 16);
	assert_int_equal(api_json_parse_machine(S("{\"vcpu_count\": 1024, \"mem_size_mib\": 128, "
		"\"cpu_template\": \"/etc/wafer/t.json\"}"), &c.machine, false, &m, err,
		sizeof(err)), 0);
	assert_int_equal(m.vcpu_count, 1024);
	assert_string_equal(m.cpu_template, "/etc/wafer/t.json");
	/* SMT with an even count is fine; whitespace around the object too. */
	assert_int_equal(api_json_parse_machine(S(" \n{\"vcpu_count\": 2, \"mem_size_mib\": 64,"
		" \"smt\": true}\r\n "), &c.machine, false, &m, err, sizeof(err)), 0);
	assert_true(m.smt);
}

static void test_machine_bad(void **state)
{
	(void)state;
	char deep[256] = "{\"vcpu_count\": ";
	for (int i = 0; i < 40; i++)
		strcat(deep, "[");

	expect_machine_error("", "empty body");
	expect_machine_error("   \n", "empty body");
	expect_machine_error("{", "malformed JSON");
	expect_machine_error("{\"vcpu_count\": 1,}", "malformed JSON");
	expect_machine_error("[]", "expected a JSON object, got an array");
	expect_machine_error("42", "malformed JSON");
	expect_machine_error("\"x\"", "expected a JSON object, got a string");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128} x", "malformed JSON");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128}{}", "malformed JSON");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"foo\": 1}",
			     "unknown field \"foo\"");
	expect_machine_error("{\"mem_size_mib\": 128}", "missing required field \"vcpu_count\"");
	expect_machine_error("{\"vcpu_count\": 1}", "missing required field \"mem_size_mib\"");
	expect_machine_error("{\"vcpu_count\": null, \"mem_size_mib\": 128}",
			     "missing required field \"vcpu_count\"");
	expect_machine_error("{\"vcpu_count\": 0, \"mem_size_mib\": 128}",
			     "\"vcpu_count\": 0 is out of range (1..1024)");
	expect_machine_error("{\"vcpu_count\": 1025, \"mem_size_mib\": 128}", "out of range");
	expect_machine_error("{\"vcpu_count\": -1, \"mem_size_mib\": 128}", "must not be negative");
	expect_machine_error("{\"vcpu_count\": 99999999999999999999, \"mem_size_mib\": 128}",
			     "out of range");
	expect_machine_error("{\"vcpu_count\": -99999999999999999999, \"mem_size_mib\": 128}",
			     "must not be negative");
	expect_machine_error("{\"vcpu_count\": \"2\", \"mem_size_mib\": 128}",
			     "\"vcpu_count\": expected an integer, got a string");
	expect_machine_error("{\"vcpu_count\": 2.5, \"mem_size_mib\": 128}",
			     "expected an integer, got a non-integer number");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 1e3}", "expected an integer");
	expect_machine_error("{\"vcpu_count\": true, \"mem_size_mib\": 128}",
			     "expected an integer, got a boolean");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 15}",
			     "\"mem_size_mib\": 15 is out of range");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 18446744073709551615}",
			     "out of range");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"smt\": \"yes\"}",
			     "\"smt\": expected true or false");
	expect_machine_error("{\"vcpu_count\": 3, \"mem_size_mib\": 128, \"smt\": true}",
			     "must be 1 or even when smt is enabled");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 129, \"huge_pages\": \"2M\"}",
			     "multiple of 2");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"huge_pages\": \"1G\"}",
			     "\"huge_pages\": unknown value");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"huge_pages\": "
			     "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
			     "\"huge_pages\": unknown value");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"T2\"}",
			     "Firecracker template");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"cpu_template\": \"x\"}",
			     "unknown template");
	expect_machine_error(deep, "malformed JSON");
	expect_machine_error("{\"vcpu_count\": 1, \"mem_size_mib\": 128, \"x\xff\": 1}",
			     "malformed JSON");   /* invalid UTF-8 */

	/* A NUL byte inside the body. */
	struct api_config c;
	struct api_machine m;
	char err[API_ERR_MAX];
	api_config_init(&c);
	assert_int_equal(api_json_parse_machine("{\"vcpu_count\": 1\0}", 18, &c.machine, false, &m,
						err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL"));
	/* NULL body with length 0 (no body at all). */
	assert_int_equal(api_json_parse_machine(NULL, 0, &c.machine, false, &m, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "empty body"));
}

static void expect_resources_error(const char *body, const char *want)
{
	struct api_resources r = { .cpu_weight = 77 };
	char err[API_ERR_MAX] = "";
	int rc = api_json_parse_resources(body, strlen(body), &r, err, sizeof(err));
	if (rc != -EINVAL || !strstr(err, want))
		fail_msg("body %.80s: rc %d, err \"%s\", expected \"%s\"", body, rc, err, want);
	assert_int_equal(r.cpu_weight, 77);   /* untouched on failure */
}

/* wafer's run-time PATCH /machine-config body. */
static void test_resources(void **state)
{
	struct api_resources r;
	struct api_machine m, base;
	struct api_config c;
	char err[API_ERR_MAX];
	(void)state;

	assert_int_equal(api_json_parse_resources(S("{\"cpu_weight\": 1, \"cpu_cap\": 409600, "
		"\"memory_limit_mib\": 16}"), &r, err, sizeof(err)), 0);
	assert_true(r.has_cpu_weight && r.has_cpu_cap && r.has_memory_limit);
	assert_int_equal(r.cpu_weight, 1);
	assert_int_equal(r.cpu_cap, 409600);
	assert_int_equal(r.memory_limit_mib, 16);
	assert_int_equal(api_json_parse_resources(S("{\"cpu_cap\": 0, \"cpu_weight\": null}"), &r,
						  err, sizeof(err)), 0);
	assert_true(r.has_cpu_cap && !r.has_cpu_weight && !r.has_memory_limit);

	expect_resources_error("{\"cpu_weight\": 0}", "\"cpu_weight\": 0 is out of range (1..65535)");
	expect_resources_error("{\"cpu_weight\": 70000}", "\"cpu_weight\": 70000 is out of range");
	expect_resources_error("{\"cpu_weight\": -5}", "\"cpu_weight\": must not be negative");
	expect_resources_error("{\"cpu_weight\": true}", "\"cpu_weight\": expected an integer, got a boolean");
	expect_resources_error("{\"cpu_cap\": \"50%\"}", "\"cpu_cap\": expected an integer, got a string");
	expect_resources_error("{\"memory_limit_mib\": 15}", "\"memory_limit_mib\": 15 is below the minimum of 16");
	expect_resources_error("{\"memory_limit_mib\": 1.5}", "\"memory_limit_mib\": expected an integer");
	expect_resources_error("{\"smt\": true}", "\"smt\": cannot change after the microVM started");
	expect_resources_error("{\"cpu_weights\": 5}", "unknown field \"cpu_weights\"");
	expect_resources_error("{}", "nothing to change");
	expect_resources_error("{\"cpu_weight\": null}", "nothing to change");
	expect_resources_error("[7]", "expected a JSON object");

	/* Before start (Firecracker's PATCH) the extension's fields are refused
	 * with a pointer to the flags; a config file does not know them. */
	api_config_init(&c);
	base = c.machine;
	assert_int_equal(api_json_parse_machine(S("{\"cpu_cap\": 50}"), &base, true, &m, err,
						sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "\"cpu_cap\": changes only on a running microVM"));
	assert_int_equal(api_json_parse_machine(S("{\"vcpu_count\": 1, \"mem_size_mib\": 64, "
		"\"cpu_weight\": 5}"), &base, false, &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown field \"cpu_weight\""));
}

static void test_boot_source(void **state)
{
	(void)state;
	struct api_boot_source b;
	char err[API_ERR_MAX];
	static char big[API_BOOT_ARGS_MAX + 64];

	assert_int_equal(api_json_parse_boot_source(S("{\"kernel_image_path\": \"/k\", "
		"\"boot_args\": \"console=ttyS0 reboot=k\", \"initrd_path\": null}"), &b, err,
		sizeof(err)), 0);
	assert_true(b.present);
	assert_string_equal(b.kernel_image_path, "/k");
	assert_string_equal(b.initrd_path, "");
	assert_true(b.has_boot_args);
	assert_string_equal(b.boot_args, "console=ttyS0 reboot=k");

	assert_int_equal(api_json_parse_boot_source(S("{\"kernel_image_path\": \"/k\"}"), &b, err,
						    sizeof(err)), 0);
	assert_false(b.has_boot_args);

	assert_int_equal(api_json_parse_boot_source(S("{\"boot_args\": \"x\"}"), &b, err,
						    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing required field \"kernel_image_path\""));
	assert_int_equal(api_json_parse_boot_source(S("{\"kernel_image_path\": \"\"}"), &b, err,
						    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must not be empty"));
	assert_int_equal(api_json_parse_boot_source(S("{\"kernel_image_path\": 5}"), &b, err,
						    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expected a string, got an integer"));
	assert_int_equal(api_json_parse_boot_source(S("{\"kernel_image_path\": \"/a\\u0000b\"}"),
						    &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "NUL character"));

	/* A boot_args of exactly the limit is refused; one less is fine. */
	static const char head[] = "{\"kernel_image_path\": \"/k\", \"boot_args\": \"";
	const size_t n = sizeof(head) - 1;
	memcpy(big, head, n);
	memset(big + n, 'a', API_BOOT_ARGS_MAX);
	strcpy(big + n + API_BOOT_ARGS_MAX, "\"}");
	assert_int_equal(api_json_parse_boot_source(S(big), &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "\"boot_args\": longer than 4095 bytes"));
	memmove(big + n + API_BOOT_ARGS_MAX - 1, big + n + API_BOOT_ARGS_MAX, 3);
	assert_int_equal(api_json_parse_boot_source(S(big), &b, err, sizeof(err)), 0);
	assert_int_equal(strlen(b.boot_args), API_BOOT_ARGS_MAX - 1);
}

static void expect_drive_error(const char *path_id, const char *body, const char *want)
{
	struct api_drive d;
	char err[API_ERR_MAX] = "";
	int rc = api_json_parse_drive(body, strlen(body), path_id, &d, err, sizeof(err));

	if (rc != -EINVAL || !strstr(err, want))
		fail_msg("drive %.100s: rc %d, err \"%s\", expected \"%s\"", body, rc, err, want);
}

static void test_drive(void **state)
{
	(void)state;
	struct api_drive d;
	char err[API_ERR_MAX];

	assert_int_equal(api_json_parse_drive(S("{\"drive_id\": \"rootfs\", \"path_on_host\": "
		"\"/img\", \"is_root_device\": true, \"is_read_only\": true, \"partuuid\": "
		"\"0eaa91a0-01\", \"cache_type\": \"Writeback\", \"io_engine\": \"Async\", "
		"\"rate_limiter\": {\"bandwidth\": {\"size\": 1048576, \"refill_time\": 100, "
		"\"one_time_burst\": 9223372036854775807}, \"ops\": {\"size\": 10, \"refill_time\": 0}}}"),
		"rootfs", &d, err, sizeof(err)), 0);
	assert_string_equal(d.drive_id, "rootfs");
	assert_string_equal(d.path_on_host, "/img");
	assert_true(d.is_root_device);
	assert_true(d.is_read_only);
	assert_string_equal(d.partuuid, "0eaa91a0-01");
	assert_int_equal(d.cache_type, API_CACHE_WRITEBACK);
	assert_int_equal(d.io_engine, API_IO_ASYNC);
	assert_true(d.rate_limiter.present);
	assert_true(d.rate_limiter.bandwidth.present);
	assert_true(d.rate_limiter.bandwidth.size == 1048576);
	assert_true(d.rate_limiter.bandwidth.refill_time_ms == 100);
	assert_true(d.rate_limiter.bandwidth.one_time_burst == INT64_MAX);
	assert_true(d.rate_limiter.ops.present);
	assert_true(d.rate_limiter.ops.size == 10);

	assert_int_equal(api_json_parse_drive(S("{\"drive_id\": \"d_1-x\", \"path_on_host\": "
		"\"/img\", \"is_root_device\": false}"), "d_1-x", &d, err, sizeof(err)), 0);
	assert_false(d.is_read_only);
	assert_false(d.rate_limiter.present);
	assert_int_equal(d.cache_type, API_CACHE_UNSAFE);
	assert_int_equal(d.io_engine, API_IO_SYNC);

	const char *ok_tail = ", \"path_on_host\": \"/img\", \"is_root_device\": false}";
	char body[512];
	snprintf(body, sizeof(body), "{\"drive_id\": \"other\"%s", ok_tail);
	expect_drive_error("rootfs", body, "does not match the id in the path");
	snprintf(body, sizeof(body), "{\"drive_id\": \"a b\"%s", ok_tail);
	expect_drive_error(NULL, body, "invalid id");
	snprintf(body, sizeof(body), "{\"drive_id\": \"%065d\"%s", 0, ok_tail);
	expect_drive_error(NULL, body, "longer than 64 bytes");
	snprintf(body, sizeof(body), "{\"drive_id\": \"\"%s", ok_tail);
	expect_drive_error(NULL, body, "invalid id");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/img\"}",
			   "missing required field \"is_root_device\"");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"is_root_device\": true}",
			   "missing required field \"path_on_host\"");
	expect_drive_error("a", "{\"path_on_host\": \"/i\", \"is_root_device\": true}",
			   "missing required field \"drive_id\"");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"\", "
			   "\"is_root_device\": true}", "\"path_on_host\": must not be empty");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"socket\": \"/s\", "
			   "\"is_root_device\": true}", "vhost-user");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": 1}", "\"is_root_device\": expected true or false");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"cache_type\": \"None\"}",
			   "\"cache_type\": unknown value, expected one of \"Unsafe\", \"Writeback\"");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"partuuid\": \"1 init=/bin/sh\"}",
			   "only hex digits");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"rate_limiter\": {\"bandwidth\": "
			   "{\"size\": 1, \"refill_time\": 1, \"foo\": 2}}}",
			   "rate_limiter.bandwidth: unknown field \"foo\"");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"rate_limiter\": {\"ops\": {\"size\": 1}}}",
			   "rate_limiter.ops: missing required field \"refill_time\"");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"rate_limiter\": {\"ops\": "
			   "{\"size\": -5, \"refill_time\": 1}}}", "must not be negative");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"rate_limiter\": {\"ops\": "
			   "{\"size\": 9223372036854775808, \"refill_time\": 1}}}", "out of range");
	expect_drive_error("a", "{\"drive_id\": \"a\", \"path_on_host\": \"/i\", "
			   "\"is_root_device\": true, \"rate_limiter\": []}",
			   "rate_limiter: expected a JSON object, got an array");
}

static void expect_net_error(const char *body, const char *want)
{
	struct api_net n;
	char err[API_ERR_MAX] = "";
	int rc = api_json_parse_net(body, strlen(body), "eth0", &n, err, sizeof(err));

	if (rc != -EINVAL || !strstr(err, want))
		fail_msg("net %.100s: rc %d, err \"%s\", expected \"%s\"", body, rc, err, want);
}

static void test_net(void **state)
{
	(void)state;
	struct api_net n;
	char err[API_ERR_MAX];

	assert_int_equal(api_json_parse_net(S("{\"iface_id\": \"eth0\", \"host_dev_name\": "
		"\"tap0\", \"guest_mac\": \"AA:fc:00:00:00:01\", \"mtu\": 9000, \"rx_rate_limiter\": "
		"{\"ops\": {\"size\": 100, \"refill_time\": 1000}}}"), "eth0", &n, err, sizeof(err)), 0);
	assert_string_equal(n.iface_id, "eth0");
	assert_string_equal(n.host_dev_name, "tap0");
	assert_true(n.has_guest_mac);
	uint8_t mac[6] = { 0xaa, 0xfc, 0, 0, 0, 1 };
	assert_memory_equal(n.guest_mac, mac, 6);
	assert_int_equal(n.mtu, 9000);
	assert_true(n.rx_rate_limiter.present);
	assert_false(n.tx_rate_limiter.present);

	expect_net_error("{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap0\"}",
			 "does not match the id in the path");
	expect_net_error("{\"iface_id\": \"eth0\"}", "missing required field \"host_dev_name\"");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0123456789abc\"}",
			 "\"host_dev_name\": longer than 15 bytes");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"a/b\"}",
			 "not a valid interface name");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"..\"}",
			 "not a valid interface name");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\", \"guest_mac\": "
			 "\"aa:bb:cc:dd:ee\"}", "is not a MAC address");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\", \"guest_mac\": "
			 "\"aa:bb:cc:dd:ee:gg\"}", "is not a MAC address");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\", \"guest_mac\": "
			 "\"01:00:5e:00:00:01\"}", "multicast");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\", \"mtu\": 67}",
			 "\"mtu\": 67 is out of range (68..65535)");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\", "
			 "\"allow_mmds_requests\": true}", "unknown field \"allow_mmds_requests\"");
	expect_net_error("{\"iface_id\": \"eth0\", \"host_dev_name\": \"t\", \"tx_rate_limiter\": "
			 "{\"bandwidth\": {\"size\": \"1\", \"refill_time\": 1}}}",
			 "tx_rate_limiter.bandwidth: \"size\": expected an integer");
}

static void test_small_resources(void **state)
{
	(void)state;
	char err[API_ERR_MAX];
	struct api_logger l;
	struct api_metrics_config mc;
	struct api_entropy e;
	enum api_action a;
	bool pause;

	assert_int_equal(api_json_parse_logger(S("{\"log_path\": \"/tmp/l\", \"level\": \"debug\", "
		"\"show_level\": true, \"module\": \"api\"}"), &l, err, sizeof(err)), 0);
	assert_int_equal(l.level, API_LOG_DEBUG);
	assert_true(l.show_level);
	assert_false(l.show_log_origin);
	assert_string_equal(l.module, "api");
	assert_int_equal(api_json_parse_logger(S("{}"), &l, err, sizeof(err)), 0);
	assert_int_equal(l.level, API_LOG_INFO);
	assert_int_equal(api_json_parse_logger(S("{\"level\": \"Loud\"}"), &l, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "\"level\": unknown value"));

	assert_int_equal(api_json_parse_metrics(S("{\"metrics_path\": \"/tmp/m\"}"), &mc, err,
						sizeof(err)), 0);
	assert_string_equal(mc.metrics_path, "/tmp/m");
	assert_int_equal(api_json_parse_metrics(S("{}"), &mc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing required field \"metrics_path\""));

	assert_int_equal(api_json_parse_entropy(S("{}"), &e, err, sizeof(err)), 0);
	assert_true(e.present);
	assert_false(e.rate_limiter.present);
	assert_int_equal(api_json_parse_entropy(S("{\"rate_limiter\": {\"bandwidth\": {\"size\": "
		"1000, \"refill_time\": 100}}}"), &e, err, sizeof(err)), 0);
	assert_true(e.rate_limiter.bandwidth.size == 1000);
	assert_int_equal(api_json_parse_entropy(S("{\"rate\": 1}"), &e, err, sizeof(err)), -EINVAL);

	assert_int_equal(api_json_parse_action(S("{\"action_type\": \"InstanceStart\"}"), &a, err,
					       sizeof(err)), 0);
	assert_int_equal(a, API_ACTION_INSTANCE_START);
	assert_int_equal(api_json_parse_action(S("{\"action_type\": \"SendCtrlAltDel\"}"), &a, err,
					       sizeof(err)), 0);
	assert_int_equal(a, API_ACTION_SEND_CTRL_ALT_DEL);
	assert_int_equal(api_json_parse_action(S("{\"action_type\": \"FlushMetrics\"}"), &a, err,
					       sizeof(err)), 0);
	assert_int_equal(a, API_ACTION_FLUSH_METRICS);
	assert_int_equal(api_json_parse_action(S("{\"action_type\": \"Reboot\"}"), &a, err,
					       sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "\"action_type\": unknown value"));
	assert_int_equal(api_json_parse_action(S("{}"), &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "missing required field \"action_type\""));

	assert_int_equal(api_json_parse_vm_state(S("{\"state\": \"Paused\"}"), &pause, err,
						 sizeof(err)), 0);
	assert_true(pause);
	assert_int_equal(api_json_parse_vm_state(S("{\"state\": \"Resumed\"}"), &pause, err,
						 sizeof(err)), 0);
	assert_false(pause);
	assert_int_equal(api_json_parse_vm_state(S("{\"state\": \"paused\"}"), &pause, err,
						 sizeof(err)), -EINVAL);
	assert_int_equal(api_json_parse_vm_state(S("{\"state\": \"Paused\", \"x\": 1}"), &pause,
						 err, sizeof(err)), -EINVAL);
}

static void test_ids(void **state)
{
	(void)state;
	assert_true(api_id_valid("rootfs"));
	assert_true(api_id_valid("a_b-C9"));
	assert_false(api_id_valid(""));
	assert_false(api_id_valid("a/b"));
	assert_false(api_id_valid("a.b"));
	assert_false(api_id_valid("a b"));
	char id[80];
	memset(id, 'x', sizeof(id));
	id[64] = '\0';
	assert_true(api_id_valid(id));
	id[64] = 'x';
	id[65] = '\0';
	assert_false(api_id_valid(id));
}

static json_object *parse_ok(const char *s)
{
	json_object *o = json_tokener_parse(s);
	assert_non_null(o);
	return o;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	assert_true(json_object_object_get_ex(o, k, &v));
	return json_object_get_string(v);
}

static void test_render(void **state)
{
	(void)state;
	char *s;
	json_object *o;

	assert_int_equal(api_json_render_instance("vm-1", API_STATE_PAUSED, &s), 0);
	o = parse_ok(s);
	assert_string_equal(jstr(o, "id"), "vm-1");
	assert_string_equal(jstr(o, "state"), "Paused");
	assert_string_equal(jstr(o, "app_name"), "wafer");
	assert_non_null(jstr(o, "vmm_version"));
	json_object_put(o);
	free(s);

	assert_int_equal(api_json_render_fault("bad \"thing\"\n", &s), 0);
	o = parse_ok(s);
	assert_string_equal(jstr(o, "fault_message"), "bad \"thing\"\n");
	json_object_put(o);
	free(s);

	assert_int_equal(api_json_render_version(&s), 0);
	o = parse_ok(s);
	assert_non_null(jstr(o, "firecracker_version"));
	json_object_put(o);
	free(s);

	struct api_config c;
	api_config_init(&c);
	assert_int_equal(api_json_render_machine(&c.machine, &s), 0);
	assert_string_equal(s, "{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":false,"
			    "\"track_dirty_pages\":false,\"huge_pages\":\"None\"}");
	free(s);
}

static char *write_config(const char *text)
{
	static char path[96];
	snprintf(path, sizeof(path), "%s/vm.json", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void expect_config_error(const char *text, const char *want)
{
	struct api_config *c = malloc(sizeof(*c));
	char err[API_ERR_MAX] = "";

	assert_non_null(c);
	const char *path = write_config(text);
	int rc = api_config_load_file(path, c, err, sizeof(err));
	if (rc == 0 || !strstr(err, want) || !strstr(err, path))
		fail_msg("config %.120s: rc %d, err \"%s\", expected \"%s\"", text, rc, err, want);
	free(c);
	unlink(path);
}

static void test_config_file(void **state)
{
	(void)state;
	struct api_config *c = malloc(sizeof(*c)), *c2 = malloc(sizeof(*c2));
	char err[API_ERR_MAX], text[2048];
	char *s;

	assert_non_null(c);
	assert_non_null(c2);
	snprintf(text, sizeof(text),
		 "{\"boot-source\": {\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"},"
		 " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"%s\","
		 "  \"is_root_device\": true, \"is_read_only\": false},"
		 " {\"drive_id\": \"data\", \"path_on_host\": \"%s\", \"is_root_device\": false,"
		 "  \"is_read_only\": true, \"rate_limiter\": {\"ops\": {\"size\": 5, \"refill_time\": 1}}}],"
		 " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 256},"
		 " \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\","
		 "  \"guest_mac\": \"02:00:00:00:00:01\"}],"
		 " \"logger\": {\"level\": \"Warning\"}, \"metrics\": {\"metrics_path\": \"/tmp/m\"},"
		 " \"entropy\": {}, \"vsock\": null, \"balloon\": null}", kernel, disk, disk);
	const char *path = write_config(text);
	assert_int_equal(api_config_load_file(path, c, err, sizeof(err)), 0);
	assert_true(c->boot.present);
	assert_string_equal(c->boot.kernel_image_path, kernel);
	assert_string_equal(c->boot.boot_args, "console=ttyS0");
	assert_int_equal(c->ndrives, 2);
	assert_true(c->drives[0].is_root_device);
	assert_true(c->drives[1].is_read_only);
	assert_true(c->drives[1].rate_limiter.ops.size == 5);
	assert_int_equal(c->machine.vcpu_count, 2);
	assert_int_equal(c->nnets, 1);
	assert_int_equal(c->logger.level, API_LOG_WARNING);
	assert_true(c->metrics.present);
	assert_true(c->entropy.present);

	/* What GET /vm/config prints loads back as the same config. */
	assert_int_equal(api_json_render_config(c, &s), 0);
	assert_int_equal(api_json_parse_config(s, strlen(s), c2, err, sizeof(err)), 0);
	free(s);
	assert_memory_equal(&c->boot, &c2->boot, sizeof(c->boot));
	assert_memory_equal(c->drives, c2->drives, sizeof(c->drives));
	assert_memory_equal(c->nets, c2->nets, sizeof(c->nets));
	assert_memory_equal(&c->metrics, &c2->metrics, sizeof(c->metrics));
	assert_int_equal(c2->machine.vcpu_count, 2);
	assert_int_equal(c2->machine.mem_size_mib, 256);
	assert_int_equal(c2->logger.level, API_LOG_WARNING);
	assert_true(c2->entropy.present);
	unlink(path);

	snprintf(text, sizeof(text), "{\"boot-source\": {\"kernel_image_path\": \"%s\"}}", kernel);
	assert_int_equal(api_config_load_file(write_config(text), c, err, sizeof(err)), 0);
	assert_int_equal(c->machine.vcpu_count, 1);
	assert_int_equal(c->ndrives, 0);

	expect_config_error("{}", "\"boot-source\": required");
	expect_config_error("{\"boot-source\": {\"kernel_image_path\": \"/nonexistent/k\"}}",
			    "boot-source: kernel_image_path /nonexistent/k: No such file");
	expect_config_error("{\"vsock\": {\"guest_cid\": 3}}", "\"vsock\": not supported by wafer");
	expect_config_error("{\"drives\": {}}", "drives: expected an array, got an object");
	expect_config_error("{\"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 128}}",
			    "machine-config: \"vcpu_count\": 0 is out of range");
	expect_config_error("{\"frobnicate\": 1}", "unknown field \"frobnicate\"");
	expect_config_error("{\"boot-source\": ", "malformed JSON");
	snprintf(text, sizeof(text), "{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"%s\","
		 " \"is_root_device\": true}, {\"drive_id\": \"b\", \"path_on_host\": \"%s\","
		 " \"is_root_device\": true}]}", disk, disk);
	expect_config_error(text, "drives[1]: drive b: drive a is already the root device");
	snprintf(text, sizeof(text), "{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"%s\","
		 " \"is_root_device\": false}, {\"drive_id\": \"a\", \"path_on_host\": \"%s\","
		 " \"is_root_device\": false}]}", disk, disk);
	expect_config_error(text, "drives[1]: duplicate drive_id \"a\"");
	expect_config_error("{\"network-interfaces\": [{\"iface_id\": \"a\", \"host_dev_name\": \"t\"},"
			    " {\"iface_id\": \"b\", \"host_dev_name\": \"t\"}]}",
			    "network-interfaces[1]: interface b: host_dev_name t is already used by a");
	expect_config_error("{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/dev/null\","
			    " \"is_root_device\": false}]}", "not a regular file or block device");

	assert_int_equal(api_config_load_file("/nonexistent/vm.json", c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/vm.json: No such file"));
	assert_int_equal(api_config_load_file(tmpdir, c, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "is a directory"));

	/* Over the 1 MiB cap. */
	char big[96];
	snprintf(big, sizeof(big), "%s/big.json", tmpdir);
	FILE *f = fopen(big, "w");
	assert_non_null(f);
	assert_int_equal(fseek(f, 2 * 1024 * 1024, SEEK_SET), 0);
	fputc(' ', f);
	fclose(f);
	assert_int_equal(api_config_load_file(big, c, err, sizeof(err)), -EFBIG);
	unlink(big);
	free(c);
	free(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_machine_ok),
		cmocka_unit_test(test_machine_bad),
		cmocka_unit_test(test_resources),
		cmocka_unit_test(test_boot_source),
		cmocka_unit_test(test_drive),
		cmocka_unit_test(test_net),
		cmocka_unit_test(test_small_resources),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_config_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
