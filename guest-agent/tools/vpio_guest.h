/* SPDX-License-Identifier: MIT */
/*
 * What the guest-side attack tools (vpio-rogue, vpio-tamper, vpio-rogue8139) share: finding the NIC
 * in sysfs, its BAR0 port base and network interface, the VPIO capability in its config space, and a
 * ring of locked pages of their own to announce there. Static functions in a header because each tool
 * is one static binary built by a single gcc call (Provisioner.ensureGuestTools).
 */
#ifndef VPIO_GUEST_H
#define VPIO_GUEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vpio_ring.h"

struct vpio_nic {
	char bdf[256];
	char config_path[320];
	char ifname[IF_NAMESIZE]; /* its network interface, or empty */
	unsigned io_base;   /* BAR0: an I/O port range */
	int config_fd;      /* /sys/bus/pci/devices/<BDF>/config, read-write */
	int cap;            /* config offset of the capability with ID VPIO_CAP_ID, or -1 */
};

static inline unsigned long vpio_read_hex(const char *path)
{
	char text[64] = {0};
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(text, sizeof(text), f))
		text[0] = 0;
	fclose(f);
	return strtoul(text, NULL, 16);
}

/* Walks the standard capability list (from 0x34, at most 48 hops so a looped list ends). */
static inline int vpio_find_capability(int fd)
{
	uint8_t config[256];
	if (pread(fd, config, sizeof(config), 0) != (ssize_t)sizeof(config))
		return -1;
	if (!(config[0x06] & 0x10)) /* status: capability list present */
		return -1;
	int at = config[0x34] & 0xFC;
	for (int hops = 0; at >= 0x40 && hops < 48; hops++) {
		if (config[at] == VPIO_CAP_ID)
			return at;
		at = config[at + 1] & 0xFC;
	}
	return -1;
}

