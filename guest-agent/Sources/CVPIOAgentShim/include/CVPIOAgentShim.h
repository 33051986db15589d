/* What Swift cannot do with libbpf directly: its option macros (LIBBPF_OPTS), the variadic print
 * callback, BTF lookups for `const volatile` rodata, and C11 atomics on the shared ring. Also
 * exposes the ABI headers (protocol/include/vpio_ring.h, guest-agent/bpf/vpio_agent.h) to Swift. */
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <linux/types.h>
#include "../../../../protocol/include/vpio_ring.h"
#include "../../../bpf/vpio_agent.h"

struct bpf_object;
struct bpf_program;
struct bpf_link;

/* libbpf's messages: warnings and errors to stderr, debug ones too when verbose. */
void vpio_libbpf_set_verbose(int verbose);

/* bpf_program__attach_kprobe_opts(prog, func, {.offset, .bpf_cookie}); NULL with *err = -errno on failure. */
struct bpf_link *vpio_attach_kprobe(struct bpf_program *prog, const char *func, uint64_t offset,
                                    uint64_t cookie, int *err);

/* bpf_program__attach_uprobe_opts(prog, pid, binary, offset, {.bpf_cookie}): the same program on a
 * user-space instruction (`vpio agent-cost`); NULL with *err = -errno on failure. */
struct bpf_link *vpio_attach_uprobe(struct bpf_program *prog, int pid, const char *binary, uint64_t file_offset,
                                    uint64_t cookie, int *err);

/* User-space stand-ins for the driver's port-I/O sites (`vpio agent-cost`): at the probe label the
 * registers hold what they hold at an `in`/`out`/`rep ins` site (dx = port, ax = value, cx = count),
 * but the instruction there is a nop — user space may not do port I/O, and what is timed is the probe.
 * `_int3` has a one-byte nop (the probe is a breakpoint trap); `_nop5` a five-byte nop, which kernels
 * that optimize uprobes can turn into a call. Each returns `value`. */
uint64_t vpio_cost_site_int3(uint32_t port, uint32_t value, uint32_t count);
uint64_t vpio_cost_site_nop5(uint32_t port, uint32_t value, uint32_t count);
/* The address of the probe label of `vpio_cost_site_nop5` (nop5 != 0) or `vpio_cost_site_int3`. */
uintptr_t vpio_cost_probe_address(int nop5);

/* User-space stand-ins for 8139too's calls to the iomap accessors, one per site the tests describe:
 * at entry (the probe address) di and si hold what a call to iowriteN(value, addr) or ioreadN(addr)
 * holds, and the body is a nop: no device is touched, what runs is the agent's program. */
uint64_t vpio_iomap_site_0(uint64_t di, uint64_t si);
uint64_t vpio_iomap_site_1(uint64_t di, uint64_t si);
uint64_t vpio_iomap_site_2(uint64_t di, uint64_t si);
uint64_t vpio_iomap_site_3(uint64_t di, uint64_t si);
/* The entry address of vpio_iomap_site_`which` (0-3). */
uintptr_t vpio_iomap_probe_address(int which);

/* Destroys `count` links from `threads` threads at once: each kprobe removal waits for an RCU grace
 * period, and concurrent removals share them (one at a time, 210 probes take ~18 s under TCG).
 * Falls back to one thread if threads cannot be started. */
void vpio_destroy_links(struct bpf_link **links, int count, int threads);

/* Sets the `const volatile` variable `name` (of `size` bytes) in the object's .rodata before load.
 * Returns 0, or -ENOENT when the object has no such variable, -EINVAL on a size mismatch. */
int vpio_set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t size);

/* BPF run-time statistics of a loaded program (needs bpf_enable_stats(BPF_STATS_RUN_TIME)), and the
 * runs the kernel skipped because another BPF program was active on the CPU (recursion misses). */
int vpio_prog_run_stats(int prog_fd, uint64_t *run_cnt, uint64_t *run_time_ns, uint64_t *misses);

/* Ring helpers on the shared mapping: atomic fetch-add, and a release store of a slot's seq. */
uint64_t vpio_atomic_fetch_add_u64(uint64_t *p, uint64_t v);
uint64_t vpio_atomic_load_u64(const uint64_t *p);
void vpio_store_release_u64(uint64_t *p, uint64_t v);
void vpio_store_release_u32(uint32_t *p, uint32_t v);

/* stdout line-buffered (the console of an init script is not a tty). */
void vpio_stdout_line_buffered(void);

/* Compressed kernel modules (.ko.xz, .ko.zst, .ko.gz): the formats kmod reads. */
enum vpio_compression { VPIO_COMPRESSION_XZ = 1, VPIO_COMPRESSION_ZSTD = 2, VPIO_COMPRESSION_GZIP = 3 };

/* Decompresses the whole file image `in` (`in_len` bytes, every stream/frame in it) of `format` into a
 * malloc'd buffer of at most `limit` bytes: 0 with *out (the caller frees it) and *out_len, or -EINVAL
 * (corrupt or truncated input, unknown format), -EFBIG (more than `limit` bytes), -ENOMEM. */
int vpio_decompress(int format, const uint8_t *in, size_t in_len, size_t limit, uint8_t **out, size_t *out_len);
