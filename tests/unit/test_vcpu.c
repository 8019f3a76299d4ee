/* The vCPU run loop against a scripted KVM: ioctl() is wrapped (-Wl,--wrap)
 * so KVM_RUN returns the exits a test lists. Checks PIO dispatch (in, out,
 * string), the int3 emulation-failure fixup (RIP + 1 and #BP injected), the
 * diagnosis for unresolvable failures, triple faults and stop handling. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* ---- scripted KVM --------------------------------------------------- */

typedef void (*exit_fn)(struct kvm_run *run);

static struct {
	exit_fn steps[16];
	unsigned nsteps, next;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int set_regs_calls;
	struct kvm_vcpu_events events;
	int set_events_calls;
	struct kvm_run *run;
	int spin;          /* KVM_RUN blocks until kicked */
	unsigned runs;     /* KVM_RUN calls */
} kvm;

int __real_ioctl(int fd, unsigned long req, ...);

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	(void)fd;

	switch (req) {
	case KVM_RUN:
		__atomic_add_fetch(&kvm.runs, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&kvm.run->immediate_exit, __ATOMIC_SEQ_CST)) {
			errno = EINTR;
			return -1;
		}
		if (kvm.spin) {
			/* A guest that never exits on its own: only a kick ends
			 * this KVM_RUN, as with real KVM. */
			while (!__atomic_load_n(&kvm.run->immediate_exit, __ATOMIC_SEQ_CST))
				usleep(100);
			errno = EINTR;
			return -1;
		}
		if (kvm.next >= kvm.nsteps) {
			/* Script exhausted: behave like a guest that shut down. */
			kvm.run->exit_reason = KVM_EXIT_SHUTDOWN;
			return 0;
		}
		kvm.steps[kvm.next++](kvm.run);
		return 0;
	case KVM_GET_REGS:
		memcpy(arg, &kvm.regs, sizeof(kvm.regs));
		return 0;
	case KVM_SET_REGS:
		memcpy(&kvm.regs, arg, sizeof(kvm.regs));
		kvm.set_regs_calls++;
		return 0;
	case KVM_GET_SREGS:
		memcpy(arg, &kvm.sregs, sizeof(kvm.sregs));
		return 0;
	case KVM_TRANSLATE: {
		struct kvm_translation *t = arg;
		t->physical_address = t->linear_address; /* identity paging */
		t->valid = 1;
		return 0;
	}
	case KVM_GET_VCPU_EVENTS:
		memset(arg, 0, sizeof(struct kvm_vcpu_events));
		return 0;
	case KVM_SET_VCPU_EVENTS:
		memcpy(&kvm.events, arg, sizeof(kvm.events));
		kvm.set_events_calls++;
		return 0;
	default:
		errno = ENOTTY;
		return -1;
	}
}

/* ---- a test device on port 0x80 (4 ports) ---------------------------- */

static struct {
	uint8_t written[16];
	unsigned nwritten;
	struct vm *vm;
} dev;

static void dev_read(void *o, uint64_t off, uint8_t *d, unsigned size)
{
	(void)o;
	for (unsigned i = 0; i < size; i++)
		d[i] = (uint8_t)(0xa0 + off + i);
}

static void dev_write(void *o, uint64_t off, const uint8_t *d, unsigned size)
{
	(void)o;
	if (off == 3) { /* port 0x83: stop, like the exit port */
		vm_request_stop(dev.vm, VM_STOP_EXIT_PORT, d[0], "test stop");
		return;
	}
	for (unsigned i = 0; i < size && dev.nwritten < sizeof(dev.written); i++)
		dev.written[dev.nwritten++] = d[i];
}

static const struct bus_ops dev_ops = { dev_read, dev_write };

static void io_exit(struct kvm_run *run, uint16_t port, int out, unsigned size,
		    unsigned count, const uint8_t *data)
{
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = out ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN;
	run->io.port = port;
	run->io.size = (uint8_t)size;
	run->io.count = count;
	run->io.data_offset = 1024;
	if (data)
		memcpy((uint8_t *)run + 1024, data, size * count);
}

