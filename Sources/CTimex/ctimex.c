// Everything is in include/ctimex.h (static inline); SwiftPM wants one source file per C target.
#include "ctimex.h"