/* The network interface of the NIC: the entry in /sys/bus/pci/devices/<BDF>/net. */
static inline void vpio_find_interface(struct vpio_nic *nic)
{
	char path[320];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/net", nic->bdf);
	DIR *dir = opendir(path);
	struct dirent *entry;
	while (dir && (entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			snprintf(nic->ifname, sizeof(nic->ifname), "%.*s", IF_NAMESIZE - 1, entry->d_name); /* names are shorter */
	if (dir)
		closedir(dir);
}

/* Brings the interface up or down (the driver opens or closes the NIC); 1 on success. */
static inline int vpio_set_link(const struct vpio_nic *nic, int up)
{
	struct ifreq request = {0};
	snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", nic->ifname);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &request) == 0;
	if (ok) {
		request.ifr_flags = (short)(up ? request.ifr_flags | IFF_UP : request.ifr_flags & ~IFF_UP);
		ok = ioctl(fd, SIOCSIFFLAGS, &request) == 0;
	}
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Finds 10ec:DEVICE with BAR0 an I/O range of at least `ports` ports, opens its config space and finds
 * its interface; exits with a message when it cannot. */
static inline void vpio_find_nic(struct vpio_nic *nic, unsigned device, unsigned ports)
{
	const char *root = "/sys/bus/pci/devices";
	DIR *dir = opendir(root);
	struct dirent *entry;
	char path[384];
	memset(nic, 0, sizeof(*nic));
	nic->cap = -1;
	while (dir && (entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/vendor", root, entry->d_name);
		if (vpio_read_hex(path) != 0x10ec)
			continue;
		snprintf(path, sizeof(path), "%s/%s/device", root, entry->d_name);
		if (vpio_read_hex(path) != device)
			continue;
		snprintf(nic->bdf, sizeof(nic->bdf), "%s", entry->d_name);
		break;
	}
	if (dir)
		closedir(dir);
	if (!nic->bdf[0]) {
		fprintf(stderr, "no NIC 10ec:%04x in %s\n", device, root);
		exit(2);
	}
	/* resource: one line per BAR, "start end flags"; flags bit 0x100 is IORESOURCE_IO. */
	unsigned long long start = 0, end = 0, flags = 0;
	snprintf(path, sizeof(path), "%s/%s/resource", root, nic->bdf);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3 || !(flags & 0x100) || end + 1 < start + ports) {
		fprintf(stderr, "%s: BAR0 is not an I/O port range of %u ports\n", nic->bdf, ports);
		exit(2);
	}
	fclose(f);
	nic->io_base = (unsigned)start;
	snprintf(nic->config_path, sizeof(nic->config_path), "%s/%s/config", root, nic->bdf);
	nic->config_fd = open(nic->config_path, O_RDWR | O_CLOEXEC);
	if (nic->config_fd < 0) {
		fprintf(stderr, "%s: %s\n", nic->config_path, strerror(errno));
		exit(2);
	}
	nic->cap = vpio_find_capability(nic->config_fd);
	vpio_find_interface(nic);
}

static inline uint32_t vpio_cap_read32(const struct vpio_nic *nic, int field)
{
	uint32_t value = 0;
	if (pread(nic->config_fd, &value, 4, nic->cap + field) != 4)
		return 0xFFFFFFFFu;
	return value;
}

static inline int vpio_cap_write32(const struct vpio_nic *nic, int field, uint32_t value)
{
	return pwrite(nic->config_fd, &value, 4, nic->cap + field) == 4 ? 0 : -1;
}

/* status, violations, last_error and anomalies as one console fragment. */
static inline void vpio_print_capability(const struct vpio_nic *nic, const char *prefix)
{
	uint32_t status = vpio_cap_read32(nic, __builtin_offsetof(struct vpio_capability, status));
	printf("%sstatus=0x%x registered=%u rejected=%u fallback=%u mode=%u violations=%u last_error=%u anomalies=%u",
	       prefix, status, status & VPIO_STATUS_REGISTERED ? 1 : 0, status & VPIO_STATUS_REJECTED ? 1 : 0,
	       status & VPIO_STATUS_FALLBACK ? 1 : 0, (status >> VPIO_STATUS_MODE_SHIFT) & 0xF,
	       vpio_cap_read32(nic, __builtin_offsetof(struct vpio_capability, violations)),
	       vpio_cap_read32(nic, __builtin_offsetof(struct vpio_capability, last_error)),
	       vpio_cap_read32(nic, __builtin_offsetof(struct vpio_capability, anomalies)));
}

#define VPIO_CAP_FIELD(name) ((int)__builtin_offsetof(struct vpio_capability, name))
#define VPIO_PFN_MASK ((1ull << 55) - 1)

/* The guest-physical address of each of `count` pages of a mapping whose pages are present. */
static inline int vpio_physical_pages(const void *base, int count, uint64_t *pages)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < count; i++) {
		uint64_t entry = 0;
		off_t at = (off_t)(((uintptr_t)base + (uintptr_t)i * VPIO_PAGE_SIZE) / VPIO_PAGE_SIZE * 8);
		if (fd < 0 || pread(fd, &entry, 8, at) != 8 || !(entry >> 63) || !(entry & VPIO_PFN_MASK)) {
			printf("pagemap: page %d has no physical address\n", i);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		pages[i] = (entry & VPIO_PFN_MASK) * VPIO_PAGE_SIZE;
	}
	close(fd);
	return 0;
}

/* The ring in locked anonymous memory, and each page's guest-physical address. */
static inline struct vpio_ring *vpio_map_ring(uint64_t pages[VPIO_RING_PAGES])
{
	struct vpio_ring *ring = mmap(NULL, VPIO_RING_BYTES, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_LOCKED, -1, 0);
	if (ring == MAP_FAILED || mlock(ring, VPIO_RING_BYTES) != 0) {
		printf("ring: %s\n", strerror(errno));
		return NULL;
	}
	memset(ring, 0, VPIO_RING_BYTES);
	return vpio_physical_pages(ring, VPIO_RING_PAGES, pages) == 0 ? ring : NULL;
}

/* A compatible header; magic last, as the real agent does. */
static inline void vpio_write_header(struct vpio_ring *ring)
{
	ring->header.version = VPIO_RING_VERSION;
	ring->header.record_size = VPIO_RECORD_SIZE;
	ring->header.capacity = VPIO_RING_CAPACITY;
	ring->header.agent_pid = (uint32_t)getpid();
	__atomic_store_n(&ring->header.magic, VPIO_RING_MAGIC, __ATOMIC_RELEASE);
}

/* Page addresses (two dwords each, like the agent), page_count, then the command. */
static inline void vpio_announce(const struct vpio_nic *nic, const uint64_t *pages, int count)
{
	for (int i = 0; i < count; i++) {
		vpio_cap_write32(nic, VPIO_CAP_FIELD(pages) + 8 * i, (uint32_t)pages[i]);
		vpio_cap_write32(nic, VPIO_CAP_FIELD(pages) + 8 * i + 4, (uint32_t)(pages[i] >> 32));
	}
	vpio_cap_write32(nic, VPIO_CAP_FIELD(page_count), (uint32_t)count);
	vpio_cap_write32(nic, VPIO_CAP_FIELD(command), VPIO_CMD_REGISTER);
}

#endif /* VPIO_GUEST_H */
