/* Benchmark: the physical limit for a PIO exit. The smallest VMM that can boot
 * a PVH test guest (Xen PVH ABI: 32-bit protected mode, EBX = hvm_start_info):
 * 2 MiB of RAM, no irqchip, no devices; KVM_RUN in a loop that prints COM1
 * bytes, counts writes to the benchmark port and stops at the exit port.
 *
 * usage: bare_kvm [-p PORT] GUEST.elf [CMDLINE]
 * Exits with the guest's exit-port value & 0xff (2 on a guest crash, 1 on a
 * host error, 77 when /dev/kvm is unusable). After the guest exits, prints
 * "bare_pio_exit_ns V": time from the first benchmark-port exit to the first
 * other exit after the run of them, divided by their number. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE        (2ull << 20)
#define START_INFO_GPA  0x6000ull
#define MEMMAP_GPA      0x6100ull
#define CMDLINE_GPA     0x20000ull
#define CMDLINE_MAX     4096ull
#define TSS_GPA         0xfffbd000ull
#define IMAGE_MAX       (64ull << 20)

#define PORT_COM1       0x3f8
#define PORT_COM1_LSR   (PORT_COM1 + 5)
#define PORT_EXIT       0xf4
#define DEFAULT_PORT    0x3000

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578u

#define EXIT_NO_KVM     77
#define EXIT_CRASH      2

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* [off, off + len) inside [0, size)? Overflow-safe. */
static int range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int pvh_find_entry(const uint8_t *img, size_t len, const Elf64_Phdr *ph, uint32_t *entry)
{
	uint64_t off = ph->p_offset, end;

	if (!range_ok(ph->p_offset, ph->p_filesz, len))
		return -EINVAL;
	end = ph->p_offset + ph->p_filesz;
	while (end - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr n;
		uint64_t name_len, desc_len;

		memcpy(&n, img + off, sizeof(n));
		off += sizeof(n);
		name_len = ((uint64_t)n.n_namesz + 3) & ~3ull;
		desc_len = ((uint64_t)n.n_descsz + 3) & ~3ull;
		if (!range_ok(off, name_len, end) || !range_ok(off + name_len, desc_len, end))
			return -EINVAL;
		if (n.n_type == XEN_ELFNOTE_PHYS32_ENTRY && n.n_namesz == 4 &&
		    !memcmp(img + off, "Xen", 4) && (n.n_descsz == 4 || n.n_descsz == 8)) {
			memcpy(entry, img + off + name_len, 4); /* low half of an 8-byte one */
			return 0;
		}
		off += name_len + desc_len;
	}
	return -ENOENT;
}

static int load_pvh(uint8_t *ram, const uint8_t *img, size_t len, uint32_t *entry,
		    const char **why)
{
	Elf64_Ehdr eh;
	int have_entry = 0;

	*why = "not an x86-64 ELF";
	if (len < sizeof(eh))
		return -EINVAL;
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_machine != EM_X86_64)
		return -EINVAL;
	*why = "program headers out of the file";
	if (eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    !range_ok(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len))
		return -EINVAL;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD) {
			*why = "PT_LOAD segment outside the file or the 2 MiB of RAM";
			if (!range_ok(ph.p_offset, ph.p_filesz, len) || ph.p_filesz > ph.p_memsz ||
			    !range_ok(ph.p_paddr, ph.p_memsz, RAM_SIZE))
				return -EINVAL;
			memcpy(ram + ph.p_paddr, img + ph.p_offset, ph.p_filesz);
			memset(ram + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		} else if (ph.p_type == PT_NOTE && !have_entry) {
			int rc = pvh_find_entry(img, len, &ph, entry);

			*why = "malformed PT_NOTE";
			if (rc == -EINVAL)
				return rc;
			have_entry = rc == 0;
		}
	}
	*why = "no XEN_ELFNOTE_PHYS32_ENTRY note inside RAM";
	if (!have_entry || *entry >= RAM_SIZE)
		return -ENOENT;
	return 0;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd, rc = 0;
	size_t got = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > IMAGE_MAX) {
		rc = -EINVAL;
		goto out;
	}
	*buf = malloc((size_t)st.st_size);
	if (!*buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			free(*buf);
			*buf = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	return rc;
}

static int vcpu_set_cpuid(int kvm, int vcpu)
{
	struct kvm_cpuid2 *c = NULL;
	int nent = 64, rc;

	/* The guest enables long mode, which KVM refuses unless CPUID says LM. */
	for (;;) {
		c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = (uint32_t)nent;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		rc = -errno;
		free(c);
		if (rc != -E2BIG || nent >= 4096)
			return rc;
		nent *= 2;
	}
	rc = ioctl(vcpu, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return rc;
}

static void seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

static int vcpu_setup(int vcpu, uint32_t entry)
{
	struct kvm_sregs sr;
	struct kvm_regs r;

	if (ioctl(vcpu, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	seg_flat(&sr.cs, 0x08, 0xb);            /* execute/read, accessed */
	seg_flat(&sr.ds, 0x10, 0x3);            /* read/write, accessed */
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.cr0 = 0x11;                          /* PE | ET, paging off */
	sr.cr4 = 0;
	sr.efer = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rbx = START_INFO_GPA;
	r.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_REGS, &r) < 0)
		return -errno;
	return 0;
}

static void write_start_info(uint8_t *ram, const char *cmdline)
{
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = CMDLINE_GPA,
		.memmap_paddr = MEMMAP_GPA,
		.memmap_entries = 1,
	};
	struct hvm_memmap_entry mm = { .addr = 0, .size = RAM_SIZE, .type = 1 };
	size_t n = strnlen(cmdline, CMDLINE_MAX - 1);

	memcpy(ram + START_INFO_GPA, &si, sizeof(si));
	memcpy(ram + MEMMAP_GPA, &mm, sizeof(mm));
	memcpy(ram + CMDLINE_GPA, cmdline, n);
	ram[CMDLINE_GPA + n] = 0;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bare_kvm: %s: %s\n", what, strerror(err));
	exit(1);
}

