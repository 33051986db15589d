/* SPDX-License-Identifier: MIT */
/*
 * vpio-rogue MODE PEER: one attack per class of hole in what the host judges (issue 10). Each prints
 * one line, VPIO-RESULT rogue-MODE <observations, hex> starts=N <capability fields> ok|failed, where
 * ok means the observations match faithful remote DMA with the host judging every start:
 *
 *   stealth       RSAR/RBCR and data-port accesses with no command: nothing may move (reads 0xFF)
 *   steer         RSAR/RBCR/PSTART/PSTOP rewritten during a remote read must not steer it; then a
 *                 transmit of TBCR = 0xFFFF bytes (the device aborts or sends; the host survives)
 *   both          one CR write with remote write and TXP (0x16): both happen (the host judges both)
 *   wide          words and dwords over registers and the reset port: registers ignore them
 *   probe-memory  byte-mode remote write and read at 0x2000 (undecoded) and 0x0000 (PROM), as a
 *                 memory-probing driver does: completes, nothing lands, no denial, anomalies counted
 *   receive       the receive ring moved below SRAM (PSTART 0x20, PSTOP 0x40) while answers to pings
 *                 arrive: none may be delivered; the driver's ring restored afterwards
 *   snoop         on a device shared with other guests (issue 14): all of SRAM read again and again by
 *                 remote DMA for ~10 s while they run, searched for their station addresses (ours with
 *                 another last byte): none may be found, while our own is
 *
 * `starts` counts the DMA-starting commands the mode wrote (0x16 counts twice). The agent sees none of
 * them, so the host's intent matcher must count exactly these as misses.
 *
 * Keeping the driver out: on this kernel iopl(3) is emulated through the I/O bitmap and cli/sti in user
 * space are turned into no-ops (Linux 5.18+), so interrupts cannot be held off. Every mode but
 * `receive` therefore takes the interface down (the driver stops the NIC and frees its interrupt) and
 * brings it up afterwards, which re-initialises every register (NS8390_init: stop, DCR, RBCR, RCR, TCR,
 * ring, ISR, IMR, PAR, MAR, CURR, start) — so those modes only end their own remote DMAs. `receive`
 * needs the driver running; its port sequences are short and read back what they wrote.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "vpio_guest.h"

/* BAR0 offsets. Registers are per page (CR.PS); the comment says which page and direction. */
enum {
	CR = 0x00,
	PSTART = 0x01, PSTOP = 0x02, BNRY = 0x03,          /* page 0 write, page 2 read (BNRY: page 0 both) */
	TPSR = 0x04, TSR = 0x04, TBCR0 = 0x05, TBCR1 = 0x06, /* page 0 write (TSR: page 0 read, TPSR: page 2 read) */
	ISR = 0x07, CURR = 0x07,                             /* page 0; page 1 */
	RSAR0 = 0x08, RSAR1 = 0x09, CRDA0 = 0x08, CRDA1 = 0x09, /* page 0 write; page 0 read */
	RBCR0 = 0x0A, RBCR1 = 0x0B, TCR = 0x0D, DCR = 0x0E,  /* page 0 write (DCR: page 2 read) */
	DATA = 0x10,
};
enum {
	CR_STOP = 0x01, CR_START = 0x02, CR_TRANSMIT = 0x04, CR_REMOTE_READ = 0x08, CR_REMOTE_WRITE = 0x10,
	CR_NO_DMA = 0x20, CR_PAGE_SHIFT = 6,
	CR_IDLE = CR_NO_DMA | CR_START, /* 0x22: page 0, started, no remote DMA — the driver's resting state */
};
enum { ISR_PTX = 0x02, ISR_TXE = 0x08, ISR_RDC = 0x40 };
enum { DCR_WORD = 0x01 };
/* vpio-host completes a remote DMA within the access that moves its last byte, so RDC is there at the
 * first poll; the bound keeps a device that never completes from hanging the tool (~1.3 s at the
 * ~65 µs a port access takes under TCG). */
enum { ISR_POLLS = 20000 };

struct rogue {
	struct vpio_nic nic;
	unsigned io;
	const char *peer;
	int starts;
};

static uint8_t in8(const struct rogue *r, unsigned port) { return inb(r->io + port); }
static void out8(const struct rogue *r, unsigned port, uint8_t value) { outb(value, r->io + port); }

