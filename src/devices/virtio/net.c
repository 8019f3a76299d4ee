/* virtio-net device (virtio 1.2 section 5.1): receive queue 0 and transmit
 * queue 1 moved to and from a tap, checksum/TSO offloads (5.1.6.2, 5.1.6.4),
 * mergeable receive buffers (5.1.6.3) and link status (5.1.4). */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/net_tap.h"
#include "devices/virtio/net.h"
#include "state/format.h"

/* Feature bits (5.1.3) */
#define NET_F_CSUM        0
#define NET_F_GUEST_CSUM  1
#define NET_F_MAC         5
#define NET_F_GUEST_TSO4  7
#define NET_F_GUEST_TSO6  8
#define NET_F_GUEST_ECN   9
#define NET_F_HOST_TSO4   11
#define NET_F_HOST_TSO6   12
#define NET_F_HOST_ECN    13
#define NET_F_MRG_RXBUF   15
#define NET_F_STATUS      16

#define NET_S_LINK_UP     1

/* struct virtio_net_hdr_v1 (5.1.6) */
#define HDR_F_NEEDS_CSUM  1
#define HDR_F_DATA_VALID  2
#define GSO_NONE          0
#define GSO_TCPV4         1
#define GSO_TCPV6         4
#define GSO_ECN           0x80

struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers; /* LE */
};
_Static_assert(sizeof(struct net_hdr) == NET_TAP_VNET_HDR_LEN, "virtio_net_hdr_v1 is 12 bytes");

#define NET_HDR_LEN     NET_TAP_VNET_HDR_LEN
#define NET_FRAME_MIN   14      /* Ethernet header */
#define NET_FRAME_MAX   65550   /* 64 KiB TSO frame + Ethernet header */
#define NET_CONFIG_SIZE 10      /* mac, status, max_virtqueue_pairs */
/* Chains handled per wake-up before yielding the I/O thread to other fds;
 * the rest is picked up through the kick eventfd. */
#define NET_BUDGET      256

enum { RXQ = 0, TXQ = 1 };

struct net_used {
	uint16_t head;
	uint32_t len;
};

struct net_dev {
	struct virtio_dev vdev;
	/* Queue work runs on the I/O thread; activate/reset/config come from
	 * vCPU threads. */
	pthread_mutex_t lock;
	struct eventloop *loop;
	int fd, kick_fd, timer_fd;
	bool is_tap, active, link_up;
	char ifname[IFNAMSIZ];
	uint8_t mac[6];

	/* A tx chain whose write found the tap full waits here for EPOLLOUT. */
	bool tx_held;
	struct virtq_elem tx_elem;
	/* tx_elem's virtio-net header, copied once when it is popped: a chain
	 * the tap refused (EAGAIN) is sent again from this copy, not from a
	 * second read of guest memory. */
	struct net_hdr tx_hdr;
	struct iovec tx_iov[VIRTQ_MAX_SEGS + 1];
	uint8_t *tx_buf;

	/* rx: a first chain is popped before a frame is read from the tap, so a
	 * frame never leaves the tap without somewhere to go. With MRG_RXBUF
	 * a frame may wait in rx_buf for more chains, the filled ones in
	 * rx_used. */
	bool rx_have_first;
	struct virtq_elem rx_first, rx_elem;
	uint8_t *rx_buf;
	size_t rx_len, rx_off;     /* frame pending while rx_len != 0 */
	unsigned rx_nused;
	struct net_used rx_used[VIRTQ_MAX_SIZE];

	/* Rate limiting: a frame is charged once (tx_paid / rx_paid); one the
	 * limiter refuses waits (tx_held chain, rx_buf frame) for timer_fd. */
	struct ratelimit rx_limit, tx_limit;
	bool tx_paid, rx_paid;

	struct virtio_net_stats st;
};

static struct net_dev *net_of(struct virtio_dev *d)
{
	return d->priv;
}

