/* Test guest: exit status propagation. Exits with "code=N" from the cmdline
 * (default 0), after saying which code it chose. */
#include "pvh.h"
#include "serial.h"

int guest_main(struct hvm_start_info *si)
{
	unsigned code = (unsigned)cmdline_get_u64("code", 0);

	(void)si;
	printf("exitcode: code=%u\n", code);
	return (int)code;
}
