/* `wafer run`: parse flags into a vm_config (once, here), build the VM, run it
 * until it stops, and turn the stop reason into the exit status. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/control.h"
#include "jail/cgroups.h"
#include "jail/namespaces.h"
#include "jail/seccomp.h"
#include "vmm/log.h"
#include "vmm/parse.h"
#include "vmm/vm.h"

/* Sanitizer runtimes make system calls of their own (LeakSanitizer clones
 * and ptraces at exit), so their builds filter only when asked to. */
#if defined(__SANITIZE_ADDRESS__)
#define RUN_SECCOMP_DEFAULT SECCOMP_OFF
#else
#define RUN_SECCOMP_DEFAULT SECCOMP_ON
#endif

static const char run_usage[] =
"Usage: wafer run --kernel PATH [options]\n"
"       wafer run --restore DIR [options]\n"
"       wafer run --incoming URL [options]\n"
"\n"
"Boot an x86-64 guest on KVM. The guest's serial console (COM1) is this\n"
"terminal; Ctrl-A x quits, Ctrl-A h lists the console keys.\n"
"\n"
"Options:\n"
"  --kernel PATH         guest kernel: bzImage, vmlinux ELF or PVH ELF (required)\n"
"  --initrd PATH         initial ramdisk, loaded per the boot protocol's limits\n"
"  --cmdline STRING      kernel command line (default: \"console=ttyS0\")\n"
"  --cpus N              number of vCPUs, 1..KVM's limit (default: 1)\n"
"  --memory SIZE         guest RAM, e.g. 512M, 2G (default: 512M; minimum 16M)\n"
"  --cpu-template T      CPUID template: host, baseline, or a JSON file\n"
"                        (default: host; see docs/cpu-templates.md)\n"
"  --pvh                 enter an ELF kernel with both a PVH note and a 64-bit\n"
"                        entry through PVH (default: Linux 64-bit boot protocol)\n"
"  --disk PATH[,ro][,id=NAME][,serial=S][,bw=SIZE][,iops=N]\n"
"                        virtio-blk disk backed by a raw file or block device\n"
"                        (repeatable, up to 16; locked while wafer runs);\n"
"                        bw= bytes/s, iops= requests/s (token buckets, also\n"
"                        bw-burst=SIZE, iops-burst=N: one-time extra)\n"
"  --net tap=IFNAME[,mac=MAC][,id=NAME][,bw=SIZE][,pps=N]\n"
"                        virtio-net on a host tap (repeatable, up to 16; disks,\n"
"                        interfaces and the rng share 31 PCI slots); without\n"
"                        mac= the MAC is derived from --name and the id;\n"
"                        bw= bytes/s and pps= frames/s each way (rx-bw=, tx-bw=,\n"
"                        rx-pps=, tx-pps= for one direction)\n"
"  --rng, --no-rng       virtio-rng fed from getrandom() (default: on)\n"
"  --name NAME           VM name (default: wafer-PID)\n"
"\n"
"Snapshots (see wafer snapshot --help):\n"
"  --restore DIR         continue the VM saved in DIR (DIR/state, DIR/memory)\n"
"                        instead of booting: its machine config, CPUID, disks\n"
"                        and taps come from the snapshot; RAM is DIR/memory\n"
"                        mapped copy-on-write (the file is never written)\n"
"  --paused              with --restore: stay paused until resumed (wafer\n"
"                        resume NAME, PATCH /vm)\n"
"  --restore-force       load although a disk changed since the snapshot\n"
"  --restore-no-verify   skip the check of DIR/memory's CRC-32, which by default\n"
"                        reads the data the file holds (0.2-0.3 s per GiB of\n"
"                        non-zero guest RAM) and refuses a corrupt file\n"
"  --restore-verify      accepted for old scripts; the check is the default\n"
"\n"
"Live migration (see wafer migrate --help):\n"
"  --incoming URL        receive a VM from `wafer migrate` at URL (tcp:HOST:PORT,\n"
"                        tcp::PORT for any address, or unix:PATH) and run it;\n"
"                        its config comes from the source. With --cpu-template,\n"
"                        a source on another template is refused\n"
"\n"
"Resources (cgroup v1 or v2; credit2 semantics as in Xen's xl):\n"
"  --cpu-weight W        relative CPU weight 1..65535 (default 256)\n"
"  --cpu-cap PCT         at most PCT% of one host CPU for the whole VM (0: none)\n"
"  --memory-limit SIZE   cgroup memory limit for the VM process (RAM + VMM)\n"
"                        (these three change at run time with wafer set NAME or\n"
"                        PATCH /machine-config; as root with the API, the VM is\n"
"                        in its groups even without them; on v2, cpu and memory\n"
"                        are enabled in the cgroup.subtree_control of\n"
"                        /sys/fs/cgroup and /sys/fs/cgroup/wafer where needed)\n"
"  --cpu-affinity LIST   pin vCPU i to the i-th host CPU of LIST (e.g. 0,2-3;\n"
"                        reused round-robin)\n"
"\n"
"Jail (root only; like Firecracker's jailer):\n"
"  --jail                run the VMM in new mount and PID namespaces, pivoted into\n"
"                        BASE/NAME/root holding only its files (/kernel, /initrd,\n"
"                        /diskN.img, /dev/kvm, /dev/net/tun, /dev/null,\n"
"                        /dev/urandom), with no_new_privs and the ids below; the\n"
"                        API socket is BASE/NAME/root/api.sock, the VMM's pid is\n"
"                        in BASE/NAME/pid; all removed at exit\n"
"  --uid U, --gid G      ids the jailed VMM runs as (default: 65534, nobody)\n"
"  --chroot-base DIR     BASE (default: " JAIL_BASE_DEFAULT ")\n"
"  --netns PATH          join this network namespace first (e.g. /var/run/netns/X)\n"
"  --seccomp MODE        system call filters per thread role (vCPU, I/O, API,\n"
"                        main; README lists each role's calls): on (default: a\n"
"                        forbidden call logs the role and the call, and wafer\n"
"                        exits 5), log (allowed, logged by the kernel's audit\n"
"                        log: to find a missing call) or off (debugging)\n"
"\n"
"Control (Firecracker-compatible REST API on a unix socket, mode 0600):\n"
"  --api-sock PATH       API socket (default: $XDG_RUNTIME_DIR/wafer/NAME/api.sock,\n"
"                        or /run/wafer/NAME/api.sock as root)\n"
"  --no-api              no API socket\n"
"  --api-only            start no guest: wait for configuration and InstanceStart\n"
"                        on the API (--kernel not needed)\n"
"  --config FILE         configuration in Firecracker's --config-file JSON shape\n"
"  --on-poweroff P, --on-reboot P, --on-crash P\n"
"                        destroy (exit), restart (boot again) or preserve (keep\n"
"                        the stopped VM until signalled), as in xl.cfg; default\n"
"                        destroy for all three\n"
"  --log-level LEVEL     error, warn, info or debug (default: warn)\n"
"  --log-format FORMAT   text (default) or json: one JSON object per line with\n"
"                        ts, level, vm and msg\n"
"  -h, --help            show this help\n"
"\n"
"Exit status:\n"
"  0  guest powered off          3  guest rebooted\n"
"  1  bad input or host error    4  stopped by Ctrl-A x or a signal\n"
"  2  guest crashed (triple fault, KVM internal error; a one-line diagnosis\n"
"     with the exit reason and RIP goes to stderr)\n"
"  5  a thread made a system call its seccomp filter forbids (stderr names\n"
"     the thread role and the call)\n"
"  A guest that writes V to I/O port 0xf4 makes wafer exit with V & 0xff.\n"
"\n"
"Environment:\n"
"  WAFER_KVM_DEVICE      KVM device node to open (default: /dev/kvm)\n";

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_TEMPLATE,
       OPT_PVH, OPT_LOG_LEVEL, OPT_DISK, OPT_NET, OPT_RNG, OPT_NO_RNG, OPT_NAME,
       OPT_API_SOCK, OPT_NO_API, OPT_API_ONLY, OPT_CONFIG, OPT_ON_POWEROFF, OPT_ON_REBOOT,
       OPT_ON_CRASH, OPT_LOG_FORMAT, OPT_CPU_WEIGHT, OPT_CPU_CAP, OPT_MEM_LIMIT,
       OPT_CPU_AFFINITY, OPT_JAIL, OPT_UID, OPT_GID, OPT_CHROOT_BASE, OPT_NETNS,
       OPT_RESTORE, OPT_PAUSED, OPT_RESTORE_FORCE, OPT_RESTORE_VERIFY,
       OPT_RESTORE_NO_VERIFY, OPT_INCOMING,
       OPT_SECCOMP };

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpu-template", required_argument, NULL, OPT_TEMPLATE },
	{ "pvh", no_argument, NULL, OPT_PVH },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "no-rng", no_argument, NULL, OPT_NO_RNG },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "no-api", no_argument, NULL, OPT_NO_API },
	{ "api-only", no_argument, NULL, OPT_API_ONLY },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "on-poweroff", required_argument, NULL, OPT_ON_POWEROFF },
	{ "on-reboot", required_argument, NULL, OPT_ON_REBOOT },
	{ "on-crash", required_argument, NULL, OPT_ON_CRASH },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
	{ "cpu-weight", required_argument, NULL, OPT_CPU_WEIGHT },
	{ "cpu-cap", required_argument, NULL, OPT_CPU_CAP },
	{ "memory-limit", required_argument, NULL, OPT_MEM_LIMIT },
	{ "cpu-affinity", required_argument, NULL, OPT_CPU_AFFINITY },
	{ "jail", no_argument, NULL, OPT_JAIL },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "chroot-base", required_argument, NULL, OPT_CHROOT_BASE },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "paused", no_argument, NULL, OPT_PAUSED },
	{ "restore-force", no_argument, NULL, OPT_RESTORE_FORCE },
	{ "restore-verify", no_argument, NULL, OPT_RESTORE_VERIFY },
	{ "restore-no-verify", no_argument, NULL, OPT_RESTORE_NO_VERIFY },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Strings the parsed config points into (option values split in place). */