static bool net_running(struct net_dev *n)
{
	uint8_t st = __atomic_load_n(&n->vdev.status, __ATOMIC_ACQUIRE);
	return n->active && !(st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

/* Come back to this device from the event loop later (budget spent, device
 * just activated, link back up). */
static void net_resched(struct net_dev *n)
{
	uint64_t one = 1;
	ssize_t w = write(n->kick_fd, &one, sizeof(one));
	(void)w; /* a full counter already means "pending" */
}

/* 1: chain in *e; 0: ring empty (avail_event published); -1: ring broken and
 * the device now needs a reset. */
static int net_pop(struct net_dev *n, unsigned qi, struct virtq_elem *e)
{
	struct virtq *q = &n->vdev.vq[qi];
	const char *why = NULL;
	int r = virtq_pop(q, e, &why);

	if (r == 0 && virtq_has_work(q))
		r = virtq_pop(q, e, &why);
	if (r < 0) {
		virtio_dev_needs_reset(&n->vdev, why);
		return -1;
	}
	return r;
}

static void net_push(struct net_dev *n, unsigned qi, uint16_t head, uint32_t len)
{
	if (virtq_push(&n->vdev.vq[qi], head, len) < 0)
		virtio_dev_needs_reset(&n->vdev, "used ring not usable");
}

/* A bad frame (guest's on tx, unexpected on rx) is dropped and counted; the
 * queue goes on. */
static void net_frame_error(struct net_dev *n, bool tx, const char *why)
{
	if (tx)
		n->st.tx_errors++;
	else
		n->st.rx_errors++;
	n->vdev.stat_errors++;
	log_ratelimited(&n->vdev.rl, LOG_WARN, "virtio-net %s: %s frame dropped: %s",
			n->ifname, tx ? "tx" : "rx", why);
}

/* ---- transmit (5.1.6.2) ---- */

/* Check the driver's header against the negotiated features and build the
 * copy the tap gets, so the tap never sees fields the guest can still change
 * and the device ignores flags it does not know (5.1.6.2.2). */
static int net_tx_check(struct net_dev *n, const struct net_hdr *in, uint64_t frame_len,
			struct net_hdr *out, const char **why)
{
	struct virtio_dev *d = &n->vdev;
	uint8_t gso = in->gso_type & ~GSO_ECN;
	uint64_t csum_end = (uint64_t)le16toh(in->csum_start) + le16toh(in->csum_offset) + 2;

	memset(out, 0, sizeof(*out));
	if (frame_len < NET_FRAME_MIN) {
		*why = "frame shorter than an Ethernet header";
		return -EINVAL;
	}
	if (frame_len > NET_FRAME_MAX) {
		*why = "frame longer than 65550 bytes";
		return -EINVAL;
	}
	if (in->flags & HDR_F_NEEDS_CSUM) {
		if (!virtio_has_feature(d, NET_F_CSUM)) {
			*why = "NEEDS_CSUM without VIRTIO_NET_F_CSUM";
			return -EINVAL;
		}
		if (csum_end > frame_len) {
			*why = "checksum field outside the frame";
			return -EINVAL;
		}
		out->flags = HDR_F_NEEDS_CSUM;
		out->csum_start = in->csum_start;
		out->csum_offset = in->csum_offset;
	}
	if (gso == GSO_NONE) {
		if (in->gso_type & GSO_ECN) {
			*why = "ECN bit on a non-GSO frame";
			return -EINVAL;
		}
		return 0; /* hdr_len is only a hint here; the tap gets 0 */
	}
	if (!(gso == GSO_TCPV4 && virtio_has_feature(d, NET_F_HOST_TSO4)) &&
	    !(gso == GSO_TCPV6 && virtio_has_feature(d, NET_F_HOST_TSO6))) {
		*why = "gso_type unknown or not negotiated";
		return -EINVAL;
	}
	if ((in->gso_type & GSO_ECN) && !virtio_has_feature(d, NET_F_HOST_ECN)) {
		*why = "ECN GSO frame without VIRTIO_NET_F_HOST_ECN";
		return -EINVAL;
	}
	if (!(out->flags & HDR_F_NEEDS_CSUM) || le16toh(in->gso_size) == 0) {
		*why = "GSO frame without NEEDS_CSUM or gso_size";
		return -EINVAL;
	}
	if (le16toh(in->hdr_len) > frame_len) {
		*why = "hdr_len beyond the frame";
		return -EINVAL;
	}
	out->gso_type = in->gso_type;
	out->gso_size = in->gso_size;
	out->hdr_len = in->hdr_len;
	return 0;
}

/* Send one chain. 1: done with it (sent or dropped); 0: tap full, keep it. */
static int net_tx_one(struct net_dev *n, const struct virtq_elem *e, const struct net_hdr *in)
{
	struct net_hdr hdr;
	const char *why = NULL;
	struct iovec *iov = n->tx_iov;
	unsigned niov = 0;
	size_t skip = NET_HDR_LEN;
	uint64_t frame_len;
	ssize_t w;

	if (e->out_len < NET_HDR_LEN) {
		net_frame_error(n, true, "chain shorter than the virtio-net header");
		return 1;
	}
	frame_len = e->out_len - NET_HDR_LEN;
	if (net_tx_check(n, in, frame_len, &hdr, &why)) {
		net_frame_error(n, true, why);
		return 1;
	}
	if (!n->link_up) {
		n->st.tx_dropped++;
		return 1;
	}
	iov[niov++] = (struct iovec){ &hdr, sizeof(hdr) };
	for (unsigned i = 0; i < e->out_num; i++) {
		size_t len = e->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		iov[niov++] = (struct iovec){ (uint8_t *)e->iov[i].iov_base + skip, len - skip };
		skip = 0;
	}
	if (niov > IOV_MAX) {
		/* More segments than writev takes: send one linear copy. */
		memcpy(n->tx_buf, &hdr, sizeof(hdr));
		virtq_iov_to_buf(e->iov, e->out_num, NET_HDR_LEN, n->tx_buf + NET_HDR_LEN, frame_len);
		iov[0] = (struct iovec){ n->tx_buf, NET_HDR_LEN + frame_len };
		niov = 1;
	}
	do
		w = writev(n->fd, iov, (int)niov);
	while (w < 0 && errno == EINTR);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (w < 0) {
		/* The host refused the frame (interface down, bad offload
		 * request): the guest's problem or the operator's, not fatal. */
		n->st.tx_dropped++;
		log_ratelimited(&n->vdev.rl, LOG_WARN, "virtio-net %s: tap write: %s",
				n->ifname, strerror(errno));
		return 1;
	}
	n->st.tx_packets++;
	n->st.tx_bytes += frame_len;
	n->vdev.stat_ops++;
	n->vdev.stat_bytes_out += frame_len;
	return 1;
}

static void net_arm_timer(struct net_dev *n, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000u),
						.tv_nsec = (long)(ns % 1000000000u) } };
	if (n->timer_fd >= 0)
		timerfd_settime(n->timer_fd, 0, &its, NULL);
}

