#include "CKVM.h"

#include <sys/ioctl.h>

int ckvm_ioctl(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }

int ckvm_ioctl_value(int fd, unsigned long request, unsigned long value) { return ioctl(fd, request, value); }

struct ckvm_exit ckvm_run_exit(const struct kvm_run *run) {
    struct ckvm_exit exit = {.reason = run->exit_reason};
    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        exit.io = (struct ckvm_io){
            .direction = run->io.direction,
            .size = run->io.size,
            .port = run->io.port,
            .count = run->io.count,
            .data_offset = run->io.data_offset,
        };
        break;
    case KVM_EXIT_MMIO: exit.mmio_address = run->mmio.phys_addr; break;
    case KVM_EXIT_FAIL_ENTRY: exit.fail_entry_reason = run->fail_entry.hardware_entry_failure_reason; break;
    case KVM_EXIT_INTERNAL_ERROR: exit.internal_suberror = run->internal.suberror; break;
    }
    return exit;
}

uint64_t ckvm_rdtsc(void) { return __builtin_ia32_rdtsc(); }