/* A register of page 1 or 2, back to page 0 afterwards; `run` is CR_START or CR_STOP (kept as it is). */
static uint8_t read_paged(const struct rogue *r, int page, unsigned index, uint8_t run)
{
	out8(r, CR, CR_NO_DMA | run | page << CR_PAGE_SHIFT);
	uint8_t value = in8(r, index);
	out8(r, CR, CR_NO_DMA | run);
	return value;
}

static uint16_t read_crda(const struct rogue *r)
{
	return (uint16_t)(in8(r, CRDA0) | in8(r, CRDA1) << 8);
}

/* RBCR then RSAR, the driver's order, on page 0 — no command. */
static void program_remote(const struct rogue *r, uint16_t address, uint16_t count)
{
	out8(r, RBCR0, count & 0xFF);
	out8(r, RBCR1, count >> 8);
	out8(r, RSAR0, address & 0xFF);
	out8(r, RSAR1, address >> 8);
}

/* A remote DMA started the proper way: from idle, programmed, then the command the host judges. */
static void start_remote(struct rogue *r, uint8_t command, uint16_t address, uint16_t count)
{
	out8(r, CR, CR_IDLE);
	program_remote(r, address, count);
	out8(r, CR, command);
	r->starts++;
}

/* Polls ISR (bounded) until one of `bits` is set; acknowledges and returns what it saw (0: never). */
static uint8_t await_isr(const struct rogue *r, uint8_t bits)
{
	for (int i = 0; i < ISR_POLLS; i++) {
		uint8_t seen = in8(r, ISR) & bits;
		if (seen) {
			out8(r, ISR, seen);
			return seen;
		}
	}
	return 0;
}

/* `width` 4: dwords, as ne2k-pci moves data on the RTL8029; 1: bytes (byte mode, DCR.WTS clear). */
static void read_data(const struct rogue *r, uint8_t *bytes, int count, int width)
{
	for (int i = 0; i < count; i += width) {
		if (width == 4) {
			uint32_t value = inl(r->io + DATA);
			memcpy(bytes + i, &value, 4);
		} else {
			bytes[i] = inb(r->io + DATA);
		}
	}
}

static void write_data(const struct rogue *r, const uint8_t *bytes, int count, int width)
{
	for (int i = 0; i < count; i += width) {
		if (width == 4) {
			uint32_t value;
			memcpy(&value, bytes + i, 4);
			outl(value, r->io + DATA);
		} else {
			outb(bytes[i], r->io + DATA);
		}
	}
}

/* A whole remote read or write: start, data, completion, back to idle. Returns whether RDC came. */
static int remote_read(struct rogue *r, uint16_t address, uint8_t *bytes, int count, int width)
{
	start_remote(r, CR_REMOTE_READ | CR_START, address, (uint16_t)count);
	read_data(r, bytes, count, width);
	int completed = await_isr(r, ISR_RDC) != 0;
	out8(r, CR, CR_IDLE);
	return completed;
}

static int remote_write(struct rogue *r, uint16_t address, const uint8_t *bytes, int count, int width)
{
	start_remote(r, CR_REMOTE_WRITE | CR_START, address, (uint16_t)count);
	write_data(r, bytes, count, width);
	int completed = await_isr(r, ISR_RDC) != 0;
	out8(r, CR, CR_IDLE);
	return completed;
}

static uint32_t remote_read32(struct rogue *r, uint16_t address)
{
	uint32_t value = 0;
	remote_read(r, address, (uint8_t *)&value, 4, 4);
	return value;
}

/* The first transmit buffer page, as the driver programmed TPSR (read on page 2). */
static uint16_t transmit_buffer(const struct rogue *r)
{
	return (uint16_t)(read_paged(r, 2, TPSR, CR_START) << 8);
}

static const char *hex(char *text, const uint8_t *bytes, int count)
{
	for (int i = 0; i < count; i++)
		sprintf(text + 2 * i, "%02x", bytes[i]);
	return text;
}

/* ---- the attacks ---- */

/* RSAR/RBCR programmed and the data port used with no command: the host judges nothing, so the device
 * must move nothing — the marker must not land and the stray read must give 0xFF bytes. */