/* Charge one frame of len bytes to a limiter. false: throttled, timer armed. */
static bool net_admit(struct net_dev *n, struct ratelimit *rl, uint64_t len, uint64_t *throttled)
{
	uint64_t now = ratelimit_now_ns();

	if (ratelimit_consume(rl, len, 1, now))
		return true;
	(*throttled)++;
	n->vdev.stat_throttled++;
	net_arm_timer(n, ratelimit_wait_ns(rl, len, 1, now));
	return false;
}

static void net_tx_process(struct net_dev *n)
{
	bool pushed = false;
	unsigned i;

	if (!net_running(n) || !n->vdev.vq[TXQ].ready)
		return;
	for (i = 0; i < NET_BUDGET; i++) {
		if (!n->tx_held) {
			if (net_pop(n, TXQ, &n->tx_elem) <= 0)
				break;
			n->tx_held = true;
			n->tx_paid = false;
			n->tx_hdr = (struct net_hdr){ 0 };
			if (n->tx_elem.out_len >= NET_HDR_LEN)
				virtq_iov_to_buf(n->tx_elem.iov, n->tx_elem.out_num, 0, &n->tx_hdr,
						 sizeof(n->tx_hdr));
		}
		if (!n->tx_paid) {
			const struct virtq_elem *e = &n->tx_elem;
			uint64_t len = e->out_len > NET_HDR_LEN ? e->out_len - NET_HDR_LEN : 0;
			if (!net_admit(n, &n->tx_limit, len, &n->st.tx_throttled))
				break; /* the timer brings us back */
			n->tx_paid = true;
		}
		if (!net_tx_one(n, &n->tx_elem, &n->tx_hdr))
			break; /* EPOLLOUT brings us back */
		n->tx_held = false;
		net_push(n, TXQ, n->tx_elem.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_signal_used(&n->vdev, TXQ);
	if (i == NET_BUDGET)
		net_resched(n);
}

/* ---- receive (5.1.6.3, 5.1.6.4) ---- */

/* The kernel only produces what TUNSETOFFLOAD allowed, but a frame queued
 * before the driver renegotiated may not fit: drop what the driver did not
 * agree to take. */
static int net_rx_fix_header(struct net_dev *n, struct net_hdr *h)
{
	struct virtio_dev *d = &n->vdev;
	uint8_t gso = h->gso_type & ~GSO_ECN;

	if (!virtio_has_feature(d, NET_F_GUEST_CSUM)) {
		if (h->flags & HDR_F_NEEDS_CSUM)
			return -EINVAL;
		h->flags = 0; /* 5.1.6.4.1: flags zero without GUEST_CSUM */
	}
	h->flags &= HDR_F_NEEDS_CSUM | HDR_F_DATA_VALID;
	if (gso == GSO_NONE)
		return (h->gso_type & GSO_ECN) ? -EINVAL : 0;
	if (!(gso == GSO_TCPV4 && virtio_has_feature(d, NET_F_GUEST_TSO4)) &&
	    !(gso == GSO_TCPV6 && virtio_has_feature(d, NET_F_GUEST_TSO6)))
		return -EINVAL;
	if ((h->gso_type & GSO_ECN) && !virtio_has_feature(d, NET_F_GUEST_ECN))
		return -EINVAL;
	return 0;
}

/* Hold the chain the next frame starts in: false if there is none (or
 * the device broke). */
static bool net_rx_take_first(struct net_dev *n)
{
	if (n->rx_have_first)
		return true;
	if (net_pop(n, RXQ, &n->rx_first) <= 0)
		return false;
	if (n->rx_first.in_len < NET_HDR_LEN) {
		/* 5.1.6.3.1: every receive buffer holds at least a header. */
		virtio_dev_needs_reset(&n->vdev, "rx buffer smaller than the virtio-net header");
		return false;
	}
	n->rx_have_first = true;
	return true;
}

/* 1: a first chain is held and a frame is in rx_buf; 0: stop (no chain,
 * tap empty, device broken); -1: a bad frame was dropped, try the next. */
static int net_rx_read(struct net_dev *n)
{
	struct net_hdr h;
	ssize_t r;

	if (!net_rx_take_first(n))
		return 0;
	do
		r = read(n->fd, n->rx_buf, NET_HDR_LEN + NET_FRAME_MAX + 1);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		log_ratelimited(&n->vdev.rl, LOG_WARN, "virtio-net %s: tap read: %s",
				n->ifname, strerror(errno));
	if (r <= 0)
		return 0;
	if (r < NET_HDR_LEN + NET_FRAME_MIN || r > NET_HDR_LEN + NET_FRAME_MAX) {
		net_frame_error(n, false, "frame size out of range");
		return -1;
	}
	memcpy(&h, n->rx_buf, sizeof(h));
	if (net_rx_fix_header(n, &h)) {
		net_frame_error(n, false, "offload the driver did not negotiate");
		return -1;
	}
	h.num_buffers = 0; /* set once the chains are known */
	memcpy(n->rx_buf, &h, sizeof(h));
	n->rx_len = (size_t)r;
	n->rx_off = 0;
	n->rx_nused = 0;
	n->rx_paid = false;
	return 1;
}

static void net_rx_done(struct net_dev *n, size_t frame_len)
{
	n->rx_len = 0;
	n->rx_nused = 0;
	n->rx_have_first = false;
	n->st.rx_packets++;
	n->st.rx_bytes += frame_len;
	n->vdev.stat_ops++;
	n->vdev.stat_bytes_in += frame_len;
}

/* Put the pending frame into chains: the held first chain alone without
 * MRG_RXBUF, as many as it takes with it. 1: frame delivered or dropped;
 * 0: waiting for the driver to post more chains or device broken. */
static int net_rx_place(struct net_dev *n)
{
	struct virtq_elem *first = &n->rx_first;
	struct virtq *q = &n->vdev.vq[RXQ];
	uint16_t nb;

	if (!virtio_has_feature(&n->vdev, NET_F_MRG_RXBUF)) {
		if (n->rx_len > first->in_len) {
			/* Keep the chain for the next frame that fits. */
			n->st.rx_dropped++;
			n->rx_len = 0;
			return 1;
		}
		nb = htole16(1);
		memcpy(n->rx_buf + offsetof(struct net_hdr, num_buffers), &nb, sizeof(nb));
		virtq_buf_to_iov(first->iov + first->out_num, first->in_num, 0, n->rx_buf, n->rx_len);
		virtq_iov_mark_dirty(n->vdev.mem, first->iov + first->out_num, first->in_num,
				     n->rx_len);
		net_push(n, RXQ, first->head, (uint32_t)n->rx_len);
		net_rx_done(n, n->rx_len - NET_HDR_LEN);
		return 1;
	}
	while (n->rx_off < n->rx_len) {
		struct virtq_elem *e = first;
		if (n->rx_nused > 0) {
			if (n->rx_nused >= q->size) {
				/* The whole ring cannot hold this frame: give the
				 * chains back empty (the driver drops them as short
				 * packets) rather than wait forever. */
				for (unsigned i = 0; i < n->rx_nused; i++)
					net_push(n, RXQ, n->rx_used[i].head, 0);
				net_frame_error(n, false, "rx buffers too small for the frame");
				n->rx_len = n->rx_nused = 0;
				n->rx_have_first = false;
				return 1;
			}
			if (net_pop(n, RXQ, &n->rx_elem) <= 0)
				return 0;
			e = &n->rx_elem;
			if (e->in_len < NET_HDR_LEN) {
				virtio_dev_needs_reset(&n->vdev,
						       "rx buffer smaller than the virtio-net header");
				return 0;
			}
		}
		size_t chunk = n->rx_len - n->rx_off;
		if (chunk > e->in_len)
			chunk = e->in_len;
		virtq_buf_to_iov(e->iov + e->out_num, e->in_num, 0, n->rx_buf + n->rx_off, chunk);
		virtq_iov_mark_dirty(n->vdev.mem, e->iov + e->out_num, e->in_num, chunk);
		n->rx_used[n->rx_nused++] = (struct net_used){ e->head, (uint32_t)chunk };
		n->rx_off += chunk;
	}
	nb = htole16((uint16_t)n->rx_nused);
	virtq_buf_to_iov(first->iov + first->out_num, first->in_num,
			 offsetof(struct net_hdr, num_buffers), &nb, sizeof(nb));
	virtq_iov_mark_dirty(n->vdev.mem, first->iov + first->out_num, first->in_num,
			     sizeof(struct net_hdr));
	/* In ring order, so the driver finds the rest right after the first,
	 * and published with one index update: a driver polling the ring must
	 * never see the first buffer of a frame without the others. */
	for (unsigned i = 0; i < n->rx_nused; i++) {
		if (virtq_fill(q, i, n->rx_used[i].head, n->rx_used[i].len) < 0) {
			virtio_dev_needs_reset(&n->vdev, "used ring not usable");
			return 0;
		}
	}
	virtq_flush(q, n->rx_nused);
	net_rx_done(n, n->rx_len - NET_HDR_LEN);
	return 1;
}

static void net_rx_process(struct net_dev *n)
{
	bool pushed = false;
	unsigned i;

	if (!net_running(n) || !n->vdev.vq[RXQ].ready || !n->link_up)
		return;
	for (i = 0; i < NET_BUDGET; i++) {
		if (!n->rx_len) {
			int r = net_rx_read(n);
			if (r == 0)
				break;
			if (r < 0)
				continue;
		}
		if (!n->rx_paid) {
			if (!net_admit(n, &n->rx_limit, n->rx_len - NET_HDR_LEN, &n->st.rx_throttled))
				break; /* the frame waits in rx_buf for the timer */
			n->rx_paid = true;
		}
		/* A frame kept across a snapshot gave its chain back. */
		if (!net_rx_take_first(n))
			break;
		uint16_t before = n->vdev.vq[RXQ].used_idx;
		int r = net_rx_place(n);
		pushed |= n->vdev.vq[RXQ].used_idx != before;
		if (r == 0)
			break;
	}
	if (pushed)
		virtio_dev_signal_used(&n->vdev, RXQ);
	if (i == NET_BUDGET)
		net_resched(n);
}

/* ---- event loop and virtio ops ---- */

static void net_tap_event(void *opaque, uint32_t events)
{
	struct net_dev *n = opaque;

	pthread_mutex_lock(&n->lock);
	if ((events & (EPOLLOUT | EPOLLERR)) && n->tx_held)
		net_tx_process(n);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		net_rx_process(n);
	pthread_mutex_unlock(&n->lock);
}

static void net_kick_event(void *opaque, uint32_t events)
{
	struct net_dev *n = opaque;
	uint64_t v;
	ssize_t r = read(n->kick_fd, &v, sizeof(v));

	(void)events;
	(void)r;
	pthread_mutex_lock(&n->lock);
	net_tx_process(n);
	net_rx_process(n);
	pthread_mutex_unlock(&n->lock);
}

static void net_timer_event(void *opaque, uint32_t events)
{
	struct net_dev *n = opaque;
	uint64_t v;

	(void)events;
	if (read(n->timer_fd, &v, sizeof(v)) < 0)
		return; /* nothing expired */
	pthread_mutex_lock(&n->lock);
	net_tx_process(n);
	net_rx_process(n);
	pthread_mutex_unlock(&n->lock);
}

static void net_queue_notify(struct virtio_dev *d, unsigned q)
{
	struct net_dev *n = net_of(d);

	pthread_mutex_lock(&n->lock);
	if (q == TXQ)
		net_tx_process(n);
	else if (q == RXQ)
		net_rx_process(n); /* new buffers: frames may be waiting in the tap */
	pthread_mutex_unlock(&n->lock);
}

static uint64_t net_features(struct virtio_dev *d)
{
	(void)d;
	return (1ull << NET_F_CSUM) | (1ull << NET_F_GUEST_CSUM) | (1ull << NET_F_MAC) |
	       (1ull << NET_F_GUEST_TSO4) | (1ull << NET_F_GUEST_TSO6) |
	       (1ull << NET_F_GUEST_ECN) | (1ull << NET_F_HOST_TSO4) |
	       (1ull << NET_F_HOST_TSO6) | (1ull << NET_F_HOST_ECN) |
	       (1ull << NET_F_MRG_RXBUF) | (1ull << NET_F_STATUS);
}

static int net_activate(struct virtio_dev *d)
{
	struct net_dev *n = net_of(d);
	unsigned off = 0;
	int rc;

	if (n->is_tap) {
		/* The tap may only produce what the driver can take. */
		if (virtio_has_feature(d, NET_F_GUEST_CSUM))
			off |= NET_TAP_OFFLOAD_CSUM;
		if (virtio_has_feature(d, NET_F_GUEST_TSO4))
			off |= NET_TAP_OFFLOAD_TSO4;
		if (virtio_has_feature(d, NET_F_GUEST_TSO6))
			off |= NET_TAP_OFFLOAD_TSO6;
		if (virtio_has_feature(d, NET_F_GUEST_ECN))
			off |= NET_TAP_OFFLOAD_TSO_ECN;
		rc = net_tap_set_offload(n->fd, off);
		if (rc) {
			log_error("virtio-net %s: cannot set tap offloads: %s", n->ifname,
				  strerror(-rc));
			return rc;
		}
	}
	pthread_mutex_lock(&n->lock);
	n->active = true;
	pthread_mutex_unlock(&n->lock);
	net_resched(n); /* frames may already wait in the tap */
	return 0;
}

static void net_reset(struct virtio_dev *d)
{
	struct net_dev *n = net_of(d);

	pthread_mutex_lock(&n->lock);
	n->active = false;
	n->tx_held = false;
	n->tx_paid = false;
	n->rx_have_first = false;
	n->rx_len = 0;
	n->rx_nused = 0;
	pthread_mutex_unlock(&n->lock);
	/* The next driver may not take partial checksums or TSO frames. */
	if (n->is_tap)
		net_tap_set_offload(n->fd, 0);
}

static void net_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct net_dev *n = net_of(d);
	uint8_t cfg[NET_CONFIG_SIZE];
	uint16_t v;

	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return;
	pthread_mutex_lock(&n->lock);
	memcpy(cfg, n->mac, 6);
	v = htole16(n->link_up ? NET_S_LINK_UP : 0);
	memcpy(cfg + 6, &v, 2);
	v = htole16(1); /* max_virtqueue_pairs; only meaningful with MQ */
	memcpy(cfg + 8, &v, 2);
	pthread_mutex_unlock(&n->lock);
	memcpy(buf, cfg + off, len);
}

static void net_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	/* 5.1.4.2: the modern driver never writes config; the MAC is the
	 * operator's, so writes are ignored. */
	(void)off;
	(void)buf;
	(void)len;
	log_ratelimited(&d->rl, LOG_DEBUG, "virtio-net: config write ignored");
}

