/* SPDX-License-Identifier: MIT */
/*
 * vpio-tamper MODE [PEER]: a misbehaving agent. Most modes register a ring of their own through the
 * VPIO capability (the host keeps one ring per device, so this replaces the real agent's registration
 * if one is running) and break the protocol one way per mode:
 *
 *   status      only print the capability (status, mode, fallback, violations, last_error, anomalies)
 *   outside     announce ring pages outside guest RAM (above 4 GiB)  -> rejected, last_error 2
 *   garbage     valid header, then records of random bytes behind correct sequence words
 *                                                                    -> host counts recordsMalformed
 *   flood       heartbeats as fast as possible, many times the ring's capacity
 *                                                                    -> host counts recordsLost
 *   lie         DMA intents for the next intent indexes with a kind/start the driver will not use
 *                                                                    -> intent mismatch, fallback
 *   overflow    head = intents_written = accesses_seen = 2^64-1, then records whose claim numbers
 *               wrap past 2^64                                       -> host survives, still registered
 *
 * Two modes leave the registration alone and attack the real agent's ring instead:
 *
 *   forge       find the agent's BPF ring map by id (any root process can), mmap it and write DMA
 *               intents into it: the next indexes with a wrong kind/start, then indexes far ahead
 *                                                                    -> intent mismatch, fallback
 *   reregister  register again exactly the pages the capability shows registered
 *                                                                    -> accepted, still registered
 *               (the host's ring generation does not change: it is the same ring)
 *
 * The host reads the ring only at DMA starts, so the modes that need it to look send a few UDP
 * datagrams to PEER (port 9): each makes the driver transmit (a remote write and a transmit) and
 * the peer's ICMP answer makes it receive. Every mode whose own ring the host accepted unregisters
 * at the end: the pages go back to the kernel when this process exits and must not stay announced.
 *
 * Prints one line: VPIO-RESULT tamper-MODE ... ok|failed (ok: the host reacted as expected, as far
 * as the capability shows it; the host's statistics hold the counters).
 */
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

#include "vpio_guest.h"

#define MODE_COOPERATIVE 2

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int registered(const struct vpio_nic *nic)
{
	return (vpio_cap_read32(nic, VPIO_CAP_FIELD(status)) & VPIO_STATUS_REGISTERED) != 0;
}

static uint32_t enforced_mode(const struct vpio_nic *nic)
{
	return (vpio_cap_read32(nic, VPIO_CAP_FIELD(status)) >> VPIO_STATUS_MODE_SHIFT) & 0xF;
}

/* Commits record n: body first, then seq = n + 1 (release), as the ordering rules say. */
static void commit(struct vpio_ring *ring, uint64_t n, const struct vpio_record *record)
{
	struct vpio_record *slot = &ring->records[n % VPIO_RING_CAPACITY];
	memcpy((uint8_t *)slot + 8, (const uint8_t *)record + 8, sizeof(*slot) - 8);
	__atomic_store_n(&slot->seq, n + 1, __ATOMIC_RELEASE);
}

