/* VM construction: validate the config, allocate guest RAM, load the boot
 * image (all before touching KVM, so bad input is reported even where KVM is
 * missing), then create the KVM VM with in-kernel irqchip and PIT, memslots,
 * platform devices and vCPUs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "devices/virtio/pci.h"
#include "devices/virtio/rng.h"
#include "jail/seccomp.h"
#include "vmm/log.h"
#include "vmm/parse.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

/* Hole addresses KVM needs on Intel for real-mode support; they must not
 * overlap RAM or MMIO. Just below the IOAPIC/LAPIC pages. */
#define KVM_TSS_ADDR      0xfeffd000ull
#define KVM_IDMAP_ADDR    0xfeffc000ull

extern const struct device_desc *const __start_wafer_devices[];
extern const struct device_desc *const __stop_wafer_devices[];

static int vm_open_kvm(struct vm *vm)
{
	const char *path = vm->cfg.kvm_path;
	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int e = errno;
		if (e == ENOENT)
			log_error("%s: not present: KVM is not available on this host "
				  "(no kvm module loaded, or no hardware virtualization)", path);
		else if (e == EACCES || e == EPERM)
			log_error("%s: permission denied: add this user to the group owning %s "
				  "(usually 'kvm') or run as root", path, path);
		else
			log_error("%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		log_error("%s: unsupported KVM API version %d (need %d)", path, api, KVM_API_VERSION);
		return -ENOTSUP;
	}
	static const struct { int cap; const char *name; } need[] = {
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	};
	for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			log_error("%s: KVM lacks %s, which wafer requires", path, need[i].name);
			return -ENOTSUP;
		}
	}
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4;
	if (vm->ncpus > (unsigned)max) {
		log_error("--cpus %u: above this host's KVM limit of %d vCPUs", vm->ncpus, max);
		return -EINVAL;
	}
	vm->run_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_mmap_size <= 0) {
		log_error("%s: KVM_GET_VCPU_MMAP_SIZE failed: %s", path, strerror(errno));
		return -ENOTSUP;
	}
	return 0;
}

static int vm_get_supported_cpuid(struct vm *vm)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = cpuid_alloc(n);
		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			return 0;
		}
		int e = errno;
		free(c);
		if (e != E2BIG) {
			log_error("KVM_GET_SUPPORTED_CPUID failed: %s", strerror(e));
			return -e;
		}
	}
	log_error("KVM_GET_SUPPORTED_CPUID: table larger than 4096 entries");
	return -E2BIG;
}

static int vm_set_memslot(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
			  uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		int e = errno;
		log_error("KVM_SET_USER_MEMORY_REGION (slot %u, %llu bytes at 0x%llx): %s", slot,
			  (unsigned long long)size, (unsigned long long)gpa, strerror(e));
		return -e;
	}
	return 0;
}

/* A restored guest keeps the CPUID it booted with. Every feature bit it saw
 * must be one wafer would give a guest on this host, or it would run into
 * #UD (or worse): cpuid_check_saved compares it with this host's supported
 * table with the template applied plus the bits wafer adds itself (the
 * hypervisor bit, which KVM never reports as supported). */
static int vm_use_saved_cpuid(struct vm *vm, const struct kvm_cpuid2 *saved)
{
	char err[512];
	int rc = cpuid_check_saved(saved, vm->cpuid, vm->ncpus, err, sizeof(err));

	if (rc == -ENOTSUP)
		log_error("saved CPU: %s: restore on a compatible host, or run the VM with a "
			  "stricter --cpu-template (e.g. baseline)", err);
	else if (rc)
		log_error("saved CPU: %s", err);
	if (rc)
		return rc;
	struct kvm_cpuid2 *c = cpuid_alloc(saved->nent);
	if (!c)
		return -ENOMEM;
	c->nent = saved->nent;
	memcpy(c->entries, saved->entries, saved->nent * sizeof(saved->entries[0]));
	free(vm->cpuid);
	vm->cpuid = c;
	return 0;
}

static int vm_set_memslots(struct vm *vm, uint32_t flags)
{
	int rc = vm_set_memslot(vm, 0, 0, vm->mem.low_size, vm->mem.host, flags);
	if (!rc && vm->mem.high_size)
		rc = vm_set_memslot(vm, 1, MEM_HIGH_START, vm->mem.high_size,
				    vm->mem.host + vm->mem.low_size, flags);
	return rc;
}