struct run_strings {
	char *buf[2 * VM_MAX_DISKS + 2 * VM_MAX_NETS + 1];
	unsigned n;
};

static char *run_keep(struct run_strings *rs, char *p)
{
	if (!p || rs->n == sizeof(rs->buf) / sizeof(rs->buf[0])) {
		free(p);
		return NULL;
	}
	rs->buf[rs->n++] = p;
	return p;
}

static void run_strings_free(struct run_strings *rs)
{
	for (unsigned i = 0; i < rs->n; i++)
		free(rs->buf[i]);
	rs->n = 0;
}

/* A rate-limit option of --disk / --net: key=VALUE into one or two bucket
 * fields; bytes take sizes ("10M"), ops take counts. */
struct run_limit_opt {
	const char *key;
	uint64_t *a, *b;
	bool bytes;
};

/* 1: tok was a rate-limit option; 0: it is not one; -1: bad value (logged). */
static int run_parse_limit(const char *flag, const char *arg, const char *tok,
			   const struct run_limit_opt *opts)
{
	const char *eq = strchr(tok, '=');
	uint64_t v;

	if (!eq)
		return 0;
	for (; opts->key; opts++) {
		if (strlen(opts->key) != (size_t)(eq - tok) || strncmp(tok, opts->key, (size_t)(eq - tok)))
			continue;
		int rc = opts->bytes ? parse_size(eq + 1, &v) : parse_uint(eq + 1, 0, INT64_MAX, &v);
		if (rc || v > INT64_MAX) {
			log_error("%s %s: bad value in '%s' (%s)", flag, arg, tok,
				  opts->bytes ? "bytes per second, e.g. 50M" : "a count per second");
			return -1;
		}
		*opts->a = v;
		if (opts->b)
			*opts->b = v;
		return 1;
	}
	return 0;
}

