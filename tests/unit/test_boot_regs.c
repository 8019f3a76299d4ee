/* Boot register state: decoded from the GDT the loader wrote, per boot mode
 * (Linux 64-bit boot protocol; Xen PVH 32-bit entry). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "arch/x86/regs.h"

static uint8_t ram[2 << 20];

static void setup(struct guest_mem *m, enum boot_mode mode, struct boot_plan *plan)
{
	memset(ram, 0, sizeof(ram));
	gmem_init(m, ram, sizeof(ram));
	assert_int_equal(boot_write_cpu_tables(m, mode), 0);
	memset(plan, 0, sizeof(*plan));
	plan->mode = mode;
	plan->entry = 0x1000000;
	plan->params_gpa = mode == BOOT_MODE_LINUX64 ? ZERO_PAGE_ADDR : PVH_START_INFO;
}

static void test_linux64(void **state)
{
	(void)state;
	struct guest_mem m;
	struct boot_plan plan;
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	setup(&m, BOOT_MODE_LINUX64, &plan);
	memset(&sregs, 0, sizeof(sregs));
	assert_int_equal(regs_boot_setup(&m, &plan, &regs, &sregs), 0);
	assert_int_equal(regs.rip, 0x1000000);
	assert_int_equal(regs.rsi, ZERO_PAGE_ADDR);      /* boot_params in RSI */
	assert_int_equal(regs.rflags & 0x202, 0x2);      /* IF clear */
	assert_true(sregs.cr0 & 1);                      /* PE */
	assert_true(sregs.cr0 & 0x80000000);             /* PG */
	assert_true(sregs.cr4 & 0x20);                   /* PAE */
	assert_int_equal(sregs.efer & 0x500, 0x500);     /* LME | LMA */
	assert_int_equal(sregs.cr3, BOOT_PML4_ADDR);
	assert_int_equal(sregs.cs.selector, BOOT_CS);
	assert_int_equal(sregs.cs.l, 1);                 /* 64-bit code */
	assert_int_equal(sregs.cs.db, 0);
	assert_int_equal(sregs.cs.present, 1);
	assert_int_equal(sregs.cs.type & 0x9, 0x9);      /* code, accessed */
	assert_int_equal(sregs.ds.selector, BOOT_DS);
	assert_int_equal(sregs.ds.type & 0xb, 0x3);      /* data, writable, accessed */
	assert_int_equal(sregs.ss.selector, BOOT_DS);
	assert_int_equal(sregs.ds.base, 0);
	assert_int_equal(sregs.gdt.base, BOOT_GDT_ADDR);
	assert_int_equal(sregs.gdt.limit, BOOT_GDT_ENTRIES * 8 - 1);
	assert_int_equal(sregs.tr.type, 11);             /* busy TSS */
	assert_int_equal(sregs.tr.present, 1);
	/* the descriptor KVM gets is the one in guest memory */
	uint64_t d;
	memcpy(&d, ram + BOOT_GDT_ADDR + BOOT_CS, 8);
	assert_int_equal(d, boot_gdt_desc(BOOT_MODE_LINUX64, BOOT_CS));
}

static void test_pvh32(void **state)
{
	(void)state;
	struct guest_mem m;
	struct boot_plan plan;
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	setup(&m, BOOT_MODE_PVH32, &plan);
	memset(&sregs, 0, sizeof(sregs));
	assert_int_equal(regs_boot_setup(&m, &plan, &regs, &sregs), 0);
	assert_int_equal(regs.rbx, PVH_START_INFO);      /* start_info in EBX */
	assert_int_equal(sregs.cr0 & 0x80000001, 1);     /* PE, no paging */
	assert_int_equal(sregs.cr4, 0);
	assert_int_equal(sregs.efer, 0);
	assert_int_equal(sregs.cs.l, 0);
	assert_int_equal(sregs.cs.db, 1);                /* 32-bit flat code */
	assert_int_equal(sregs.cs.base, 0);
	assert_int_equal(sregs.cs.limit, 0xffffffff);
	assert_int_equal(sregs.cs.g, 1);
	assert_int_equal(sregs.ds.db, 1);
	assert_int_equal(sregs.ds.limit, 0xffffffff);
}

static void test_descriptor_decode(void **state)
{
	(void)state;
	struct kvm_segment s;
	/* base 0x12345678, limit 0xabcde, G=0, 32-bit data, DPL 3, present */
	uint64_t d = 0x0000ull | 0xbcdeull | (0x5678ull << 16) | (0x34ull << 32) |
		     (0xf2ull << 40) | (0x4aull << 48) | (0x12ull << 56);
	regs_segment_from_desc(d, 0x2b, &s);
	assert_int_equal(s.base, 0x12345678);
	assert_int_equal(s.limit, 0xabcde);
	assert_int_equal(s.dpl, 3);
	assert_int_equal(s.db, 1);
	assert_int_equal(s.g, 0);
	assert_int_equal(s.type, 3);                      /* accessed bit forced */
	assert_int_equal(s.selector, 0x2b);
}

static void test_no_gdt(void **state)
{
	(void)state;
	struct guest_mem m;
	struct boot_plan plan = { .mode = BOOT_MODE_LINUX64 };
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	m.host = NULL;
	m.size = m.low_size = m.high_size = 0;
	assert_int_equal(regs_boot_setup(&m, &plan, &regs, &sregs), -14); /* -EFAULT */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linux64),
		cmocka_unit_test(test_pvh32),
		cmocka_unit_test(test_descriptor_decode),
		cmocka_unit_test(test_no_gdt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
