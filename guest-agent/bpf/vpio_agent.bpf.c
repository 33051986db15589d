// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * vpio-agent's in-kernel part: one kprobe program attached at every in/out/ins/outs site of the
 * 8390 and ne2k-pci modules (and at the instruction after each `in`), or, for the RTL8139, at every
 * call of 8139too to the kernel's ioread/iowrite accessors. The bpf cookie is the site id, an index
 * into the `sites` table user space fills before attaching.
 *
 * Every hit goes to user space as a struct vpio_event through the `events` ring buffer. The part of
 * the ordering rule that cannot wait for user space is done here: the program shadows the DP8390's
 * write-only DMA registers and, when a CR write is about to start a remote read, a remote write or a
 * transmit, writes a VPIO_REC_DMA_INTENT record into the host-visible ring *before* the `out`
 * executes (a kprobe fires before its instruction). The ring is the single element of the
 * BPF_F_MMAPABLE array `ring`, whose pages the agent registers with the host.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "vpio_ring.h"
#include "vpio_agent.h"
#include "dp8390.h" /* generated from Sources/DP8390: registers and the CR rule */
#include "rtl8139.h" /* generated from Sources/RTL8139: registers, bits, the ring's length */

/* x86-64 struct pt_regs (arch/x86/include/asm/ptrace.h): no vmlinux.h, no CO-RE needed. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* Set by the agent before load: the NIC's BAR0 I/O port base, and which NIC (VPIO_DEVICE_*). */
const volatile __u16 bar0_base = 0;
const volatile __u8 device = VPIO_DEVICE_NE2000;

#define barrier() asm volatile("" ::: "memory")
/* Descriptor `reg` addresses in TSD0-3 or TSAD0-3 (both blocks are 16-byte aligned), as an index the
 * verifier sees bounded. */
static __always_inline __u32 descriptor_of(__u32 reg)
{
	__u32 i = reg >> 2;

	/* bpf_helpers.h: the compiler forgets what it knows of i, so the mask is not optimised away. */
	barrier_var(i);
	return i & 3;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VPIO_AGENT_EVENTS_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vpio_ring);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VPIO_AGENT_MAX_SITES);
	__type(key, __u32);
	__type(value, struct vpio_site);
} sites SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vpio_shadow);
} shadow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vpio_rtl8139_shadow);
} rtl8139 SEC(".maps");

/* What a CR write does (the DP8390 module's CommandEffect), filled by the agent before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP8390_CR_EFFECT_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} cr_effect SEC(".maps");

/* Mappable: the agent reads it without a lookup syscall, which would make this program skip the
 * probes that fire on that CPU meanwhile (ProgramCounters.swift). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct vpio_stats);
} stats SEC(".maps");

/* Claims the next ring slot, fills a DMA intent and publishes it by writing seq last. */
static __always_inline void write_intent(struct vpio_ring *r, __u32 site, __u8 kind, __u8 command,
					 __u32 start, __u32 count, __u64 access_index, __u64 now)
{
	__u64 n = __sync_fetch_and_add(&r->header.head, 1);
	__u64 index = __sync_fetch_and_add(&r->header.intents_written, 1);
	struct vpio_record *rec = &r->records[n & (VPIO_RING_CAPACITY - 1)];

	rec->type = VPIO_REC_DMA_INTENT;
	rec->flags = 0;
	rec->site = site;
	rec->time_ns = now;
	rec->intent.kind = kind;
	rec->intent.command = command;
	rec->intent.reserved = 0;
	rec->intent.start = start;
	rec->intent.count = count;
	rec->intent.reserved2 = 0;
	rec->intent.intent_index = index;
	rec->intent.access_index = access_index;
	rec->intent.reserved3 = 0;
	/* The body is complete before seq says so: the compiler keeps the order (barrier) and x86
	 * keeps stores in program order (TSO), so the JITed stores reach guest RAM in this order. */
	barrier();
	rec->seq = n + 1;
}