/* The flags' buckets refill once a second (Firecracker's refill_time 1000). */
static void run_limit_finish(struct ratelimit_config *c)
{
	c->bytes.refill_time_ms = c->bytes.size ? 1000 : 0;
	c->ops.refill_time_ms = c->ops.size ? 1000 : 0;
}

/* "PATH[,ro][,id=NAME][,serial=S][,bw=SIZE][,iops=N][,bw-burst=SIZE][,iops-burst=N]" */
static int run_parse_disk(const char *arg, struct vm_config *cfg, struct run_strings *rs)
{
	char *s, *tok, *save = NULL;
	struct blk_config *d;

	if (cfg->ndisks == VM_MAX_DISKS) {
		log_error("--disk %s: at most %d disks", arg, VM_MAX_DISKS);
		return -1;
	}
	s = run_keep(rs, strdup(arg));
	if (!s)
		return -1;
	d = &cfg->disks[cfg->ndisks];
	*d = (struct blk_config){ 0 };
	const struct run_limit_opt lim[] = {
		{ "bw", &d->limit.bytes.size, NULL, true },
		{ "bw-burst", &d->limit.bytes.one_time_burst, NULL, true },
		{ "iops", &d->limit.ops.size, NULL, false },
		{ "iops-burst", &d->limit.ops.one_time_burst, NULL, false },
		{ NULL, NULL, NULL, false },
	};
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int r;
		if (!d->path)
			d->path = tok;
		else if ((r = run_parse_limit("--disk", arg, tok, lim)) < 0)
			return -1;
		else if (r > 0)
			continue;
		else if (!strcmp(tok, "ro"))
			d->read_only = true;
		else if (!strncmp(tok, "id=", 3) && tok[3])
			d->id = tok + 3;
		else if (!strncmp(tok, "serial=", 7))
			d->serial = tok + 7;
		else {
			log_error("--disk %s: unknown option '%s' (expected ro, id=NAME, serial=S, "
				  "bw=SIZE, iops=N, bw-burst=SIZE, iops-burst=N)", arg, tok);
			return -1;
		}
	}
	run_limit_finish(&d->limit);
	if (!d->path || !*d->path) {
		log_error("--disk %s: missing PATH", arg);
		return -1;
	}
	if (d->serial && strlen(d->serial) > 20) {
		log_error("--disk %s: serial longer than 20 bytes", arg);
		return -1;
	}
	if (!d->id) {
		char id[16];
		snprintf(id, sizeof(id), "disk%u", cfg->ndisks);
		d->id = run_keep(rs, strdup(id));
		if (!d->id)
			return -1;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		if (!strcmp(cfg->disks[i].id, d->id)) {
			log_error("--disk %s: id '%s' used twice", arg, d->id);
			return -1;
		}
	}
	cfg->ndisks++;
	return 0;
}

