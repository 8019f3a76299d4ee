/* Test guest: reset through the i8042 controller (command 0xFE pulses the
 * CPU reset line). A machine that ignores it falls through to exit 11
 * (wafer itself exits 3 for a reset, so 3 must not mean "ignored"). */
#include "exit.h"
#include "pvh.h"
#include "serial.h"

int guest_main(struct hvm_start_info *si)
{
	(void)si;
	serial_puts("reset: pulsing the reset line via i8042\n");
	guest_reset();
	serial_puts("reset: still running after the reset command\n");
	return 11;
}
