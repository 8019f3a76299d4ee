/* Test guest: virtio-net (virtio 1.2 section 5.1). Counts the virtio-net
 * functions on the bus, reads the MAC of the one net_index= names (default
 * the first), broadcasts an ARP request for dst_ip (QEMU's -netdev user
 * answers for 10.0.2.2) with a marker in its padding, and waits, bounded,
 * for the reply. */
#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "pvh.h"
#include "serial.h"
#include "string.h"
#include "virtio.h"

#define VIRTIO_NET_F_MAC    5
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_S_LINK_UP 1

#define NET_RXQ 0
#define NET_TXQ 1
#define NET_HDR_LEN 12        /* virtio_net_hdr with num_buffers (1.x) */
#define ETH_HLEN 14
#define ETH_ZLEN 60           /* minimum frame without FCS */
#define ETH_P_ARP 0x0806
#define ARP_LEN 28
#define RX_BUFS 4
#define RX_BUF_LEN 2048       /* >= 1514 + header: no MRG_RXBUF or GSO */
#define RX_MAX_FRAMES 32      /* unrelated frames (IPv6 RAs) we skip */
#define MARKER "WAFER-NET-TEST"

static struct virtio_dev net;
static struct virtq rxq, txq;
static uint8_t tx_frame[NET_HDR_LEN + ETH_ZLEN];
static uint8_t rx_buf[RX_BUFS][RX_BUF_LEN]
	__attribute__((section(".stack.netrx"), aligned(16)));
static uint8_t mac[6];
/* Which rx_buf each posted chain head carries (-1: none). */
static int8_t rx_head_buf[VIRTQ_SIZE];

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void arp_request_build(uint32_t src_ip, uint32_t dst_ip)
{
	uint8_t *eth = tx_frame + NET_HDR_LEN, *arp = eth + ETH_HLEN;

	/* The virtio header stays zero: no checksum offload, no GSO. */
	memset(eth, 0xff, 6);
	memcpy(eth + 6, mac, 6);
	put16(eth + 12, ETH_P_ARP);
	put16(arp, 1);                  /* Ethernet */
	put16(arp + 2, 0x0800);         /* IPv4 */
	arp[4] = 6;
	arp[5] = 4;
	put16(arp + 6, 1);              /* request */
	memcpy(arp + 8, mac, 6);
	put32(arp + 14, src_ip);
	memset(arp + 18, 0, 6);
	put32(arp + 24, dst_ip);
	memcpy(arp + ARP_LEN, MARKER, sizeof(MARKER) - 1);
}

/* The reply we want: ARP, op 2, from dst_ip, addressed to our MAC. */
static int arp_reply_check(const uint8_t *eth, uint32_t len, uint32_t dst_ip)
{
	const uint8_t *arp = eth + ETH_HLEN;

	return len >= ETH_HLEN + ARP_LEN && get16(eth + 12) == ETH_P_ARP &&
	       get16(arp + 6) == 2 && get32(arp + 14) == dst_ip &&
	       !memcmp(arp + 18, mac, 6);
}

static int rx_post(unsigned b)
{
	struct virtq_buf in = { rx_buf[b], RX_BUF_LEN };
	int head = virtq_submit(&rxq, NULL, 0, &in, 1);

	if (head < 0) {
		printf("net: FAIL: receive queue full\n");
		return -1;
	}
	rx_head_buf[head] = (int8_t)b;
	return 0;
}

static void ip_print(uint32_t ip)
{
	printf("%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* How many virtio-net functions the PCI scan finds (the host checks it). */
static unsigned net_count(void)
{
	struct pci_dev d;
	unsigned n = 0;
	while (!pci_find(VIRTIO_PCI_VENDOR, VIRTIO_PCI_MODERN_BASE + VIRTIO_ID_NET, n, &d))
		n++;
	return n;
}

int guest_main(struct hvm_start_info *si)
{
	uint32_t src_ip, dst_ip, len;
	struct virtq_buf tx = { tx_frame, sizeof(tx_frame) };
	unsigned index;
	int n;

	(void)si;
	/* "src_ip=0x..." / "dst_ip=0x..." for networks other than QEMU's slirp. */
	src_ip = (uint32_t)cmdline_get_u64("src_ip", 0x0a00020f);   /* 10.0.2.15 */
	dst_ip = (uint32_t)cmdline_get_u64("dst_ip", 0x0a000202);   /* 10.0.2.2 */
	index = (unsigned)cmdline_get_u64("net_index", 0);
	printf("net devices %u, using %u\n", net_count(), index);
	if (virtio_find(VIRTIO_ID_NET, index, &net) ||
	    virtio_start(&net, VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS)) ||
	    virtq_setup(&net, &rxq, NET_RXQ) || virtq_setup(&net, &txq, NET_TXQ))
		return 1;
	virtio_driver_ok(&net);
	virtio_print(&net, "net");
	if (!(net.features & VIRTIO_BIT(VIRTIO_NET_F_MAC))) {
		printf("net: FAIL: device offers no MAC\n");
		return 1;
	}
	for (unsigned i = 0; i < 6; i++)
		mac[i] = virtio_cfg_read8(&net, i);
	printf("net mac %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
	       mac[4], mac[5]);
	if (net.features & VIRTIO_BIT(VIRTIO_NET_F_STATUS))
		printf(" link %s", virtio_cfg_read16(&net, 6) & VIRTIO_NET_S_LINK_UP ?
		       "up" : "down");
	printf("\n");

	/* Receive buffers go up first, so the reply has somewhere to land. */
	memset(rx_head_buf, -1, sizeof(rx_head_buf));
	for (unsigned i = 0; i < RX_BUFS; i++)
		if (rx_post(i))
			return 1;
	virtq_kick(&rxq);

	arp_request_build(src_ip, dst_ip);
	if (virtq_transfer(&txq, &tx, 1, NULL, 0) < 0) {
		printf("net: FAIL: transmit did not complete\n");
		return 1;
	}
	printf("net tx ok (ARP who-has ");
	ip_print(dst_ip);
	printf(" tell ");
	ip_print(src_ip);
	printf(")\n");

	for (unsigned frames = 0; frames < RX_MAX_FRAMES; frames++) {
		const uint8_t *eth;
		int b;

		n = virtq_wait(&rxq, &len, VIRTIO_WAIT_CYCLES);
		if (n < 0) {
			printf("net: FAIL: no ARP reply (%u other frames)\n", frames);
			return 1;
		}
		b = rx_head_buf[n];
		rx_head_buf[n] = -1;
		if (b < 0 || len < NET_HDR_LEN || len > RX_BUF_LEN) {
			printf("net: FAIL: bad rx completion head %d len %u\n", n, len);
			return 1;
		}
		eth = rx_buf[b] + NET_HDR_LEN;
		len -= NET_HDR_LEN;
		if (arp_reply_check(eth, len, dst_ip)) {
			printf("net rx ok %u\n", len);
			printf("net arp reply: ");
			ip_print(dst_ip);
			printf(" is-at %02x:%02x:%02x:%02x:%02x:%02x\n", eth[22], eth[23],
			       eth[24], eth[25], eth[26], eth[27]);
			return 0;
		}
		printf("net: skipping frame len %u type 0x%04x\n", len,
		       len >= ETH_HLEN ? get16(eth + 12) : 0);
		if (rx_post(b))
			return 1;
		virtq_kick(&rxq);
	}
	printf("net: FAIL: no ARP reply among %u frames\n", RX_MAX_FRAMES);
	return 1;
}
