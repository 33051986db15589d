#include "CVPIOAgentShim.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <stdlib.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

static int verbose_libbpf;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	if (level == LIBBPF_DEBUG && !verbose_libbpf)
		return 0;
	/* Verbose: everything, whole (a verifier log is one message of many kilobytes). */
	if (verbose_libbpf)
		return vfprintf(stderr, fmt, ap);
	vsnprintf(line, sizeof(line), fmt, ap);
	/* Refused sites are expected (EILSEQ: a candidate inside an instruction; EINVAL: .cold code);
	 * the agent lists them itself. */
	if (!verbose_libbpf && strstr(line, "failed to create kprobe"))
		return 0;
	return fputs(line, stderr);
}

void vpio_libbpf_set_verbose(int verbose)
{
	verbose_libbpf = verbose;
	libbpf_set_print(print_libbpf);
}

struct bpf_link *vpio_attach_kprobe(struct bpf_program *prog, const char *func, uint64_t offset,
                                    uint64_t cookie, int *err)
{
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = (size_t)offset, .bpf_cookie = cookie);
	struct bpf_link *link = bpf_program__attach_kprobe_opts(prog, func, &opts);
	*err = link ? 0 : -errno;
	return link;
}

struct bpf_link *vpio_attach_uprobe(struct bpf_program *prog, int pid, const char *binary, uint64_t file_offset,
                                    uint64_t cookie, int *err)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie);
	struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, pid, binary, (size_t)file_offset, &opts);
	*err = link ? 0 : -errno;
	return link;
}

/* The stand-in sites: SysV arguments (edi, esi, edx) moved to where a port-I/O site has them. */
__asm__(
	".text\n"
	".globl vpio_cost_site_int3\n"
	".type vpio_cost_site_int3, @function\n"
	"vpio_cost_site_int3:\n"
	"	movl %edx, %ecx\n"
	"	movl %edi, %edx\n"
	"	movl %esi, %eax\n"
	".globl vpio_cost_probe_int3\n"
	"vpio_cost_probe_int3:\n"
	"	nop\n"
	"	ret\n"
	".size vpio_cost_site_int3, . - vpio_cost_site_int3\n"
	".globl vpio_cost_site_nop5\n"
	".type vpio_cost_site_nop5, @function\n"
	"vpio_cost_site_nop5:\n"
	"	movl %edx, %ecx\n"
	"	movl %edi, %edx\n"
	"	movl %esi, %eax\n"
	".globl vpio_cost_probe_nop5\n"
	"vpio_cost_probe_nop5:\n"
	"	.byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n"
	"	ret\n"
	".size vpio_cost_site_nop5, . - vpio_cost_site_nop5\n");

#define VPIO_IOMAP_SITE(n) \
	".globl vpio_iomap_site_" #n "\n" \
	".type vpio_iomap_site_" #n ", @function\n" \
	"vpio_iomap_site_" #n ":\n" \
	"	nop\n" \
	"	movq %rdi, %rax\n" \
	"	ret\n" \
	".size vpio_iomap_site_" #n ", . - vpio_iomap_site_" #n "\n"
__asm__(".text\n" VPIO_IOMAP_SITE(0) VPIO_IOMAP_SITE(1) VPIO_IOMAP_SITE(2) VPIO_IOMAP_SITE(3));

uintptr_t vpio_iomap_probe_address(int which)
{
	uint64_t (*const sites[])(uint64_t, uint64_t) = { vpio_iomap_site_0, vpio_iomap_site_1, vpio_iomap_site_2, vpio_iomap_site_3 };
	return (uintptr_t)sites[which & 3];
}

extern const unsigned char vpio_cost_probe_int3[], vpio_cost_probe_nop5[];

uintptr_t vpio_cost_probe_address(int nop5)
{
	return (uintptr_t)(nop5 ? vpio_cost_probe_nop5 : vpio_cost_probe_int3);
}

struct destroy_slice {
	struct bpf_link **links;
	int first, count, stride;
};

static void *destroy_slice(void *arg)
{
	struct destroy_slice *slice = arg;
	for (int i = slice->first; i < slice->count; i += slice->stride)
		bpf_link__destroy(slice->links[i]);
	return NULL;
}

void vpio_destroy_links(struct bpf_link **links, int count, int threads)
{
	pthread_t tids[64];
	int running[64] = { 0 };
	struct destroy_slice slices[64];

	if (threads > 64)
		threads = 64;
	if (threads < 1)
		threads = 1;
	for (int t = 0; t < threads; t++)
		slices[t] = (struct destroy_slice){ .links = links, .first = t, .count = count, .stride = threads };
	for (int t = 1; t < threads; t++)
		running[t] = pthread_create(&tids[t], NULL, destroy_slice, &slices[t]) == 0;
	for (int t = 0; t < threads; t++)
		if (!running[t])
			destroy_slice(&slices[t]); /* slice 0, and any whose thread did not start */
	for (int t = 1; t < threads; t++)
		if (running[t])
			pthread_join(tids[t], NULL);
}