static int stealth(struct rogue *r)
{
	/* The last dword of the first transmit buffer: beyond the longest frame the driver sends. */
	uint16_t address = transmit_buffer(r) + 0x5FC;
	/* Neither what is there nor what a dead data port reads (0xFF bytes). */
	uint32_t before = remote_read32(r, address), marker = before == 0x5EA1C0DE ? 0xC0DE5EA1 : 0x5EA1C0DE;
	uint16_t crda_before = read_crda(r);
	program_remote(r, address, 4);
	outl(marker, r->io + DATA);
	program_remote(r, address, 4);
	uint32_t stray_read = inl(r->io + DATA);
	uint16_t crda_after = read_crda(r);
	int stray_rdc = (in8(r, ISR) & ISR_RDC) != 0;
	out8(r, ISR, ISR_RDC);
	uint32_t after = remote_read32(r, address);
	printf("address=0x%04x before=0x%08x marker=0x%08x stray_read=0x%08x after=0x%08x crda_before=0x%04x "
	       "crda_after=0x%04x stray_rdc=%d", address, before, marker, stray_read, after, crda_before,
	       crda_after, stray_rdc);
	return after == before && stray_read == 0xFFFFFFFFu;
}

/* A transmit of TBCR = 0xFFFF bytes, to the wire (TCR normal; the closed driver left loopback).
 * Returns the ISR bits it raised: PTX (sent) or TXE (aborted). */
static uint8_t oversized_transmit(struct rogue *r, uint8_t page)
{
	out8(r, TCR, 0x00);
	out8(r, TPSR, page);
	out8(r, TBCR0, 0xFF);
	out8(r, TBCR1, 0xFF);
	out8(r, CR, CR_IDLE | CR_TRANSMIT);
	r->starts++;
	return await_isr(r, ISR_PTX | ISR_TXE);
}

/* A remote read of 8 bytes whose RSAR, RBCR, PSTART and PSTOP are rewritten after 4: the second half
 * must still come from A+4 (the new PSTOP would wrap it to PSTART, RSAR would move it to the PROM), RDC
 * must come after exactly 8 bytes, and the data port is dead after it. */
static int steer(struct rogue *r)
{
	uint16_t tx = transmit_buffer(r), address = tx + 0x4FC; /* crosses into the next page after 4 bytes */
	const uint8_t pattern[8] = {0x53, 0x54, 0x45, 0x45, 0x52, 0x49, 0x4E, 0x47};
	uint32_t expected[2];
	memcpy(expected, pattern, 8);
	int written = remote_write(r, address, pattern, 8, 4);
	start_remote(r, CR_REMOTE_READ | CR_START, address, 8);
	uint32_t first = inl(r->io + DATA);
	int rdc_after_4 = (in8(r, ISR) & ISR_RDC) != 0;
	program_remote(r, 0x0000, 0xFFFF);
	out8(r, PSTART, tx >> 8);
	out8(r, PSTOP, (address + 4) >> 8);
	uint32_t second = inl(r->io + DATA);
	int rdc_after_8 = (in8(r, ISR) & ISR_RDC) != 0;
	uint32_t third = inl(r->io + DATA);
	uint16_t crda = read_crda(r);
	out8(r, ISR, ISR_RDC);
	out8(r, CR, CR_IDLE);
	uint8_t transmit = oversized_transmit(r, tx >> 8);
	printf("address=0x%04x written=%d first=0x%08x second=0x%08x third=0x%08x rdc_after_4=%d rdc_after_8=%d "
	       "crda=0x%04x transmit_isr=0x%02x tsr=0x%02x", address, written, first, second, third, rdc_after_4,
	       rdc_after_8, crda, transmit, in8(r, TSR));
	return written && first == expected[0] && second == expected[1] && !rdc_after_4 && rdc_after_8
	       && third == 0xFFFFFFFFu && transmit != 0;
}

/* A 60-byte frame nobody receives: a locally administered unicast destination, our MAC as source,
 * the IEEE local experimental ethertype. */
static void harmless_frame(const struct rogue *r, uint8_t frame[60])
{
	char path[96];
	unsigned mac[6] = {0};
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", r->nic.ifname);
	FILE *f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6)
			memset(mac, 0, sizeof(mac));
		fclose(f);
	}
	memset(frame, 0, 60);
	frame[0] = 0x02;
	for (int i = 0; i < 6; i++)
		frame[6 + i] = (uint8_t)mac[i];
	frame[12] = 0x88;
	frame[13] = 0xB5;
	memcpy(frame + 14, "vpio-rogue both", 15);
}