/* An intent for a remote write at 0x0000, the PROM: the driver never starts one, so it cannot match. */
static struct vpio_record lying_intent(uint64_t index)
{
	struct vpio_record record;
	memset(&record, 0, sizeof(record));
	record.type = VPIO_REC_DMA_INTENT;
	record.time_ns = now_ns();
	record.intent.kind = VPIO_DMA_REMOTE_WRITE;
	record.intent.command = 0x12;
	record.intent.start = 0x0000;
	record.intent.count = 1536;
	record.intent.intent_index = index;
	return record;
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

/* Prints the result line; `unregister` takes back a ring of our own the host accepted. */
static int finish(const struct vpio_nic *nic, const char *mode, int unregister, int ok, const char *details)
{
	if (unregister)
		vpio_cap_write32(nic, VPIO_CAP_FIELD(command), VPIO_CMD_UNREGISTER);
	printf("VPIO-RESULT tamper-%s %s ", mode, details);
	vpio_print_capability(nic, "");
	printf(" %s\n", ok ? "ok" : "failed");
	return ok ? 0 : 1;
}

static int tamper_outside(const struct vpio_nic *nic)
{
	/* The guest has 256 MiB below 4 GiB: nothing the client mapped for DMA lies above it. */
	uint64_t pages[VPIO_RING_PAGES];
	char details[64];
	for (int i = 0; i < VPIO_RING_PAGES; i++)
		pages[i] = 0x100000000ull + (uint64_t)i * VPIO_PAGE_SIZE;
	vpio_announce(nic, pages, VPIO_RING_PAGES);
	uint32_t status = vpio_cap_read32(nic, VPIO_CAP_FIELD(status));
	snprintf(details, sizeof(details), "pages=0x%llx+%d", (unsigned long long)pages[0], VPIO_RING_PAGES);
	return finish(nic, "outside", 0,
		      (status & VPIO_STATUS_REJECTED) && vpio_cap_read32(nic, VPIO_CAP_FIELD(last_error)) == VPIO_ERR_PAGE_ADDRESS,
		      details);
}

/* Committed before registering, with head and intents_written still 0: the host starts at record 0
 * and expects intent index 0, so the very next DMA start meets a lie, whatever it is. */
static uint64_t commit_lies(struct vpio_ring *ring)
{
	uint64_t written = 0;
	for (; written < 64; written++) {
		struct vpio_record record = lying_intent(written);
		commit(ring, written, &record);
	}
	return written;
}

static int lie_after(const struct vpio_nic *nic, const char *peer, uint32_t mode_before, uint64_t written, char *details, size_t size)
{
	poke(peer, 4);
	snprintf(details, size, "intents=%llu kind=remote-write start=0x0000 mode_before=%u", (unsigned long long)written,
		 mode_before);
	return mode_before == MODE_COOPERATIVE && enforced_mode(nic) != MODE_COOPERATIVE;
}

static int garbage_after(struct vpio_ring *ring, const char *peer, char *details, size_t size)
{
	uint64_t state = 0x9E3779B97F4A7C15ull, written = 0;
	struct vpio_record record;
	for (; written < 200; written++) {
		uint64_t *words = (uint64_t *)&record;
		for (size_t i = 0; i < sizeof(record) / 8; i++)
			words[i] = next_random(&state);
		commit(ring, written, &record);
	}
	__atomic_store_n(&ring->header.head, written, __ATOMIC_RELEASE);
	poke(peer, 4);
	snprintf(details, size, "records=%llu", (unsigned long long)written);
	return 1;
}

/* Two seconds of heartbeats with a datagram every 20000 records, so the host looks at the ring while
 * it is being lapped. */
static int flood_after(struct vpio_ring *ring, const char *peer, char *details, size_t size)
{
	uint64_t start = now_ns(), end = start + 2000000000ull, written = 0;
	struct vpio_record record;
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
	snprintf(details, size, "records=%llu capacity_multiple=%llu", (unsigned long long)written,
		 (unsigned long long)(written / VPIO_RING_CAPACITY));
	return written > 10 * VPIO_RING_CAPACITY;
}

/* Every counter at 2^64-1 when the host reads the header at registration, and slot 0 holding an
 * intent behind seq 0 (the empty mark). */
static void overflow_before(struct vpio_ring *ring)
{
	struct vpio_record record = lying_intent(UINT64_MAX);
	memcpy((uint8_t *)&ring->records[0] + 8, (const uint8_t *)&record + 8, sizeof(record) - 8);
	ring->header.head = UINT64_MAX;
	ring->header.intents_written = UINT64_MAX;
	ring->header.accesses_seen = UINT64_MAX;
}

/* A producer whose counters wrap: claim 2^64-1 commits seq 0, claim 2^64 (0) commits seq 1. */
static int overflow_after(const struct vpio_nic *nic, struct vpio_ring *ring, const char *peer, char *details, size_t size)
{
	for (uint64_t n = UINT64_MAX, i = 0; i < 2; n++, i++) {
		struct vpio_record record = lying_intent(n);
		commit(ring, n, &record);
	}
	__atomic_store_n(&ring->header.head, 1, __ATOMIC_RELEASE);
	ring->header.intents_written = 1;
	ring->header.accesses_seen = 41; /* wrapped, as if 42 accesses had passed */
	poke(peer, 4);
	uint32_t status = vpio_cap_read32(nic, VPIO_CAP_FIELD(status));
	int alive = status != 0xFFFFFFFFu;
	int held = alive && (status & VPIO_STATUS_REGISTERED);
	snprintf(details, size, "head=0x%llx alive=%d registered_at_check=%d", (unsigned long long)UINT64_MAX, alive, held);
	return held;
}

/* The modes that register a ring of their own: set it up, register, then break it. */
static int tamper_own_ring(const struct vpio_nic *nic, const char *mode, const char *peer)
{
	uint64_t pages[VPIO_RING_PAGES], written = 0;
	char details[160] = "";
	struct vpio_ring *ring = vpio_map_ring(pages);
	if (!ring)
		return finish(nic, mode, 0, 0, "error=[no ring]");
	vpio_write_header(ring);
	if (strcmp(mode, "lie") == 0)
		written = commit_lies(ring);
	if (strcmp(mode, "overflow") == 0)
		overflow_before(ring);
	uint32_t mode_before = enforced_mode(nic);
	vpio_announce(nic, pages, VPIO_RING_PAGES);
	/* A refused ring leaves the one registered before in place: it is not ours to unregister. */
	if (!registered(nic) || (vpio_cap_read32(nic, VPIO_CAP_FIELD(status)) & VPIO_STATUS_REJECTED))
		return finish(nic, mode, 0, 0, "error=[registration refused]");
	if (strcmp(mode, "overflow") != 0) {
		__atomic_store_n(&ring->header.head, written, __ATOMIC_RELEASE);
		ring->header.intents_written = written;
	}
	int ok;
	if (strcmp(mode, "lie") == 0)
		ok = lie_after(nic, peer, mode_before, written, details, sizeof(details));
	else if (strcmp(mode, "garbage") == 0)
		ok = garbage_after(ring, peer, details, sizeof(details));
	else if (strcmp(mode, "flood") == 0)
		ok = flood_after(ring, peer, details, sizeof(details));
	else
		ok = overflow_after(nic, ring, peer, details, sizeof(details));
	return finish(nic, mode, 1, ok, details);
}

static long bpf(int command, union bpf_attr *attr)
{
	return syscall(__NR_bpf, command, attr, sizeof(*attr));
}

/* The agent's ring: the mmapable one-element array whose value is a struct vpio_ring. Found by
 * walking every map id, as any root process may; an fd, or -1. */
static int open_agent_ring_map(uint32_t *map_id)
{
	union bpf_attr attr;
	uint32_t id = 0;
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.start_id = id;
		if (bpf(BPF_MAP_GET_NEXT_ID, &attr) != 0)
			return -1;
		id = attr.next_id;
		memset(&attr, 0, sizeof(attr));
		attr.map_id = id;
		int fd = (int)bpf(BPF_MAP_GET_FD_BY_ID, &attr);
		if (fd < 0)
			continue;
		struct bpf_map_info info;
		memset(&info, 0, sizeof(info));
		memset(&attr, 0, sizeof(attr));
		attr.info.bpf_fd = (uint32_t)fd;
		attr.info.info_len = sizeof(info);
		attr.info.info = (uint64_t)(uintptr_t)&info;
		if (bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) == 0 && info.type == BPF_MAP_TYPE_ARRAY &&
		    info.value_size == sizeof(struct vpio_ring) && info.max_entries == 1 && (info.map_flags & BPF_F_MMAPABLE) &&
		    strcmp(info.name, "ring") == 0) {
			*map_id = id;
			return fd;
		}
		close(fd);
	}
}

