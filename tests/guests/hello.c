/* Test guest: the smallest boot check. Prints one line, exits 0. */
#include "pvh.h"
#include "serial.h"

int guest_main(struct hvm_start_info *si)
{
	(void)si;
	serial_puts("hello from wafer guest\n");
	return 0;
}
