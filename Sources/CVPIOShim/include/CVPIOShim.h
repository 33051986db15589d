// What Swift cannot import from the C headers: the CMSG_* macros, the TUNSETIFF ioctl with its
// struct ifreq, and the accept4, eventfd and memfd_create calls whose declarations or flags
// Glibc's Swift module does not expose (they need _GNU_SOURCE or live in unmapped headers). Each function is a thin,
// stateless wrapper; errors are reported the C way (-1 and errno) so the Swift side can treat
// them like any other syscall.
#ifndef CVPIOSHIM_H
#define CVPIOSHIM_H

#include <stddef.h>
#include <sys/socket.h>

/// Largest interface name TUNSETIFF accepts, without the terminating NUL (IFNAMSIZ - 1).
#define VPIO_IFNAME_MAX 15

/// CMSG_SPACE(data_length): bytes a control message with that payload occupies, padding included.
size_t vpio_cmsg_space(size_t data_length);
/// CMSG_LEN(data_length): the cmsg_len value for a control message with that payload.
size_t vpio_cmsg_len(size_t data_length);
/// CMSG_FIRSTHDR(message): the first control message, or NULL.
struct cmsghdr *vpio_cmsg_firsthdr(struct msghdr *message);
/// CMSG_NXTHDR(message, header): the control message after `header`, or NULL.
struct cmsghdr *vpio_cmsg_nxthdr(struct msghdr *message, struct cmsghdr *header);
/// CMSG_DATA(header): the payload of a control message.
unsigned char *vpio_cmsg_data(struct cmsghdr *header);

/// TUNSETIFF on an open /dev/net/tun descriptor with IFF_TAP | IFF_NO_PI and the given name
/// (at most VPIO_IFNAME_MAX bytes; may hold a %d pattern). On success copies the name the kernel
/// chose, NUL-terminated, into `name_out` (VPIO_IFNAME_MAX + 1 bytes) and returns 0; otherwise
/// returns -1 with errno set (EINVAL for a name that is too long).
int vpio_tunsetiff_tap(int fd, const char *name, char *name_out);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC).
int vpio_accept_cloexec(int fd);

/// ioctl(fd, TIOCOUTQ): on a UNIX stream socket, the bytes sent that the peer has not read yet.
/// Returns them, or -1 with errno set.
int vpio_unread_sent_bytes(int fd);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); the flags are not visible to Swift.
int vpio_eventfd(void);

/// memfd_create(name, MFD_CLOEXEC): an anonymous file usable as shared memory.
int vpio_memfd_create(const char *name);

#endif