int vm_dirty_log_start(struct vm *vm)
{
	return vm_set_memslots(vm, KVM_MEM_LOG_DIRTY_PAGES);
}

void vm_dirty_log_stop(struct vm *vm)
{
	vm_set_memslots(vm, 0);
}

/* KVM's bitmap for one slot, OR'd in at page offset first_page. */
static int vm_dirty_log_slot(struct vm *vm, uint32_t slot, uint64_t pages, uint64_t first_page,
			     uint64_t *bitmap)
{
	size_t words = (size_t)((pages + 63) / 64);
	uint64_t *b = calloc(words ? words : 1, sizeof(uint64_t));
	struct kvm_dirty_log log = { .slot = slot };
	int rc = 0;

	if (!b)
		return -ENOMEM;
	log.dirty_bitmap = b;
	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
		rc = -errno;
		goto out;
	}
	for (size_t w = 0; w < words; w++) {
		for (uint64_t bits = b[w]; bits; bits &= bits - 1) {
			uint64_t pg = first_page + w * 64 + (uint64_t)__builtin_ctzll(bits);
			bitmap[pg / 64] |= 1ull << (pg % 64);
		}
	}
out:
	free(b);
	return rc;
}

int vm_dirty_log_harvest(struct vm *vm, uint64_t *bitmap)
{
	uint64_t low = vm->mem.low_size >> GMEM_PAGE_SHIFT;
	int rc = vm_dirty_log_slot(vm, 0, low, 0, bitmap);
	if (!rc && vm->mem.high_size)
		rc = vm_dirty_log_slot(vm, 1, vm->mem.high_size >> GMEM_PAGE_SHIFT, low, bitmap);
	return rc;
}

static int vm_create_kvm(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	const char *step;
	int rc;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		int e = errno;
		log_error("KVM_CREATE_VM failed: %s", strerror(e));
		return -e;
	}
	irq_router_init(&vm->irq, vm->vm_fd, NULL);
	step = "KVM_SET_TSS_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0)
		goto fail;
	step = "KVM_SET_IDENTITY_MAP_ADDR";
	uint64_t idmap = KVM_IDMAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		goto fail;
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	/* The PC's ISA/IOAPIC routes; KVM's default would put GSI 0 on pin 0
	 * instead of the pin 2 the MADT and MP table announce. */
	rc = irq_routing_commit(&vm->irq);
	if (rc) {
		log_error("KVM_SET_GSI_ROUTING failed: %s", strerror(-rc));
		return rc;
	}
	step = "KVM_CREATE_PIT2";
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		goto fail;
	return vm_set_memslots(vm, 0);
fail:
	rc = -errno;
	log_error("%s failed: %s", step, strerror(errno));
	return rc;
}

/* Open every virtio device's backend (disk files, taps) so bad paths, locked
 * disks and missing taps are reported before KVM or the guest is touched. */
static int vm_open_virtio(struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	unsigned nfuncs = cfg->ndisks + cfg->nnets + (cfg->rng ? 1 : 0);
	char err[256];
	struct virtio_dev *d;

	_Static_assert(VM_MAX_VIRTIO == PCI_MAX_SLOTS - 1, "one PCI slot per virtio device");
	if (cfg->ndisks > VM_MAX_DISKS || cfg->nnets > VM_MAX_NETS || nfuncs > VM_MAX_VIRTIO) {
		log_error("--disk/--net: %u disks, %u interfaces%s need %u PCI slots; the bus has %d "
			  "(at most %d disks, %d interfaces)", cfg->ndisks, cfg->nnets,
			  cfg->rng ? " and the rng" : "", nfuncs, VM_MAX_VIRTIO, VM_MAX_DISKS,
			  VM_MAX_NETS);
		return -ENOSPC;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		d = virtio_blk_create(&vm->mem, &vm->io, &cfg->disks[i], err, sizeof(err));
		if (!d) {
			log_error("--disk %s", err);
			return -EINVAL;
		}
		vm->virtio[vm->nvirtio++] = d;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		d = virtio_net_create(&vm->mem, &vm->io, &cfg->nets[i], err, sizeof(err));
		if (!d) {
			log_error("--net %s", err);
			return -EINVAL;
		}
		vm->virtio[vm->nvirtio++] = d;
	}
	if (cfg->rng) {
		d = virtio_rng_create(&vm->mem, err, sizeof(err));
		if (!d) {
			log_error("--rng: %s", err);
			return -EINVAL;
		}
		vm->virtio[vm->nvirtio++] = d;
	}
	return 0;
}

