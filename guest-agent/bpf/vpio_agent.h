/* SPDX-License-Identifier: MIT */
/*
 * The agent's own records: what the BPF program sends to vpio-agent through the BPF ring
 * buffer, and the site table user space fills before attaching. Layout only, no includes
 * (libbpf-bootstrap shape): the BPF side gets __u* from <linux/types.h>, Swift from the shim.
 * Not part of the host ABI (that is protocol/include/vpio_ring.h).
 */
#ifndef VPIO_AGENT_H
#define VPIO_AGENT_H

#define VPIO_AGENT_MAX_SITES 512   /* power of two: the site id is masked for the verifier */
#define VPIO_AGENT_EVENTS_BYTES (1 << 21)

/* Site kinds (struct vpio_site.kind). A probe fires before its instruction executes. */
#define VPIO_SITE_NONE  0
#define VPIO_SITE_IN    1          /* in  (%dx),%al|%ax|%eax : one access; value only at the post site */
#define VPIO_SITE_OUT   2          /* out %al|%ax|%eax,(%dx) : one access, value in ax */
#define VPIO_SITE_INS   3          /* [rep] ins : cx accesses (1 without rep) */
#define VPIO_SITE_OUTS  4          /* [rep] outs */
#define VPIO_SITE_POST  5          /* the instruction after an `in`: ax holds the value read */
#define VPIO_SITE_CALL_READ  6     /* a call (or tail jmp) to ioreadN(addr in di): one access */
#define VPIO_SITE_CALL_WRITE 7     /* a call (or tail jmp) to iowriteN(value in di, addr in si): one access */

/* The device the program shadows (rodata `device`). */
#define VPIO_DEVICE_NE2000  0      /* ne2k-pci's in/out sites; port in dx */
#define VPIO_DEVICE_RTL8139 1      /* 8139too's iomap calls; with use_io=1 the address is PIO_OFFSET + port */

/* lib/iomap.c: ioport_map() returns PIO_OFFSET + port as the cookie ioread/iowrite take. */
#define VPIO_PIO_OFFSET 0x10000

/* Per-site description, filled by user space in the `sites` array map before attaching. */
struct vpio_site {
	__u8  kind;                /* VPIO_SITE_* */
	__u8  width;               /* 1, 2 or 4 bytes per access */
	__u8  rep;                 /* 1: rep prefix (count in cx) */
	__u8  reserved;
	__u32 pair;                /* for POST: the id of its `in` site; for IN: the id of its POST site */
};

/* One ring-buffer event per probe hit (a rep string op is one event; its count is in `count`). */
struct vpio_event {
	__u32 site;                /* bpf cookie = index into the site table */
	__u16 port;                /* dx */
	__u8  kind;                /* VPIO_SITE_* (copied from the site table) */
	__u8  width;
	__u64 value;               /* ax (OUT: the value written; POST: the value read) */
	__u64 count;               /* accesses this hit stands for (cx for rep string ops, else 1; 0 for POST) */
	__u64 access_index;        /* accesses_seen before this hit */
	__u64 time_ns;             /* bpf_ktime_get_ns */
};

/* The BPF program's private counters (array map `stats`, one element). */
struct vpio_stats {
	__u64 hits;                /* probe runs */
	__u64 events_lost;         /* ring-buffer reservations that failed */
	__u64 unknown_sites;       /* cookies outside the site table */
	__u64 intents;             /* DMA intents written to the host ring */
	__u64 foreign;             /* RTL8139: accesses to no port of BAR0 (the driver maps BAR1: MMIO) */
	__u64 unmodelled;          /* RTL8139: writes to a DMA-steering register in a width the program does not model */
};

/* The write-only DP8390 registers the in-kernel part shadows (array map `shadow`, one element). */
struct vpio_shadow {
	__u8  page;                /* CR.PS of the last CR write */
	__u8  rsar0, rsar1;        /* remote start address */
	__u8  rbcr0, rbcr1;        /* remote byte count */
	__u8  tpsr;                /* transmit page start */
	__u8  tbcr0, tbcr1;        /* transmit byte count */
	__u8  last_cr;
	__u8  running;             /* the NIC runs (the CR rule's run state after the last CR write) */
	__u8  reserved[6];
};

/* The RTL8139 registers the in-kernel part shadows to announce its bus-master DMA (map `rtl8139`). */
struct vpio_rtl8139_shadow {
	__u32 tsad[4];             /* transmit buffers, guest-physical */
	__u32 rbstart;             /* the receive ring, guest-physical */
	__u32 rcr;                 /* RBLEN and WRAP fix the ring's length */
	__u16 size[4];             /* each pending descriptor's TSD size */
	__u8  command;             /* CR's RE and TE as last written */
	__u8  pending;             /* descriptors written with OWN clear while TE was off: they start when TE is set */
	__u8  reserved[6];
};

#endif /* VPIO_AGENT_H */
