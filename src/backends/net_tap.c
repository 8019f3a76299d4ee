/* Tap backend for virtio-net: /dev/net/tun in IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR mode, so each read/write is one frame behind the virtio-net
 * header of virtio 1.2 section 5.1.6 (the kernel's byte order is x86's LE). */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "backends/net_tap.h"
#include "vmm/log.h"

/* The kernel's dev_valid_name() rules, plus '%': "tap%d" would make the
 * kernel pick a fresh name, and the operator asked for a specific one. */
static int tap_name_check(const char *ifname, char *err, size_t errlen)
{
	size_t n = strlen(ifname);

	if (n == 0 || n >= IFNAMSIZ) {
		snprintf(err, errlen, "tap '%s': interface names are 1 to %d characters",
			 ifname, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (!strcmp(ifname, ".") || !strcmp(ifname, "..") ||
	    strpbrk(ifname, "/:% \t\n\r\v\f")) {
		snprintf(err, errlen, "tap '%s': invalid interface name", ifname);
		return -EINVAL;
	}
	return 0;
}

static void tap_perm_error(const char *ifname, int e, char *err, size_t errlen)
{
	char user[64];
	struct passwd *pw = getpwuid(geteuid());

	if (pw && pw->pw_name && strlen(pw->pw_name) < sizeof(user))
		snprintf(user, sizeof(user), "%s", pw->pw_name);
	else
		snprintf(user, sizeof(user), "%u", (unsigned)geteuid());
	snprintf(err, errlen, "tap %s: cannot open/create: %s (create it with "
		 "`ip tuntap add %s mode tap user %s`, or run with CAP_NET_ADMIN)",
		 ifname, strerror(e), ifname, user);
}

/* A tap we created starts down; bring it up so the guest link works once the
 * operator adds it to a bridge or gives it an address. */
static int tap_set_up(const char *ifname)
{
	struct ifreq ifr;
	int rc = 0;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
out:
	close(s);
	return rc;
}

int net_tap_open(const char *ifname, char *err, size_t errlen)
{
	struct ifreq ifr;
	int hdr_len = NET_TAP_VNET_HDR_LEN;
	int rc, r, fd = -1;
	bool existed;

	rc = tap_name_check(ifname, err, errlen);
	if (rc)
		return rc;
	existed = if_nametoindex(ifname) != 0;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "tap %s: cannot open /dev/net/tun: %s%s", ifname,
			 strerror(-rc),
			 rc == -ENOENT ? " (is the tun module loaded?)" :
			 rc == -EACCES ? " (this user needs read/write access to it; "
					 "distributions ship it mode 0666)" : "");
		goto out;
	}

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	r = ioctl(fd, TUNSETIFF, &ifr);
	if (r < 0) {
		rc = -errno;
		if (rc == -EPERM || rc == -EACCES)
			tap_perm_error(ifname, -rc, err, errlen);
		else if (rc == -EBUSY)
			snprintf(err, errlen, "tap %s: busy (another process is attached to it)",
				 ifname);
		else if (rc == -EINVAL)
			snprintf(err, errlen, "tap %s: cannot attach: %s (is it a tun device, or "
				 "not a tun/tap at all?)", ifname, strerror(-rc));
		else
			snprintf(err, errlen, "tap %s: cannot open/create: %s", ifname,
				 strerror(-rc));
		goto out;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "tap %s: cannot set the vnet header size: %s", ifname,
			 strerror(-rc));
		goto out;
	}
	/* A previous user may have left offloads on; the guest has not agreed to
	 * any yet. */
	rc = net_tap_set_offload(fd, 0);
	if (rc) {
		snprintf(err, errlen, "tap %s: cannot clear offloads: %s", ifname, strerror(-rc));
		goto out;
	}
	if (!existed) {
		r = tap_set_up(ifname);
		if (r)
			log_warn("tap %s: created but cannot bring it up: %s", ifname, strerror(-r));
	}
	return fd;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

bool net_tap_fd_is_tap(int fd, char *ifname)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return false;
	if ((ifr.ifr_flags & (IFF_TAP | IFF_VNET_HDR)) != (IFF_TAP | IFF_VNET_HDR))
		return false;
	if (ifname)
		memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
	return true;
}

int net_tap_set_offload(int fd, unsigned offloads)
{
	unsigned long arg = 0;

	if (offloads & NET_TAP_OFFLOAD_CSUM) {
		arg |= TUN_F_CSUM;
		if (offloads & NET_TAP_OFFLOAD_TSO4)
			arg |= TUN_F_TSO4;
		if (offloads & NET_TAP_OFFLOAD_TSO6)
			arg |= TUN_F_TSO6;
		if ((offloads & NET_TAP_OFFLOAD_TSO_ECN) && (arg & (TUN_F_TSO4 | TUN_F_TSO6)))
			arg |= TUN_F_TSO_ECN;
	}
	if (ioctl(fd, TUNSETOFFLOAD, arg) < 0)
		return -errno;
	return 0;
}
