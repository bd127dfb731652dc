// prctl's two calls are static inline in include/cmemory.h; the segment walk is here, where
// _GNU_SOURCE (dl_iterate_phdr) does not leak into the Swift modules that import the header.
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "cmemory.h"

static int lmc_release_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct lmc_released *r = (struct lmc_released *)data;
    // The vDSO is the kernel's, not a file's.
    if (info->dlpi_name && strstr(info->dlpi_name, "vdso")) return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        // Only segments loaded without write permission: text and read-only data. RELRO (relocated,
        // then made read-only) lies inside a writable segment and is never touched.
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || ph->p_filesz == 0) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_filesz;
        start = (start + page - 1) & ~(page - 1);   // whole pages inside the segment only
        end &= ~(page - 1);
        if (end <= start) continue;
        if (madvise((void *)start, end - start, MADV_DONTNEED) == 0) {
            r->bytes += end - start;
            r->segments += 1;
        } else {
            r->failed += 1;
        }
    }
    return 0;
}

struct lmc_released lmc_release_readonly_segments(void) {
    struct lmc_released r = {0, 0, 0};
    dl_iterate_phdr(lmc_release_object, &r);
    return r;
}
