/* Test guest: SMP bring-up. Starts every AP with INIT-SIPI-SIPI; each CPU
 * checks in with its LAPIC ID. Passes (exit 0, "smp ok N") when exactly the
 * "cpus=N" CPUs checked in and their IDs are 0..N-1; otherwise exit 1. */
#include <stdint.h>

#include "io.h"
#include "lapic.h"
#include "pvh.h"
#include "serial.h"
#include "smp.h"

/* Each wait iteration is a few instructions; this bound is ~0.1-1 s on
 * hardware and stays finite when ring 0 is emulated. */
#define WAIT_SPINS 20000000ul
/* After everyone is in, give stragglers a moment to show up as extras. */
#define SETTLE_SPINS 20000ul

static volatile uint64_t online_map;
static volatile unsigned online_count;
static volatile unsigned bad_ids;

static void check_in(unsigned index)
{
	unsigned id = lapic_id();

	printf("cpu %u apic %u online\n", index, id);
	if (id < 64)
		__atomic_fetch_or(&online_map, 1ull << id, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_add(&bad_ids, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&online_count, 1, __ATOMIC_SEQ_CST);
}

int guest_main(struct hvm_start_info *si)
{
	unsigned n = (unsigned)cmdline_get_u64("cpus", 1);
	uint64_t want;
	unsigned long i;

	(void)si;
	printf("smp: expecting %u cpus\n", n);
	if (n < 1 || n > SMP_MAX_CPUS) {
		printf("smp: FAIL: cpus=%u out of range 1..%u\n", n, SMP_MAX_CPUS);
		return 1;
	}
	check_in(0);
	if (n > 1 && smp_start_aps(check_in))
		return 1;
	for (i = 0; i < WAIT_SPINS && online_count < n; i++)
		cpu_relax();
	smp_spin(SETTLE_SPINS);

	want = n == 64 ? ~0ull : (1ull << n) - 1;
	if (online_count != n || online_map != want || bad_ids) {
		printf("smp: FAIL: %u of %u cpus checked in, apic map 0x%lx (want 0x%lx)\n",
		       online_count, n, (unsigned long)online_map, (unsigned long)want);
		return 1;
	}
	printf("smp ok %u\n", n);
	return 0;
}