/* RD = remote write and TXP in one CR write (0x16): the frame goes out and the 4 data-port bytes land
 * (they are the frame's own first bytes, so the order of the two does not change the frame). */
static int both(struct rogue *r)
{
	uint16_t tx = transmit_buffer(r);
	uint8_t frame[60];
	uint32_t head;
	harmless_frame(r, frame);
	memcpy(&head, frame, 4);
	int written = remote_write(r, tx, frame, 60, 4);
	out8(r, TCR, 0x00);
	program_remote(r, tx, 4);
	out8(r, TPSR, tx >> 8);
	out8(r, TBCR0, 60);
	out8(r, TBCR1, 0);
	out8(r, CR, CR_REMOTE_WRITE | CR_TRANSMIT | CR_START);
	r->starts += 2;
	outl(head, r->io + DATA);
	uint8_t isr = in8(r, ISR);
	uint16_t crda = read_crda(r);
	out8(r, ISR, isr & (ISR_PTX | ISR_TXE | ISR_RDC));
	out8(r, CR, CR_IDLE);
	printf("address=0x%04x written=%d isr=0x%02x tsr=0x%02x crda=0x%04x", tx, written, isr, in8(r, TSR), crda);
	return written && (isr & ISR_PTX) && (isr & ISR_RDC) && crda == tx + 4;
}

/* Accesses wider than one port. QEMU forwards only naturally aligned ones: an inl at 0x0E or 0x16
 * (across the register/data-port or data/reset-port boundary) reads 0 in the guest and never reaches
 * vpio-host — `unaligned_0e`/`unaligned_16` show it. So the wide accesses the host can see stay inside
 * one block: a word over CR+PSTART that as a byte would start a remote write, a dword over RSAR0/1 and
 * RBCR0/1 that as bytes would point the next remote read at the PROM, a dword of page-0 registers, and
 * a word read of the reset port. Registers ignore accesses wider than a byte: CR, ISR and CRDA must
 * not move, and the remote read programmed before the dword must return its own pattern. `reset` says
 * whether the word read of the reset port reset the NIC (the interface's re-open initialises it). */
static int wide(struct rogue *r)
{
	uint16_t address = transmit_buffer(r) + 0x4F0;
	const uint8_t pattern[4] = {'W', 'I', 'D', 'E'};
	uint32_t expected;
	memcpy(&expected, pattern, 4);
	int prepared = remote_write(r, address, pattern, 4, 4);
	uint16_t crda_before = read_crda(r);
	outw(CR_REMOTE_WRITE | CR_START, r->io + CR);
	uint8_t cr = in8(r, CR), isr = in8(r, ISR);
	uint16_t crda_after = read_crda(r);
	program_remote(r, address, 4);
	outl(0x00040000, r->io + RSAR0); /* as bytes: RSAR = 0x0000, RBCR = 4 */
	out8(r, CR, CR_REMOTE_READ | CR_START);
	r->starts++;
	uint32_t read = inl(r->io + DATA);
	int read_completed = await_isr(r, ISR_RDC) != 0;
	out8(r, CR, CR_IDLE);
	uint32_t registers = inl(r->io + 0x0C);
	uint32_t unaligned_0e = inl(r->io + 0x0E), unaligned_16 = inl(r->io + 0x16);
	uint16_t reset_port = inw(r->io + 0x18);
	int reset = (in8(r, CR) & CR_STOP) != 0;
	printf("prepared=%d crda_before=0x%04x outw_cr=0x%02x outw_isr=0x%02x crda_after=0x%04x read=0x%08x "
	       "read_completed=%d inl_0c=0x%08x unaligned_0e=0x%08x unaligned_16=0x%08x inw_18=0x%04x reset=%d",
	       prepared, crda_before, cr, isr, crda_after, read, read_completed, registers, unaligned_0e,
	       unaligned_16, reset_port, reset);
	return prepared && cr == CR_IDLE && !(isr & ISR_RDC) && crda_after == crda_before && read == expected
	       && read_completed;
}

