// Umbrella header for OpenBLAS's CBLAS interface, its extension functions and LAPACKE.
// Debian: cblas.h comes from libopenblas-dev (found through pkg-config "openblas"),
// lapacke.h from liblapacke-dev (/usr/include).
#include <cblas.h>
#include <lapacke.h>
