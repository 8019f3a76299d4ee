/* Test guest (hostile): virtio-net (virtio 1.2 section 5.1) fed frames and
 * buffers no driver may give it. Transmit: chains shorter than the
 * virtio-net header, runt and giant frames, header flags and GSO types that
 * were not negotiated, a checksum field outside the frame, a buffer near
 * 2^32 bytes. Receive: buffers of length 0, shorter than the header,
 * device-readable, outside RAM, in a loop -- each followed by an ARP request
 * whose reply has to land in them. After every trick the device is reset
 * and must carry an ARP request and its reply again (QEMU's -netdev user
 * answers for 10.0.2.2; under wafer, the host end of the tap).
 *
 * cmdline: src_ip=, dst_ip= (as virtio_net.c: defaults 10.0.2.15 and
 * 10.0.2.2); pace_ms=, watch_ms=, skip= (lib/hostile.h).
 * Output: "hostile-net: <tx|rx> #<n> <trick>", "hostile-net: <trick>:
 * <reaction>, recovered", then "hostile-net ok <n> tricks, device still
 * works" (exit 0). A "FAIL" line is followed by exit 1. */
#include <stddef.h>
#include <stdint.h>

#include "exit.h"
#include "hostile.h"
#include "io.h"
#include "pvh.h"
#include "serial.h"
#include "string.h"
#include "virtio.h"

#define GUEST "hostile-net"

#define NET_F_CSUM 0
#define NET_F_MAC  5
#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_LEN 12               /* virtio_net_hdr incl. num_buffers (1.x) */
#define HDR_F_NEEDS_CSUM 1
#define GSO_ECN 0x80
#define ETH_HLEN 14
#define ETH_ZLEN 60
#define ETH_P_ARP 0x0806
#define ETH_P_LOCAL 0x88b5           /* IEEE local experimental: nobody parses it */
#define ARP_LEN 28
#define GIANT_LEN 70000              /* above the 64 KiB + header any device takes */
#define RX_BUFS 4
#define RX_BUF_LEN 2048
#define RX_MAX_FRAMES 32
#define QSIZE 16

struct net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
} __attribute__((packed));

/* Raw rings for the tricks, per queue: descriptors, avail, used. */
struct rings {
	struct virtq_desc desc[QSIZE] __attribute__((aligned(4096)));
	uint16_t avail[2 + QSIZE + 1] __attribute__((aligned(4096)));
	volatile uint16_t used[2 + 4 * QSIZE + 1] __attribute__((aligned(4096)));
};

static struct rings rx_rings __attribute__((section(".stack.hostile_rx")));
static struct rings tx_rings __attribute__((section(".stack.hostile_tx")));
static uint8_t big[NET_HDR_LEN + GIANT_LEN] __attribute__((section(".stack.hostile_big"), aligned(4096)));
static uint8_t rx_buf[RX_BUFS][RX_BUF_LEN] __attribute__((section(".stack.hostile_rxbuf"), aligned(16)));
static uint8_t arp_frame[NET_HDR_LEN + ETH_ZLEN];

static struct virtio_dev net;
static struct virtq rxq, txq;
static uint8_t mac[6];
static uint32_t src_ip, dst_ip;
static uint64_t past_ram;
static int8_t rx_head_buf[VIRTQ_SIZE];