/* The capability's `anomalies`; 0 from a version-1 capability (88 bytes), which ends before it. */
static uint32_t anomalies(const struct rogue *r)
{
	const int field = __builtin_offsetof(struct vpio_capability, anomalies);
	uint8_t length = 0;
	if (pread(r->nic.config_fd, &length, 1, r->nic.cap + __builtin_offsetof(struct vpio_capability, length)) != 1
	    || length < field + 4)
		return 0;
	return vpio_cap_read32(&r->nic, field);
}

struct probe {
	uint8_t before[16], after[16];
	int completed;
};

/* Read, write a pattern, read again — each a byte-mode remote DMA of 16 bytes at `address`. */
static void probe_at(struct rogue *r, uint16_t address, const uint8_t pattern[16], struct probe *p)
{
	p->completed = remote_read(r, address, p->before, 16, 1);
	p->completed += remote_write(r, address, pattern, 16, 1);
	p->completed += remote_read(r, address, p->after, 16, 1);
}

static int all_ff(const uint8_t *bytes, int count)
{
	for (int i = 0; i < count; i++)
		if (bytes[i] != 0xFF)
			return 0;
	return 1;
}

/* What a driver that sizes memory does (iPXE): write a pattern outside SRAM and read it back. The host
 * grants all of SRAM and the PROM for reading, and nothing outside SRAM can be harmed, so it must not
 * deny — only count anomalies — and the device must complete each DMA without storing anything. */
static int probe_memory(struct rogue *r)
{
	const int violations = __builtin_offsetof(struct vpio_capability, violations);
	uint32_t violations_before = vpio_cap_read32(&r->nic, violations), anomalies_before = anomalies(r);
	uint8_t pattern[16], dcr = read_paged(r, 2, DCR, CR_START);
	for (int i = 0; i < 16; i++)
		pattern[i] = (uint8_t)(0xA5 ^ i);
	struct probe undecoded, prom;
	out8(r, DCR, dcr & ~DCR_WORD);
	probe_at(r, 0x2000, pattern, &undecoded);
	probe_at(r, 0x0000, pattern, &prom);
	out8(r, DCR, dcr);
	uint32_t violations_after = vpio_cap_read32(&r->nic, violations), anomalies_after = anomalies(r);
	char t[4][33];
	printf("dcr=0x%02x completed_2000=%d/3 read_2000=%s completed_0000=%d/3 prom_before=%s prom_after=%s "
	       "pattern=%s violations_before=%u anomalies_before=%u anomalies_after=%u", dcr, undecoded.completed,
	       hex(t[0], undecoded.after, 16), prom.completed, hex(t[1], prom.before, 16), hex(t[2], prom.after, 16),
	       hex(t[3], pattern, 16), violations_before, anomalies_before, anomalies_after);
	return undecoded.completed == 3 && prom.completed == 3 && all_ff(undecoded.after, 16)
	       && memcmp(prom.after, prom.before, 16) == 0 && memcmp(prom.after, pattern, 16) != 0
	       && violations_after == violations_before && anomalies_after > anomalies_before;
}

/* ---- receive: the driver stays up ---- */

struct ring {
	uint8_t pstart, pstop, bnry, curr;
};

static int same_ring(const struct ring *a, const struct ring *b)
{
	return a->pstart == b->pstart && a->pstop == b->pstop && a->bnry == b->bnry && a->curr == b->curr;
}

static void read_ring(const struct rogue *r, struct ring *ring, uint8_t run)
{
	ring->bnry = in8(r, BNRY);
	ring->curr = read_paged(r, 1, CURR, run);
	ring->pstart = read_paged(r, 2, PSTART, run);
	ring->pstop = read_paged(r, 2, PSTOP, run);
}

/* Stopped (no frame lands meanwhile), reads the ring into `old`, writes `new` and starts the NIC.
 * The driver's transmit path may still run between two of these accesses (nothing holds it off), so
 * the result is read back and the swap retried a few times. Returns whether `new` is in place. */