/* Snapshots: the chains the device holds (a tx chain waiting for the tap,
 * the rx chains a frame was going into) go back to their rings; a frame
 * read from the tap stays in rx_buf and is saved with the device. */
static int net_quiesce(struct virtio_dev *d)
{
	struct net_dev *n = net_of(d);

	pthread_mutex_lock(&n->lock);
	if (n->tx_held)
		virtq_unpop(&d->vq[TXQ], 1);
	virtq_unpop(&d->vq[RXQ], n->rx_nused ? n->rx_nused : n->rx_have_first);
	n->tx_held = n->tx_paid = false;
	n->rx_have_first = false;
	n->rx_nused = 0;
	n->rx_off = 0;
	pthread_mutex_unlock(&n->lock);
	net_resched(n);   /* take them again once the I/O thread runs */
	return 0;
}

/* MAC, link status, and a received frame not yet delivered (rx_len 0:
 * none): the whole 12-byte header plus frame as read from the tap. */
static int net_save(struct virtio_dev *d, struct snap_buf *b)
{
	struct net_dev *n = net_of(d);

	pthread_mutex_lock(&n->lock);
	snap_buf_put(b, n->mac, sizeof(n->mac));
	snap_buf_put_u8(b, n->link_up);
	snap_buf_put_u32(b, (uint32_t)n->rx_len);
	snap_buf_put_u8(b, n->rx_paid);
	snap_buf_put(b, n->rx_buf, n->rx_len);
	pthread_mutex_unlock(&n->lock);
	return b->err;
}

