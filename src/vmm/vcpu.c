/* vCPU creation and the KVM_RUN loop. Each vCPU is a thread; PIO/MMIO exits go
 * to the buses; fatal exits (triple fault, failed entry, internal errors that
 * cannot be fixed up) stop the VM with a one-line diagnosis. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/cpuid.h"
#include "arch/x86/emulate_fixup.h"
#include "arch/x86/regs.h"
#include "jail/seccomp.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

void vcpu_signals_init(void)
{
	static bool done;   /* once: a restart builds on a filtered main thread */
	struct sigaction sa;

	if (done)
		return;
	done = true;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL); /* no SA_RESTART: KVM_RUN returns EINTR */
}

static int vcpu_set_cpuid(struct vcpu *v)
{
	const struct kvm_cpuid2 *base = v->vm->cpuid;
	struct kvm_cpuid2 *c = cpuid_alloc(base->nent);
	int rc = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c->entries, base->entries, base->nent * sizeof(base->entries[0]));
	c->nent = base->nent;
	cpuid_set_topology(c, v->index, v->vm->ncpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		rc = -errno;
	free(c);
	return rc;
}

int vcpu_create(struct vm *vm, struct vcpu *v, unsigned index)
{
	const char *step;
	int rc;

	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		rc = -errno;
		step = "KVM_CREATE_VCPU";
		goto out;
	}
	v->run = mmap(NULL, (size_t)vm->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		rc = -errno;
		step = "mmap of kvm_run";
		goto out;
	}
	step = "KVM_SET_CPUID2";
	rc = vcpu_set_cpuid(v);
	if (rc)
		goto out;
	step = "MSR/FPU/LAPIC setup";
	rc = regs_vcpu_init(v->fd, index);
	if (rc)
		goto out;
	if (index == 0 && !vm->cfg.restore) {
		/* APs stay in wait-for-SIPI (the in-kernel LAPIC's reset state). */
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		step = "boot registers";
		if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
			rc = -errno;
			goto out;
		}
		rc = regs_boot_setup(&vm->mem, &vm->plan, &regs, &sregs);
		if (rc)
			goto out;
		if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
			rc = -errno;
			goto out;
		}
	}
	rc = 0;
out:
	if (rc)
		log_error("vcpu %u: %s failed: %s", index, step, strerror(-rc));
	return rc;
}

static void vcpu_stop_crash(struct vcpu *v, const char *what)
{
	char detail[256];
	struct kvm_regs regs;
	unsigned long long rip = 0;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		rip = regs.rip;
	snprintf(detail, sizeof(detail), "vcpu %u: %s at RIP 0x%llx", v->index, what, rip);
	vm_request_stop(v->vm, VM_STOP_CRASH, 0, detail);
}

static void vcpu_handle_io(struct vcpu *v)
{
	static struct log_ratelimit rl;
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned size = run->io.size;

	/* data_offset/count/size come from KVM, not the guest, and describe a
	 * buffer inside the kvm_run mapping; check anyway before trusting. */
	if ((size != 1 && size != 2 && size != 4) ||
	    run->io.data_offset + (uint64_t)run->io.count * size > (uint64_t)v->vm->run_mmap_size)
		return;
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		int is_write = run->io.direction == KVM_EXIT_IO_OUT;
		if (bus_access(&v->vm->pio, run->io.port, data, size, is_write) == -ENOENT &&
		    log_threshold >= LOG_DEBUG)
			log_ratelimited(&rl, LOG_DEBUG, "vcpu %u: unclaimed port %s 0x%x size %u",
					v->index, is_write ? "write" : "read", run->io.port, size);
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	static struct log_ratelimit rl;
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	if (bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len,
		       run->mmio.is_write) == -ENOENT && log_threshold >= LOG_DEBUG)
		log_ratelimited(&rl, LOG_DEBUG, "vcpu %u: unclaimed MMIO %s 0x%llx size %u",
				v->index, run->mmio.is_write ? "write" : "read",
				(unsigned long long)run->mmio.phys_addr, len);
}

static void vcpu_handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(v->vm, VM_STOP_POWEROFF, 0, "guest shutdown (system event)");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(v->vm, VM_STOP_RESET, 0, "guest reset (system event)");
		break;
	default:
		vcpu_stop_crash(v, "guest crash (system event)");
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;
	char name[16];

	seccomp_name_thread(SECCOMP_ROLE_VCPU);
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	vm_vcpu_confine(vm);   /* seccomp, before the first KVM_RUN */
	/* A VM restored paused (or paused before its threads started) must not
	 * run a single instruction before resume. */
	vm_vcpu_maybe_park(vm);

	while (atomic_load(&vm->stop_reason) == VM_RUNNING) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* Kicked: every exit is complete here, so this is
				 * the safe point to park for a pause. Re-arm first:
				 * a kick that lands after this store sets the flag
				 * again, one before it is seen by the park check. */
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				vm_vcpu_maybe_park(vm);
				continue;
			}
			char detail[128];
			snprintf(detail, sizeof(detail), "vcpu %u: KVM_RUN failed: %s", v->index,
				 strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, 0, detail);
			break;
		}
		uint32_t reason = v->run->exit_reason;
		v->exits[reason < VCPU_EXIT_REASONS ? reason : VCPU_EXIT_REASONS - 1]++;
		switch (reason) {
		case KVM_EXIT_IO:
			vcpu_handle_io(v);
			break;
		case KVM_EXIT_MMIO:
			vcpu_handle_mmio(v);
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			/* Only without an in-kernel LAPIC; wafer always has one. */
			vm_request_stop(vm, VM_STOP_POWEROFF, 0, "guest halted");
			break;
		case KVM_EXIT_SHUTDOWN:
			vcpu_stop_crash(v, "triple fault (KVM_EXIT_SHUTDOWN)");
			break;
		case KVM_EXIT_FAIL_ENTRY: {
			char what[96];
			snprintf(what, sizeof(what), "VM entry failed (hardware reason 0x%llx)",
				 (unsigned long long)v->run->fail_entry.hardware_entry_failure_reason);
			vcpu_stop_crash(v, what);
			break;
		}
		case KVM_EXIT_INTERNAL_ERROR: {
			char detail[256];
			if (!emulate_fixup_handle(v, detail, sizeof(detail)))
				vm_request_stop(vm, VM_STOP_CRASH, 0, detail);
			break;
		}
		case KVM_EXIT_SYSTEM_EVENT:
			vcpu_handle_system_event(v);
			break;
		default: {
			char what[64];
			snprintf(what, sizeof(what), "unhandled KVM exit reason %u", reason);
			vcpu_stop_crash(v, what);
			break;
		}
		}
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	const struct vm_config *cfg = &v->vm->cfg;
	int r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (r)
		return -r;
	v->started = 1;
	if (cfg->naffinity) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cfg->affinity[v->index % cfg->naffinity], &set);
		r = pthread_setaffinity_np(v->thread, sizeof(set), &set);
		if (r)
			log_warn("vcpu %u: cannot pin to host CPU %u: %s", v->index,
				 cfg->affinity[v->index % cfg->naffinity], strerror(r));
	}
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = 0;
	}
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