/* Whether the capability's page words are the pages of `ring` (the agent's ring is the registered one). */
static int is_registered_ring(const struct vpio_nic *nic, const struct vpio_ring *ring)
{
	uint64_t pages[VPIO_RING_PAGES];
	if (!registered(nic) || vpio_cap_read32(nic, VPIO_CAP_FIELD(page_count)) != VPIO_RING_PAGES || vpio_physical_pages(ring, VPIO_RING_PAGES, pages) != 0)
		return 0;
	for (int i = 0; i < VPIO_RING_PAGES; i++) {
		uint64_t page = vpio_cap_read32(nic, VPIO_CAP_FIELD(pages) + 8 * i) |
				(uint64_t)vpio_cap_read32(nic, VPIO_CAP_FIELD(pages) + 8 * i + 4) << 32;
		if (page != pages[i])
			return 0;
	}
	return 1;
}

/* Claims slots as a producer does, beside the agent's own BPF producer: four intents that take the
 * next indexes but lie about kind and start, then four for indexes a million ahead. */
static int forge_intents(struct vpio_ring *ring)
{
	int forged = 0;
	for (; forged < 8; forged++) {
		uint64_t index = forged < 4 ? __atomic_fetch_add(&ring->header.intents_written, 1, __ATOMIC_SEQ_CST)
					    : __atomic_load_n(&ring->header.intents_written, __ATOMIC_ACQUIRE) + 1000000 + (uint64_t)forged;
		struct vpio_record record = lying_intent(index);
		commit(ring, __atomic_fetch_add(&ring->header.head, 1, __ATOMIC_SEQ_CST), &record);
	}
	return forged;
}

