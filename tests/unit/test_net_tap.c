/* Tap backend against the real kernel, inside a private network namespace:
 * create/attach, errors, offload programming and the 12-byte vnet header on
 * the wire. Needs root and /dev/net/tun; exits 77 (skip) otherwise.
 * `test_net_tap --open IFNAME` only attaches to IFNAME (integration script). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>

#include "backends/net_tap.h"
#include "devices/virtio/net.h"

static int if_flags(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0), rc;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	rc = ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -errno : ifr.ifr_flags;
	close(s);
	return rc;
}

/* Is TCP segmentation offload on for the interface (what TUNSETOFFLOAD
 * with TSO4 switches)? */
static int if_tso(const char *ifname)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_GTSO };
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0), rc;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	rc = ioctl(s, SIOCETHTOOL, &ifr) < 0 ? -errno : (int)ev.data;
	close(s);
	return rc;
}

static void test_create_attach_close(void **state)
{
	(void)state;
	char err[256], name[IFNAMSIZ];
	int fd = net_tap_open("wtap0", err, sizeof(err));

	assert_true(fd >= 0);
	assert_int_not_equal(if_nametoindex("wtap0"), 0);
	assert_true(if_flags("wtap0") & IFF_UP); /* we created it: brought up */
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_true(net_tap_fd_is_tap(fd, name));
	assert_string_equal(name, "wtap0");
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	assert_false(net_tap_fd_is_tap(sv[0], NULL));
	close(sv[0]);
	close(sv[1]);
	close(fd);
	assert_int_equal(if_nametoindex("wtap0"), 0); /* ours was not persistent */
}

static void test_existing_tap_left_alone(void **state)
{
	(void)state;
	char err[256];
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int pfd = open("/dev/net/tun", O_RDWR);

	/* what `ip tuntap add wpers0 mode tap` does */
	snprintf(ifr.ifr_name, IFNAMSIZ, "wpers0");
	assert_true(pfd >= 0);
	assert_int_equal(ioctl(pfd, TUNSETIFF, &ifr), 0);
	assert_int_equal(ioctl(pfd, TUNSETPERSIST, 1), 0);
	close(pfd);

	int fd = net_tap_open("wpers0", err, sizeof(err));
	assert_true(fd >= 0);
	assert_false(if_flags("wpers0") & IFF_UP); /* the operator's to configure */
	close(fd);
	assert_int_not_equal(if_nametoindex("wpers0"), 0);

	pfd = open("/dev/net/tun", O_RDWR);
	assert_int_equal(ioctl(pfd, TUNSETIFF, &ifr), 0);
	assert_int_equal(ioctl(pfd, TUNSETPERSIST, 0), 0);
	close(pfd);
	assert_int_equal(if_nametoindex("wpers0"), 0);
}