/* "tap=IFNAME[,mac=MAC][,id=NAME][,bw=SIZE][,pps=N][,rx-bw=..][,tx-bw=..][,rx-pps=..][,tx-pps=..]" */
static int run_parse_net(const char *arg, struct vm_config *cfg, struct run_strings *rs)
{
	char *s, *tok, *save = NULL;
	struct net_config *n;

	if (cfg->nnets == VM_MAX_NETS) {
		log_error("--net %s: at most %d interfaces", arg, VM_MAX_NETS);
		return -1;
	}
	s = run_keep(rs, strdup(arg));
	if (!s)
		return -1;
	n = &cfg->nets[cfg->nnets];
	*n = (struct net_config){ 0 };
	const struct run_limit_opt lim[] = {
		{ "bw", &n->rx_limit.bytes.size, &n->tx_limit.bytes.size, true },
		{ "pps", &n->rx_limit.ops.size, &n->tx_limit.ops.size, false },
		{ "rx-bw", &n->rx_limit.bytes.size, NULL, true },
		{ "tx-bw", &n->tx_limit.bytes.size, NULL, true },
		{ "rx-pps", &n->rx_limit.ops.size, NULL, false },
		{ "tx-pps", &n->tx_limit.ops.size, NULL, false },
		{ NULL, NULL, NULL, false },
	};
	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int r = run_parse_limit("--net", arg, tok, lim);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if (!strncmp(tok, "tap=", 4) && tok[4]) {
			n->ifname = tok + 4;
		} else if (!strncmp(tok, "mac=", 4)) {
			if (net_mac_parse(tok + 4, n->mac)) {
				log_error("--net %s: bad MAC '%s' (need a unicast aa:bb:cc:dd:ee:ff)", arg, tok + 4);
				return -1;
			}
			n->has_mac = true;
		} else if (!strncmp(tok, "id=", 3) && tok[3]) {
			n->id = tok + 3;
		} else {
			log_error("--net %s: unknown option '%s' (expected tap=IFNAME, mac=MAC, id=NAME, "
				  "bw=SIZE, pps=N, rx-bw=, tx-bw=, rx-pps=, tx-pps=)", arg, tok);
			return -1;
		}
	}
	run_limit_finish(&n->rx_limit);
	run_limit_finish(&n->tx_limit);
	if (!n->ifname) {
		log_error("--net %s: missing tap=IFNAME", arg);
		return -1;
	}
	if (!n->id) {
		char id[16];
		snprintf(id, sizeof(id), "net%u", cfg->nnets);
		n->id = run_keep(rs, strdup(id));
		if (!n->id)
			return -1;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		if (!strcmp(cfg->nets[i].id, n->id)) {
			log_error("--net %s: id '%s' used twice", arg, n->id);
			return -1;
		}
	}
	cfg->nnets++;
	return 0;
}

struct run_opts {
	struct cg_config cg;
	struct jail_config jail;
	const char *jail_flag;      /* a jail option seen, for "needs --jail" */
	const char *api_sock;
	bool no_api, api_only;
	const char *config;
	enum run_policy on_poweroff, on_reboot, on_crash;
	const char *restore;        /* --restore DIR */
	bool paused, restore_force, restore_verify, restore_no_verify;
	const char *boot_flag;      /* a flag that describes a boot (not with --restore) */
	const char *incoming;       /* --incoming URL */
	bool template_given;
	enum seccomp_mode seccomp;
};

/* "0,2-3": host CPUs this process may use, in order. */
static int run_parse_affinity(const char *arg, struct vm_config *cfg)
{
	cpu_set_t allowed;
	const char *p = arg;

	sched_getaffinity(0, sizeof(allowed), &allowed);
	cfg->naffinity = 0;
	while (*p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;
		if (end == p)
			goto bad;
		if (*end == '-') {
			p = end + 1;
			hi = strtoul(p, &end, 10);
			if (end == p || hi < lo)
				goto bad;
		}
		for (unsigned long c = lo; c <= hi; c++) {
			if (c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed)) {
				log_error("--cpu-affinity %s: host CPU %lu is not available to this process", arg, c);
				return -1;
			}
			if (cfg->naffinity == sizeof(cfg->affinity) / sizeof(cfg->affinity[0]))
				goto bad;
			cfg->affinity[cfg->naffinity++] = (unsigned)c;
		}
		p = end;
		if (*p == ',')
			p++;
		else if (*p)
			goto bad;
	}
	if (cfg->naffinity)
		return 0;
