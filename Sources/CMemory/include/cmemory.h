// prctl(2) for lmc's own memory (StartupPages in LMCPlatform): Swift cannot call a variadic C function.
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
