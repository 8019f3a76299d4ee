/* A virtual machine: the KVM VM fd, guest RAM, buses, in-kernel irqchip and
 * PIT, the platform devices and the vCPUs. One VM per wafer process. */
#ifndef WAFER_VMM_VM_H
#define WAFER_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/x86/boot.h"
#include "arch/x86/cpuid.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "vmm/bus.h"
#include "vmm/eventloop.h"
#include "vmm/irq.h"
#include "vmm/memory.h"

struct vcpu;
struct serial;
struct pci_bus;
struct snap_buf;
struct snap_reader;

/* Why the VM stopped; decides wafer's exit status (see README "Exit status"). */
enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,   /* ACPI S5 / guest shutdown: exit 0 */
	VM_STOP_EXIT_PORT,  /* test guest wrote PORT_EXIT: exit with its value */
	VM_STOP_RESET,      /* guest reboot (i8042, triple fault is a crash): exit 3 */
	VM_STOP_CRASH,      /* triple fault, KVM internal error: exit 2 */
	VM_STOP_USER,       /* console escape or signal: exit 4 */
	VM_STOP_ERROR,      /* host-side failure while running: exit 1 */
	VM_STOP_MIGRATED,   /* handed over to a migration destination: exit 0 */
};

#define WAFER_EXIT_OK      0
#define WAFER_EXIT_ERROR   1
#define WAFER_EXIT_CRASH   2
#define WAFER_EXIT_REBOOT  3
#define WAFER_EXIT_USER    4

/* The one set of device limits: the API, the CLI, the snapshot loader and
 * the controller all check these. Every virtio device is one function on
 * PCI bus 0, whose 32 slots less the host bridge's leave 31 (devices/pci.h
 * PCI_MAX_SLOTS): each kind may fill 16, but disks + interfaces + the rng
 * together must fit VM_MAX_VIRTIO (vm_create refuses more). */
#define VM_MAX_DISKS  16
#define VM_MAX_NETS   16
#define VM_MAX_VIRTIO 31
/* wafer's caps on the guest's size (vm_create also asks KVM for its vCPU
 * limit). MiB << 20 stays in range up to VM_MAX_MEM_MIB (16 TiB). */
#define VM_MAX_VCPUS   1024
#define VM_MIN_MEM_MIB 16
#define VM_MAX_MEM_MIB (1ull << 24)
/* Resource controls (jail/cgroups.c applies them): CPU weight on Xen
 * credit2's scale, CPU cap in percent of one CPU, memory limit of the VM
 * process. */
#define VM_CPU_WEIGHT_MAX    65535
#define VM_CPU_CAP_MAX       (100 * 4096)
#define VM_MEM_LIMIT_MIN_MIB 16

struct vm_config {
	const char *name;          /* VM name (logs, generated MACs) */
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	const char *cpu_template;  /* name or JSON path */
	const char *kvm_path;      /* /dev/kvm unless WAFER_KVM_DEVICE is set (tests) */
	unsigned ncpus;
	uint64_t mem_size;
	int prefer_pvh;
	struct blk_config disks[VM_MAX_DISKS];
	unsigned ndisks;
	struct net_config nets[VM_MAX_NETS];
	unsigned nnets;
	int rng;                   /* virtio-rng (default on) */
	/* --cpu-affinity: vCPU i runs on host CPU affinity[i % naffinity] */
	unsigned affinity[256];
	unsigned naffinity;
	/* Restore (snapshot or incoming migration): no boot image is loaded; RAM
	 * is restore_mem_fd mapped copy-on-write (-1: fresh zeroed RAM that a
	 * migration fills), the vCPUs get restore_cpuid (the source's table,
	 * checked against this host) and start paused at their reset state until
	 * the caller loads the saved state (state/snapshot.h). */
	bool restore;
	int restore_mem_fd;
	const struct kvm_cpuid2 *restore_cpuid;
	/* A restart policy: the main thread builds the VM again, so its
	 * seccomp filter is SECCOMP_ROLE_MAIN_REBUILD instead of MAIN. */
	bool rebuilds;
};

