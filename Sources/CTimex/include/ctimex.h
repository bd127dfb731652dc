// The kernel's clock discipline state (adjtimex(2), read-only: modes = 0), which Swift's Glibc and
// Musl modules do not export. For lmc doctor's clock check.
#pragma once
#include <sys/timex.h>

/// Returns adjtimex's clock state (TIME_OK … TIME_ERROR, or -1), with the status word and the
/// estimated error in microseconds.
static inline int lmc_clock_state(int *status, long *esterror_us) {
    struct timex t = {0};
    int state = adjtimex(&t);
    *status = t.status;
    *esterror_us = t.esterror;
    return state;
}

static const int lmc_time_error = TIME_ERROR;
static const int lmc_sta_unsync = STA_UNSYNC;
