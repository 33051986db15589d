/* SPDX-License-Identifier: MIT */
/*
 * vpio-tamper MODE [PEER]: a misbehaving agent. It registers its own ring through the VPIO
 * capability (the host keeps one ring per device, so this replaces the real agent's registration
 * if one is running) and breaks the protocol one way per mode:
 *
 *   status   only print the capability (status, mode, fallback, violations, last_error)
 *   outside  announce ring pages outside guest RAM (above 4 GiB)   -> rejected, last_error 2
 *   garbage  valid header, then records of random bytes behind correct sequence words
 *                                                                  -> host counts recordsMalformed
 *   flood    heartbeats as fast as possible, many times the ring's capacity
 *                                                                  -> host counts recordsLost
 *   lie      DMA intents for the next intent indexes with a kind/start the driver will not use
 *                                                                  -> intent mismatch, fallback
 *
 * The host reads the ring only at DMA starts, so the modes that need it to look send a few UDP
 * datagrams to PEER (port 9): each makes the driver transmit (a remote write and a transmit) and
 * the peer's ICMP answer makes it receive. Every mode but `outside` unregisters at the end: the
 * pages go back to the kernel when this process exits and must not stay announced.
 *
 * Prints one line: VPIO-RESULT tamper-MODE ... ok|failed (ok: the host reacted as expected, as far
 * as the capability shows it; the host's statistics hold the counters).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include "vpio_guest.h"

#define FIELD(name) ((int)__builtin_offsetof(struct vpio_capability, name))

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The ring in locked anonymous memory, and each page's guest-physical address. */
static struct vpio_ring *map_ring(uint64_t pages[VPIO_RING_PAGES])
{
	struct vpio_ring *ring = mmap(NULL, VPIO_RING_BYTES, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
	if (ring == MAP_FAILED || mlock(ring, VPIO_RING_BYTES) != 0) {
		printf("ring: %s\n", strerror(errno));
		return NULL;
	}
	memset(ring, 0, VPIO_RING_BYTES);
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < VPIO_RING_PAGES; i++) {
		uint64_t entry = 0;
		off_t at = (off_t)(((uintptr_t)ring + (uintptr_t)i * VPIO_PAGE_SIZE) / VPIO_PAGE_SIZE * 8);
		if (fd < 0 || pread(fd, &entry, 8, at) != 8 || !(entry >> 63) || !(entry & ((1ull << 55) - 1))) {
			printf("pagemap: page %d has no physical address\n", i);
			return NULL;
		}
		pages[i] = (entry & ((1ull << 55) - 1)) * VPIO_PAGE_SIZE;
	}
	close(fd);
	return ring;
}

/* A compatible header; magic last, as the real agent does. */
static void write_header(struct vpio_ring *ring)
{
	ring->header.version = VPIO_RING_VERSION;
	ring->header.record_size = VPIO_RECORD_SIZE;
	ring->header.capacity = VPIO_RING_CAPACITY;
	ring->header.agent_pid = (uint32_t)getpid();
	__atomic_store_n(&ring->header.magic, VPIO_RING_MAGIC, __ATOMIC_RELEASE);
}

/* Page addresses (two dwords each, like the agent), page_count, then the command. */
static void announce(const struct vpio_nic *nic, const uint64_t *pages, int count)
{
	for (int i = 0; i < count; i++) {
		vpio_cap_write32(nic, FIELD(pages) + 8 * i, (uint32_t)pages[i]);
		vpio_cap_write32(nic, FIELD(pages) + 8 * i + 4, (uint32_t)(pages[i] >> 32));
	}
	vpio_cap_write32(nic, FIELD(page_count), (uint32_t)count);
	vpio_cap_write32(nic, FIELD(command), VPIO_CMD_REGISTER);
}

/* Commits record n: body first, then seq = n + 1 (release), as the ordering rules say. */
static void commit(struct vpio_ring *ring, uint64_t n, const struct vpio_record *record)
{
	struct vpio_record *slot = &ring->records[n % VPIO_RING_CAPACITY];
	memcpy((uint8_t *)slot + 8, (const uint8_t *)record + 8, sizeof(*slot) - 8);
	__atomic_store_n(&slot->seq, n + 1, __ATOMIC_RELEASE);
}

/* Datagrams to PEER:9 so that the driver starts DMAs and the host reads the ring. */
static void poke(const char *peer, int datagrams)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9)};
	if (fd < 0 || inet_pton(AF_INET, peer, &to.sin_addr) != 1) {
		printf("poke %s: cannot send\n", peer);
		return;
	}
	for (int i = 0; i < datagrams; i++) {
		char text[32];
		int n = snprintf(text, sizeof(text), "vpio-tamper %d", i);
		sendto(fd, text, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to));
		struct timespec pause = {0, 50 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	close(fd);
}