int main(int argc, char **argv)
{
	unsigned long bench_port = DEFAULT_PORT;
	const char *path, *cmdline = "", *why = "";
	uint8_t *img = NULL, *ram;
	size_t img_len = 0;
	uint32_t entry = 0;
	int kvm, vm, vcpu, mmap_size, opt, status = -1, rc;
	struct kvm_run *run;
	uint64_t pio_count = 0;
	int64_t pio_first = 0, pio_end = 0;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		char *end;

		if (opt != 'p') {
			fprintf(stderr, "usage: bare_kvm [-p PORT] GUEST.elf [CMDLINE]\n");
			return 1;
		}
		errno = 0;
		bench_port = strtoul(optarg, &end, 0);
		if (errno || end == optarg || *end || bench_port > 0xffff) {
			fprintf(stderr, "bare_kvm: -p %s: not a port number\n", optarg);
			return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: bare_kvm [-p PORT] GUEST.elf [CMDLINE]\n");
		return 1;
	}
	path = argv[optind];
	if (optind + 1 < argc)
		cmdline = argv[optind + 1];

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		printf("bench: /dev/kvm not available: %s\n", strerror(errno));
		return EXIT_NO_KVM;
	}
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "bare_kvm: unexpected KVM API version\n");
		return 1;
	}
	rc = read_file(path, &img, &img_len);
	if (rc) {
		fprintf(stderr, "bare_kvm: %s: %s\n", path,
			rc == -EINVAL ? "not a regular, non-empty file under 64 MiB" : strerror(-rc));
		return 1;
	}

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM", errno);
	/* Intel needs a TSS region for real-mode emulation; harmless elsewhere. */
	if (ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)TSS_GPA) < 0)
		die("KVM_SET_TSS_ADDR", errno);
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap guest RAM", errno);
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = RAM_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)ram,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION", errno);
	if (load_pvh(ram, img, img_len, &entry, &why)) {
		fprintf(stderr, "bare_kvm: %s: %s\n", path, why);
		return 1;
	}
	free(img);
	write_start_info(ram, cmdline);

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU", errno);
	mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(*run))
		die("KVM_GET_VCPU_MMAP_SIZE", mmap_size < 0 ? errno : EINVAL);
	run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run", errno);
	rc = vcpu_set_cpuid(kvm, vcpu);
	if (rc)
		die("KVM_SET_CPUID2", -rc);
	rc = vcpu_setup(vcpu, entry);
	if (rc)
		die("vCPU register setup", -rc);

	while (status < 0) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN", errno);
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;
			uint32_t bytes = (uint32_t)run->io.size * run->io.count;

			if ((uint64_t)run->io.data_offset + bytes > (uint64_t)mmap_size)
				die("KVM_EXIT_IO data", EINVAL);
			if (run->io.port == bench_port) {
				if (!pio_count++)
					pio_first = now_ns();
				break;
			}
			if (pio_count && !pio_end)
				pio_end = now_ns();
			if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PORT_COM1) {
				for (uint32_t i = 0; i < bytes; i += run->io.size)
					if (write(STDOUT_FILENO, data + i, 1) < 0)
						break;
			} else if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PORT_EXIT) {
				uint32_t v = 0;

				memcpy(&v, data, run->io.size < 4 ? run->io.size : 4);
				status = (int)(v & 0xff);
			} else if (run->io.direction == KVM_EXIT_IO_IN) {
				/* LSR: transmitter empty, so the guest never waits. */
				memset(data, run->io.port == PORT_COM1_LSR ? 0x60 : 0xff, bytes);
			}
			break;
		}
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_HLT:
			fprintf(stderr, "bare_kvm: guest halted without using the exit port\n");
			status = EXIT_CRASH;
			break;
		case KVM_EXIT_SHUTDOWN:
			fprintf(stderr, "bare_kvm: guest triple-faulted\n");
			status = EXIT_CRASH;
			break;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "bare_kvm: VM entry failed, reason 0x%llx\n",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			status = EXIT_CRASH;
			break;
		default:
			fprintf(stderr, "bare_kvm: unexpected exit reason %u\n", run->exit_reason);
			status = EXIT_CRASH;
			break;
		}
	}
	if (pio_count > 0 && pio_end > pio_first)
		printf("bare_pio_exit_ns %.1f\n", (double)(pio_end - pio_first) / (double)pio_count);
	return status;
}