bad:
	log_error("--cpu-affinity %s: expected a list such as 0,2-3", arg);
	return -1;
}

static int run_parse_policy(const char *flag, const char *arg, enum run_policy *out)
{
	if (run_policy_parse(arg, out)) {
		log_error("--%s %s: expected destroy, restart or preserve", flag, arg);
		return -1;
	}
	return 0;
}

static int run_parse(int argc, char **argv, struct vm_config *cfg, struct run_strings *rs,
		     struct run_opts *o)
{
	uint64_t v;
	int opt, rc;

	*cfg = (struct vm_config){
		.cmdline = "console=ttyS0",
		.cpu_template = "host",
		.kvm_path = getenv("WAFER_KVM_DEVICE") ? getenv("WAFER_KVM_DEVICE") : "/dev/kvm",
		.ncpus = 1,
		.mem_size = 512ull << 20,
		.rng = 1,
	};
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", run_options, NULL)) != -1) {
		/* Flags that describe the machine; a snapshot already does. */
		static const int boot_opts[] = { OPT_INITRD, OPT_CMDLINE, OPT_TEMPLATE, OPT_PVH,
						 OPT_DISK, OPT_NET, OPT_CPUS, OPT_MEMORY, OPT_RNG,
						 OPT_NO_RNG };
		for (unsigned i = 0; i < sizeof(boot_opts) / sizeof(boot_opts[0]); i++)
			for (const struct option *ro = run_options; ro->name && opt == boot_opts[i]; ro++)
				if (ro->val == opt)
					o->boot_flag = ro->name;
		switch (opt) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_TEMPLATE: cfg->cpu_template = optarg; o->template_given = true; break;
		case OPT_PVH: cfg->prefer_pvh = 1; break;
		case OPT_RNG: cfg->rng = 1; break;
		case OPT_NO_RNG: cfg->rng = 0; break;
		case OPT_DISK:
			if (run_parse_disk(optarg, cfg, rs))
				return -1;
			break;
		case OPT_NET:
			if (run_parse_net(optarg, cfg, rs))
				return -1;
			break;
		case OPT_LOG_FORMAT:
			if (!strcmp(optarg, "json")) {
				log_format = LOG_FORMAT_JSON;
			} else if (!strcmp(optarg, "text")) {
				log_format = LOG_FORMAT_TEXT;
			} else {
				log_error("--log-format %s: expected text or json", optarg);
				return -1;
			}
			break;
		case OPT_CPU_WEIGHT:
			if (parse_uint(optarg, 1, VM_CPU_WEIGHT_MAX, &v)) {
				log_error("--cpu-weight %s: expected 1..%d", optarg, VM_CPU_WEIGHT_MAX);
				return -1;
			}
			o->cg.weight = (unsigned)v;
			break;
		case OPT_CPU_CAP:
			if (parse_uint(optarg, 0, VM_CPU_CAP_MAX, &v)) {
				log_error("--cpu-cap %s: expected a percentage of one CPU (0 = no cap)", optarg);
				return -1;
			}
			o->cg.cap_pct = (unsigned)v;
			break;
		case OPT_MEM_LIMIT:
			if (parse_size(optarg, &v) || v < ((uint64_t)VM_MEM_LIMIT_MIN_MIB << 20)) {
				log_error("--memory-limit %s: expected a size of at least %dM", optarg,
					  VM_MEM_LIMIT_MIN_MIB);
				return -1;
			}
			o->cg.mem_limit = v;
			break;
		case OPT_CPU_AFFINITY:
			if (run_parse_affinity(optarg, cfg))
				return -1;
			break;
		case OPT_JAIL: o->jail.enabled = true; break;
		case OPT_UID:
		case OPT_GID:
			if (parse_uint(optarg, 0, 0xfffffffe, &v)) {
				log_error("--%s %s: expected a numeric id", opt == OPT_UID ? "uid" : "gid", optarg);
				return -1;
			}
			if (opt == OPT_UID)
				o->jail.uid = (uid_t)v;
			else
				o->jail.gid = (gid_t)v;
			o->jail_flag = opt == OPT_UID ? "--uid" : "--gid";
			break;
		case OPT_CHROOT_BASE:
			if (optarg[0] != '/' || strlen(optarg) > 512) {
				log_error("--chroot-base %s: expected an absolute directory path", optarg);
				return -1;
			}
			o->jail.base = optarg;
			o->jail_flag = "--chroot-base";
			break;
		case OPT_NETNS:
			o->jail.netns = optarg;
			o->jail_flag = "--netns";
			break;
		case OPT_SECCOMP:
			if (seccomp_mode_parse(optarg, &o->seccomp)) {
				log_error("--seccomp %s: expected on, log or off", optarg);
				return -1;
			}
			break;
		case OPT_API_SOCK: o->api_sock = optarg; break;
		case OPT_NO_API: o->no_api = true; break;
		case OPT_API_ONLY: o->api_only = true; break;
		case OPT_RESTORE: o->restore = optarg; break;
		case OPT_INCOMING: o->incoming = optarg; break;
		case OPT_PAUSED: o->paused = true; break;
		case OPT_RESTORE_FORCE: o->restore_force = true; break;
		case OPT_RESTORE_VERIFY: o->restore_verify = true; break;   /* the default now */
		case OPT_RESTORE_NO_VERIFY: o->restore_no_verify = true; break;
		case OPT_CONFIG: o->config = optarg; break;
		case OPT_ON_POWEROFF:
			if (run_parse_policy("on-poweroff", optarg, &o->on_poweroff))
				return -1;
			break;
		case OPT_ON_REBOOT:
			if (run_parse_policy("on-reboot", optarg, &o->on_reboot))
				return -1;
			break;
		case OPT_ON_CRASH:
			if (run_parse_policy("on-crash", optarg, &o->on_crash))
				return -1;
			break;
		case OPT_NAME:
			if (api_name_validate(optarg)) {
				log_error("--name %s: must be 1-64 of letters, digits, '.', '_', '-' "
					  "(not starting with '.')", optarg);
				return -1;
			}
			cfg->name = optarg;
			break;
		case OPT_CPUS:
			rc = parse_uint(optarg, 1, VM_MAX_VCPUS, &v);
			if (rc == -ERANGE) {
				log_error("--cpus %s: out of range (1..%d)", optarg, VM_MAX_VCPUS);
				return -1;
			}
			if (rc) {
				log_error("--cpus %s: not a number", optarg);
				return -1;
			}
			cfg->ncpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			rc = parse_size(optarg, &v);
			if (rc) {
				log_error("--memory %s: %s", optarg, rc == -ERANGE ? "too large" :
					  "not a size (use e.g. 512M or 2G)");
				return -1;
			}
			cfg->mem_size = v;
			break;
		case OPT_LOG_LEVEL: {
			enum log_level lvl;
			if (log_level_parse(optarg, &lvl)) {
				log_error("--log-level %s: expected error, warn, info or debug", optarg);
				return -1;
			}
			log_threshold = lvl;
			break;
		}
		case 'h':
			fputs(run_usage, stdout);
			return 1;
		case ':':
			log_error("%s: missing argument (see wafer run --help)", argv[optind - 1]);
			return -1;
		default:
			log_error("%s: unknown option (see wafer run --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		log_error("%s: unexpected argument (see wafer run --help)", argv[optind]);
		return -1;
	}
	if (o->api_only && o->no_api) {
		log_error("--api-only: needs the API (drop --no-api)");
		return -1;
	}
	if (o->config && (cfg->kernel || o->api_only)) {
		log_error("--config %s: the file gives the whole configuration (drop %s)", o->config,
			  cfg->kernel ? "--kernel" : "--api-only");
		return -1;
	}
	if (o->jail_flag && !o->jail.enabled) {
		log_error("%s: only with --jail", o->jail_flag);
		return -1;
	}
	if (o->jail.enabled && (o->api_sock || o->config)) {
		log_error("%s: not with --jail (the jail holds the API socket; give the VM by flags "
			  "or the API)", o->api_sock ? "--api-sock" : "--config");
		return -1;
	}
	if (o->restore && (cfg->kernel || o->api_only || o->config || o->boot_flag)) {
		log_error("--restore %s: the snapshot gives the machine (drop --%s)", o->restore,
			  cfg->kernel ? "kernel" : o->api_only ? "api-only" :
			  o->config ? "config" : o->boot_flag);
		return -1;
	}
	if (o->incoming && (cfg->kernel || o->api_only || o->config || o->restore ||
			    (o->boot_flag && strcmp(o->boot_flag, "cpu-template")))) {
		log_error("--incoming %s: the source gives the machine (drop --%s)", o->incoming,
			  cfg->kernel ? "kernel" : o->api_only ? "api-only" : o->config ? "config" :
			  o->restore ? "restore" : o->boot_flag);
		return -1;
	}
	if (o->jail.enabled && (o->restore || o->incoming)) {
		log_error("%s: not with --jail yet (the jail would not hold the snapshot's or the "
			  "source's disks)", o->restore ? "--restore" : "--incoming");
		return -1;
	}
	if (o->incoming && strncmp(o->incoming, "tcp:", 4) && strncmp(o->incoming, "unix:", 5)) {
		log_error("--incoming %s: expected tcp:HOST:PORT or unix:PATH", o->incoming);
		return -1;
	}
	if (!o->restore && (o->paused || o->restore_force || o->restore_verify ||
			    o->restore_no_verify)) {
		log_error("%s: only with --restore", o->paused ? "--paused" :
			  o->restore_force ? "--restore-force" :
			  o->restore_verify ? "--restore-verify" : "--restore-no-verify");
		return -1;
	}
	if (o->restore_verify && o->restore_no_verify) {
		log_error("--restore-no-verify: not with --restore-verify");
		return -1;
	}
	if (!cfg->kernel && !o->api_only && !o->config && !o->restore && !o->incoming) {
		log_error("--kernel: required (see wafer run --help)");
		return -1;
	}
	if (!cfg->name) {
		char name[32];
		snprintf(name, sizeof(name), "wafer-%d", (int)getpid());
		cfg->name = run_keep(rs, strdup(name));
		if (!cfg->name)
			return -1;
	}
	for (unsigned i = 0; i < cfg->nnets; i++)
		cfg->nets[i].vm_name = cfg->name;
	cfg->rebuilds = o->on_poweroff == POLICY_RESTART || o->on_reboot == POLICY_RESTART ||
			o->on_crash == POLICY_RESTART;
	log_set_vm_name(cfg->name);
	return 0;
}

