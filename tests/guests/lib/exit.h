/* Guest library: ways out of the VM. The exit port (0xf4) is wafer's test
 * convention and also where QEMU's isa-debug-exit sits; reset is the i8042
 * pulse; poweroff is the ACPI S5 write to wafer's PM1a control block. */
#ifndef GUEST_EXIT_H
#define GUEST_EXIT_H

#include <stdint.h>

#define PORT_EXIT          0xf4
#define PORT_I8042_CMD     0x64
#define PORT_ACPI_PM1A_CNT 0x604
#define ACPI_SLP_TYP_S5    (5u << 10)
#define ACPI_SLP_EN        (1u << 13)

/* Status every guest uses when an unexpected exception is caught. */
#define GUEST_EXIT_EXCEPTION 0x7f

/* wafer exits with code & 0xff; QEMU's isa-debug-exit with (code << 1) | 1. */
__attribute__((noreturn)) void guest_exit(uint32_t code);
/* Pulse the reset line through the i8042 controller. Returns only when the
 * machine ignored it. */
void guest_reset(void);
/* ACPI S5 via PM1a_CNT. Returns only when the machine ignored it. */
void guest_poweroff(void);
/* Stop this CPU for good (used by APs and after failed exits). */
__attribute__((noreturn)) void cpu_halt_forever(void);

#endif
