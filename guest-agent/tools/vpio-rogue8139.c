/* SPDX-License-Identifier: MIT */
/*
 * vpio-rogue8139 MODE: root in the guest points the RTL8139's bus-master DMA at memory the guest does
 * not own (issue 17). Each mode aims the device at targets of one kind and prints one line,
 * VPIO-RESULT rogue8139-MODE <target=outcome ...> ok|failed, where ok means every target was denied
 * the way the host documents it and a control transmit from a page of our own went out before and
 * after:
 *
 *   tx-outside   TSAD0 at each target, then TSD0 = 60 (start): the transmit must end aborted (TSD
 *                OWN|TABT, ISR TER) without being sent
 *   rx-outside   with the receiver on (RCR accepting nothing, on the driver's old ring) RBSTART set to
 *                each target: the write must be absorbed (RBSTART reads back the old ring); with the
 *                receiver off, RBSTART set to the target and then CR = RE: the receiver must stay off
 *   ring         a ring of our own registered through the VPIO capability (as the agent's is), then
 *                TSAD0 and RBSTART aimed at its first page: both denied as for memory outside
 *
 * Targets outside: `straddle` (the last 32 bytes of RAM, so the buffer or ring runs past its end: the
 * whole range must be checked, not its start), `hole` (0xFEC00000, the IOAPIC: a device, not memory)
 * and `past` (16 MiB beyond RAM). RAM's end is the top of System RAM in /proc/iomem below 4 GiB
 * rounded up to a MiB (QEMU's sizes are whole MiB; the firmware's reserved top pages are still RAM).
 *
 * The registers are the datasheet's, as an attacker knows them. The tool uses port I/O (BAR0), which
 * reaches the same registers whichever BAR the driver uses. The interface is taken down first (8139too
 * stops the chip and frees its interrupt and rings) and brought up after (rtl8139_hw_start sets every
 * register again). The host's statistics hold its denial counters; the end-to-end test checks them.
 */
#include <sys/io.h>
#include <time.h>

#include "vpio_guest.h"

enum {
	TSD0 = 0x10, TSAD0 = 0x20, RBSTART = 0x30, CR = 0x37, IMR = 0x3C, ISR = 0x3E, RCR = 0x44,
};
enum { CR_RE = 0x08, CR_TE = 0x04 };
enum { ISR_TOK = 0x04, ISR_TER = 0x08 };
enum { TSD_OWN = 0x2000, TSD_TOK = 0x8000, TSD_TABT = 0x40000000 };
enum { FRAME = 60, RING_BYTES = 8192 + 16 };
/* vpio-host completes or aborts a transmit within the TSD write; the bound keeps a device that never
 * does from hanging the tool (~1.3 s at the ~65 µs a port access takes under TCG). */
enum { POLLS = 20000 };

struct target {
	const char *name;
	uint64_t address;
};

struct rogue {
	struct vpio_nic nic;
	uint8_t *page;       /* one locked page of our own: the control frame */
	uint64_t page_address;
	uint64_t ram_end;
	int ok;
};

static uint32_t in32(const struct rogue *r, unsigned port) { return inl(r->nic.io_base + port); }
static void out32(const struct rogue *r, unsigned port, uint32_t value) { outl(value, r->nic.io_base + port); }
static uint8_t in8(const struct rogue *r, unsigned port) { return inb(r->nic.io_base + port); }
static void out8(const struct rogue *r, unsigned port, uint8_t value) { outb(value, r->nic.io_base + port); }
static void out16(const struct rogue *r, unsigned port, uint16_t value) { outw(value, r->nic.io_base + port); }
static uint16_t in16(const struct rogue *r, unsigned port) { return inw(r->nic.io_base + port); }

/* The top of System RAM below 4 GiB (TSAD and RBSTART are 32 bits), rounded up to a MiB; 0 if unknown. */
static uint64_t ram_end(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	uint64_t top = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long start, end;
		if (line[0] != ' ' && sscanf(line, "%llx-%llx", &start, &end) == 2 && strstr(line, "System RAM")
		    && end < 0x100000000ull && end + 1 > top)
			top = end + 1;
	}
	if (f)
		fclose(f);
	return (top + 0xFFFFF) & ~0xFFFFFull;
}

