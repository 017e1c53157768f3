/* OpenMP shims: the kernels build and run serial where the compiler has no OpenMP. */
#ifndef FASTBCE_OMP_H
#define FASTBCE_OMP_H
#ifdef _OPENMP
#include <omp.h>
static inline int fb_openmp_enabled(void) { return 1; }
static inline int fb_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int fb_openmp_enabled(void) { return 0; }
static inline int fb_max_threads(void) { return 1; }
#endif
#endif
