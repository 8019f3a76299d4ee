/* Snapshots: a paused VM written to a state file (machine config, CPUID,
 * disk identities, KVM and device state, in checksummed sections) and a
 * memory file (guest RAM, sparse); restore maps the memory file copy-on-write
 * and loads the state into a freshly built VM. The machine-config part is
 * also the first thing a live migration sends. */
#ifndef WAFER_STATE_SNAPSHOT_H
#define WAFER_STATE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/format.h"
#include "vmm/vm.h"

#define SNAP_STATE_MAX (256u << 20)   /* a state file larger than this is refused */

/* Which file a disk was and what it held when the state was saved (the
 * VM paused, its disk requests completed). Not the modification time: wafer
 * changes that itself without changing a byte (its discard probe at open
 * punches a hole past the end, which tmpfs and ext4 count as a change). */
struct snap_disk_identity {
	uint64_t size;
	uint64_t dev, ino;     /* st_dev and st_ino (block devices: st_rdev, 0) */
	uint32_t head_crc;     /* CRC-32 of the first 64 KiB */
	uint32_t tail_crc;     /* of the last 64 KiB */
	uint32_t sample_crc;   /* of SNAP_DISK_SAMPLES blocks of 4 KiB spread evenly */
};

#define SNAP_DISK_SAMPLES 64

/* A saved machine config, with the strings it points to. */
struct snap_vmconfig {
	struct vm_config cfg;         /* restore = true, strings point below */
	char name[128];               /* the saved VM's name (generated MACs) */
	char cpu_template[256];       /* as given when the VM was built */
	char disk_path[VM_MAX_DISKS][4096], disk_id[VM_MAX_DISKS][128], disk_serial[VM_MAX_DISKS][32];
	struct snap_disk_identity disk_ident[VM_MAX_DISKS];
	char net_id[VM_MAX_NETS][128], net_ifname[VM_MAX_NETS][32];
	struct kvm_cpuid2 *cpuid;     /* the table the guest runs with */
	uint64_t mem_crc;             /* CRC-32 of RAM (snapshots), 0: not recorded */
};

/* The config sections ("machine", "cpuid", "disk"/i, "net"/i) of a built VM. */
int snapshot_save_config(struct vm *vm, struct snap_buf *b);
/* Parse them back into *out (zeroed first; free with snapshot_config_free).
 * 0 or -errno with err. */
int snapshot_parse_config(const struct snap_reader *r, struct snap_vmconfig *out,
			  char *err, size_t errlen);
void snapshot_config_free(struct snap_vmconfig *c);
/* Each disk's current identity against the saved one: 0, or -ESTALE with
 * err naming the disk and what changed (another file on the same
 * filesystem, its size, or the bytes read). */
int snapshot_check_disks(const struct snap_vmconfig *c, char *err, size_t errlen);
/* Fill id from the file at path: about 384 KiB read, whatever its size. */
int snapshot_disk_identity(const char *path, struct snap_disk_identity *id);

/* Everything but RAM after the config: KVM VM state, each vCPU, devices. */
int snapshot_save_machine_state(struct vm *vm, struct snap_buf *b);
/* Load it into a VM built from the saved config with cfg.restore set,
 * before any vCPU runs. */
int snapshot_load_machine_state(struct vm *vm, const struct snap_reader *r, char *err,
				size_t errlen);

/* The "memory" section: RAM size, its CRC-32 and the memory file's name. */
void snapshot_save_memory_section(struct snap_buf *b, uint64_t size, uint32_t crc,
				  const char *mem_name);

/* Write a paused VM to state_path and mem_path (each atomically: a crash
 * leaves the old file or the complete new one). 0 or -errno with err;
 * -EBUSY when the VM is not paused. */
int snapshot_create(struct vm *vm, const char *state_path, const char *mem_path,
		    char *err, size_t errlen);

/* An opened snapshot, validated and ready to build a VM from. */
struct snapshot {
	uint8_t *data;                /* the state file */
	size_t len;
	struct snap_reader r;
	struct snap_vmconfig vc;      /* vc.cfg.restore_mem_fd: the memory file */
};

/* Read and check state_path (container, versions, every section's CRC, the
 * config) and open mem_path (its size must be the saved RAM size; verify --
 * the default at the CLI and the API -- also its CRC, which reads the data
 * it holds). Disks are checked unless force.
 * 0 or -errno with err naming the file at fault. Nothing is loaded yet. */
int snapshot_open(struct snapshot *s, const char *state_path, const char *mem_path,
		  bool force, bool verify, char *err, size_t errlen);
void snapshot_close(struct snapshot *s);

#endif
