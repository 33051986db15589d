#define _GNU_SOURCE
#include "CVPIOShim.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

size_t vpio_cmsg_space(size_t data_length) { return CMSG_SPACE(data_length); }

size_t vpio_cmsg_len(size_t data_length) { return CMSG_LEN(data_length); }

struct cmsghdr *vpio_cmsg_firsthdr(struct msghdr *message) { return CMSG_FIRSTHDR(message); }

struct cmsghdr *vpio_cmsg_nxthdr(struct msghdr *message, struct cmsghdr *header) {
    return CMSG_NXTHDR(message, header);
}

unsigned char *vpio_cmsg_data(struct cmsghdr *header) { return CMSG_DATA(header); }

_Static_assert(VPIO_IFNAME_MAX + 1 == IFNAMSIZ, "VPIO_IFNAME_MAX must match IFNAMSIZ");

int vpio_tunsetiff_tap(int fd, const char *name, char *name_out) {
    size_t length = strlen(name);
    if (length > VPIO_IFNAME_MAX) {
        errno = EINVAL;
        return -1;
    }
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, name, length);
    request.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(fd, TUNSETIFF, &request) < 0) {
        return -1;
    }
    // The kernel NUL-terminates ifr_name; copy at most IFNAMSIZ bytes regardless.
    memcpy(name_out, request.ifr_name, IFNAMSIZ);
    name_out[VPIO_IFNAME_MAX] = '\0';
    return 0;
}

int vpio_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }

int vpio_unread_sent_bytes(int fd) {
    int pending = 0;
    if (ioctl(fd, TIOCOUTQ, &pending) < 0) {
        return -1;
    }
    return pending;
}

int vpio_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int vpio_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
