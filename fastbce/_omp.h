/* OpenMP shims: the kernels build and run serial where the compiler has no
 * OpenMP. And fork safety (docs/kernels.md): OpenMP runtimes such as GCC's
 * libgomp keep their worker threads across parallel regions, and a child
 * made by fork() has none of them, so its next parallel region waits for
 * them forever. A child of a process that ran a parallel kernel therefore
 * runs the kernels serial: fb_forked_after_parallel() tells the kernels so,
 * and they never enter a parallel region there. */
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

static volatile int fb_parallel_used = 0;
static volatile int fb_in_forked_child = 0;
static inline void fb_note_parallel(void) { fb_parallel_used = 1; }
static inline int fb_forked_after_parallel(void) { return fb_in_forked_child; }

#if defined(_OPENMP) && !defined(_WIN32)
#include <pthread.h>
static void fb_atfork_child(void) { if (fb_parallel_used) fb_in_forked_child = 1; }
static int fb_register_atfork(void) { return pthread_atfork(NULL, NULL, fb_atfork_child); }
#else
static int fb_register_atfork(void) { return 0; }
#endif

#endif
