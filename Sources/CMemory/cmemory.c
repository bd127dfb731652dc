// Everything is in include/cmemory.h (static inline); SwiftPM wants one source file per C target.
#include "cmemory.h"