static int vm_attach_virtio(struct vm *vm)
{
	char err[256];

	for (; vm->nvirtio_attached < vm->nvirtio; vm->nvirtio_attached++) {
		struct virtio_dev *d = vm->virtio[vm->nvirtio_attached];
		int rc = virtio_pci_add(vm, d, err, sizeof(err));
		if (rc) {
			log_error("%s: cannot attach to PCI: %s", d->ops->name, err);
			return rc;
		}
	}
	return 0;
}

/* Install this thread's filter and count it in the gate; vCPUs then wait
 * for the main thread. A failure stops the VM (the thread still counts, so
 * vm_run never waits for it forever). */
static void vm_confine(struct vm *vm, enum seccomp_role role)
{
	char err[256];

	if (seccomp_install(role, err, sizeof(err))) {
		char detail[300];
		snprintf(detail, sizeof(detail), "%s thread: %s", seccomp_role_name(role), err);
		vm_request_stop(vm, VM_STOP_ERROR, 0, detail);
	}
	pthread_mutex_lock(&vm->pause_lock);
	if (vm->gated) {
		vm->confined++;
		pthread_cond_broadcast(&vm->pause_cond);
		while (role == SECCOMP_ROLE_VCPU && !vm->released &&
		       atomic_load(&vm->stop_reason) == VM_RUNNING)
			pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

static void vm_io_confine(void *arg)
{
	seccomp_name_thread(SECCOMP_ROLE_IO);
	vm_confine(arg, SECCOMP_ROLE_IO);
}

void vm_vcpu_confine(struct vm *vm)
{
	vm_confine(vm, SECCOMP_ROLE_VCPU);
}

static uint64_t vm_host_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : UINT64_MAX;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	char err[512], a[32], b[32];
	struct boot_request req;
	int rc;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->stop_eventfd = vm->console_wake_fd = -1;
	vm->ncpus = cfg->ncpus;
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	atomic_store(&vm->stop_reason, VM_RUNNING);

	if (cfg->mem_size < ((uint64_t)VM_MIN_MEM_MIB << 20)) {
		log_error("--memory %s: too small (minimum %s)", format_size(cfg->mem_size, a, sizeof(a)),
			  format_size(((uint64_t)VM_MIN_MEM_MIB << 20), b, sizeof(b)));
		rc = -EINVAL;
		goto out;
	}
	if (cfg->mem_size > vm_host_ram()) {
		log_error("--memory %s: larger than this host's RAM (%s)",
			  format_size(cfg->mem_size, a, sizeof(a)), format_size(vm_host_ram(), b, sizeof(b)));
		rc = -EINVAL;
		goto out;
	}
	if (cfg->mem_size & 0xfff) {
		log_error("--memory %llu: not a multiple of 4 KiB", (unsigned long long)cfg->mem_size);
		rc = -EINVAL;
		goto out;
	}
	rc = cpuid_template_load(cfg->cpu_template, &vm->tmpl, err, sizeof(err));
	if (rc) {
		log_error("--cpu-template %s", err);
		goto out;
	}
	if (cfg->restore && cfg->restore_mem_fd >= 0) {
		rc = gmem_map_file(&vm->mem, cfg->restore_mem_fd, cfg->mem_size);
		if (rc) {
			log_error("snapshot memory: cannot map %s: %s",
				  format_size(cfg->mem_size, a, sizeof(a)), strerror(-rc));
			goto out;
		}
	} else {
		rc = gmem_alloc(&vm->mem, cfg->mem_size);
		if (rc) {
			log_error("--memory %s: cannot allocate guest RAM: %s",
				  format_size(cfg->mem_size, a, sizeof(a)), strerror(-rc));
			goto out;
		}
	}
	if (cfg->restore)
		goto boot_done;   /* RAM holds the running guest, not a boot image */
	req = (struct boot_request){
		.kernel_path = cfg->kernel,
		.initrd_path = cfg->initrd,
		.cmdline = cfg->cmdline,
		.ncpus = cfg->ncpus,
		.prefer_pvh = cfg->prefer_pvh,
	};
	rc = boot_setup(&vm->mem, &req, &vm->plan, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		goto out;
	}
	if (vm->plan.fallback_reason)
		log_info("%s: %s; the guest decompresses itself", cfg->kernel, vm->plan.fallback_reason);
boot_done:
	rc = eventloop_init(&vm->io);
	if (rc) {
		log_error("I/O event loop: %s", strerror(-rc));
		goto out;
	}
	vm->io_ready = 1;
	vm->io.thread_init = vm_io_confine;
	vm->io.thread_init_arg = vm;
	rc = vm_open_virtio(vm);
	if (rc)
		goto out;

	/* Everything the user gave us is valid; now KVM. */
	rc = vm_open_kvm(vm);
	if (rc)
		goto out;
	rc = vm_get_supported_cpuid(vm);
	if (rc)
		goto out;
	cpuid_template_apply(&vm->tmpl, vm->cpuid);
	if (cfg->restore && cfg->restore_cpuid) {
		rc = vm_use_saved_cpuid(vm, cfg->restore_cpuid);
		if (rc)
			goto out;
	}
	rc = vm_create_kvm(vm);
	if (rc)
		goto out;
	vm->stop_eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->console_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_eventfd < 0 || vm->console_wake_fd < 0) {
		rc = -errno;
		log_error("eventfd: %s", strerror(errno));
		goto out;
	}
	for (const struct device_desc *const *d = __start_wafer_devices; d < __stop_wafer_devices; d++) {
		rc = (*d)->create(vm);
		if (rc) {
			log_error("device %s: %s", (*d)->name, strerror(-rc));
			goto out;
		}
	}
	rc = vm_attach_virtio(vm);
	if (rc)
		goto out;
	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		rc = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].fd = -1;
	vcpu_signals_init();
	for (unsigned i = 0; i < vm->ncpus; i++) {
		rc = vcpu_create(vm, &vm->vcpus[i], i);
		if (rc)
			goto out;
	}
	rc = 0;