/* An `out` of `value` to BAR0 + `reg`: shadow the write-only registers, announce DMA starts. */
static __always_inline __u32 on_register_write(struct vpio_ring *r, __u32 site, __u32 reg, __u8 value,
					       __u64 access_index, __u64 now)
{
	__u32 zero = 0, written = 0;
	struct vpio_shadow *sh = bpf_map_lookup_elem(&shadow, &zero);

	if (!sh)
		return 0;
	if (reg == DP8390_CR) {
		/* What the write does, by the one CR rule (run state before it, then remote DMA and transmit). */
		__u32 index = (__u32)(sh->running & 1) << 8 | value;
		__u8 *entry = bpf_map_lookup_elem(&cr_effect, &index);
		__u8 effect = entry ? *entry : 0;
		__u8 rd = effect & DP8390_EFFECT_REMOTE_MASK;
		__u32 remote_start = sh->rsar0 | ((__u32)sh->rsar1 << 8);
		__u32 remote_count = sh->rbcr0 | ((__u32)sh->rbcr1 << 8);

		if (rd == DP8390_REMOTE_READ) {
			write_intent(r, site, VPIO_DMA_REMOTE_READ, value, remote_start, remote_count, access_index, now);
			written++;
		} else if (rd == DP8390_REMOTE_WRITE) {
			write_intent(r, site, VPIO_DMA_REMOTE_WRITE, value, remote_start, remote_count, access_index, now);
			written++;
		}
		if (effect & DP8390_EFFECT_STARTS_TRANSMIT) {
			write_intent(r, site, VPIO_DMA_TRANSMIT, value, (__u32)sh->tpsr << 8,
				     sh->tbcr0 | ((__u32)sh->tbcr1 << 8), access_index, now);
			written++;
		}
		sh->running = (effect & DP8390_EFFECT_RUNNING_AFTER) ? 1 : 0;
		sh->page = value >> DP8390_CR_PAGE_SHIFT;
		sh->last_cr = value;
		return written;
	}
	if (sh->page != 0)
		return 0;
	switch (reg) {
	case DP8390_P0_TPSR:  sh->tpsr = value; break;
	case DP8390_P0_TBCR0: sh->tbcr0 = value; break;
	case DP8390_P0_TBCR1: sh->tbcr1 = value; break;
	case DP8390_P0_RSAR0: sh->rsar0 = value; break;
	case DP8390_P0_RSAR1: sh->rsar1 = value; break;
	case DP8390_P0_RBCR0: sh->rbcr0 = value; break;
	case DP8390_P0_RBCR1: sh->rbcr1 = value; break;
	}
	return 0;
}

/* The bytes the RTL8139's receiver may write once it runs on the shadowed ring. */
static __always_inline __u32 rtl8139_ring_bytes(__u32 rcr)
{
	__u32 overhang = (rcr & RTL8139_RCR_WRAP) ? RTL8139_RING_OVERHANG : 0;

	switch ((rcr >> RTL8139_RCR_RBLEN_SHIFT) & 3) {
	case 0: return RTL8139_RING_BYTES_0 + overhang;
	case 1: return RTL8139_RING_BYTES_1 + overhang;
	case 2: return RTL8139_RING_BYTES_2 + overhang;
	default: return RTL8139_RING_BYTES_3 + overhang;
	}
}

/* A write of `width` bytes of `value` to RTL8139 register `reg`: the DMAs it starts, announced in the
 * order the host checks them — transmits by descriptor, then the ring. A TSD write with OWN clear starts
 * its descriptor now if TE is on, else when a CR write sets TE; CR's RST puts descriptors, RCR and
 * RE/TE to their reset values; a write to CR, RBSTART or RCR leaves a running receiver on a ring. */
static __always_inline __u32 rtl8139_register_write(struct vpio_ring *r, struct vpio_stats *st, __u32 site, __u32 reg,
						    __u32 width, __u32 value, __u64 access_index, __u64 now)
{
	__u32 zero = 0, written = 0, steers = 0;
	struct vpio_rtl8139_shadow *sh = bpf_map_lookup_elem(&rtl8139, &zero);

	if (!sh)
		return 0;
	if (reg >= RTL8139_TSD && reg < RTL8139_TSD + 16 && width == 4 && (reg & 3) == 0) {
		__u32 i = descriptor_of(reg);

		if (value & RTL8139_TSD_OWN) {
			sh->pending &= ~(1u << i);
		} else if (sh->command & RTL8139_CR_TE) {
			write_intent(r, site, VPIO_DMA_BUS_TRANSMIT, i, sh->tsad[i], value & RTL8139_TSD_SIZE_MASK,
				     access_index, now);
			sh->pending &= ~(1u << i);
			written++;
		} else {
			sh->pending |= 1u << i;
			sh->size[i] = value & RTL8139_TSD_SIZE_MASK;
		}
		return written;
	}
	if (reg >= RTL8139_TSAD && reg < RTL8139_TSAD + 16 && width == 4 && (reg & 3) == 0) {
		sh->tsad[descriptor_of(reg)] = value;
		return 0;
	}
	if (reg == RTL8139_RBSTART && width == 4) {
		sh->rbstart = value;
		steers = 1;
	} else if (reg == RTL8139_RCR && width == 4) {
		sh->rcr = value;
		steers = 1;
	} else if (reg == RTL8139_CR && width == 1) {
		if (value & RTL8139_CR_RST) {
			sh->rcr = 0;
			sh->pending = 0;
		}
		sh->command = value & (RTL8139_CR_RE | RTL8139_CR_TE);
		if (sh->command & RTL8139_CR_TE) {
			for (__u32 i = 0; i < 4; i++) {
				if (!(sh->pending & (1u << i)))
					continue;
				write_intent(r, site, VPIO_DMA_BUS_TRANSMIT, i, sh->tsad[i], sh->size[i], access_index, now);
				written++;
			}
			sh->pending = 0;
		}
		steers = 1;
	} else if ((reg < RTL8139_TSAD + 16 && reg + width > RTL8139_TSD) || (reg < RTL8139_RBSTART + 4 && reg + width > RTL8139_RBSTART) ||
		   (reg <= RTL8139_CR && reg + width > RTL8139_CR) || (reg < RTL8139_RCR + 4 && reg + width > RTL8139_RCR)) {
		__sync_fetch_and_add(&st->unmodelled, 1);
	}
	if (steers && (sh->command & RTL8139_CR_RE)) {
		write_intent(r, site, VPIO_DMA_RECEIVE_RING, reg, sh->rbstart, rtl8139_ring_bytes(sh->rcr), access_index, now);
		written++;
	}
	return written;
}

