#include "CKVM.h"

#include <sys/ioctl.h>

int ckvm_ioctl(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }

int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value) { return ioctl(fd, request, value); }

struct ckvm_io ckvm_run_io(const struct kvm_run *run) {
    struct ckvm_io io = {
        .direction = run->io.direction,
        .size = run->io.size,
        .port = run->io.port,
        .count = run->io.count,
        .data_offset = run->io.data_offset,
    };
    return io;
}

uint64_t ckvm_run_mmio_address(const struct kvm_run *run) { return run->mmio.phys_addr; }

uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run) { return run->fail_entry.hardware_entry_failure_reason; }

uint32_t ckvm_run_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }

uint64_t ckvm_rdtsc(void) { return __builtin_ia32_rdtsc(); }