out:
	return rc;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason why, int status, const char *detail)
{
	pthread_mutex_lock(&vm->stop_lock);
	int expected = VM_RUNNING;
	if (atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)why)) {
		vm->exit_status = status;
		snprintf(vm->stop_detail, sizeof(vm->stop_detail), "%s", detail ? detail : "");
		if (vm->stop_eventfd >= 0) {
			uint64_t one = 1;
			ssize_t r = write(vm->stop_eventfd, &one, sizeof(one));
			(void)r;
		}
		for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		/* Parked vCPUs and waiting pausers must see the stop. */
		pthread_mutex_lock(&vm->pause_lock);
		pthread_cond_broadcast(&vm->pause_cond);
		pthread_mutex_unlock(&vm->pause_lock);
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

static unsigned vm_started_vcpus(struct vm *vm)
{
	unsigned n = 0;
	for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
		n += vm->vcpus[i].started != 0;
	return n;
}

int vm_pause(struct vm *vm)
{
	int rc = 0;

	pthread_mutex_lock(&vm->pause_lock);
	if (atomic_load(&vm->stop_reason) != VM_RUNNING) {
		rc = -ESRCH;
	} else if (vm->pause_requested) {
		rc = -EALREADY;
	} else {
		vm->pause_requested = 1;
		for (unsigned i = 0; vm->vcpus && i < vm->ncpus; i++)
			vcpu_kick(&vm->vcpus[i]);
		while (vm->paused_vcpus < vm_started_vcpus(vm) &&
		       atomic_load(&vm->stop_reason) == VM_RUNNING)
			pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
		if (atomic_load(&vm->stop_reason) != VM_RUNNING)
			rc = -ESRCH;
	}
	pthread_mutex_unlock(&vm->pause_lock);
	return rc;
}

int vm_resume(struct vm *vm)
{
	int rc = 0;

	pthread_mutex_lock(&vm->pause_lock);
	if (!vm->pause_requested) {
		rc = -EALREADY;
	} else {
		vm->pause_requested = 0;
		pthread_cond_broadcast(&vm->pause_cond);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	return rc;
}

bool vm_is_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	bool p = vm->pause_requested != 0;
	pthread_mutex_unlock(&vm->pause_lock);
	return p;
}

void vm_vcpu_maybe_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	if (vm->pause_requested && atomic_load(&vm->stop_reason) == VM_RUNNING) {
		vm->paused_vcpus++;
		pthread_cond_broadcast(&vm->pause_cond);
		while (vm->pause_requested && atomic_load(&vm->stop_reason) == VM_RUNNING)
			pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
		vm->paused_vcpus--;
	}
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_set_irq(struct vm *vm, unsigned gsi, int level)
{
	return irq_line(&vm->irq, gsi, level);
}

int vm_run(struct vm *vm)
{
	unsigned threads = 0;
	char err[256];
	int rc;

	pthread_mutex_lock(&vm->pause_lock);
	vm->gated = true;
	vm->confined = 0;
	vm->released = false;
	pthread_mutex_unlock(&vm->pause_lock);
	rc = eventloop_start(&vm->io, "wafer-io");
	if (rc) {
		log_error("cannot start the I/O thread: %s", strerror(-rc));
		return WAFER_EXIT_ERROR;
	}
	threads++;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		rc = vcpu_start(&vm->vcpus[i]);
		if (rc) {
			char detail[96];
			snprintf(detail, sizeof(detail), "cannot start vcpu %u thread: %s", i, strerror(-rc));
			vm_request_stop(vm, VM_STOP_ERROR, 0, detail);
			break;
		}
		threads++;
	}
	/* The other threads confine themselves; the main thread goes last
	 * (threads it created before its filter do not inherit it), then
	 * lets the vCPUs into KVM_RUN. */
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->confined < threads && atomic_load(&vm->stop_reason) == VM_RUNNING)
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
	if (seccomp_install(vm->cfg.rebuilds ? SECCOMP_ROLE_MAIN_REBUILD : SECCOMP_ROLE_MAIN,
			    err, sizeof(err))) {
		char detail[300];
		snprintf(detail, sizeof(detail), "main thread: %s", err);
		vm_request_stop(vm, VM_STOP_ERROR, 0, detail);
	}
	pthread_mutex_lock(&vm->pause_lock);
	vm->released = true;
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	console_run(vm);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	eventloop_stop(&vm->io);

	switch (atomic_load(&vm->stop_reason)) {
	case VM_STOP_POWEROFF:
		log_info("%s", vm->stop_detail);
		return WAFER_EXIT_OK;
	case VM_STOP_EXIT_PORT:
		log_info("%s", vm->stop_detail);
		return vm->exit_status;
	case VM_STOP_RESET:
		log_info("%s", vm->stop_detail);
		return WAFER_EXIT_REBOOT;
	case VM_STOP_CRASH:
		log_error("guest crashed: %s", vm->stop_detail);
		return WAFER_EXIT_CRASH;
	case VM_STOP_USER:
		log_info("%s", vm->stop_detail);
		return WAFER_EXIT_USER;
	case VM_STOP_MIGRATED:
		log_info("%s", vm->stop_detail);
		return WAFER_EXIT_OK;
	default:
		log_error("%s", vm->stop_detail);
		return WAFER_EXIT_ERROR;
	}
}