static void step_out_byte(struct kvm_run *run) { io_exit(run, 0x80, 1, 1, 1, (const uint8_t *)"\x11"); }
static void step_out_string(struct kvm_run *run) { io_exit(run, 0x81, 1, 1, 3, (const uint8_t *)"\x21\x22\x23"); }
static void step_in_word(struct kvm_run *run) { io_exit(run, 0x81, 0, 2, 1, NULL); }
static void step_stop(struct kvm_run *run) { io_exit(run, 0x83, 1, 1, 1, (const uint8_t *)"\x2a"); }
static void step_unclaimed_in(struct kvm_run *run) { io_exit(run, 0x500, 0, 4, 1, NULL); }
static void step_hostile_io(struct kvm_run *run)
{
	/* A count that would run past the kvm_run page must be ignored. */
	io_exit(run, 0x80, 1, 4, 0x10000, NULL);
}
static void step_emul_fail(struct kvm_run *run)
{
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
}

/* ---- fixture ---------------------------------------------------------- */

static struct vm vm;
static uint8_t ram[1 << 20];
static uint8_t in_word[2];

static void check_in_word(struct kvm_run *run)
{
	/* The previous IN exit's data area holds what the device returned. */
	memcpy(in_word, (uint8_t *)run + 1024, 2);
	step_stop(run);
}

static uint8_t unclaimed[4];
static void check_unclaimed(struct kvm_run *run)
{
	memcpy(unclaimed, (uint8_t *)run + 1024, 4);
	step_stop(run);
}

static void run_script(exit_fn *steps, unsigned n, uint64_t rip)
{
	struct vcpu *v;

	memset(&kvm, 0, sizeof(kvm));
	memset(&dev, 0, sizeof(dev));
	memset(&vm, 0, sizeof(vm));
	memcpy(kvm.steps, steps, n * sizeof(*steps));
	kvm.nsteps = n;
	kvm.regs.rip = rip;
	gmem_init(&vm.mem, ram, sizeof(ram));
	vm.ncpus = 1;
	vm.stop_eventfd = -1;
	vm.run_mmap_size = 4096;
	pthread_mutex_init(&vm.stop_lock, NULL);
	pthread_mutex_init(&vm.pause_lock, NULL);
	pthread_cond_init(&vm.pause_cond, NULL);
	assert_int_equal(bus_register(&vm.pio, 0x80, 4, &dev_ops, NULL, "test"), 0);
	dev.vm = &vm;

	v = calloc(1, sizeof(*v));
	vm.vcpus = v;
	v->vm = &vm;
	v->fd = open("/dev/null", O_RDONLY);
	v->run = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(v->run != MAP_FAILED);
	kvm.run = v->run;
	vcpu_signals_init();
	assert_int_equal(vcpu_start(v), 0);
	vcpu_destroy(v); /* joins: the loop ends when the VM stops */
}

static void finish(void)
{
	free(vm.vcpus);
	vm.vcpus = NULL;
	pthread_mutex_destroy(&vm.stop_lock);
	pthread_mutex_destroy(&vm.pause_lock);
	pthread_cond_destroy(&vm.pause_cond);
}

static void test_pio_dispatch(void **state)
{
	(void)state;
	exit_fn s[] = { step_out_byte, step_out_string, step_in_word, check_in_word };
	run_script(s, 4, 0);
	assert_int_equal(dev.nwritten, 4);
	assert_memory_equal(dev.written, "\x11\x21\x22\x23", 4);
	assert_int_equal(in_word[0], 0xa1);  /* port 0x81 = offset 1 */
	assert_int_equal(in_word[1], 0xa2);
	assert_int_equal(atomic_load(&vm.stop_reason), VM_STOP_EXIT_PORT);
	assert_int_equal(vm.exit_status, 0x2a);
	finish();
}

static void test_unclaimed_and_hostile_io(void **state)
{
	(void)state;
	exit_fn s[] = { step_hostile_io, step_unclaimed_in, check_unclaimed };
	run_script(s, 3, 0);
	assert_int_equal(dev.nwritten, 0);                     /* oversized exit ignored */
	assert_memory_equal(unclaimed, "\xff\xff\xff\xff", 4); /* open bus */
	assert_int_equal(atomic_load(&vm.stop_reason), VM_STOP_EXIT_PORT);
	finish();
}

static void test_int3_fixup(void **state)
{
	(void)state;
	exit_fn s[] = { step_emul_fail, step_stop };
	ram[0x1000] = 0xcc;
	run_script(s, 2, 0x1000);
	assert_int_equal(vm.vcpus[0].fixups, 1);
	assert_int_equal(kvm.regs.rip, 0x1001);           /* int3 is a trap: RIP after it */
	assert_int_equal(kvm.set_events_calls, 1);
	assert_int_equal(kvm.events.exception.injected, 1);
	assert_int_equal(kvm.events.exception.nr, 3);     /* #BP */
	assert_int_equal(kvm.events.exception.has_error_code, 0);
	assert_int_equal(atomic_load(&vm.stop_reason), VM_STOP_EXIT_PORT); /* guest went on */
	finish();
}