static int tamper_forge(const struct vpio_nic *nic, const char *peer)
{
	uint32_t map_id = 0;
	char details[160];
	int fd = open_agent_ring_map(&map_id);
	if (fd < 0)
		return finish(nic, "forge", 0, 0, "error=[no agent ring map]");
	struct vpio_ring *ring = mmap(NULL, VPIO_RING_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (ring == MAP_FAILED)
		return finish(nic, "forge", 0, 0, "error=[cannot mmap the ring map]");
	int registered_ring = is_registered_ring(nic, ring);
	/* The attack needs the host in cooperative mode (the return after registration takes 64 verified
	 * intents in a row): wait for it, bounded, with traffic; how long it took is reported. */
	int waited = 0;
	while (enforced_mode(nic) != MODE_COOPERATIVE && waited < 60) {
		poke(peer, 20);
		waited++;
	}
	uint32_t mode_before = enforced_mode(nic);
	int forged = forge_intents(ring);
	poke(peer, 4);
	int fallback = (vpio_cap_read32(nic, VPIO_CAP_FIELD(status)) & VPIO_STATUS_FALLBACK) != 0;
	snprintf(details, sizeof(details), "map_id=%u agent_pid=%u registered_ring=%d waited_s=%d forged=%d mode_before=%u",
		 map_id, ring->header.agent_pid, registered_ring, waited, forged, mode_before);
	return finish(nic, "forge", 0, registered_ring && mode_before == MODE_COOPERATIVE && fallback, details);
}

/* The pages the capability shows registered, announced again as they are. The page words hold what
 * the last command announced, so they are the registered ring's only if that one was accepted. */
static int tamper_reregister(const struct vpio_nic *nic)
{
	uint64_t pages[VPIO_CAP_MAX_PAGES];
	char details[96];
	uint32_t count = vpio_cap_read32(nic, VPIO_CAP_FIELD(page_count));
	if (!registered(nic) || (vpio_cap_read32(nic, VPIO_CAP_FIELD(status)) & VPIO_STATUS_REJECTED) || count == 0 ||
	    count > VPIO_CAP_MAX_PAGES)
		return finish(nic, "reregister", 0, 0, "error=[no accepted registration to repeat]");
	for (uint32_t i = 0; i < count; i++)
		pages[i] = vpio_cap_read32(nic, VPIO_CAP_FIELD(pages) + 8 * (int)i) |
			   (uint64_t)vpio_cap_read32(nic, VPIO_CAP_FIELD(pages) + 8 * (int)i + 4) << 32;
	vpio_announce(nic, pages, (int)count);
	int accepted = !(vpio_cap_read32(nic, VPIO_CAP_FIELD(status)) & VPIO_STATUS_REJECTED);
	snprintf(details, sizeof(details), "pages=0x%llx+%u accepted=%d", (unsigned long long)pages[0], count, accepted);
	return finish(nic, "reregister", 0, registered(nic), details);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "status";
	const char *peer = argc > 2 ? argv[2] : "10.77.0.1";
	struct vpio_nic nic;
	vpio_find_nic(&nic, 0x8029, 32);
	if (nic.cap < 0) {
		printf("VPIO-RESULT tamper-%s nic=%s error=[no VPIO capability] failed\n", mode, nic.bdf);
		return 1;
	}
	if (strcmp(mode, "status") == 0)
		return finish(&nic, mode, 0, 1, "");
	if (strcmp(mode, "outside") == 0)
		return tamper_outside(&nic);
	if (strcmp(mode, "forge") == 0)
		return tamper_forge(&nic, peer);
	if (strcmp(mode, "reregister") == 0)
		return tamper_reregister(&nic);
	const char *own[] = {"garbage", "flood", "lie", "overflow"};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcmp(mode, own[i]) == 0)
			return tamper_own_ring(&nic, mode, peer);
	return finish(&nic, mode, 0, 0,
		      "error=[unknown mode; known: status outside garbage flood lie overflow forge reregister]");
}