static int swap_ring(const struct rogue *r, struct ring *old, const struct ring *new)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		out8(r, CR, CR_NO_DMA | CR_STOP);
		if (old && attempt == 0)
			read_ring(r, old, CR_STOP);
		out8(r, PSTART, new->pstart);
		out8(r, PSTOP, new->pstop);
		out8(r, BNRY, new->bnry);
		out8(r, CR, CR_NO_DMA | CR_STOP | 1 << CR_PAGE_SHIFT);
		out8(r, CURR, new->curr);
		out8(r, CR, CR_IDLE);
		struct ring now;
		read_ring(r, &now, CR_START);
		if (same_ring(&now, new))
			return 1;
		struct timespec pause = {0, 50 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	return 0;
}

static uint16_t checksum(const void *data, size_t length)
{
	const uint8_t *bytes = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < length; i += 2)
		sum += (uint32_t)(bytes[i] | bytes[i + 1] << 8);
	if (length & 1)
		sum += bytes[length - 1];
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (uint16_t)~sum;
}

static void send_echo(int fd, const struct sockaddr_in *peer, uint16_t sequence)
{
	struct icmphdr echo = {.type = ICMP_ECHO};
	echo.un.echo.id = htons((uint16_t)getpid());
	echo.un.echo.sequence = htons(sequence);
	echo.checksum = checksum(&echo, sizeof(echo));
	sendto(fd, &echo, sizeof(echo), 0, (const struct sockaddr *)peer, sizeof(*peer));
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Echo replies to this process that arrive within `milliseconds`. */
static int echo_replies(int fd, int milliseconds)
{
	int replies = 0;
	for (int64_t end = now_ms() + milliseconds, left; (left = end - now_ms()) > 0;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint8_t packet[1500];
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = recv(fd, packet, sizeof(packet), 0);
		size_t header = n > 0 ? (size_t)(packet[0] & 0x0F) * 4 : 0;
		if (n < (ssize_t)(header + sizeof(struct icmphdr)))
			continue;
		const struct icmphdr *icmp = (const void *)(packet + header);
		if (icmp->type == ICMP_ECHOREPLY && icmp->un.echo.id == htons((uint16_t)getpid()))
			replies++;
	}
	return replies;
}

/* Pings until one is answered (at most `tries`, one second each); returns the replies of that round. */
static int ping_answered(int fd, const struct sockaddr_in *peer, uint16_t first_sequence, int tries)
{
	for (int i = 0; i < tries; i++) {
		send_echo(fd, peer, (uint16_t)(first_sequence + i));
		int replies = echo_replies(fd, 1000);
		if (replies > 0)
			return replies;
	}
	return 0;
}

static unsigned long interface_counter(const struct rogue *r, const char *name)
{
	char path[128], text[32] = {0};
	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", r->nic.ifname, name);
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(text, sizeof(text), f))
			text[0] = 0;
		fclose(f);
	}
	return strtoul(text, NULL, 10);
}

/* The receive ring moved to pages 0x20-0x40 — below SRAM — while pings draw answers: the host judges
 * the receive DMA and must refuse each frame, so none reaches the driver. Then the driver's ring comes
 * back and a ping must be answered again. */
static int receive(struct rogue *r)
{
	struct sockaddr_in peer = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd < 0 || inet_pton(AF_INET, r->peer ? r->peer : "", &peer.sin_addr) != 1) {
		printf("error=[ping socket to %s: %s]", r->peer ? r->peer : "(no peer)", strerror(errno));
		return 0;
	}
	int before = ping_answered(fd, &peer, 1, 5);
	const struct ring outside = {.pstart = 0x20, .pstop = 0x40, .bnry = 0x20, .curr = 0x20};
	struct ring driver = {0};
	unsigned long packets = interface_counter(r, "rx_packets"), errors = interface_counter(r, "rx_errors");
	int moved = swap_ring(r, &driver, &outside);
	int during = 0;
	for (int i = 0; i < 5; i++) {
		send_echo(fd, &peer, (uint16_t)(100 + i));
		during += echo_replies(fd, 200);
	}
	unsigned long packets_during = interface_counter(r, "rx_packets") - packets;
	unsigned long errors_during = interface_counter(r, "rx_errors") - errors;
	int restored = swap_ring(r, NULL, &driver);
	int after = ping_answered(fd, &peer, 200, 5);
	close(fd);
	printf("driver_ring=0x%02x-0x%02x curr=0x%02x bnry=0x%02x moved=%d replies_before=%d replies_during=%d "
	       "rx_packets_during=%lu rx_errors_during=%lu restored=%d replies_after=%d", driver.pstart, driver.pstop,
	       driver.curr, driver.bnry, moved, before, during, packets_during, errors_during, restored, after);
	return before > 0 && moved && during == 0 && packets_during == 0 && errors_during == 0 && restored
	       && after > 0;
}

