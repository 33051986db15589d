/* SPDX-License-Identifier: MIT */
/*
 * What the guest-side attack tools (vpio-rogue, vpio-tamper) share: finding the RTL8029 in sysfs,
 * its BAR0 port base, and the VPIO capability in its config space. Static functions in a header
 * because each tool is one static binary built by a single gcc call (Provisioner.ensureGuestTools).
 */
#ifndef VPIO_GUEST_H
#define VPIO_GUEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vpio_ring.h"

struct vpio_nic {
	char bdf[256];
	char config_path[320];
	unsigned io_base;   /* BAR0: an I/O port range on the RTL8029 */
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

/* Finds 10ec:8029 and opens its config space; exits with a message when it cannot. */
static inline void vpio_find_nic(struct vpio_nic *nic)
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
		if (vpio_read_hex(path) != 0x8029)
			continue;
		snprintf(nic->bdf, sizeof(nic->bdf), "%s", entry->d_name);
		break;
	}
	if (dir)
		closedir(dir);
	if (!nic->bdf[0]) {
		fprintf(stderr, "no RTL8029 (10ec:8029) in %s\n", root);
		exit(2);
	}
	/* resource: one line per BAR, "start end flags"; flags bit 0x100 is IORESOURCE_IO. */
	unsigned long long start = 0, end = 0, flags = 0;
	snprintf(path, sizeof(path), "%s/%s/resource", root, nic->bdf);
	FILE *f = fopen(path, "r");
	if (!f || fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3 || !(flags & 0x100) || end < start + 0x1F) {
		fprintf(stderr, "%s: BAR0 is not an I/O port range of 32 ports\n", nic->bdf);
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

#endif /* VPIO_GUEST_H */