static void test_unresolvable_emulation_failure(void **state)
{
	(void)state;
	exit_fn s[] = { step_emul_fail, step_stop };
	memcpy(&ram[0x2000], "\x48\x0f\xc7\x0f", 4);      /* cmpxchg16b (%rdi) */
	run_script(s, 2, 0x2000);
	assert_int_equal(vm.vcpus[0].fixups, 0);
	assert_int_equal(kvm.set_events_calls, 0);
	assert_int_equal(kvm.set_regs_calls, 0);          /* RIP untouched */
	assert_int_equal(atomic_load(&vm.stop_reason), VM_STOP_CRASH);
	assert_non_null(strstr(vm.stop_detail, "emulation failure"));
	assert_non_null(strstr(vm.stop_detail, "RIP 0x2000"));
	assert_non_null(strstr(vm.stop_detail, "bytes: 48 0f c7 0f"));
	finish();
}

static void test_triple_fault(void **state)
{
	(void)state;
	exit_fn s[] = { step_out_byte };  /* then the script ends: KVM_EXIT_SHUTDOWN */
	run_script(s, 1, 0xdead0);
	assert_int_equal(atomic_load(&vm.stop_reason), VM_STOP_CRASH);
	assert_non_null(strstr(vm.stop_detail, "triple fault"));
	assert_non_null(strstr(vm.stop_detail, "RIP 0xdead0"));
	finish();
}

static void test_pause_resume_stop(void **state)
{
	(void)state;
	struct vcpu *v;

	memset(&kvm, 0, sizeof(kvm));
	memset(&vm, 0, sizeof(vm));
	kvm.spin = 1;
	gmem_init(&vm.mem, ram, sizeof(ram));
	vm.ncpus = 1;
	vm.stop_eventfd = -1;
	vm.run_mmap_size = 4096;
	pthread_mutex_init(&vm.stop_lock, NULL);
	pthread_mutex_init(&vm.pause_lock, NULL);
	pthread_cond_init(&vm.pause_cond, NULL);
	v = calloc(1, sizeof(*v));
	vm.vcpus = v;
	v->vm = &vm;
	v->fd = open("/dev/null", O_RDONLY);
	v->run = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	kvm.run = v->run;
	vcpu_signals_init();
	assert_int_equal(vcpu_start(v), 0);
	usleep(2000);

	for (int round = 0; round < 3; round++) {
		assert_int_equal(vm_pause(&vm), 0);
		assert_true(vm_is_paused(&vm));
		assert_int_equal(vm.paused_vcpus, 1);
		assert_int_equal(vm_pause(&vm), -EALREADY);
		unsigned runs = __atomic_load_n(&kvm.runs, __ATOMIC_SEQ_CST);
		usleep(5000);
		/* parked: not re-entering KVM_RUN */
		assert_int_equal(__atomic_load_n(&kvm.runs, __ATOMIC_SEQ_CST), runs);
		assert_int_equal(vm_resume(&vm), 0);
		assert_int_equal(vm_resume(&vm), -EALREADY);
		/* running again (bounded wait: a loaded sanitizer run is slow) */
		for (int i = 0; i < 1000 && __atomic_load_n(&kvm.runs, __ATOMIC_SEQ_CST) == runs; i++)
			usleep(1000);
		assert_true(__atomic_load_n(&kvm.runs, __ATOMIC_SEQ_CST) > runs);
	}
	/* stop while paused: the parked vCPU leaves */
	assert_int_equal(vm_pause(&vm), 0);
	vm_request_stop(&vm, VM_STOP_USER, 0, "test");
	vcpu_destroy(v);
	assert_int_equal(vm_pause(&vm), -ESRCH);
	free(vm.vcpus);
	vm.vcpus = NULL;
	pthread_mutex_destroy(&vm.stop_lock);
	pthread_mutex_destroy(&vm.pause_lock);
	pthread_cond_destroy(&vm.pause_cond);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pio_dispatch),
		cmocka_unit_test(test_unclaimed_and_hostile_io),
		cmocka_unit_test(test_int3_fixup),
		cmocka_unit_test(test_unresolvable_emulation_failure),
		cmocka_unit_test(test_triple_fault),
		cmocka_unit_test(test_pause_resume_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
