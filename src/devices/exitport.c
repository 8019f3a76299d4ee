/* Test exit port (PORT_EXIT): a guest write of V stops the VM and makes wafer
 * exit with status V & 0xff. QEMU's isa-debug-exit sits at the same port, so
 * the test guests run unchanged under both. */
#include <stdio.h>

#include "arch/x86/layout.h"
#include "vmm/vm.h"

static void exitport_write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct vm *vm = opaque;
	uint32_t v = 0;
	(void)offset;
	for (unsigned i = 0; i < size && i < 4; i++)
		v |= (uint32_t)data[i] << (8 * i);
	char detail[64];
	snprintf(detail, sizeof(detail), "guest wrote 0x%x to the exit port", v);
	vm_request_stop(vm, VM_STOP_EXIT_PORT, (int)(v & 0xff), detail);
}

static const struct bus_ops exitport_ops = { .write = exitport_write };

static int exitport_create(struct vm *vm)
{
	return bus_register(&vm->pio, PORT_EXIT, 4, &exitport_ops, vm, "exit-port");
}

/* No state: nothing to snapshot. */
static const struct device_desc exitport_device = { .name = "exit-port", .create = exitport_create };
DEVICE_REGISTER(exitport_device);