/* A locked page of our own holding a broadcast frame of the local experimental EtherType 0x88B5. */
static int map_control_page(struct rogue *r)
{
	r->page = mmap(NULL, VPIO_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
	if (r->page == MAP_FAILED || mlock(r->page, VPIO_PAGE_SIZE) != 0)
		return 0;
	memset(r->page, 0, VPIO_PAGE_SIZE);
	memset(r->page, 0xFF, 6);
	for (int i = 0; i < 6; i++)
		r->page[6 + i] = in8(r, i);
	r->page[12] = 0x88;
	r->page[13] = 0xB5;
	memcpy(r->page + 14, "vpio-rogue8139 control", 22);
	return vpio_physical_pages(r->page, 1, &r->page_address) == 0;
}

/* Starts descriptor 0 from `address` and waits (bounded) until the device hands it back; TSD0 then. */
static uint32_t transmit(const struct rogue *r, uint64_t address)
{
	out16(r, ISR, 0xFFFF);
	out32(r, TSAD0, (uint32_t)address);
	out32(r, TSD0, FRAME);
	uint32_t status = in32(r, TSD0);
	for (int i = 0; i < POLLS && !(status & TSD_OWN); i++)
		status = in32(r, TSD0);
	return status;
}

static void control(struct rogue *r, const char *label)
{
	uint32_t status = transmit(r, r->page_address);
	int sent = (status & TSD_TOK) && (in16(r, ISR) & ISR_TOK);
	printf("%s=%s ", label, sent ? "sent" : "failed");
	r->ok &= sent;
}

static void denied_transmit(struct rogue *r, const struct target *t)
{
	uint32_t status = transmit(r, t->address);
	uint16_t isr = in16(r, ISR);
	int denied = (status & TSD_OWN) && (status & TSD_TABT) && !(status & TSD_TOK) && (isr & ISR_TER);
	printf("tx-%s=0x%llx:%s(tsd=0x%x,isr=0x%x) ", t->name, (unsigned long long)t->address,
	       denied ? "aborted" : "NOT-DENIED", status, isr);
	r->ok &= denied;
}

/* Receiver on, accepting nothing (so the old ring, freed by the driver, is never written): a ring
 * move must be absorbed. Receiver off: the ring may be set, but enabling the receiver on it must not. */
static void denied_ring(struct rogue *r, const struct target *t, uint32_t old_ring)
{
	out32(r, RCR, 0);
	out32(r, RBSTART, old_ring);
	out8(r, CR, CR_RE | CR_TE);
	out32(r, RBSTART, (uint32_t)t->address);
	uint32_t kept = in32(r, RBSTART);
	out8(r, CR, CR_TE);
	out32(r, RBSTART, (uint32_t)t->address);
	out8(r, CR, CR_RE | CR_TE);
	uint8_t command = in8(r, CR);
	int denied = kept == old_ring && !(command & CR_RE);
	printf("rx-%s=0x%llx:%s(rbstart=0x%x,cr=0x%x) ", t->name, (unsigned long long)t->address,
	       denied ? "refused" : "NOT-DENIED", kept, command);
	out8(r, CR, CR_TE);
	out32(r, RBSTART, old_ring);
	r->ok &= denied;
}

/* Registers a ring of our own; returns its first page's address, or 0 when the host refused it. */
static uint64_t register_own_ring(const struct rogue *r)
{
	uint64_t pages[VPIO_RING_PAGES];
	struct vpio_ring *ring = vpio_map_ring(pages);
	if (!ring)
		return 0;
	vpio_write_header(ring);
	vpio_announce(&r->nic, pages, VPIO_RING_PAGES);
	return (vpio_cap_read32(&r->nic, VPIO_CAP_FIELD(status)) & VPIO_STATUS_REGISTERED) ? pages[0] : 0;
}

static void attack(struct rogue *r, const char *mode, const struct target *targets, int count)
{
	uint32_t old_ring = in32(r, RBSTART);
	out16(r, IMR, 0);
	out8(r, CR, CR_TE);
	control(r, "control-before");
	for (int i = 0; i < count; i++) {
		if (strcmp(mode, "rx-outside") != 0)
			denied_transmit(r, &targets[i]);
		if (strcmp(mode, "tx-outside") != 0)
			denied_ring(r, &targets[i], old_ring);
	}
	control(r, "control-after");
	out8(r, CR, 0);
	out16(r, ISR, 0xFFFF);
}

static int run(struct rogue *r, const char *mode)
{
	printf("VPIO-RESULT rogue8139-%s nic=%s if=%s ram_end=0x%llx ", mode, r->nic.bdf, r->nic.ifname,
	       (unsigned long long)r->ram_end);
	if (!vpio_set_link(&r->nic, 0)) {
		printf("error=[%s down: %s] failed\n", r->nic.ifname, strerror(errno));
		return 1;
	}
	if (strcmp(mode, "ring") == 0) {
		uint64_t own = register_own_ring(r);
		if (!own) {
			printf("error=[the host did not register our ring] ");
			r->ok = 0;
		} else {
			attack(r, mode, &(struct target){"agent-ring", own}, 1);
			vpio_cap_write32(&r->nic, VPIO_CAP_FIELD(command), VPIO_CMD_UNREGISTER);
		}
	} else {
		const struct target outside[] = {
			{"straddle", r->ram_end - 32}, {"hole", 0xFEC00000u}, {"past", r->ram_end + (16u << 20)},
		};
		attack(r, mode, outside, 3);
	}
	if (!vpio_set_link(&r->nic, 1)) {
		printf("error=[%s up: %s] ", r->nic.ifname, strerror(errno));
		r->ok = 0;
	}
	printf("%s\n", r->ok ? "ok" : "failed");
	return r->ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "tx-outside") != 0 && strcmp(mode, "rx-outside") != 0 && strcmp(mode, "ring") != 0) {
		printf("VPIO-RESULT rogue8139-%s error=[unknown mode; tx-outside, rx-outside or ring] failed\n", mode);
		return 2;
	}
	struct rogue r = {.ok = 1};
	vpio_find_nic(&r.nic, 0x8139, 256);
	r.ram_end = ram_end();
	const char *problem = r.nic.cap < 0 ? "no VPIO capability"
			      : !r.nic.ifname[0] ? "no network interface"
			      : r.ram_end == 0 ? "no System RAM in /proc/iomem"
			      : iopl(3) != 0 ? "iopl failed" /* ioperm() only reaches ports below 0x400 */
			      : !map_control_page(&r) ? "no locked page with a physical address" : NULL;
	if (problem) {
		printf("VPIO-RESULT rogue8139-%s nic=%s error=[%s] failed\n", mode, r.nic.bdf, problem);
		return 1;
	}
	return run(&r, mode);
}