static void test_errors(void **state)
{
	(void)state;
	char err[256];
	int fd;

	assert_int_equal(net_tap_open("wtap-name-too-long", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "1 to 15 characters"));
	assert_int_equal(net_tap_open("", err, sizeof(err)), -EINVAL);
	assert_int_equal(net_tap_open("a/b", err, sizeof(err)), -EINVAL);
	assert_int_equal(net_tap_open("tap%d", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "invalid interface name"));

	fd = net_tap_open("wtap1", err, sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(net_tap_open("wtap1", err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "tap wtap1: busy"));
	close(fd);

	/* exists but is not a tap */
	assert_int_equal(net_tap_open("lo", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tap lo: cannot attach"));
}

/* Run fn in a child with fewer privileges; it passes by exiting 0. */
static void in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Root without CAP_NET_ADMIN: /dev/net/tun opens, creating a tap does not. */
static int no_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2];
	char err[256];

	if (syscall(SYS_capget, &h, c))
		return 2;
	c[0].effective &= ~(1u << CAP_NET_ADMIN);
	c[0].permitted &= ~(1u << CAP_NET_ADMIN);
	if (syscall(SYS_capset, &h, c))
		return 2;
	int rc = net_tap_open("wtap9", err, sizeof(err));
	return rc == -EPERM && strstr(err, "tap wtap9: cannot open/create: ") &&
	       strstr(err, "(create it with `ip tuntap add wtap9 mode tap user root`, "
			   "or run with CAP_NET_ADMIN)") ? 0 : 1;
}

/* An unprivileged user: the hint depends on /dev/net/tun's mode (0600 on
 * some hosts, 0666 on most). */
static int as_nobody(void)
{
	char err[256];

	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		return 2;
	int rc = net_tap_open("wtap9", err, sizeof(err));
	if (rc == -EACCES)
		return strstr(err, "cannot open /dev/net/tun: Permission denied") ? 0 : 1;
	return rc == -EPERM && strstr(err, "ip tuntap add wtap9 mode tap user ") ? 0 : 1;
}

static void test_permission_hint(void **state)
{
	(void)state;
	in_child(no_net_admin);
	in_child(as_nobody);
}

static void test_offload(void **state)
{
	(void)state;
	char err[256];
	int fd = net_tap_open("wtap2", err, sizeof(err));

	assert_true(fd >= 0);
	assert_int_equal(if_tso("wtap2"), 0); /* opened with no offloads */
	assert_int_equal(net_tap_set_offload(fd, NET_TAP_OFFLOAD_CSUM | NET_TAP_OFFLOAD_TSO4 |
					     NET_TAP_OFFLOAD_TSO6 | NET_TAP_OFFLOAD_TSO_ECN), 0);
	assert_int_equal(if_tso("wtap2"), 1);
	assert_int_equal(net_tap_set_offload(fd, 0), 0);
	assert_int_equal(if_tso("wtap2"), 0);
	/* TSO without checksum offload is dropped, not an error */
	assert_int_equal(net_tap_set_offload(fd, NET_TAP_OFFLOAD_TSO4), 0);
	assert_int_equal(if_tso("wtap2"), 0);
	close(fd);
}

/* A frame written with a 12-byte header reaches the interface; one sent on
 * the interface is read back behind a 12-byte header. */
static void test_vnet_header_on_the_wire(void **state)
{
	(void)state;
	char err[256];
	uint8_t frame[60], msg[12 + sizeof(frame)], got[2048];
	int fd = net_tap_open("wtap3", err, sizeof(err));
	assert_true(fd >= 0);
	int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	assert_true(ps >= 0);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = (int)if_nametoindex("wtap3") };
	assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof(sll)), 0);

	memset(frame, 0xff, 6);                               /* broadcast */
	memcpy(frame + 6, "\x02\x00\x00\x00\x00\x01", 6);
	frame[12] = 0x88;                                     /* local experimental */
	frame[13] = 0xb5;
	for (unsigned i = 14; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	memset(msg, 0, 12);
	memcpy(msg + 12, frame, sizeof(frame));
	assert_int_equal(write(fd, msg, sizeof(msg)), sizeof(msg));
	struct pollfd p = { .fd = ps, .events = POLLIN };
	ssize_t n = 0;
	while (poll(&p, 1, 2000) == 1) {
		n = recv(ps, got, sizeof(got), 0);
		if (n == (ssize_t)sizeof(frame) && got[12] == 0x88 && got[13] == 0xb5)
			break;
	}
	assert_int_equal(n, sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));

	frame[14] = 0xaa;
	assert_int_equal(send(ps, frame, sizeof(frame), 0), sizeof(frame));
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	n = 0;
	while (poll(&p, 1, 2000) == 1) {
		n = read(fd, got, sizeof(got));
		if (n == (ssize_t)sizeof(msg) && got[12 + 14] == 0xaa)
			break;
	}
	assert_int_equal(n, sizeof(msg));
	assert_int_equal(got[1], 0);          /* gso_type NONE */
	assert_memory_equal(got + 12, frame, sizeof(frame));
	close(ps);
	close(fd);
}

/* The device programs the tap's offloads from the negotiated features and
 * clears them on reset. */
static void test_device_offloads(void **state)
{
	(void)state;
	char err[256];
	static uint8_t ram[1 << 16];
	struct guest_mem mem;
	struct net_config cfg = { .id = "net0", .vm_name = "vm", .ifname = "wtap4" };

	gmem_init(&mem, ram, sizeof(ram));
	struct virtio_dev *d = virtio_net_create(&mem, NULL, &cfg, err, sizeof(err));
	assert_non_null(d);
	d->device_features = d->ops->features(d) | (1ull << 32);
	d->features = (1ull << 1) | (1ull << 7) | (1ull << 32); /* GUEST_CSUM, GUEST_TSO4 */
	assert_int_equal(d->ops->activate(d), 0);
	assert_int_equal(if_tso("wtap4"), 1);
	d->ops->reset(d);
	assert_int_equal(if_tso("wtap4"), 0);
	d->ops->destroy(d);
	assert_int_equal(if_nametoindex("wtap4"), 0);

	cfg.ifname = "wtap-name-too-long";
	assert_null(virtio_net_create(&mem, NULL, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "wtap-name-too-long"));
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--open")) {
		char err[256];
		int fd = net_tap_open(argv[2], err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		printf("attached to %s\n", argv[2]);
		close(fd);
		return 0;
	}
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK)) {
		fprintf(stderr, "skip: needs root and /dev/net/tun\n");
		return 77;
	}
	/* Private namespace: the host's interfaces are neither seen nor touched. */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "skip: cannot create a network namespace: %s\n", strerror(errno));
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_attach_close),
		cmocka_unit_test(test_existing_tap_left_alone),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_permission_hint),
		cmocka_unit_test(test_offload),
		cmocka_unit_test(test_vnet_header_on_the_wire),
		cmocka_unit_test(test_device_offloads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
