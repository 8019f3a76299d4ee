/* Guest library: running a function in ring 3 (CPL 3) and getting back to
 * ring 0 through an INT 0x80 gate (Intel SDM vol. 3 5.8, 6.12). */
#ifndef GUEST_USER_H
#define GUEST_USER_H

#include <stdint.h>

/* run_user() enters CPL 3 with IRETQ (user code/data selectors, IOPL 3 so the
 * function may use IN/OUT directly, IF as the caller had it). The function's
 * return value comes back to ring 0 through INT 0x80, a DPL-3 interrupt gate;
 * the gate's handler discards the user frame and returns from run_user() on
 * the caller's kernel stack. Ring 3 therefore costs exactly two ring-0
 * transitions (one in, one out) however long the function runs, which is
 * what the benchmarks need: on wafer's target ring 3 runs natively while ring
 * 0 is emulated.
 *
 * Every page is user-accessible (crt0.S sets U in all page-table levels), so
 * the function can call ordinary library code, including printf. BSP only:
 * there is one TSS. Not reentrant. */

#define USER_RETURN_VECTOR 0x80

typedef uint64_t (*user_fn)(uint64_t arg);

/* stack_top must be 16-byte aligned. Returns fn(arg). */
uint64_t run_user(user_fn fn, uint64_t arg, void *stack_top);

/* The CPL the caller is running at (0 or 3). */
static inline unsigned current_cpl(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

#endif