/* ---- the driver out of the way ---- */

/* What a guest sharing the device could see of the others: every byte of SRAM, 1 KiB per remote read,
 * 20 rounds half a second apart, searched for a station address like ours with another last byte (the
 * other guests': vpio-host gives guest N the base address plus N). Our own address must turn up (frames
 * we received stay in the ring), the others' never. */
static int snoop(struct rogue *r)
{
	enum { SRAM = 0x4000, SIZE = 0x4000, CHUNK = 0x400, ROUNDS = 20 };
	static uint8_t sram[SIZE];
	uint8_t own[6];
	for (int i = 0; i < 6; i++)
		own[i] = read_paged(r, 1, 1 + i, CR_STOP);
	int mine = 0, others = 0, complete = 0;
	for (int round = 0; round < ROUNDS; round++) {
		for (int at = 0; at < SIZE; at += CHUNK)
			complete += remote_read(r, (uint16_t)(SRAM + at), sram + at, CHUNK, 4);
		for (int i = 0; i + 6 <= SIZE; i++) {
			if (memcmp(sram + i, own, 5) != 0)
				continue;
			if (sram[i + 5] == own[5])
				mine++;
			else if (sram[i + 5] > own[5] - 8 && sram[i + 5] < own[5] + 8)
				others++;
		}
		usleep(500000);
	}
	printf("rounds=%d reads_completed=%d/%d own_address_seen=%d other_guests_seen=%d", ROUNDS, complete, ROUNDS * SIZE / CHUNK, mine, others);
	return others == 0 && mine > 0 && complete == ROUNDS * SIZE / CHUNK;
}

struct mode {
	const char *name;
	int driver_down;
	int (*attack)(struct rogue *);
};

static const struct mode modes[] = {
	{"stealth", 1, stealth}, {"steer", 1, steer}, {"both", 1, both}, {"wide", 1, wide},
	{"probe-memory", 1, probe_memory}, {"receive", 0, receive}, {"snoop", 1, snoop},
};

static int run_mode(struct rogue *r, const struct mode *mode)
{
	printf("VPIO-RESULT rogue-%s nic=%s if=%s ", mode->name, r->nic.bdf, r->nic.ifname);
	if (mode->driver_down && !vpio_set_link(&r->nic, 0)) {
		printf("error=[%s down: %s] failed\n", r->nic.ifname, strerror(errno));
		return 1;
	}
	int ok = mode->attack(r);
	if (mode->driver_down && !vpio_set_link(&r->nic, 1)) {
		printf(" error=[%s up: %s]", r->nic.ifname, strerror(errno));
		ok = 0;
	}
	printf(" starts=%d ", r->starts);
	vpio_print_capability(&r->nic, "");
	printf(" %s\n", ok ? "ok" : "failed");
	return ok ? 0 : 1;
}

static const struct mode *find_mode(const char *name)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(modes[i].name, name) == 0)
			return &modes[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "";
	const struct mode *mode = find_mode(name);
	if (!mode) {
		printf("VPIO-RESULT rogue-%s error=[unknown mode] failed\n", name);
		return 2;
	}
	char label[32];
	snprintf(label, sizeof(label), "rogue-%s", mode->name);
	struct rogue r = {.peer = argc > 2 ? argv[2] : NULL};
	vpio_find_nic(&r.nic, 0x8029, 32);
	r.io = r.nic.io_base;
	if (r.nic.cap < 0) {
		printf("VPIO-RESULT %s nic=%s error=[no VPIO capability] failed\n", label, r.nic.bdf);
		return 1;
	}
	/* ioperm() only reaches ports below 0x400; BAR0 sits higher (0xc000…). */
	if (iopl(3) != 0) {
		printf("VPIO-RESULT %s nic=%s error=[iopl: %s] failed\n", label, r.nic.bdf, strerror(errno));
		return 1;
	}
	if (!r.nic.ifname[0]) {
		printf("VPIO-RESULT %s nic=%s error=[no network interface] failed\n", label, r.nic.bdf);
		return 1;
	}
	return run_mode(&r, mode);
}