static int net_load(struct virtio_dev *d, struct snap_cur *c, char *err, size_t errlen)
{
	struct net_dev *n = net_of(d);
	uint8_t mac[6];

	(void)err;
	(void)errlen;
	snap_cur_get(c, mac, sizeof(mac));
	uint8_t link = snap_cur_u8(c);
	uint32_t rx_len = snap_cur_u32(c);
	uint8_t paid = snap_cur_u8(c);
	if (link > 1 || paid > 1 ||
	    (rx_len && (rx_len < NET_HDR_LEN + NET_FRAME_MIN || rx_len > NET_HDR_LEN + NET_FRAME_MAX)))
		return -EINVAL;
	const void *frame = snap_cur_take(c, rx_len);
	if (snap_cur_end(c))
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	memcpy(n->mac, mac, sizeof(mac));
	n->link_up = link;
	memcpy(n->rx_buf, frame, rx_len);
	n->rx_len = rx_len;
	n->rx_paid = paid;
	n->rx_off = 0;
	n->rx_nused = 0;
	n->rx_have_first = false;
	pthread_mutex_unlock(&n->lock);
	return 0;
}

static void net_destroy(struct virtio_dev *d)
{
	struct net_dev *n = net_of(d);

	if (n->loop) {
		eventloop_del(n->loop, n->fd);
		eventloop_del(n->loop, n->kick_fd);
		eventloop_del(n->loop, n->timer_fd);
	}
	if (n->fd >= 0)
		close(n->fd);
	if (n->kick_fd >= 0)
		close(n->kick_fd);
	if (n->timer_fd >= 0)
		close(n->timer_fd);
	pthread_mutex_destroy(&n->lock);
	free(n->rx_buf);
	free(n->tx_buf);
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.device_id = 1,
	.num_queues = 2,
	.queue_max_size = 256,
	.features = net_features,
	.activate = net_activate,
	.reset = net_reset,
	.config_size = NET_CONFIG_SIZE,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.queue_notify = net_queue_notify,
	.destroy = net_destroy,
	.quiesce = net_quiesce,
	.state_version = 1,
	.save = net_save,
	.load = net_load,
};