__attribute__((noreturn)) static void fail(const char *what)
{
	printf(GUEST ": FAIL: %s\n", what);
	guest_exit(1);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* Broadcast "who has dst_ip, tell src_ip" after a zero virtio-net header. */
static void arp_build(void)
{
	uint8_t *eth = arp_frame + NET_HDR_LEN, *arp = eth + ETH_HLEN;

	memset(arp_frame, 0, sizeof(arp_frame));
	memset(eth, 0xff, 6);
	memcpy(eth + 6, mac, 6);
	put16(eth + 12, ETH_P_ARP);
	put16(arp, 1);
	put16(arp + 2, 0x0800);
	arp[4] = 6;
	arp[5] = 4;
	put16(arp + 6, 1);
	memcpy(arp + 8, mac, 6);
	put32(arp + 14, src_ip);
	put32(arp + 24, dst_ip);
}

static int arp_is_reply(const uint8_t *eth, uint32_t len)
{
	const uint8_t *arp = eth + ETH_HLEN;

	return len >= ETH_HLEN + ARP_LEN && get16(eth + 12) == ETH_P_ARP && get16(arp + 6) == 2 &&
	       get16(arp + 14) == (uint16_t)(dst_ip >> 16) && get16(arp + 16) == (uint16_t)dst_ip &&
	       !memcmp(arp + 18, mac, 6);
}

/* --- the device as a driver uses it --------------------------------------- */

static int rx_post(unsigned b)
{
	struct virtq_buf in = { rx_buf[b], RX_BUF_LEN };
	int head = virtq_submit(&rxq, NULL, 0, &in, 1);

	if (head < 0)
		return -1;
	rx_head_buf[head] = (int8_t)b;
	return 0;
}

/* Reset, start, one ARP request out and its reply back. */
static int net_works(void)
{
	struct virtq_buf tx = { arp_frame, sizeof(arp_frame) };
	uint32_t len;

	if (virtio_start(&net, VIRTIO_BIT(NET_F_MAC)) || virtq_setup(&net, &rxq, NET_RXQ) ||
	    virtq_setup(&net, &txq, NET_TXQ))
		return 0;
	virtio_driver_ok(&net);
	memset(rx_head_buf, -1, sizeof(rx_head_buf));
	for (unsigned i = 0; i < RX_BUFS; i++)
		if (rx_post(i))
			return 0;
	virtq_kick(&rxq);
	if (virtq_transfer(&txq, &tx, 1, NULL, 0) < 0) {
		printf(GUEST ": ARP request not sent\n");
		return 0;
	}
	for (unsigned frames = 0; frames < RX_MAX_FRAMES; frames++) {
		int n = virtq_wait(&rxq, &len, VIRTIO_WAIT_CYCLES), b;

		if (n < 0)
			break;
		b = rx_head_buf[n];
		rx_head_buf[n] = -1;
		if (b < 0 || len < NET_HDR_LEN || len > RX_BUF_LEN)
			break;
		if (arp_is_reply(rx_buf[b] + NET_HDR_LEN, len - NET_HDR_LEN))
			return 1;
		if (rx_post((unsigned)b))
			break;
		virtq_kick(&rxq);
	}
	printf(GUEST ": no ARP reply\n");
	return 0;
}

/* --- raw queues for the tricks -------------------------------------------- */

static void desc_set(struct rings *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	r->desc[i] = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void avail_put(struct rings *r, uint16_t head)
{
	uint16_t idx = r->avail[1];

	r->avail[0] = 1;                  /* no interrupts */
	r->avail[2 + idx % QSIZE] = head;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	*(volatile uint16_t *)&r->avail[1] = (uint16_t)(idx + 1);
}

/* Reset, negotiate MAC plus `extra` (when offered), both queues on the raw
 * rings (empty), DRIVER_OK. */
static void begin(uint64_t extra)
{
	uint64_t f = VIRTIO_BIT(VIRTIO_F_VERSION_1) | (net.offered & (VIRTIO_BIT(NET_F_MAC) | extra));

	memset(&rx_rings, 0, sizeof(rx_rings));
	memset(&tx_rings, 0, sizeof(tx_rings));
	if (hostile_begin(&net, f))
		fail("device did not reset or refused features it offered");
	hostile_queue_place(&net, NET_RXQ, QSIZE, (uintptr_t)rx_rings.desc, (uintptr_t)rx_rings.avail,
			    (uintptr_t)rx_rings.used);
	hostile_queue_place(&net, NET_TXQ, QSIZE, (uintptr_t)tx_rings.desc, (uintptr_t)tx_rings.avail,
			    (uintptr_t)tx_rings.used);
	hostile_driver_ok(&net);
}

/* Transmit chain: header (hdr_len bytes of `hdr`), then frame_len bytes. */
static enum hostile_reaction tx(const struct net_hdr *hdr, uint32_t hdr_len, uint64_t frame,
				uint32_t frame_len)
{
	memcpy(big, hdr, sizeof(*hdr));
	desc_set(&tx_rings, 0, (uintptr_t)big, hdr_len, frame_len ? VIRTQ_DESC_F_NEXT : 0, 1);
	desc_set(&tx_rings, 1, frame, frame_len, 0, 0);
	avail_put(&tx_rings, 0);
	hostile_notify(&net, NET_TXQ, NET_TXQ);
	return hostile_watch(&net, &tx_rings.used[1], 0, hostile_watch_ms);
}

/* A frame of len bytes to nobody (local experimental EtherType). */
static uint64_t junk_frame(uint32_t len)
{
	uint8_t *eth = big + NET_HDR_LEN;

	memset(eth, 0, len < 64 ? 64 : len);
	memset(eth, 0xff, 6);
	memcpy(eth + 6, mac, 6);
	put16(eth + 12, ETH_P_LOCAL);
	return (uintptr_t)eth;
}

static enum hostile_reaction t_tx_shorter_than_header(void)
{
	struct net_hdr h = { 0 };

	begin(0);
	return tx(&h, 4, 0, 0);
}

static enum hostile_reaction t_tx_runt_frame(void)
{
	struct net_hdr h = { 0 };

	begin(0);
	return tx(&h, NET_HDR_LEN, junk_frame(6), 6);
}

static enum hostile_reaction t_tx_giant_frame(void)
{
	struct net_hdr h = { 0 };

	begin(0);
	return tx(&h, NET_HDR_LEN, junk_frame(GIANT_LEN), GIANT_LEN);
}

static enum hostile_reaction t_tx_needs_csum_unnegotiated(void)
{
	struct net_hdr h = { .flags = HDR_F_NEEDS_CSUM, .csum_start = 14, .csum_offset = 16 };

	begin(0);
	return tx(&h, NET_HDR_LEN, junk_frame(64), 64);
}

static enum hostile_reaction t_tx_gso_unknown(void)
{
	struct net_hdr h = { .gso_type = 0x42, .gso_size = 1000, .hdr_len = 54 };

	begin(0);
	return tx(&h, NET_HDR_LEN, junk_frame(64), 64);
}

static enum hostile_reaction t_tx_ecn_without_gso(void)
{
	struct net_hdr h = { .gso_type = GSO_ECN };

	begin(0);
	return tx(&h, NET_HDR_LEN, junk_frame(64), 64);
}

/* With VIRTIO_NET_F_CSUM when the device offers it (QEMU's user network
 * does not): the checksum would be stored far beyond the frame. */
static enum hostile_reaction t_tx_csum_outside_frame(void)
{
	struct net_hdr h = { .flags = HDR_F_NEEDS_CSUM, .csum_start = 0xfff0, .csum_offset = 0xfff0 };

	begin(VIRTIO_BIT(NET_F_CSUM));
	return tx(&h, NET_HDR_LEN, junk_frame(64), 64);
}

static enum hostile_reaction t_tx_len_near_4g(void)
{
	struct net_hdr h = { 0 };

	begin(0);
	return tx(&h, NET_HDR_LEN, junk_frame(64), 0xfffff000u);
}

/* One receive chain as given, then an ARP request (well-formed) whose reply
 * has nowhere valid to go. */
static enum hostile_reaction rx(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	enum hostile_reaction r;

	desc_set(&rx_rings, 0, addr, len, flags, next);
	avail_put(&rx_rings, 0);
	hostile_notify(&net, NET_RXQ, NET_RXQ);
	memcpy(big, arp_frame, sizeof(arp_frame));
	desc_set(&tx_rings, 0, (uintptr_t)big, sizeof(arp_frame), 0, 0);
	avail_put(&tx_rings, 0);
	hostile_notify(&net, NET_TXQ, NET_TXQ);
	r = hostile_watch(&net, &rx_rings.used[1], 0, hostile_watch_ms);
	return r;
}

static enum hostile_reaction t_rx_zero_length(void)
{
	begin(0);
	return rx((uintptr_t)rx_buf[0], 0, VIRTQ_DESC_F_WRITE, 0);
}

static enum hostile_reaction t_rx_shorter_than_header(void)
{
	begin(0);
	return rx((uintptr_t)rx_buf[0], 4, VIRTQ_DESC_F_WRITE, 0);
}

static enum hostile_reaction t_rx_device_readable(void)
{
	begin(0);
	return rx((uintptr_t)rx_buf[0], RX_BUF_LEN, 0, 0);
}

static enum hostile_reaction t_rx_past_ram(void)
{
	begin(0);
	return rx(past_ram, RX_BUF_LEN, VIRTQ_DESC_F_WRITE, 0);
}

static enum hostile_reaction t_rx_self_loop(void)
{
	begin(0);
	return rx((uintptr_t)rx_buf[0], RX_BUF_LEN, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
}

static const struct {
	const char *dir, *name;
	enum hostile_reaction (*run)(void);
} tricks[] = {
	{ "tx", "tx-shorter-than-header", t_tx_shorter_than_header },
	{ "tx", "tx-runt-frame", t_tx_runt_frame },
	{ "tx", "tx-giant-frame", t_tx_giant_frame },
	{ "tx", "tx-needs-csum-unnegotiated", t_tx_needs_csum_unnegotiated },
	{ "tx", "tx-gso-unknown", t_tx_gso_unknown },
	{ "tx", "tx-ecn-without-gso", t_tx_ecn_without_gso },
	{ "tx", "tx-csum-outside-frame", t_tx_csum_outside_frame },
	{ "tx", "tx-len-near-4g", t_tx_len_near_4g },
	{ "rx", "rx-zero-length", t_rx_zero_length },
	{ "rx", "rx-shorter-than-header", t_rx_shorter_than_header },
	{ "rx", "rx-device-readable", t_rx_device_readable },
	{ "rx", "rx-past-ram", t_rx_past_ram },
	{ "rx", "rx-self-loop", t_rx_self_loop },
};

int guest_main(struct hvm_start_info *si)
{
	uint64_t ram_end = hostile_ram_end(si);

	hostile_init(GUEST);
	src_ip = (uint32_t)cmdline_get_u64("src_ip", 0x0a00020f);
	dst_ip = (uint32_t)cmdline_get_u64("dst_ip", 0x0a000202);
	past_ram = ram_end ? ram_end + 0x1000000 : 0xbfff0000ull;
	if (virtio_find(VIRTIO_ID_NET, 0, &net))
		fail("no virtio-net device");
	if (virtio_start(&net, VIRTIO_BIT(NET_F_MAC)))
		fail("cannot start");
	if (!(net.features & VIRTIO_BIT(NET_F_MAC)))
		fail("device offers no MAC");
	for (unsigned i = 0; i < 6; i++)
		mac[i] = virtio_cfg_read8(&net, i);
	if (hostile_queue_max(&net, NET_RXQ) < QSIZE || hostile_queue_max(&net, NET_TXQ) < QSIZE)
		fail("queues smaller than the tricks need");
	arp_build();
	virtio_print(&net, "net");
	if (!net_works())
		fail("no ARP reply to begin with");
	printf(GUEST ": ARP round trip works, past-ram buffer at 0x%lx\n", (unsigned long)past_ram);

	for (unsigned i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		enum hostile_reaction r;

		if (!hostile_trick(tricks[i].dir, tricks[i].name))
			continue;
		r = tricks[i].run();
		printf(GUEST ": %s: %s", tricks[i].name, hostile_reaction_name(r));
		if (!net_works()) {
			printf("\n");
			printf(GUEST ": FAIL: %s: the device does not carry ARP afterwards\n", tricks[i].name);
			return 1;
		}
		printf(", recovered\n");
	}
	if (!net_works())
		fail("final check");
	printf("hostile-net ok %u tricks, device still works\n", hostile_tricks);
	return 0;
}
