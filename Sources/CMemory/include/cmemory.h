// lmc's own memory (StartupPages in LMCPlatform): prctl(2), which Swift cannot call (variadic in C),
// and the walk over the loaded objects' segments (dl_iterate_phdr) that unmaps their read-only pages.
#pragma once
#include <sys/prctl.h>

/// No transparent huge pages for this process (and what it execs): returns prctl's result (0, or -1).
static inline int lmc_thp_disable(void) {
    return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
}

/// 1 when transparent huge pages are off for this process (PR_GET_THP_DISABLE), 0 when not, -1 on error.
static inline int lmc_thp_disabled(void) {
    return prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
}

struct lmc_released { unsigned long bytes; int segments; int failed; };

/// MADV_DONTNEED over every read-only loaded segment of the executable and its libraries (StartupPages).
struct lmc_released lmc_release_readonly_segments(void);