/* Runs on the thread that starts libmicrohttpd: its thread inherits this. */
static int run_api_confine(void *arg, char *err, size_t errlen)
{
	int rc = seccomp_install_inherited(SECCOMP_ROLE_API, err, errlen);
	*(bool *)arg = rc != 0;
	return rc;
}

static void run_pidfile(const char *sock, char *pidfile, size_t len)
{
	snprintf(pidfile, len, "%s", sock);
	char *slash = strrchr(pidfile, '/');
	if (!slash || (size_t)(slash - pidfile) + 5 >= len) {
		pidfile[0] = '\0';
		return;
	}
	strcpy(slash + 1, "pid");
	FILE *f = fopen(pidfile, "w");
	if (!f) {
		log_warn("%s: %s (wafer ls will not show the pid)", pidfile, strerror(errno));
		pidfile[0] = '\0';
		return;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	struct run_strings rs = { .n = 0 };
	struct run_opts o = { .on_poweroff = POLICY_DESTROY, .cg = { .weight = CG_WEIGHT_DEFAULT },
			      .seccomp = RUN_SECCOMP_DEFAULT,
			      .jail = { .uid = JAIL_ID_DEFAULT, .gid = JAIL_ID_DEFAULT,
					.base = JAIL_BASE_DEFAULT } };
	struct cg_state cg = { .ndirs = 0 };
	struct jail_state *jail = NULL;
	struct run_ctl *ctl = NULL;
	struct api_router *router = NULL;
	struct api_server *server = NULL;
	struct api_config *acfg = NULL;
	char path[API_PATH_MAX], err[API_ERR_MAX], pidfile[API_PATH_MAX] = "";
	sigset_t sigs;
	int status = WAFER_EXIT_ERROR;

	int rc = run_parse(argc, argv, &cfg, &rs, &o);
	if (rc) {
		run_strings_free(&rs);
		return rc > 0 ? 0 : WAFER_EXIT_ERROR;
	}

	/* The console and the controller take these through signalfds; every
	 * thread created from here on inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Resource limits first: guest RAM and every thread are accounted. As
	 * root with the API on, the VM gets its groups even without limits, so
	 * PATCH /machine-config can set them later. */
	bool cg_for_updates = geteuid() == 0 && !o.no_api;
	if (cg_apply(&cg, cfg.name, &o.cg, cg_for_updates, err, sizeof(err))) {
		log_error("--cpu-weight/--cpu-cap/--memory-limit: %s", err);
		goto out;
	}
	if (cg_for_updates && cg.fd_weight < 0)
		log_info("CPU limits cannot change at run time: %s", cg.why_cpu);
	if (cg_for_updates && cg.fd_mem < 0)
		log_info("the memory limit cannot change at run time: %s", cg.why_mem);
	/* The jail next, before any file is parsed or the socket exists; the
	 * parent only waits for the VMM (which shares its cgroups) and cleans up. */
	if (o.jail.enabled) {
		jail = calloc(1, sizeof(*jail));
		if (!jail) {
			log_error("out of memory");
			goto out;
		}
		rc = jail_enter(jail, &o.jail, &cfg, &status, err, sizeof(err));
		if (rc < 0) {
			log_error("%s", err);
			goto out;
		}
		if (rc > 0)
			goto out;
		cg.ndirs = 0;  /* the parent removes the groups once we are gone */
	}
	/* Filters come after the jail (which needs mount, pivot_root, setuid);
	 * each thread installs its own before it serves (see jail/seccomp.c). */
	rc = seccomp_prepare(o.seccomp);
	if (rc) {
		log_error("--seccomp: %s", strerror(-rc));
		goto out;
	}
	ctl = calloc(1, sizeof(*ctl));
	acfg = calloc(1, sizeof(*acfg));
	if (!ctl || !acfg || run_ctl_init(ctl, &cfg, !o.api_only && !o.config)) {
		log_error("out of memory");
		goto out;
	}
	ctl->cg = &cg;
	ctl->on_poweroff = o.on_poweroff;
	ctl->on_reboot = o.on_reboot;
	ctl->on_crash = o.on_crash;
	struct api_controller api_ctl = { .ops = &run_ctl_ops, .opaque = ctl,
					  .snapshot = &run_ctl_snapshot_ops,
					  .migrate = &run_ctl_migrate_ops };
	if (api_router_create(&router, &api_ctl, cfg.name)) {
		log_error("out of memory");
		goto out;
	}

	if (o.config) {
		if (api_config_load_file(o.config, acfg, err, sizeof(err))) {
			log_error("--config %s", err);
			goto out;
		}
	} else if (!o.api_only) {
		run_ctl_describe(&cfg, acfg);
	}
	/* Build the VM before the socket appears, so bad input fails fast with
	 * nothing left behind; --api-only waits for InstanceStart instead. */
	log_clear_last_error();
	if (o.restore) {
		struct api_snapshot_load sl = { .resume_vm = !o.paused, .force = o.restore_force,
						.verify = !o.restore_no_verify };
		if ((size_t)snprintf(sl.snapshot_path, sizeof(sl.snapshot_path), "%s/state",
				     o.restore) >= sizeof(sl.snapshot_path) ||
		    (size_t)snprintf(sl.mem_path, sizeof(sl.mem_path), "%s/memory", o.restore) >=
			    sizeof(sl.mem_path)) {
			log_error("--restore %s: path too long", o.restore);
			goto out;
		}
		log_clear_last_error();
		if (api_router_load_with(router, &sl, err, sizeof(err))) {
			if (!log_last_error()[0])  /* vm_create prints its own reasons */
				log_error("--restore %s: %s", o.restore, err);
			goto out;
		}
	} else if (o.incoming) {
		ctl->incoming = true;
		ctl->incoming_template = o.template_given ? cfg.cpu_template : NULL;
	} else if (!o.api_only && api_router_start_with(router, acfg, err, sizeof(err))) {
		if (!log_last_error()[0])  /* vm_create prints its own reasons */
			log_error("%s%s%s", o.config ? o.config : "", o.config ? ": " : "", err);
		goto out;
	}

	if (!o.no_api) {
		if (o.api_sock || jail) {
			snprintf(path, sizeof(path), "%s", jail ? JAIL_SOCK : o.api_sock);
		} else if (api_socket_default_path(cfg.name, path, sizeof(path))) {
			log_error("--name %s: no default API socket path; use --api-sock or --no-api", cfg.name);
			goto out;
		}
		bool confine_failed = false;
		if (api_server_start(&server, path, router, run_api_confine, &confine_failed, err,
				     sizeof(err))) {
			log_error("%s %s", confine_failed ? "--seccomp:" : "--api-sock", err);
			goto out;
		}
		log_info("API socket: %s", path);
		/* `wafer ls/stop` find the process through a pid file in the
		 * VM's own runtime directory (only there: a user-chosen socket
		 * may sit in a shared directory). */
		if (!o.api_sock && !jail)
			run_pidfile(path, pidfile, sizeof(pidfile));
	}
	if (o.incoming) {
		/* After the socket exists, so `wafer ls` shows the waiting VM. */
		log_clear_last_error();
		if (run_ctl_incoming(ctl, o.incoming, err, sizeof(err))) {
			if (!log_last_error()[0])
				log_error("--incoming %s: %s", o.incoming, err);
			goto out;
		}
		api_router_mark_started(router, vm_is_paused(&ctl->vm) ? API_STATE_PAUSED
								       : API_STATE_RUNNING);
	}
	status = run_ctl_main(ctl);
out:
	if (server)
		api_server_stop(server);
	if (pidfile[0]) {
		unlink(pidfile);
		*strrchr(pidfile, '/') = '\0';
		rmdir(pidfile);  /* the VM's runtime directory, if now empty */
	}
	if (router)
		api_router_destroy(router);
	if (ctl) {
		run_ctl_destroy(ctl);
		free(ctl);
	}
	free(acfg);
	free(jail);
	cg_release(&cg);
	run_strings_free(&rs);
	return status;
}