void virtio_net_set_link(struct virtio_dev *d, bool up)
{
	struct net_dev *n = net_of(d);
	bool changed;

	pthread_mutex_lock(&n->lock);
	changed = n->link_up != up;
	n->link_up = up;
	pthread_mutex_unlock(&n->lock);
	if (!changed)
		return;
	if (up)
		net_resched(n);
	if (virtio_has_feature(d, NET_F_STATUS) && (d->status & VIRTIO_STATUS_DRIVER_OK) &&
	    d->transport && d->transport->notify_config)
		d->transport->notify_config(d);
}

void virtio_net_set_rate_limit(struct virtio_dev *d, const struct ratelimit_config *rx,
			       const struct ratelimit_config *tx)
{
	struct net_dev *n = net_of(d);
	uint64_t now = ratelimit_now_ns();

	pthread_mutex_lock(&n->lock);
	if (rx)
		ratelimit_update(&n->rx_limit, rx, now);
	if (tx)
		ratelimit_update(&n->tx_limit, tx, now);
	pthread_mutex_unlock(&n->lock);
	net_resched(n); /* a held frame may pass now */
}

void virtio_net_get_stats(struct virtio_dev *d, struct virtio_net_stats *out)
{
	struct net_dev *n = net_of(d);

	pthread_mutex_lock(&n->lock);
	*out = n->st;
	pthread_mutex_unlock(&n->lock);
}

