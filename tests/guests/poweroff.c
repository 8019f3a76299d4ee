/* Test guest: ACPI S5 poweroff through wafer's PM1a control block (port
 * 0x604, SLP_TYP 5, SLP_EN). wafer turns the write into exit 0; a machine that
 * ignores it falls through to exit 10 (distinct from wafer's own statuses
 * 0-4), so a silent no-op is visible. */
#include "exit.h"
#include "pvh.h"
#include "serial.h"

int guest_main(struct hvm_start_info *si)
{
	(void)si;
	serial_puts("poweroff: writing S5 to PM1a_CNT\n");
	guest_poweroff();
	serial_puts("poweroff: still running after the S5 write\n");
	return 10;
}