int vpio_set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t size)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map;
	size_t map_size = 0;
	char *data;

	if (!btf)
		return -ENOENT;
	bpf_object__for_each_map(map, obj) {
		const char *map_name = bpf_map__name(map);
		size_t len = strlen(map_name);
		if (len >= 7 && strcmp(map_name + len - 7, ".rodata") == 0)
			break;
	}
	if (!map)
		return -ENOENT;
	data = (char *)bpf_map__initial_value(map, &map_size); /* libbpf 1.1 returns const; the initial value is writable before load */
	if (!data)
		return -ENOENT;
	int id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return -ENOENT;
	const struct btf_type *sec = btf__type_by_id(btf, id);
	const struct btf_var_secinfo *v = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, v++) {
		const struct btf_type *var = btf__type_by_id(btf, v->type);
		if (strcmp(btf__name_by_offset(btf, var->name_off), name) != 0)
			continue;
		if (v->size != size || v->offset + size > map_size)
			return -EINVAL;
		memcpy(data + v->offset, value, size);
		return 0;
	}
	return -ENOENT;
}

int vpio_prog_run_stats(int prog_fd, uint64_t *run_cnt, uint64_t *run_time_ns, uint64_t *misses)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	*run_cnt = info.run_cnt;
	*run_time_ns = info.run_time_ns;
	*misses = info.recursion_misses;
	return 0;
}

uint64_t vpio_atomic_fetch_add_u64(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
uint64_t vpio_atomic_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void vpio_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
void vpio_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

void vpio_stdout_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

/* A growing output buffer for the decompressors: doubles up to `limit`. */
struct grow_buffer {
	uint8_t *data;
	size_t size, capacity, limit;
};

/* Makes room after `size`; -EFBIG when the buffer is full at the limit. */
static int grow(struct grow_buffer *b)
{
	size_t capacity;
	uint8_t *data;

	if (b->capacity >= b->limit)
		return -EFBIG;
	capacity = b->capacity ? b->capacity * 2 : 1u << 20;
	if (capacity > b->limit)
		capacity = b->limit;
	data = realloc(b->data, capacity);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->capacity = capacity;
	return 0;
}

static int decompress_xz(const uint8_t *in, size_t in_len, struct grow_buffer *b)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret ret;
	int err = 0;

	if (lzma_stream_decoder(&s, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = in_len;
	do {
		if (b->size == b->capacity && (err = grow(b)))
			break;
		s.next_out = b->data + b->size;
		s.avail_out = b->capacity - b->size;
		ret = lzma_code(&s, LZMA_FINISH);
		b->size = b->capacity - s.avail_out;
		if (ret != LZMA_OK && ret != LZMA_STREAM_END)
			err = ret == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
	} while (!err && ret != LZMA_STREAM_END);
	lzma_end(&s);
	return err;
}

static int decompress_zstd(const uint8_t *in, size_t in_len, struct grow_buffer *b)
{
	ZSTD_DStream *s = ZSTD_createDStream();
	ZSTD_inBuffer input = { in, in_len, 0 };
	size_t pending = 1;
	int err = 0;

	if (!s)
		return -ENOMEM;
	/* Done when every byte is consumed and the last frame is complete (pending == 0). */
	while (!err && (input.pos < input.size || pending != 0)) {
		if (b->size == b->capacity && (err = grow(b)))
			break;
		ZSTD_outBuffer output = { b->data, b->capacity, b->size };
		pending = ZSTD_decompressStream(s, &output, &input);
		b->size = output.pos;
		if (ZSTD_isError(pending))
			err = -EINVAL;
		else if (input.pos == input.size && pending != 0 && output.pos < output.size)
			err = -EINVAL; /* truncated: the frame wants input there is not */
	}
	ZSTD_freeDStream(s);
	return err;
}

static int decompress_gzip(const uint8_t *in, size_t in_len, struct grow_buffer *b)
{
	z_stream s;
	int ret = Z_OK, err = 0;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, 15 + 16) != Z_OK) /* +16: a gzip header, not zlib's */
		return -ENOMEM;
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)in_len;
	if (in_len > UINT32_MAX)
		err = -EFBIG;
	while (!err && ret != Z_STREAM_END) {
		if (b->size == b->capacity && (err = grow(b)))
			break;
		s.next_out = b->data + b->size;
		s.avail_out = (uInt)(b->capacity - b->size);
		ret = inflate(&s, Z_NO_FLUSH);
		b->size = b->capacity - s.avail_out;
		if (ret == Z_MEM_ERROR)
			err = -ENOMEM;
		else if (ret != Z_OK && ret != Z_STREAM_END && !(ret == Z_BUF_ERROR && s.avail_out == 0))
			err = -EINVAL; /* corrupt, or Z_BUF_ERROR with room left: the input ended early */
	}
	inflateEnd(&s);
	return err;
}

int vpio_decompress(int format, const uint8_t *in, size_t in_len, size_t limit, uint8_t **out, size_t *out_len)
{
	struct grow_buffer b = { NULL, 0, 0, limit };
	int err;

	switch (format) {
	case VPIO_COMPRESSION_XZ: err = decompress_xz(in, in_len, &b); break;
	case VPIO_COMPRESSION_ZSTD: err = decompress_zstd(in, in_len, &b); break;
	case VPIO_COMPRESSION_GZIP: err = decompress_gzip(in, in_len, &b); break;
	default: err = -EINVAL;
	}
	if (err) {
		free(b.data);
		return err;
	}
	*out = b.data;
	*out_len = b.size;
	return 0;
}