void vm_destroy(struct vm *vm)
{
	if (vm->vcpus) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_destroy(&vm->vcpus[i]);
		free(vm->vcpus);
		vm->vcpus = NULL;
	}
	/* No handler may run while devices go away. */
	if (vm->io_ready)
		eventloop_stop(&vm->io);
	/* Devices the transport never adopted are still ours. */
	for (unsigned i = vm->nvirtio_attached; i < vm->nvirtio; i++)
		if (vm->virtio[i]->ops->destroy)
			vm->virtio[i]->ops->destroy(vm->virtio[i]);
	vm->nvirtio = vm->nvirtio_attached = 0;
	size_t ndev = (size_t)(__stop_wafer_devices - __start_wafer_devices);
	for (size_t i = ndev; i-- > 0;)
		if (__start_wafer_devices[i]->destroy)
			__start_wafer_devices[i]->destroy(vm);
	if (vm->io_ready) {
		eventloop_destroy(&vm->io);
		vm->io_ready = 0;
	}
	free(vm->cpuid);
	vm->cpuid = NULL;
	if (vm->stop_eventfd >= 0)
		close(vm->stop_eventfd);
	if (vm->console_wake_fd >= 0)
		close(vm->console_wake_fd);
	if (vm->vm_fd >= 0) {
		irq_router_destroy(&vm->irq);
		close(vm->vm_fd);
	}
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->stop_eventfd = vm->console_wake_fd = vm->vm_fd = vm->kvm_fd = -1;
	gmem_free(&vm->mem);
	pthread_mutex_destroy(&vm->stop_lock);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
}