/* xorshift64: garbage that is the same on every run. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static int finish(const struct vpio_nic *nic, const char *mode, int ok, const char *details)
{
	if (strcmp(mode, "outside") != 0 && strcmp(mode, "status") != 0)
		vpio_cap_write32(nic, FIELD(command), VPIO_CMD_UNREGISTER);
	printf("VPIO-RESULT tamper-%s %s ", mode, details);
	vpio_print_capability(nic, "");
	printf(" %s\n", ok ? "ok" : "failed");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "status";
	const char *peer = argc > 2 ? argv[2] : "10.77.0.1";
	char details[160] = "";
	struct vpio_nic nic;
	vpio_find_nic(&nic);
	if (nic.cap < 0) {
		printf("VPIO-RESULT tamper-%s nic=%s error=[no VPIO capability] failed\n", mode, nic.bdf);
		return 1;
	}
	if (strcmp(mode, "status") == 0)
		return finish(&nic, mode, 1, "");
	if (strcmp(mode, "outside") == 0) {
		/* The guest has 256 MiB below 4 GiB: nothing the client mapped for DMA lies above it. */
		uint64_t pages[VPIO_RING_PAGES];
		for (int i = 0; i < VPIO_RING_PAGES; i++)
			pages[i] = 0x100000000ull + (uint64_t)i * VPIO_PAGE_SIZE;
		announce(&nic, pages, VPIO_RING_PAGES);
		uint32_t status = vpio_cap_read32(&nic, FIELD(status));
		snprintf(details, sizeof(details), "pages=0x%llx+%d", (unsigned long long)pages[0], VPIO_RING_PAGES);
		return finish(&nic, mode, (status & VPIO_STATUS_REJECTED) && vpio_cap_read32(&nic, FIELD(last_error)) == VPIO_ERR_PAGE_ADDRESS,
			      details);
	}

	uint64_t pages[VPIO_RING_PAGES];
	struct vpio_ring *ring = map_ring(pages);
	if (!ring)
		return finish(&nic, mode, 0, "error=[no ring]");
	write_header(ring);
	uint64_t written = 0;
	struct vpio_record record;
	if (strcmp(mode, "lie") == 0) {
		/* Committed before registering, with head and intents_written still 0: the host starts at
		 * record 0 and expects intent index 0, so the very next DMA start meets a lie, whatever it is.
		 * The driver never writes the PROM; start 0x0000 cannot match its DMA. */
		for (; written < 64; written++) {
			memset(&record, 0, sizeof(record));
			record.type = VPIO_REC_DMA_INTENT;
			record.time_ns = now_ns();
			record.intent.kind = VPIO_DMA_REMOTE_WRITE;
			record.intent.command = 0x12;
			record.intent.start = 0x0000;
			record.intent.count = 1536;
			record.intent.intent_index = written;
			commit(ring, written, &record);
		}
	}
	uint32_t mode_before = (vpio_cap_read32(&nic, FIELD(status)) >> VPIO_STATUS_MODE_SHIFT) & 0xF;
	announce(&nic, pages, VPIO_RING_PAGES);
	if (!(vpio_cap_read32(&nic, FIELD(status)) & VPIO_STATUS_REGISTERED))
		return finish(&nic, mode, 0, "error=[registration refused]");
	__atomic_store_n(&ring->header.head, written, __ATOMIC_RELEASE);
	ring->header.intents_written = written;

	int ok = 1;
	if (strcmp(mode, "lie") == 0) {
		poke(peer, 4);
		uint32_t status = vpio_cap_read32(&nic, FIELD(status));
		ok = mode_before == 2 && ((status >> VPIO_STATUS_MODE_SHIFT) & 0xF) != 2;
		snprintf(details, sizeof(details), "intents=%llu kind=remote-write start=0x0000 mode_before=%u",
			 (unsigned long long)written, mode_before);
	} else if (strcmp(mode, "garbage") == 0) {
		uint64_t state = 0x9E3779B97F4A7C15ull;
		for (; written < 200; written++) {
			uint64_t *words = (uint64_t *)&record;
			for (size_t i = 0; i < sizeof(record) / 8; i++)
				words[i] = next_random(&state);
			commit(ring, written, &record);
		}
		__atomic_store_n(&ring->header.head, written, __ATOMIC_RELEASE);
		poke(peer, 4);
		snprintf(details, sizeof(details), "records=%llu", (unsigned long long)written);
	} else if (strcmp(mode, "flood") == 0) {
		/* Two seconds of heartbeats with a datagram every 20000 records, so the host looks at
		 * the ring while it is being lapped. */
		uint64_t start = now_ns(), end = start + 2000000000ull;
		memset(&record, 0, sizeof(record));
		record.type = VPIO_REC_HEARTBEAT;
		while (now_ns() < end) {
			record.time_ns = now_ns();
			record.heartbeat.uptime_ns = record.time_ns - start;
			commit(ring, written, &record);
			__atomic_store_n(&ring->header.head, ++written, __ATOMIC_RELEASE);
			if (written % 20000 == 0)
				poke(peer, 1);
		}
		ok = written > 10 * VPIO_RING_CAPACITY;
		snprintf(details, sizeof(details), "records=%llu capacity_multiple=%llu", (unsigned long long)written,
			 (unsigned long long)(written / VPIO_RING_CAPACITY));
	} else {
		ok = 0;
		snprintf(details, sizeof(details), "error=[unknown mode; known: status outside garbage flood lie]");
	}
	return finish(&nic, mode, ok, details);
}