struct virtio_dev *virtio_net_create_fd(const struct guest_mem *mem, struct eventloop *loop,
					const struct net_config *cfg, int fd,
					char *err, size_t errlen)
{
	struct net_dev *n = calloc(1, sizeof(*n));
	int rc;

	if (!n) {
		snprintf(err, errlen, "virtio-net: out of memory");
		close(fd);
		return NULL;
	}
	pthread_mutex_init(&n->lock, NULL);
	n->fd = fd;
	/* The I/O thread must never block on the tap. */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	n->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	n->timer_fd = loop ? timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC) : -1;
	ratelimit_init(&n->rx_limit, &cfg->rx_limit, ratelimit_now_ns());
	ratelimit_init(&n->tx_limit, &cfg->tx_limit, ratelimit_now_ns());
	n->is_tap = net_tap_fd_is_tap(fd, n->ifname);
	if (!n->is_tap)
		snprintf(n->ifname, sizeof(n->ifname), "%.*s", IFNAMSIZ - 1,
			 cfg->ifname ? cfg->ifname : "fd");
	n->link_up = true;
	if (cfg->has_mac)
		memcpy(n->mac, cfg->mac, 6);
	else
		net_mac_generate(cfg->vm_name ? cfg->vm_name : "", cfg->id ? cfg->id : "", n->mac);
	n->rx_buf = malloc(NET_HDR_LEN + NET_FRAME_MAX + 1);
	n->tx_buf = malloc(NET_HDR_LEN + NET_FRAME_MAX);
	n->vdev.ops = &net_ops;
	n->vdev.priv = n;
	n->vdev.mem = mem;
	if (!n->rx_buf || !n->tx_buf || n->kick_fd < 0 || (loop && n->timer_fd < 0)) {
		snprintf(err, errlen, "virtio-net %s: out of memory or file descriptors", n->ifname);
		goto fail;
	}
	if (loop) {
		/* Edge-triggered: with no rx buffers posted the frames stay in the
		 * tap without the loop spinning on a readable fd; the driver's
		 * rx notification restarts reading. */
		rc = eventloop_add(loop, fd, EPOLLIN | EPOLLOUT | EPOLLET, net_tap_event, n);
		if (rc == 0) {
			rc = eventloop_add(loop, n->kick_fd, EPOLLIN, net_kick_event, n);
			if (rc == 0) {
				rc = eventloop_add(loop, n->timer_fd, EPOLLIN, net_timer_event, n);
				if (rc)
					eventloop_del(loop, n->kick_fd);
			}
			if (rc)
				eventloop_del(loop, fd);
		}
		if (rc) {
			snprintf(err, errlen, "virtio-net %s: cannot watch the tap: %s", n->ifname,
				 strerror(-rc));
			goto fail;
		}
		n->loop = loop;
	}
	return &n->vdev;
