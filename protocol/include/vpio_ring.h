/* SPDX-License-Identifier: MIT */
/*
 * The VPIO agent–host ABI: the shared-memory ring the guest agent writes and the host reads
 * through guest RAM, and the vendor-specific PCI capability through which the agent registers it.
 * Fixed-width fields only, no includes beyond the kernel's __u* types, so the BPF program,
 * user-space C and the Swift mirror (protocol/swift) all read the same bytes. Little endian.
 * Specified in protocol/README.md; a change to the ring's layout bumps VPIO_RING_VERSION, a change
 * to the capability's bumps VPIO_CAP_VERSION.
 */
#ifndef VPIO_RING_H
#define VPIO_RING_H

#ifndef __VPIO_HAVE_KERNEL_TYPES
#include <linux/types.h>
#endif

#define VPIO_RING_MAGIC     0x52495056u /* "VPIR" */
#define VPIO_RING_VERSION   2 /* 2: intent kinds 4 and 5 (the RTL8139); same layout as 1 */
#define VPIO_PAGE_SIZE      4096
#define VPIO_RECORD_SIZE    64
#define VPIO_RING_CAPACITY  256 /* records; a power of two */
#define VPIO_RING_PAGES     (1 + VPIO_RING_CAPACITY * VPIO_RECORD_SIZE / VPIO_PAGE_SIZE) /* header page + 4 */
#define VPIO_RING_BYTES     (VPIO_RING_PAGES * VPIO_PAGE_SIZE)

/* Record types. */
#define VPIO_REC_DMA_INTENT 1 /* written by the BPF probe before a DMA-starting `out` executes */
#define VPIO_REC_STATE      2 /* the agent's model: accesses seen, reusable, unsure */
#define VPIO_REC_HEARTBEAT  3 /* the agent is alive */
#define VPIO_REC_ERROR      4 /* the agent hit a problem it wants the host to know */

/* DMA intent kinds: the DP8390 command that starts them, or the RTL8139 write that does. */
#define VPIO_DMA_REMOTE_READ  1 /* CR.RD = 001 */
#define VPIO_DMA_REMOTE_WRITE 2 /* CR.RD = 010 */
#define VPIO_DMA_TRANSMIT     3 /* CR.TXP */
#define VPIO_DMA_BUS_TRANSMIT 4 /* RTL8139 TSDn write: reads count bytes of guest memory at start (TSADn) */
#define VPIO_DMA_RECEIVE_RING 5 /* RTL8139 write leaving the receiver on a ring: count bytes at start (RBSTART) */

/* Page 0 of the ring: identification, then the producer word and the counters on their own
 * cache lines (the line at 128 stays free: the host only reads guest RAM, it has no tail to write). */
struct vpio_ring_header {
	__u32 magic;            /* 0: VPIO_RING_MAGIC, written last by the agent when the ring is ready */
	__u16 version;          /* 4: VPIO_RING_VERSION */
	__u16 record_size;      /* 6: VPIO_RECORD_SIZE */
	__u32 capacity;         /* 8: VPIO_RING_CAPACITY */
	__u32 agent_pid;        /* 12 */
	__u64 reserved0[6];     /* 16 */
	__u64 head;             /* 64: slots claimed so far (producers: atomic fetch-add) */
	__u64 pad_head[7];
	__u64 reserved_consumer[8]; /* 128: 0; was host_tail, which no host wrote: the host never writes guest RAM */
	__u64 accesses_seen;    /* 192: device accesses the probes observed (a rep string op adds its count) */
	__u64 intents_written;  /* 200: DMA intent records written */
	__u64 unseen_sites;     /* 208: sites the kernel refused to probe (accesses there are invisible) */
	__u64 reserved1[5];     /* 216 */
};

struct vpio_dma_intent {
	__u8  kind;             /* 24: VPIO_DMA_* */
	__u8  command;          /* 25: the CR value being written; RTL8139: the descriptor (4), the register (5) */
	__u16 reserved;         /* 26 */
	__u32 start;            /* 28: first device address (RSAR, or TPSR << 8); RTL8139: guest-physical */
	__u32 count;            /* 32: bytes (RBCR, or TBCR; TSD's size; the ring with its overhang) */
	__u32 reserved2;        /* 36 */
	__u64 intent_index;     /* 40: 0 for the first intent since the agent started, then +1 */
	__u64 access_index;     /* 48: accesses_seen when this access was about to execute */
	__u64 reserved3;        /* 56 */
};

struct vpio_state_report {
	__u64 accesses;         /* 24: device accesses the agent's model consumed */
	__u64 dma_intents;      /* 32: DMA starts the agent's model saw */
	__u32 reusable;         /* 40: 1 if the device is serially reusable now */
	__u32 unsure;           /* 44: 1 if the model may be wrong (an access happened where no probe sits) */
	__u64 events_lost;      /* 48: BPF ring-buffer events dropped */
	__u64 reserved;         /* 56 */
};

struct vpio_heartbeat {
	__u64 uptime_ns;        /* 24 */
	__u64 accesses;         /* 32 */
	__u64 reserved[3];      /* 40 */
};