/* The port an iomap call touches (its cookie less PIO_OFFSET), or -1 when it is not one of BAR0's. */
static __always_inline int rtl8139_port(__u64 cookie)
{
	if (cookie < VPIO_PIO_OFFSET + bar0_base || cookie >= VPIO_PIO_OFFSET + bar0_base + RTL8139_REGISTER_PORTS)
		return -1;
	return (int)(cookie - VPIO_PIO_OFFSET);
}

SEC("kprobe")
int vpio_site(struct pt_regs *ctx)
{
	__u32 id = (__u32)bpf_get_attach_cookie(ctx);
	__u32 zero = 0, key = id & (VPIO_AGENT_MAX_SITES - 1);
	struct vpio_stats *st = bpf_map_lookup_elem(&stats, &zero);
	struct vpio_ring *r = bpf_map_lookup_elem(&ring, &zero);
	struct vpio_site *s = bpf_map_lookup_elem(&sites, &key);
	__u64 now = bpf_ktime_get_ns();
	__u64 count = 0, before = 0, value = ctx->ax;
	__u16 port = (__u16)ctx->dx;

	if (!st || !r || !s)
		return 0;
	__sync_fetch_and_add(&st->hits, 1);
	if (id >= VPIO_AGENT_MAX_SITES || s->kind == VPIO_SITE_NONE) {
		__sync_fetch_and_add(&st->unknown_sites, 1);
		return 0;
	}
	switch (s->kind) {
	case VPIO_SITE_IN:
	case VPIO_SITE_OUT:
	case VPIO_SITE_CALL_READ:
	case VPIO_SITE_CALL_WRITE:
		count = 1;
		break;
	case VPIO_SITE_INS:
	case VPIO_SITE_OUTS:
		count = s->rep ? (__u64)(__u32)ctx->cx : 1;
		break;
	}
	if (count)
		before = __sync_fetch_and_add(&r->header.accesses_seen, count);
	else
		before = r->header.accesses_seen;

	if (device == VPIO_DEVICE_RTL8139) {
		/* ioreadN(addr), iowriteN(value, addr): the arguments are set when the call is about to run.
		 * Both are loaded first: the verifier refuses a context load at a computed offset. */
		__u64 di = ctx->di, si = ctx->si;
		int reg = rtl8139_port(s->kind == VPIO_SITE_CALL_WRITE ? si : di);

		value = s->kind == VPIO_SITE_CALL_WRITE ? di : 0;
		if (reg < 0) {
			__sync_fetch_and_add(&st->foreign, 1);
			port = 0;
		} else {
			port = (__u16)reg;
			if (s->kind == VPIO_SITE_CALL_WRITE) {
				__u32 n = rtl8139_register_write(r, st, id, port - bar0_base, s->width, (__u32)value, before, now);
				if (n)
					__sync_fetch_and_add(&st->intents, n);
			}
		}
	} else if (s->kind == VPIO_SITE_OUT && s->width == 1 && port >= bar0_base && port < bar0_base + DP8390_REGISTER_PORTS) {
		__u32 n = on_register_write(r, id, port - bar0_base, (__u8)value, before, now);
		if (n)
			__sync_fetch_and_add(&st->intents, n);
	}

	struct vpio_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&st->events_lost, 1);
		return 0;
	}
	e->site = id;
	e->port = port;
	e->kind = s->kind;
	e->width = s->width;
	e->value = value;
	e->count = count;
	e->access_index = before;
	e->time_ns = now;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