fail:
	net_destroy(&n->vdev);
	return NULL;
}

struct virtio_dev *virtio_net_create(const struct guest_mem *mem, struct eventloop *loop,
				     const struct net_config *cfg, char *err, size_t errlen)
{
	int fd = net_tap_open(cfg->ifname ? cfg->ifname : "", err, errlen);

	if (fd < 0)
		return NULL;
	return virtio_net_create_fd(mem, loop, cfg, fd, err, errlen);
}

/* ---- MAC addresses ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int net_mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	for (unsigned i = 0; i < 6; i++) {
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
		s += 2;
		if (*s != (i < 5 ? ':' : '\0'))
			return -EINVAL;
		s++;
	}
	if (m[0] & 1)
		return -EINVAL; /* multicast or broadcast: not a station address */
	if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

void net_mac_format(const uint8_t mac[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x",
		 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void net_mac_generate(const char *vm_name, const char *if_id, uint8_t mac[6])
{
	/* FNV-1a over "vm_name\0if_id" (the NUL keeps "ab"+"c" apart from
	 * "a"+"bc"), then a 64-bit finaliser so every output bit depends on
	 * every input byte. */
	uint64_t h = fnv1a(0xcbf29ce484222325ull, vm_name, strlen(vm_name) + 1);

	h = fnv1a(h, if_id, strlen(if_id));
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[0] = (uint8_t)((mac[0] & ~1u) | 2u); /* unicast, locally administered */
}
