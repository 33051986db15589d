/* SPDX-License-Identifier: MIT */
/*
 * vpio-rogue [TARGET]: a root program that bypasses the driver and programs the NIC itself with raw
 * port I/O — RSAR/RBCR, then a remote *write* at TARGET (default 0x0000, the read-only PROM; the
 * host grants SRAM 0x4000-0x7FFF) — and pushes a few bytes through the data port. vpio-host must
 * deny the start (the agent wrote no intent for it, and every model sees it leave the grant).
 *
 * The driver keeps running: its interrupt handler may run between our port writes and reprogram
 * RSAR/RBCR (it never interleaves inside its own sequences: those run in the kernel). So each
 * attempt is a handful of `out`s, done while the network is idle, and repeated (at most 5 times)
 * until the capability's `violations` counter shows the host denied it. Afterwards CR is left as the
 * driver expects it between operations: page 0, remote DMA complete, started.
 *
 * Prints one line: VPIO-RESULT rogue target=0x.. count=N attempts=N violations_before=N ... ok|failed
 */
#include <sys/io.h>
#include <time.h>

#include "vpio_guest.h"

enum { CR = 0x00, RSAR0 = 0x08, RSAR1 = 0x09, RBCR0 = 0x0A, RBCR1 = 0x0B, ISR = 0x07, DATA = 0x10 };
enum { CR_PAGE0_NODMA_START = 0x22, CR_REMOTE_WRITE_START = 0x12, ISR_RDC = 0x40 };

int main(int argc, char **argv)
{
	unsigned target = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) & 0xFFFF : 0x0000;
	const unsigned count = 4;
	struct vpio_nic nic;
	vpio_find_nic(&nic);
	if (nic.cap < 0) {
		printf("VPIO-RESULT rogue nic=%s error=[no VPIO capability] failed\n", nic.bdf);
		return 1;
	}
	/* ioperm() only reaches ports below 0x400; BAR0 sits higher (0xc000…). */
	if (iopl(3) != 0) {
		printf("VPIO-RESULT rogue nic=%s error=[iopl: %s] failed\n", nic.bdf, strerror(errno));
		return 1;
	}
	const int violations = __builtin_offsetof(struct vpio_capability, violations);
	uint32_t before = vpio_cap_read32(&nic, violations);
	uint32_t after = before;
	unsigned io = nic.io_base;
	int attempts = 0;
	while (after == before && attempts < 5) {
		attempts++;
		outb(CR_PAGE0_NODMA_START, io + CR);
		outb(count & 0xFF, io + RBCR0);
		outb(count >> 8, io + RBCR1);
		outb(target & 0xFF, io + RSAR0);
		outb(target >> 8, io + RSAR1);
		outb(CR_REMOTE_WRITE_START, io + CR);
		outl(0x5a5a5a5a, io + DATA); /* 4 bytes: one dword, as ne2k-pci moves them on the RTL8029 */
		outb(CR_PAGE0_NODMA_START, io + CR);
		outb(ISR_RDC, io + ISR); /* acknowledge a completion, should the device have done the transfer */
		after = vpio_cap_read32(&nic, violations);
		if (after == before) {
			struct timespec pause = {0, 200 * 1000 * 1000};
			nanosleep(&pause, NULL);
		}
	}
	printf("VPIO-RESULT rogue nic=%s io=0x%x target=0x%04x count=%u kind=remote-write attempts=%d violations_before=%u ",
	       nic.bdf, io, target, count, attempts, before);
	vpio_print_capability(&nic, "");
	printf(" %s\n", after > before ? "ok" : "failed");
	return after > before ? 0 : 1;
}
