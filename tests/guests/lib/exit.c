/* Guest library: exit port, i8042 reset and ACPI S5 poweroff (see exit.h). */
#include "exit.h"
#include "io.h"

void cpu_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}

void guest_exit(uint32_t code)
{
	outl(PORT_EXIT, code);
	cpu_halt_forever();
}

void guest_reset(void)
{
	outb(PORT_I8042_CMD, 0xfe);
}

void guest_poweroff(void)
{
	outw(PORT_ACPI_PM1A_CNT, ACPI_SLP_TYP_S5 | ACPI_SLP_EN);
}
