// What Swift cannot import from <linux/kvm.h>: the KVM_* ioctl numbers (function-like _IO* macros),
// the variadic ioctl(2) itself, and the anonymous unions of struct kvm_run. Plus rdtsc, which has
// no Swift spelling. Stateless one-liners; errors are reported the C way (-1 and errno).
#ifndef CKVM_H
#define CKVM_H

#include <stdint.h>
#include <linux/kvm.h>

// ioctl request numbers, as constants Swift can see.
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;

/// ioctl(fd, request, argument) for requests that take a pointer (or nothing: pass NULL).
int ckvm_ioctl(int fd, unsigned long request, void *argument);
/// ioctl(fd, request, value) for requests that take an integer (KVM_CHECK_EXTENSION, KVM_CREATE_VCPU).
int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value);

/// The io member of kvm_run's exit union, valid when exit_reason is KVM_EXIT_IO.
struct ckvm_io {
    uint8_t direction;  // KVM_EXIT_IO_IN or KVM_EXIT_IO_OUT
    uint8_t size;       // bytes per access: 1, 2 or 4
    uint16_t port;
    uint32_t count;     // > 1 only for string instructions
    uint64_t data_offset;  // from the start of kvm_run to the data bytes
};

/// One exit as kvm_run describes it, copied out of its union; only the field of `reason` is set.
struct ckvm_exit {
    uint32_t reason;             // exit_reason (KVM_EXIT_*)
    struct ckvm_io io;           // KVM_EXIT_IO: run->io
    uint64_t mmio_address;       // KVM_EXIT_MMIO: run->mmio.phys_addr, where a guest that ran off its code ended up
    uint64_t fail_entry_reason;  // KVM_EXIT_FAIL_ENTRY: run->fail_entry.hardware_entry_failure_reason
    uint32_t internal_suberror;  // KVM_EXIT_INTERNAL_ERROR: run->internal.suberror
};

/// The exit `run` (a mapped kvm_run of at least sizeof(struct kvm_run) bytes) describes.
struct ckvm_exit ckvm_run_exit(const struct kvm_run *run);

/// The time-stamp counter (rdtsc), for cycle counts.
uint64_t ckvm_rdtsc(void);

#endif
