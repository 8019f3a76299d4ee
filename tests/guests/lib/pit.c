/* Guest library: PIT channel 0 and 2 programming and 8259 masking (see pit.h). */
#include "io.h"
#include "pit.h"

#define PIT_CH0 0x40
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_SPKR 0x61
#define SPKR_GATE2 0x01
#define SPKR_DATA 0x02
#define SPKR_OUT2 0x20
#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1

void pit_periodic(uint16_t divisor)
{
	outb(PIT_CMD, 0x34);            /* ch 0, lo/hi byte, mode 2, binary */
	outb(PIT_CH0, (uint8_t)divisor);
	outb(PIT_CH0, (uint8_t)(divisor >> 8));
}

void pit_ch2_start(uint16_t count)
{
	outb(PORT_SPKR, (uint8_t)((inb(PORT_SPKR) & ~SPKR_DATA) | SPKR_GATE2));
	outb(PIT_CMD, 0xb0);            /* ch 2, lo/hi byte, mode 0 */
	outb(PIT_CH2, (uint8_t)count);
	outb(PIT_CH2, (uint8_t)(count >> 8));
}

int pit_ch2_done(void)
{
	return (inb(PORT_SPKR) & SPKR_OUT2) != 0;
}

void pit_stop(void)
{
	outb(PIT_CMD, 0x30);            /* ch 0, lo/hi byte, mode 0 */
	outb(PIT_CH0, 0xff);
	outb(PIT_CH0, 0xff);
}

void pic_disable(void)
{
	/* Firmware (SeaBIOS under QEMU) leaves the PIC at vectors 0x08-0x0f,
	 * where a stray IRQ would look like an exception. */
	outb(PIC1_CMD, 0x11);           /* ICW1: init, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, 0x20);          /* ICW2: vector base */
	outb(PIC2_DATA, 0x28);
	outb(PIC1_DATA, 0x04);          /* ICW3: slave on IR2 */
	outb(PIC2_DATA, 0x02);
	outb(PIC1_DATA, 0x01);          /* ICW4: 8086 mode */
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, 0xff);          /* mask all */
	outb(PIC2_DATA, 0xff);
}