struct vm {
	struct vm_config cfg;
	int kvm_fd, vm_fd;
	int run_mmap_size;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct boot_plan plan;
	struct cpuid_template tmpl;
	struct kvm_cpuid2 *cpuid;       /* supported CPUID with the template applied */
	unsigned ncpus;
	struct vcpu *vcpus;
	struct serial *console;         /* COM1 */
	struct irq_router irq;          /* GSI routes, irqfds, ioeventfds */
	struct pci_bus *pci;            /* bus 0, created by devices/pci.c */
	struct eventloop io;            /* I/O thread: ioeventfds, backends */
	int io_ready;                   /* io initialised */
	/* virtio devices: opened (backends checked) before KVM, attached to
	 * PCI once the VM exists; owned by the transport from then on. */
	struct virtio_dev *virtio[VM_MAX_VIRTIO];
	unsigned nvirtio, nvirtio_attached;

	/* Pause: vCPUs park at a safe point (outside KVM_RUN, all exits
	 * completed) until resumed or stopped. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	int pause_requested;
	unsigned paused_vcpus;
	/* Seccomp gate (vm_run, under pause_lock): the I/O and vCPU threads
	 * install their filters, then vCPUs wait until the main thread has
	 * its own, so no guest code runs next to an unconfined thread. */
	bool gated;
	unsigned confined;
	bool released;

	pthread_mutex_t stop_lock;
	_Atomic int stop_reason;        /* enum vm_stop_reason */
	int exit_status;                /* for VM_STOP_EXIT_PORT */
	char stop_detail[256];          /* one-line diagnosis for crashes */
	int stop_eventfd;               /* readable once the VM stopped */
	/* Written when a client attaches to the console (API thread), so
	 * console_run, already blocked in poll, polls the client too. Made
	 * here, with the VM: console_run runs under the main filter, which
	 * has no eventfd2, and a descriptor made after it started polling
	 * would never be polled. */
	int console_wake_fd;
};

/* Platform devices register themselves with DEVICE_REGISTER; vm_create calls
 * every create hook in link order after the irqchip exists. */
struct device_desc {
	const char *name;
	int (*create)(struct vm *vm);
	void (*destroy)(struct vm *vm);  /* optional; called in reverse order */
	/* Optional, for snapshots (state/devices.c): append the device's
	 * section(s); read them back into a freshly created device, driving
	 * its interrupt line as saved. 0 or -errno (load: err says why). */
	int (*save)(struct vm *vm, struct snap_buf *b);
	int (*load)(struct vm *vm, const struct snap_reader *r, char *err, size_t errlen);
};
#define DEVICE_REGISTER(desc)                                                   \
	static const struct device_desc *const __device_ptr_##desc              \
		__attribute__((used, section("wafer_devices"))) = &desc

/* Validate config, allocate RAM, load the boot image, open KVM, build the VM
 * and its vCPUs. Prints one line naming the fault and returns -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
/* Start vCPU threads, run until the VM stops; returns wafer's exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Any thread: stop the VM (first reason wins) and kick every vCPU out of KVM_RUN. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason why, int status, const char *detail);
/* Park every vCPU outside KVM_RUN and return once all are parked (or the VM
 * stopped); resume lets them go on exactly where they were. 0, -EALREADY
 * (already paused / not paused) or -ESRCH (VM not running). */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* Called by a vCPU thread when KVM_RUN was interrupted: parks if a pause is
 * pending. */
void vm_vcpu_maybe_park(struct vm *vm);
/* Called first on a vCPU thread: install its seccomp filter and, under
 * vm_run, wait until every thread is confined. A failure stops the VM. */
void vm_vcpu_confine(struct vm *vm);

/* The serial console (cli/console.c): run on the main thread until the VM
 * stops; attach an API console client (GET /console) to COM1. */
int console_run(struct vm *vm);
int console_attach(struct vm *vm, int fd, void (*done)(void *), void *arg);
bool console_attached(void);

/* KVM dirty-page logging on the RAM memslots (migration). harvest ORs the
 * pages the vCPUs wrote since the last call into bitmap (bit = 4 KiB page of
 * the guest_mem host mapping, low RAM first) and clears KVM's log. 0/-errno. */
int vm_dirty_log_start(struct vm *vm);
void vm_dirty_log_stop(struct vm *vm);
int vm_dirty_log_harvest(struct vm *vm, uint64_t *bitmap);

/* Assert/deassert an ISA/GSI interrupt line on the in-kernel irqchip. */
int vm_set_irq(struct vm *vm, unsigned gsi, int level);

#endif