struct vpio_error {
	__u32 code;             /* 24 */
	__u32 detail;           /* 28 */
	char  text[32];         /* 32: NUL-padded ASCII */
};

/* One 64-byte slot. A producer claims slot n by fetch-add on head, writes the body, then
 * writes seq = n + 1 last (a release store): 0 means never written, and a reader that finds
 * seq != n + 1 at slot n % capacity knows the slot is not (or no longer) record n. */
struct vpio_record {
	__u64 seq;              /* 0 */
	__u16 type;             /* 8: VPIO_REC_* */
	__u16 flags;            /* 10 */
	__u32 site;             /* 12: probe site id for BPF records, else 0 */
	__u64 time_ns;          /* 16: guest monotonic time */
	union {                 /* 24 */
		struct vpio_dma_intent intent;
		struct vpio_state_report state;
		struct vpio_heartbeat heartbeat;
		struct vpio_error error;
	};
};

/* The whole shared area: the value of the agent's BPF_F_MMAPABLE array map (one element). */
struct vpio_ring {
	struct vpio_ring_header header;
	__u8 header_pad[VPIO_PAGE_SIZE - sizeof(struct vpio_ring_header)];
	struct vpio_record records[VPIO_RING_CAPACITY];
};

/*
 * The vendor-specific capability (PCI cap ID 0x09) in the NIC's config space, at
 * VPIO_CAP_OFFSET. The agent writes the guest-physical address of every ring page, then
 * VPIO_CMD_REGISTER to `command`; the host validates and answers in `status`.
 */
#define VPIO_CAP_ID          0x09
#define VPIO_CAP_OFFSET      0x40
#define VPIO_CAP_VERSION     2 /* 2: anomalies at 88 (version 1 ended at last_error, 88 bytes) */
#define VPIO_CAP_MAX_PAGES   8

#define VPIO_CMD_REGISTER    1
#define VPIO_CMD_UNREGISTER  2

/* status bits */
#define VPIO_STATUS_REGISTERED  0x1  /* ring accepted and being read */
#define VPIO_STATUS_REJECTED    0x2  /* last registration refused; reason in last_error */
#define VPIO_STATUS_FALLBACK    0x4  /* host fell back to heavier hooking */
#define VPIO_STATUS_MODE_SHIFT  8    /* bits 8..11: enforced mode (0 emulated, 1 vmm-model, 2 cooperative, 3 passthrough, 4 on-demand) */

/* last_error values */
#define VPIO_ERR_NONE          0
#define VPIO_ERR_PAGE_COUNT    1  /* page_count is 0 or above VPIO_CAP_MAX_PAGES / what the ABI needs */
#define VPIO_ERR_PAGE_ADDRESS  2  /* a page is unaligned or outside the guest RAM mapped for DMA */
#define VPIO_ERR_BAD_HEADER    3  /* magic, version, record size or capacity wrong */

/* Packed to 4-byte alignment: config space is dwords, and 92 bytes is not a multiple of the
 * 8 the u64 pages would otherwise round the size up to. */
struct __attribute__((packed, aligned(4))) vpio_capability {
	__u8  cap_id;           /* 0: VPIO_CAP_ID (RO) */
	__u8  next;             /* 1: next capability (RO) */
	__u8  length;           /* 2: sizeof(struct vpio_capability) (RO) */
	__u8  version;          /* 3: VPIO_CAP_VERSION (RO) */
	__u32 status;           /* 4: VPIO_STATUS_* (RO) */
	__u32 command;          /* 8: VPIO_CMD_* (RW; reads back 0 once handled) */
	__u32 page_count;       /* 12: (RW) */
	__u64 pages[VPIO_CAP_MAX_PAGES]; /* 16: guest-physical page addresses (RW) */
	__u32 violations;       /* 80: DMA starts the host denied (RO) */
	__u32 last_error;       /* 84: VPIO_ERR_* (RO) */
	__u32 anomalies;        /* 88: hostile-but-harmless device accesses the host noticed (RO) */
};

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct vpio_ring_header) == 256, "ring header layout");
_Static_assert(sizeof(struct vpio_record) == VPIO_RECORD_SIZE, "record layout");
_Static_assert(__builtin_offsetof(struct vpio_record, intent.access_index) == 48, "intent layout");
_Static_assert(__builtin_offsetof(struct vpio_record, state.events_lost) == 48, "state layout");
_Static_assert(__builtin_offsetof(struct vpio_record, error.text) == 32, "error layout");
_Static_assert(__builtin_offsetof(struct vpio_ring, records) == VPIO_PAGE_SIZE, "records start on page 1");
_Static_assert(sizeof(struct vpio_ring) == VPIO_RING_BYTES, "ring size");
_Static_assert(__builtin_offsetof(struct vpio_ring_header, accesses_seen) == 192, "header layout");
_Static_assert(__builtin_offsetof(struct vpio_capability, anomalies) == 88, "capability layout");
_Static_assert(sizeof(struct vpio_capability) == 92, "capability size");
_Static_assert(VPIO_CAP_OFFSET + sizeof(struct vpio_capability) <= 256, "capability fits config space");
#endif

#endif /* VPIO_RING_H */
